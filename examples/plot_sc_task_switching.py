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
  as :math:`v_1` does, and raising the diagonal eigenvalue
  (:math:`v_{diag}`) acts on Anti accuracy in opposite ways in the two
  regimes.

Each evaluation of the statistic simulates 2 x 200 noisy trials, so the fit
(about 20 minutes on 2 CPU cores) is loaded from ``examples/fit_sc.py``.
"""

# %%
# Load the fitted distribution
# ----------------------------
from pathlib import Path

import joblib
import matplotlib.pyplot as plt
import numpy as np

from sklearn_epi.analysis import find_mode, sensitivity
from sklearn_epi.circuits import SC_EIGENMODES, SC_MU, SC_SIGMA2, sc_task_accuracy

try:
    here = Path(__file__).resolve().parent
except NameError:  # sphinx-gallery executes the file without __file__
    here = Path("examples").resolve() if Path("examples").is_dir() else Path.cwd()
est = joblib.load(here / "data" / "sc_task_switching.joblib")
print(
    f"converged {est.converged_} at epoch {est.epoch_} of {est.history_['epoch'].max()}, "
    f"{est.fit_time_ / 60:.0f} min; entropy {est.entropy_:.2f} nats; "
    f"p-values {est.pvalues_.round(3)}"
)

# %%
# Pro and Anti accuracy of fresh samples
# --------------------------------------
Z = est.sample(1000, random_state=1)
P = est.statistic(Z[:300]).numpy()
print(f"accuracy [Pro, Anti]: mean {P.mean(axis=0).round(3)}, std {P.std(axis=0).round(3)}")
np.testing.assert_allclose(P.mean(axis=0), SC_MU, atol=0.03)
np.testing.assert_allclose(P.std(axis=0), np.sqrt(SC_SIGMA2), rtol=0.5)

# %%
# A bent distribution
# -------------------
# The correlation of :math:`sW` and :math:`hW` among samples of high and of
# low :math:`sW`: it changes sign.
sW, hW = Z[:, 0], Z[:, 2]
high, low = sW > np.quantile(sW, 2 / 3), sW < np.quantile(sW, 1 / 3)
r_high = np.corrcoef(sW[high], hW[high])[0, 1]
r_low = np.corrcoef(sW[low], hW[low])[0, 1]
print(f"corr(sW, hW): high sW {r_high:+.2f}, low sW {r_low:+.2f}")

# %%
# Modes along :math:`sW` and their sensitivity vectors
# ----------------------------------------------------
# Conditional modes with :math:`sW` held fixed, each search started from the
# previous mode (the paper's continuation), and the Hessian's most sensitive
# eigenvector :math:`v_1` at each, its sign chosen with negative
# :math:`hW` as in the paper.
sW_values = np.linspace(np.quantile(sW, 0.9), np.quantile(sW, 0.1), 5)
modes, v1s, z0 = [], [], None
for value in sW_values:
    mode = find_mode(est, z0=z0, fixed={"sW": value}, max_step=0.5)
    _, vectors = sensitivity(est, mode, reference="hW")
    modes.append(mode)
    v1s.append(-vectors[:, 0])
    z0 = mode
    print(f"sW = {value:+.2f}: mode {mode.round(2)}, v1 {v1s[-1].round(2)}")
modes, v1s = np.array(modes), np.array(v1s)
turn = np.degrees(np.arccos(np.clip(abs(v1s[0] @ v1s[-1]), 0, 1)))
print(f"v1 turns by {turn:.0f} degrees from the highest to the lowest sW")

fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
axes[0].scatter(sW, hW, s=4, alpha=0.3, color="0.5")
axes[0].scatter(modes[:, 0], modes[:, 2], c=sW_values, cmap="cool", s=40, zorder=3)
for m, v in zip(modes, v1s):
    axes[0].annotate(
        "", m[[0, 2]] + 0.8 * v[[0, 2]], m[[0, 2]], arrowprops={"arrowstyle": "->", "lw": 1.5}
    )
axes[0].set(xlabel="sW", ylabel="hW", title=r"samples, modes $z^*(sW)$ and $v_1$")
axes[1].scatter(P[:, 0], P[:, 1], s=5, alpha=0.4)
axes[1].plot(*SC_MU, "r*", ms=12, label="target mean")
axes[1].set(xlabel="Pro accuracy", ylabel="Anti accuracy", title="predictions")
axes[1].legend(loc="lower left")
fig.tight_layout()
plt.show()

# %%
# Perturbing the connectivity away from the modes
# -----------------------------------------------
# As in the paper's Figure 4D: accuracy at :math:`z^*(sW) + \delta v` for
# :math:`v` the mode's own :math:`v_1`, or the fixed directions
# :math:`v_{task}` and :math:`v_{diag}` that change one eigenvalue of the
# connectivity each; every point averages 25 evaluations of 200 trials.
accuracy = sc_task_accuracy(n_trials=200)
deltas = np.linspace(-0.5, 0.5, 5)
regimes = {"high sW": 0, "low sW": len(modes) - 1}
directions = {
    "v1": None,
    "v_task": SC_EIGENMODES[2],
    "v_diag": SC_EIGENMODES[3],
}
effects = {}
fig, axes = plt.subplots(2, 3, figsize=(11, 5.6), sharex=True, sharey="row")
for col, (name, direction) in enumerate(directions.items()):
    for label, i in regimes.items():
        v = v1s[i] if direction is None else direction
        points = np.repeat(modes[i][None] + deltas[:, None] * v[None], 25, axis=0)
        points = np.clip(points, -4.99, 4.99)
        acc = accuracy(points).numpy().reshape(len(deltas), 25, 2).mean(axis=1)
        effects[name, label] = acc
        for row in range(2):
            axes[row, col].plot(deltas, acc[:, row], "o-", label=label)
    axes[0, col].set_title(name)
    axes[1, col].set_xlabel(r"$\delta$")
axes[0, 0].set_ylabel("Pro accuracy")
axes[1, 0].set_ylabel("Anti accuracy")
axes[0, 0].legend()
fig.tight_layout()
plt.show()
for (name, label), acc in effects.items():
    print(f"{name:6s} {label:8s} Pro {acc[:, 0].round(2)}  Anti {acc[:, 1].round(2)}")
