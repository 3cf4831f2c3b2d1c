"""
Oscillating 2D linear system
============================

Which 2x2 dynamics matrices :math:`A` make :math:`\\dot x = A x` oscillate
near 1 Hz with no growth or decay? EPI finds the maximum-entropy
distribution of the four entries whose primary eigenvalue :math:`\\lambda_1`
has real part :math:`0 \\pm 0.25` and imaginary part
:math:`2\\pi \\pm \\pi / 5` (Bittner et al., 2021, "Example: 2D LDS"). This
toy model is worth studying because its distribution is curved and
bimodal, yet part of it can be derived by hand and checked.
"""

# %%
# Fit
# ---
# The statistic :func:`~sklearn_epi.circuits.lds_eigenvalues` returns the
# real and imaginary part of :math:`\lambda_1` from the quadratic formula.
# The property constrains their means and variances (the paper's Eq. 29) on
# the support :math:`a_{ij} \in [-10, 10]`. Default settings: the fit runs
# all its epochs and keeps the converged one of greatest entropy.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sklearn_epi import EPIEstimator
from sklearn_epi.analysis import maxent_reference
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues
from sklearn_epi.plotting import animate_epochs, pairplot, plot_history, plot_predictive

# Named statistics label the history and the predictive check.
STATS = ["re_lambda1", "im_lambda1"]
# warm_start=True keeps every epoch's weights, for the movie at the end.
est = EPIEstimator(lds_eigenvalues, LDS_BOUNDS, random_state=1, warm_start=True).fit(
    pd.Series(LDS_MU, index=STATS), pd.Series(LDS_SIGMA2, index=STATS)
)
assert est.converged_, "the 2D LDS fit should converge"
print(f"converged at epoch {est.epoch_}: entropy {est.entropy_:.2f} +- {est.entropy_se_:.2f} nats")
print(f"fit time {est.fit_time_:.0f} s")

# %%
# The optimisation
# ----------------
# The entropy first grows from the initial Gaussian, then drops as the
# penalty :math:`c` grows and the constraint violations :math:`R` are pulled
# to zero. Once they pass the test, :math:`c` stays put while the
# multipliers :math:`\eta` settle. The star marks the kept epoch: the
# converged one of greatest entropy. The fit stops two epochs after it
# (``ALParams(patience=2)``, the default), when the entropy has not risen.
fig, axes = plot_history(est)
fig.suptitle("Augmented Lagrangian optimisation of the 2D LDS")
plt.show()

# %%
# The trace :math:`a_{11} + a_{22}` is constrained
# ------------------------------------------------
# Whenever the eigenvalues are complex,
# :math:`\mathrm{real}(\lambda_1) = (a_{11} + a_{22}) / 2`. The property
# fixes it at :math:`0 \pm 0.25`, so in the :math:`a_{11}`-:math:`a_{22}`
# panel the samples lie along the anti-diagonal
# :math:`a_{11} + a_{22} = 0` (solid line), within the analytic
# contours at one standard deviation, :math:`a_{11} + a_{22} = \pm 2 \cdot
# 0.25` (dashed), and two, :math:`\pm 2 \cdot 0.5` (dotted). Log density is
# high where the trace is near zero, as the paper's Figure 1, supplement 2A
# shows. The other panels show the curved, bimodal structure of the
# off-diagonal entries: :math:`a_{12}` and :math:`a_{21}` need opposite signs
# for the eigenvalues to be complex.
fig, axes = pairplot(est, n_samples=2000, random_state=0)
ax = axes[3, 0]  # x: a11, y: a22
a11 = np.linspace(-10, 10, 2)
ax.plot(a11, -a11, "k-", lw=1.2)
for k, style in [(1, "--"), (2, ":")]:
    for sign in (-1, 1):
        ax.plot(a11, -a11 + sign * 2 * k * 0.25, color="k", ls=style, lw=1.2)
fig.suptitle("EPI distribution of oscillating 2x2 systems")
plt.show()

# %%
# Do fresh samples have the property?
# -----------------------------------
# The statistic on samples the fit never saw: the histograms centre on the
# target means with the target spread (dashed: :math:`\mu \pm 2 \sigma`).
fig, axes = plot_predictive(est, n_samples=2000)
plt.show()

# %%
# Is this the maximum?
# --------------------
# In four dimensions the maximum-entropy distribution can also be found
# without a flow: :func:`~sklearn_epi.analysis.maxent_reference` solves the
# dual problem on a million uniform samples of the box. Its entropy
# :math:`H^*` is what the fit should reach, and its two modes (:math:`a_{12}
# > 0 > a_{21}` and the mirror image) carry half of the mass each.
ref = maxent_reference(
    lds_eigenvalues, LDS_BOUNDS, LDS_MU, LDS_SIGMA2, n_samples=1_000_000, random_state=0
)
Z = est.sample(4000, random_state=0)
print(f"H* = {ref.entropy:.2f} +- {ref.entropy_se:.2f} nats")
print(f"gap H* - H = {ref.entropy - est.entropy_:.2f} nats")
print(f"share of samples with a12 > 0: EPI {np.mean(Z[:, 1] > 0):.2f}, maximum 0.50")
fig, axes = plt.subplots(1, 2, figsize=(8, 4), sharex=True, sharey=True)
for ax, samples, title in [
    (axes[0], Z, f"EPI, H = {est.entropy_:.2f}"),
    (axes[1], ref.sample(4000, random_state=0), f"maximum, H* = {ref.entropy:.2f}"),
]:
    ax.scatter(samples[:, 1], samples[:, 2], s=2, alpha=0.3)
    ax.set(title=title, xlabel="$a_{12}$", xlim=(-10, 10), ylim=(-10, 10))
axes[0].set_ylabel("$a_{21}$")
fig.suptitle("Both modes, as the maximum-entropy distribution has them")
plt.show()

# %%
# The optimisation as a movie
# ---------------------------
# :func:`~sklearn_epi.plotting.animate_epochs` draws the same base samples
# through every epoch's flow: the Gaussian start spreads over the box, then
# splits into the two lobes as the constraints tighten. Save it with
# ``anim.save("lds_fit.gif", writer="pillow")``.
anim = animate_epochs(est, "a12", "a21", n_samples=1000)
plt.show()
