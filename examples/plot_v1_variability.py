"""
Excitatory variability in a four-population V1 model
====================================================

A stochastic stabilised supralinear network of V1 (Hennequin et al., 2018)
with excitatory (E), parvalbumin (P), somatostatin (S) and VIP (V)
populations; each population receives slow noisy input of standard
deviation :math:`\\sigma_\\alpha`. Bittner et al. (2021, Figure 3) infer the
noise levels :math:`z = [\\sigma_E, \\sigma_P, \\sigma_S, \\sigma_V] \\in
[0, 0.5]^4` that give E-population fluctuations :math:`s_E` of 5 Hz, or of
10 Hz (variance 1 Hz² each), and find that

* :math:`s_E` depends on :math:`\\sigma_E` and :math:`\\sigma_P` through
  roughly :math:`\\sigma_E^2 + \\sigma_P^2`: the modes along
  :math:`\\sigma_P` lie on a curve, and :math:`\\sigma_E^2 + \\sigma_P^2` is
  larger in the 10 Hz distribution (p < 1e-10 on 500 samples each);
* :math:`\\sigma_S` and :math:`\\sigma_V` are degenerate: their sum of
  squares does not differ between the two distributions (p = 0.40).

Each evaluation of :math:`s_E` simulates 100 noisy trials of 200 time steps,
so the two fits (about 20 minutes each on 2 CPU cores) are loaded from
``examples/fit_v1.py``.
"""

# %%
# Load the two fitted distributions
# ---------------------------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

import sklearn_epi
from sklearn_epi.analysis import find_mode, sensitivity
from sklearn_epi.circuits import V1_MU_5HZ, V1_MU_10HZ, V1_SIGMA2
from sklearn_epi.persistence import file_info

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery executes the file without __file__
    here = Path("examples").resolve() if Path("examples").is_dir() else Path.cwd()
fits = {
    "5 Hz": (sklearn_epi.load(here / "data" / "v1_5hz.npz"), V1_MU_5HZ[0]),
    "10 Hz": (sklearn_epi.load(here / "data" / "v1_10hz.npz"), V1_MU_10HZ[0]),
}
samples = {}
for label, (est, _) in fits.items():
    made = file_info(here / "data" / f"v1_{label.replace(' ', '').lower()}.npz")
    print(
        f"{label}: made by sklearn_epi {made['sklearn_epi']} at {made['commit']}, "
        f"TF {made['tensorflow']}"
    )
    print(
        f"{label}: converged {est.converged_} at epoch {est.epoch_} of "
        f"{est.history_['epoch'].max()}, {est.fit_time_ / 60:.0f} min; entropy "
        f"{est.entropy_:.2f} nats; p-values {est.pvalues_.round(3)}"
    )
    samples[label] = est.sample(500, random_state=1)

# %%
# The property holds on fresh samples
# -----------------------------------
# A fresh simulation of :math:`s_E` at 200 samples of each distribution:
# mean near the target, variance near 1 Hz².
for label, (est, mu) in fits.items():
    s_E = est.statistic(samples[label][:200]).numpy()[:, 0]
    print(f"{label}: s_E mean {s_E.mean():.2f} Hz, variance {s_E.var(ddof=1):.2f} Hz^2")
    assert abs(s_E.mean() - mu) < 0.5 and 0.4 < s_E.var(ddof=1) / V1_SIGMA2[0] < 2.5

# %%
# Modes along :math:`\sigma_P` and their sensitive directions
# -----------------------------------------------------------
# As in the paper's Figure 3E: the mode of each distribution with
# :math:`\sigma_P` held at several values across its range (each search
# starts at the previous mode), and at each mode the Hessian's most
# sensitive eigenvector :math:`v_1`, drawn in the
# :math:`\sigma_E`-:math:`\sigma_P` plane. The modes trace the curve of
# equal :math:`s_E`; :math:`v_1` points across it.
fig, axes = plt.subplots(1, 2, figsize=(10, 4.6), sharex=True, sharey=True)
modes = {}
for ax, (label, (est, _)) in zip(axes, fits.items()):
    Z = samples[label]
    ax.scatter(Z[:, 0], Z[:, 1], s=4, alpha=0.3, color="0.5")
    points, z0 = [], None
    for sigma_P in np.quantile(Z[:, 1], np.linspace(0.1, 0.9, 5)):
        mode = find_mode(est, z0=z0, fixed={"sigma_P": sigma_P}, max_step=0.1)
        _, vectors = sensitivity(est, mode, reference="sigma_E")
        v1 = vectors[:, 0]
        ax.annotate(
            "",
            xy=mode[:2] + 0.08 * v1[:2] / max(np.linalg.norm(v1[:2]), 1e-9),
            xytext=mode[:2],
            arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 1.5},
        )
        points.append(mode)
        z0 = mode
    modes[label] = np.array(points)
    ax.plot(*modes[label][:, :2].T, "ko", ms=5, label=r"modes along $\sigma_P$")
    ax.set(title=f"$s_E$ = {label}", xlabel=r"$\sigma_E$", xlim=(0, 0.5), ylim=(0, 0.5))
    print(f"{label} modes [sigma_E, sigma_P]:\n{modes[label][:, :2].round(3)}")
axes[0].set_ylabel(r"$\sigma_P$")
axes[0].legend(loc="upper right", fontsize="small")
fig.suptitle(r"$\sigma_E$-$\sigma_P$ marginals; arrows: sensitive direction $v_1$ at the modes")
plt.show()

# %%
# E and P input noise trade off; S and V are degenerate
# -----------------------------------------------------
# The paper's comparison on 500 samples of each distribution (Welch's
# t-test): the sum of squares of :math:`\sigma_E, \sigma_P` differs
# strongly, that of :math:`\sigma_S, \sigma_V` does not.
ep = {k: Z[:, 0] ** 2 + Z[:, 1] ** 2 for k, Z in samples.items()}
sv = {k: Z[:, 2] ** 2 + Z[:, 3] ** 2 for k, Z in samples.items()}
p_ep = stats.ttest_ind(ep["10 Hz"], ep["5 Hz"], equal_var=False).pvalue
p_sv = stats.ttest_ind(sv["10 Hz"], sv["5 Hz"], equal_var=False).pvalue
print(
    f"sigma_E^2 + sigma_P^2: 5 Hz {ep['5 Hz'].mean():.4f}, 10 Hz {ep['10 Hz'].mean():.4f}, "
    f"p = {p_ep:.1e} (paper: p < 1e-10)"
)
print(
    f"sigma_S^2 + sigma_V^2: 5 Hz {sv['5 Hz'].mean():.4f}, 10 Hz {sv['10 Hz'].mean():.4f}, "
    f"p = {p_sv:.2f} (paper: p = 0.40)"
)
assert ep["10 Hz"].mean() > ep["5 Hz"].mean() and p_ep < 1e-10
assert p_sv > 0.05

fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
for label in samples:
    axes[0].hist(ep[label], bins=30, alpha=0.5, label=label)
    axes[1].hist(sv[label], bins=30, alpha=0.5, label=label)
axes[0].set(xlabel=r"$\sigma_E^2 + \sigma_P^2$", title=f"differs (p = {p_ep:.0e})")
axes[1].set(xlabel=r"$\sigma_S^2 + \sigma_V^2$", title=f"does not differ (p = {p_sv:.2f})")
axes[0].legend(title="$s_E$")
fig.tight_layout()
plt.show()
