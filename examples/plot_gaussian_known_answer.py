"""
A known answer: the Gaussian
============================

With the identity statistic :math:`f(z) = z` on unbounded parameters, the
property "mean :math:`\\mu`, variance :math:`\\sigma^2`" has a closed-form
maximum-entropy solution: the Gaussian :math:`\\mathcal{N}(\\mu,
\\mathrm{diag}(\\sigma^2))`, of entropy

.. math:: H^* = \\tfrac{1}{2} \\sum_i \\log(2 \\pi e \\sigma_i^2).

Any distribution with the same means and variances has lower entropy, so
EPI's entropy should come within a few hundredths of a nat of :math:`H^*`,
and its samples should look Gaussian. It may sit slightly *above*
:math:`H^*`: the convergence test accepts variances within its tolerance of
the target, a slightly wider Gaussian has more entropy, and the fit keeps
the converged epoch of greatest entropy. This is the check to run
first when something looks off.
"""

# %%
# Fit
# ---
import matplotlib.pyplot as plt
import numpy as np

from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.plotting import pairplot, plot_history


def identity(z):
    return z


mu = {"x": 1.0, "y": -2.0}
sigma2 = {"x": 0.25, "y": 1.0}
bounds = {"x": (-np.inf, np.inf), "y": (-np.inf, np.inf)}
# The answer is a Gaussian, what a flow started from a Gaussian finds
# anyway: a short schedule with a strong start (c0 = 1, beta = 4) suffices.
# Multimodal answers need the gentler defaults (see the 2D LDS example).
est = EPIEstimator(
    identity,
    bounds,
    al_params=ALParams(
        c0=1.0, beta=4.0, num_iters=300, max_epochs=8, init_iters=200, batch_size=500
    ),
    random_state=0,
).fit(mu, sigma2)
assert est.converged_

optimum = 0.5 * np.sum(np.log(2 * np.pi * np.e * np.array(list(sigma2.values()))))
print(f"EPI entropy      {est.entropy_:.3f} +- {est.entropy_se_:.3f} nats")
print(f"analytic optimum {optimum:.3f} nats")
assert abs(est.entropy_ - optimum) < 0.1

# %%
# Entropy against the optimum
# ---------------------------
# The training entropy (line) and the end-of-epoch estimates (dots) settle
# on the analytic optimum (red). Early epochs may lie above it: those
# distributions are wider than the property allows, as the constraint
# violations :math:`R` of the variances show.
fig, axes = plot_history(est)
axes[0].axhline(optimum, color="tab:red", lw=1.5, label="analytic optimum")
axes[0].legend(fontsize="small")
plt.show()

# %%
# Samples against the Gaussian
# ----------------------------
# The EPI samples, with the analytic Gaussian's one- and two-standard-
# deviation ellipses in red on top of the samples' own density contours.
fig, axes = pairplot(est, n_samples=2000, points=list(mu.values()))
t = np.linspace(0, 2 * np.pi, 200)
sd = np.sqrt(list(sigma2.values()))
for k in (1, 2):
    axes[1, 0].plot(mu["x"] + k * sd[0] * np.cos(t), mu["y"] + k * sd[1] * np.sin(t), "r", lw=1)
plt.show()
