"""
Rapid task switching in superior colliculus
===========================================

Rats switch between a Pro task (orient towards a light) and an Anti task
(orient away) on interleaved trials. In a four-population model of the
superior colliculus (Duan et al., 2021) the connectivity has self
(:math:`sW`), vertical (:math:`vW`), horizontal (:math:`hW`) and diagonal
(:math:`dW`) weights. Bittner et al. (2021, Figure 4) infer the
connectivities that give 75% +- 7.5% accuracy in both tasks and find two
regimes:

* the distribution is bent: the :math:`sW`-:math:`hW` correlation changes
  sign from high to low :math:`sW`, and the sensitivity dimension
  :math:`v_1` at the modes :math:`z^*(sW)` turns with it;
* along :math:`v_1`, Pro accuracy rises in both regimes, while Anti
  accuracy falls on both sides of the mode in one regime and rises with Pro
  in the other;
* lowering the task eigenvalue (along :math:`-v_{task}`) hurts Anti accuracy
  in both regimes, and raising the diagonal eigenvalue (:math:`v_{diag}`)
  acts on Anti accuracy in opposite ways in the two regimes.

Here the two regimes come from two EPI fits of the same property, each
started inside one regime (``examples/fit_sc.py`` says why: the property
is rare, a fit stays in the regime it starts in, and our fits started from
both regimes at once lost one of them). The paper's single distribution
spans both. Each evaluation of the statistic simulates 2 x 200 noisy
trials, so the fits (31 minutes each on one CPU thread) are loaded.

These two fits were made by an earlier version of the package (their files
name no commit). Refitted with the same script and settings at commit
34ff929 (TensorFlow 2.21, ``python examples/refit_all.py``), the fit
started in the high-sW regime (at sW = -0.21) drifted into the low one
over its 11 epochs: sW from -1.28 to -0.22 (2nd to 98th percentile), an
sW-hW correlation of +0.87 where this one has -0.62. Two separate fits
keep apart only as long as the optimisation does not cross between the
regimes; one distribution over both, as in the paper, would not depend on
that.
"""

# %%
# Load the two fits
# -----------------
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import sklearn_epi
from sklearn_epi.analysis import find_mode, sensitivity
from sklearn_epi.circuits import SC_EIGENMODES, SC_MU, SC_SIGMA2, sc_task_accuracy
from sklearn_epi.persistence import file_info

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery executes the file without __file__
    here = Path("examples").resolve() if Path("examples").is_dir() else Path.cwd()
fits = {
    "high sW": sklearn_epi.load(here / "data" / "sc_high_sW.npz"),
    "low sW": sklearn_epi.load(here / "data" / "sc_low_sW.npz"),
}
samples = {}
for label, est in fits.items():
    made = file_info(here / "data" / f"sc_{label.replace(' ', '_')}.npz")
    print(
        f"{label}: made by sklearn_epi {made['sklearn_epi']} at {made['commit']}, "
        f"TF {made['tensorflow']}"
    )
    print(
        f"{label}: converged {est.converged_} at epoch {est.epoch_} of "
        f"{est.history_['epoch'].max()}, {est.fit_time_ / 60:.0f} min; entropy "
        f"{est.entropy_:.2f} nats; p-values {est.pvalues_.round(3)}"
    )
    samples[label] = est.sample(1000, random_state=1)

# %%
# Both fits have the property
# ---------------------------
# Pro and Anti accuracy at 300 fresh samples of each fit: mean near 75%,
# spread near 7.5%.
accuracy = sc_task_accuracy(n_trials=200)
predictions = {}
for label, Z in samples.items():
    P = predictions[label] = accuracy(Z[:300]).numpy()
    print(f"{label}: accuracy [Pro, Anti] mean {P.mean(0).round(3)}, std {P.std(0).round(3)}")
    np.testing.assert_allclose(P.mean(axis=0), SC_MU, atol=0.03)
    np.testing.assert_allclose(P.std(axis=0), np.sqrt(SC_SIGMA2), rtol=0.5)

# %%
# A bent solution set, and its modes along :math:`sW`
# ---------------------------------------------------
# The correlation of :math:`sW` and :math:`hW` changes sign between the
# regimes. In each fit, the conditional modes with :math:`sW` held at
# several values (each search started from the previous mode, the paper's
# continuation) and the Hessian's most sensitive eigenvector :math:`v_1` at
# each, its sign chosen with negative :math:`hW` as in the paper. The
# arrows turn between the regimes.
corr = {k: np.corrcoef(Z[:, 0], Z[:, 2])[0, 1] for k, Z in samples.items()}
print(f"corr(sW, hW): high sW {corr['high sW']:+.2f}, low sW {corr['low sW']:+.2f}")
assert corr["high sW"] < -0.3 and corr["low sW"] > 0.3

modes, v1s = {}, {}
fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
colors = {"high sW": "tab:orange", "low sW": "tab:blue"}
for label, est in fits.items():
    Z = samples[label]
    axes[0].scatter(Z[:, 0], Z[:, 2], s=3, alpha=0.25, color=colors[label])
    points, vectors, z0 = [], [], None
    for value in np.quantile(Z[:, 0], [0.8, 0.5, 0.2]):
        mode = find_mode(est, z0=z0, fixed={"sW": value}, max_step=0.5)
        _, eigenvectors = sensitivity(est, mode, reference="hW")
        points.append(mode)
        vectors.append(-eigenvectors[:, 0])
        z0 = mode
    modes[label], v1s[label] = np.array(points), np.array(vectors)
    for m, v in zip(modes[label], v1s[label]):
        axes[0].annotate(
            "", m[[0, 2]] + 0.8 * v[[0, 2]], m[[0, 2]], arrowprops={"arrowstyle": "->", "lw": 1.5}
        )
    axes[0].plot(modes[label][:, 0], modes[label][:, 2], "ko", ms=5)
    print(f"{label}: modes [sW, vW, hW, dW]\n{modes[label].round(2)}\nv1\n{v1s[label].round(2)}")
    P = predictions[label]
    axes[1].scatter(P[:, 0], P[:, 1], s=5, alpha=0.4, color=colors[label], label=label)
cosine = abs(v1s["high sW"][1] @ v1s["low sW"][1])
turn = np.degrees(np.arccos(min(cosine, 1.0)))
print(f"v1 at the middle modes of the two regimes differ by {turn:.0f} degrees")
axes[0].set(xlabel="sW", ylabel="hW", title=r"samples, modes $z^*(sW)$ and $v_1$")
axes[1].plot(*SC_MU, "r*", ms=12, label="target mean")
axes[1].set(xlabel="Pro accuracy", ylabel="Anti accuracy", title="accuracy of samples")
axes[1].legend(loc="lower left")
fig.tight_layout()
plt.show()

# %%
# Perturbing the connectivity away from the modes
# -----------------------------------------------
# As in the paper's Figure 4D: accuracy at :math:`z^* + \delta v` at the
# middle mode of each regime, for :math:`v` the mode's own :math:`v_1`, or
# the fixed directions :math:`v_{task}` and :math:`v_{diag}` that change one
# eigenvalue of the connectivity each; every point averages 25 evaluations
# of 200 trials.
deltas = np.linspace(-0.5, 0.5, 5)
directions = {"v1": None, "v_task": SC_EIGENMODES[2], "v_diag": SC_EIGENMODES[3]}
effects = {}
fig, axes = plt.subplots(2, 3, figsize=(11, 5.6), sharex=True, sharey="row")
for col, (name, direction) in enumerate(directions.items()):
    for label in fits:
        v = v1s[label][1] if direction is None else direction
        points = np.repeat(modes[label][1] + deltas[:, None] * v, 25, axis=0)
        acc = accuracy(np.clip(points, -4.99, 4.99)).numpy()
        acc = effects[name, label] = acc.reshape(len(deltas), 25, 2).mean(axis=1)
        for row in range(2):
            axes[row, col].plot(deltas, acc[:, row], "o-", color=colors[label], label=label)
    axes[0, col].set_title(name)
    axes[1, col].set_xlabel(r"$\delta$")
axes[0, 0].set_ylabel("Pro accuracy")
axes[1, 0].set_ylabel("Anti accuracy")
axes[0, 0].legend()
fig.tight_layout()
plt.show()
for (name, label), acc in effects.items():
    print(f"{name:6s} {label:8s} Pro {acc[:, 0].round(2)}  Anti {acc[:, 1].round(2)}")

# %%
# The paper's findings, checked: ``rise(a, b)`` is the change of accuracy
# from the mode (delta = 0) to delta = +-0.5.
mid = len(deltas) // 2


def rise(name, label, task, side):
    acc = effects[name, label][:, task]
    return acc[-1 if side > 0 else 0] - acc[mid]


PRO, ANTI = 0, 1
for label in fits:  # along v1, Pro accuracy rises in both regimes
    assert rise("v1", label, PRO, +1) > 0.1 and rise("v1", label, PRO, -1) < -0.1
# Anti accuracy falls on both sides in the high-sW regime ...
assert rise("v1", "high sW", ANTI, +1) < -0.1 and rise("v1", "high sW", ANTI, -1) < -0.1
# ... and rises with Pro accuracy in the low-sW regime.
assert rise("v1", "low sW", ANTI, +1) > 0.05 and rise("v1", "low sW", ANTI, -1) < -0.05
for label in fits:  # lowering the task eigenvalue hurts Anti accuracy in both
    assert rise("v_task", label, ANTI, -1) < -0.05
# Raising the diagonal eigenvalue acts on Anti accuracy in opposite ways.
assert rise("v_diag", "high sW", ANTI, +1) < -0.05 < 0.05 < rise("v_diag", "low sW", ANTI, +1)
