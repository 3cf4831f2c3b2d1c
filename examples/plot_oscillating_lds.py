"""
Oscillating 2D linear system
============================

Which 2x2 dynamics matrices ``A`` make ``dx/dt = A x`` oscillate near 1 Hz
with no growth or decay? EPI finds the maximum-entropy distribution of the
four entries whose primary eigenvalue has real part 0 +- 0.25 and imaginary
part 2 pi +- pi / 5 (Bittner et al., 2021, "Example: 2D LDS").
"""

# %%
# Fit
# ---
# The statistic is the primary eigenvalue's real and imaginary part, from the
# quadratic formula. ``stop_early`` ends the fit at the first epoch that
# passes the convergence test.
import matplotlib.pyplot as plt
import numpy as np

from sklearn_epi import ALParams, EPIEstimator
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues

est = EPIEstimator(
    lds_eigenvalues, LDS_BOUNDS, al_params=ALParams(stop_early=True), random_state=1
).fit(LDS_MU, LDS_SIGMA2)
print(f"converged: {est.converged_}, entropy {est.entropy_:.2f} nats")

# %%
# The trace a11 + a22 is constrained
# ----------------------------------
# real(lambda_1) = (a11 + a22) / 2 whenever the eigenvalues are complex, so
# the samples lie along a11 + a22 = 0, spread by the 0.25 standard deviation
# (dashed: +-1 sd, dotted: +-2 sd), as the paper's analytic contours say.
Z = est.sample(3000, random_state=0)
fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(Z[:, 0], Z[:, 3], s=3, c=est.score_samples(Z), cmap="viridis")
line = np.linspace(-10, 10, 2)
ax.plot(line, -line, "k-", lw=1)
for k, style in [(1, "k--"), (2, "k:")]:
    for sign in (-1, 1):
        ax.plot(line, -line + sign * 2 * k * 0.25, style, lw=1)
ax.set(xlim=(-10, 10), ylim=(-10, 10), xlabel="a11", ylabel="a22")
plt.show()
