"""
Modes and Hessian sensitivity
=============================

Where in parameter space is the emergent property most robust, and which
parameter combinations is it most sensitive to? Once EPI has learned
:math:`q(z)`, its mode and the Hessian of :math:`\\log q` there answer both
(Bittner et al., 2021, "Hessian sensitivity vectors"). The eigenvector of
the most negative eigenvalue, :math:`v_1`, is the *sensitivity dimension*:
moving along it destroys the property fastest. Eigenvalues near zero belong
to robust combinations.

We use the oscillating 2D linear system of
:ref:`sphx_glr_auto_examples_plot_oscillating_lds.py`.
"""

# %%
# Fit, then climb to a mode
# -------------------------
# :func:`~sklearn_epi.analysis.find_mode` starts at the densest of a few
# hundred samples and follows the gradient of :math:`\log q`.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.analysis import find_mode, sensitivity
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues
from sklearn_epi.plotting import pairplot

# Named statistics label the history and the predictive check.
STATS = ["re_lambda1", "im_lambda1"]
est = EPIEstimator(
    lds_eigenvalues, LDS_BOUNDS, al_params=ALParams(stop_early=True), random_state=1
).fit(pd.Series(LDS_MU, index=STATS), pd.Series(LDS_SIGMA2, index=STATS))
assert est.converged_

mode = find_mode(est)
print("mode:", pd.Series(mode, index=est.param_names_).round(2).to_dict())
print("lambda_1 at the mode:", lds_eigenvalues(mode[None]).numpy().round(2))

# %%
# Sensitivity dimensions
# ----------------------
# :func:`~sklearn_epi.analysis.sensitivity` returns the Hessian's
# eigenvalues, most negative first, and unit eigenvectors as columns; each
# eigenvector's largest component is made positive. The real part of
# :math:`\lambda_1` is :math:`(a_{11} + a_{22}) / 2` and is held to
# :math:`\pm 0.25`, much tighter than anything else, so we expect
# :math:`v_1` to lean on the trace direction :math:`(1, 0, 0, 1) / \sqrt 2`.
# The eigenvalues span orders of magnitude: the learned density is a thin
# ridge around the zero-trace plane.
eigenvalues, eigenvectors = sensitivity(est, mode)
for k, (lam, v) in enumerate(zip(eigenvalues, eigenvectors.T), start=1):
    print(f"v{k}: eigenvalue {lam:8.2f}, vector {np.round(v, 2)}")
trace = np.array([1.0, 0.0, 0.0, 1.0]) / np.sqrt(2)
print(f"|cos(v1, trace direction)| = {abs(eigenvectors[:, 0] @ trace):.2f}")

# %%
# The arrows drawn at the mode have lengths proportional to
# :math:`1 / \sqrt{|\lambda_k|}`, the standard deviation along :math:`v_k` of a Gaussian with this
# curvature: sensitive directions are short, robust ones long. In the
# :math:`a_{11}`-:math:`a_{22}` panel, :math:`v_1` points across the band
# :math:`a_{11} + a_{22} \approx 0`.
fig, axes = pairplot(est, n_samples=2000, points=mode, points_label="mode", hessian_at=mode)
plt.show()

# %%
# Conditional modes along :math:`a_{11}`
# --------------------------------------
# The paper follows the mode as one parameter is swept ("mode
# identification"): fix it with ``fixed={"a11": value}`` and climb in the
# others. The paper starts each search at the previous mode. Here the
# density is a very thin ridge (see :math:`\lambda_1` above): moving
# :math:`a_{11}` alone by 0.5 leaves the ridge by many standard deviations,
# so each search instead starts at the densest of 500 samples with
# :math:`a_{11}` set to the fixed value (the default ``z0=None``). Along the
# sweep the conditional mode keeps :math:`a_{22} \approx -a_{11}`, the
# zero-trace line, and the frequency near 1 Hz, while :math:`a_{12}` and
# :math:`a_{21}` switch between the distribution's two lobes
# (:math:`a_{12} > 0 > a_{21}` or the reverse), whichever is denser there.
values = np.linspace(-2.0, 2.0, 9)
modes = np.array([find_mode(est, fixed={"a11": value}) for value in values])
f = lds_eigenvalues(modes).numpy()

fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
for j, name in enumerate(est.param_names_[1:], start=1):
    axes[0].plot(values, modes[:, j], "o-", label=name)
axes[0].plot(values, -values, "k:", lw=1, label="-a11")
axes[0].set(xlabel="a11 (fixed)", ylabel="conditional mode", title="mode continuation")
axes[0].legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5))
axes[1].plot(values, f[:, 0], "o-", label=r"real($\lambda_1$)")
axes[1].plot(values, f[:, 1] / (2 * np.pi), "s-", label=r"imag($\lambda_1$) / 2$\pi$ (Hz)")
axes[1].set(xlabel="a11 (fixed)", title="the property along the sweep")
axes[1].legend(fontsize="small")
plt.show()
