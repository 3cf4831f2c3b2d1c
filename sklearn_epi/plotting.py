r"""Figures of a fitted EPI distribution: optimisation history, pairplot, predictions.

Every function returns ``(fig, axes)``, draws into ``axes=`` when given, and
never shows or saves anything: call ``plt.show()`` or ``fig.savefig`` yourself.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from sklearn.utils.validation import check_is_fitted

from ._pairplot import pairplot, pairplot_samples
from .analysis import predictive

__all__ = ["plot_history", "pairplot", "pairplot_samples", "plot_predictive"]

_SEED_COLORS = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
# p-values below this are drawn at it: far below alpha / m, the exact value
# says nothing more and would squash the axis.
_P_FLOOR = 1e-6


def plot_history(est, axes=None):
    r"""Augmented Lagrangian optimisation trace of every seed.

    Panels, in order: the entropy :math:`H(q)`; the cost
    :math:`L = -H + \eta^\top R + \frac{c}{2}\|R / s\|^2` (paper, Eq. 21); the
    penalty :math:`c` (log axis); the smallest convergence-test p-value of
    each epoch with the Bonferroni level :math:`\alpha / m` (the epoch
    converged when the curve is above the line; values below :math:`10^{-6}`
    are drawn at :math:`10^{-6}`); one panel per constraint
    violation :math:`R_i = \mathbb{E}_q[T_i(z)] - \mu_{opt,i}` with its zero
    line (the y-range fits epoch 2 onwards; the first epoch's transient may
    leave it).

    Lines are the training estimates logged every ``log_rate`` iterations,
    one colour per seed; dots are the end-of-epoch estimates on fresh
    samples (entropy with its standard error). Grey dotted lines mark
    epoch boundaries; a star marks the selected epoch of the selected seed.

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator.
    axes : array-like of matplotlib Axes, default=None
        At least ``4 + m`` axes (``m`` constraints), filled in the order
        above; ``None`` creates a figure with four panels per row.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of Axes of shape (4 + m,)

    Examples
    --------
    >>> from sklearn_epi.plotting import plot_history
    >>> fig, axes = plot_history(est)  # doctest: +SKIP
    """
    check_is_fitted(est, "history_")
    hist = est.history_
    names = list(est.constraint_names_)
    n_panels = 4 + len(names)
    fig, axes = _panel_axes(axes, n_panels, ncols=4, panel_size=(3.2, 2.4))
    train = hist[hist["phase"] == "train"]
    test = hist[hist["phase"] == "test"]
    seeds = sorted(hist["seed"].unique())
    ax_H, ax_cost, ax_c, ax_p = axes[:4]
    level = est.alpha / len(names)

    for seed in seeds:
        color = _SEED_COLORS[int(seed) % len(_SEED_COLORS)]
        tr, te = train[train["seed"] == seed], test[test["seed"] == seed]
        label = f"seed {seed}"
        ax_H.plot(tr["iteration"], tr["H"], color=color, lw=1, label=label)
        ax_H.errorbar(te["iteration"], te["H"], yerr=te["H_se"], fmt="o", ms=3, color=color, lw=1)
        ax_cost.plot(tr["iteration"], tr["cost"], color=color, lw=1)
        ax_c.plot(tr["iteration"], tr["c"], color=color, lw=1)
        ax_c.plot(te["iteration"], te["c"], "o", ms=3, color=color)
        after_init = te[te["epoch"] > 0]
        p_min = after_init[[f"p_{n}" for n in names]].min(axis=1)
        ax_p.plot(
            after_init["iteration"], p_min.clip(lower=_P_FLOOR), "o-", ms=3, lw=1, color=color
        )
        for ax, name in zip(axes[4:], names):
            ax.plot(tr["iteration"], tr[f"R_{name}"], color=color, lw=1)
            ax.plot(te["iteration"], te[f"R_{name}"], "o", ms=3, color=color)

    for iteration in sorted(test["iteration"].unique()):
        for ax in axes:
            ax.axvline(iteration, color="0.8", lw=0.8, ls=":", zorder=0)
    for ax, name in zip(axes[4:], names):
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_ylim(_violation_limits(hist, f"R_{name}"))
    ax_p.axhline(level, color="k", lw=0.8, ls="--")
    ax_c.set_yscale("log")
    ax_p.set_yscale("log")
    ax_p.set_ylim(_P_FLOOR / 20, 2.0)  # room below the floor for its note
    ax_p.text(
        0.98,
        0.02,
        f"p = 0 drawn at {_P_FLOOR:g}",
        transform=ax_p.transAxes,
        ha="right",
        va="bottom",
        fontsize="x-small",
        color="0.35",
    )

    best = test[(test["seed"] == est.best_seed_) & (test["epoch"] == est.epoch_)]
    if len(best):
        x = best["iteration"].iloc[0]
        star = {
            "marker": "*",
            "ms": 13,
            "color": "gold",
            "mec": "k",
            "mew": 0.8,
            "ls": "none",
            "zorder": 5,
        }
        ax_H.plot(x, best["H"].iloc[0], label="selected epoch", **star)
        ax_p.plot(x, max(best[[f"p_{n}" for n in names]].min(axis=1).iloc[0], _P_FLOOR), **star)
        for ax, name in zip(axes[4:], names):
            ax.plot(x, best[f"R_{name}"].iloc[0], **star)

    titles = ["entropy H (nats)", "cost L", "penalty c", r"min p-value (line: $\alpha/m$)"]
    titles += [f"R {name}" for name in names]
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel("iteration")
    ax_H.legend(fontsize="small", loc="best")
    return fig, axes


def plot_predictive(est, n_samples: int = 1000, axes=None, random_state=0):
    r"""Histogram of each statistic :math:`f(z)` on fresh samples :math:`z \sim q`.

    The emergent property holds when the histograms centre on the target
    means (solid black line) with the target spread: dashed lines at
    :math:`\mu \pm 2\sigma`. The sample mean is the dotted line.

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator.
    n_samples : int, default=1000
        Number of fresh samples.
    axes : array-like of Axes, default=None
        At least ``m_f`` axes, one per statistic; ``None`` creates one row.
    random_state : int, RandomState instance or None, default=0
        Seeds the samples.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of Axes of shape (m_f,)

    See Also
    --------
    sklearn_epi.analysis.predictive : the values plotted.
    """
    check_is_fitted(est, "flow_weights_")
    frame = predictive(est, n_samples=n_samples, random_state=random_state)
    names = list(frame.columns)
    fig, axes = _panel_axes(axes, len(names), ncols=len(names), panel_size=(3.2, 2.6))
    for k, (ax, name) in enumerate(zip(axes, names)):
        f = frame[name].to_numpy()
        finite = f[np.isfinite(f)]
        mu = est.mu_[k]
        lines = [mu]
        if est.sigma2_ is not None:
            sd = np.sqrt(est.sigma2_[k])
            lines += [mu - 2 * sd, mu + 2 * sd]
        lo = min(finite.min(initial=mu), min(lines))
        hi = max(finite.max(initial=mu), max(lines))
        ax.hist(finite, bins=40, range=(lo, hi), density=True, color="0.6", alpha=0.8)
        ax.axvline(mu, color="k", lw=1.5, label="target mean")
        if est.sigma2_ is not None:
            for x in lines[1:]:
                ax.axvline(x, color="k", lw=1, ls="--")
        ax.axvline(finite.mean(), color="tab:blue", lw=1.5, ls=":", label="sample mean")
        ax.set_xlabel(name)
        ax.set_yticks([])
    handles = [
        Line2D([], [], color="k", lw=1.5, label="target mean"),
        Line2D([], [], color="tab:blue", lw=1.5, ls=":", label="sample mean"),
    ]
    if est.sigma2_ is not None:
        handles.insert(1, Line2D([], [], color="k", lw=1, ls="--", label=r"target $\pm 2$ sd"))
    # Above the panels, not on a histogram.
    axes[0].legend(
        handles=handles,
        fontsize="small",
        loc="lower left",
        bbox_to_anchor=(0.0, 1.02),
        ncol=len(handles),
        frameon=False,
        borderaxespad=0.0,
    )
    return fig, axes


def _violation_limits(hist, column):
    """y-range of a violation panel, fitted to epoch 2 onwards.

    The first epoch's large transient would otherwise flatten the approach
    to zero, which is what the panel is for.
    """
    late = hist[hist["epoch"] >= 2] if hist["epoch"].max() >= 2 else hist
    values = late[column].to_numpy(dtype=float)
    values = values[np.isfinite(values)]
    lo, hi = min(values.min(initial=0.0), 0.0), max(values.max(initial=0.0), 0.0)
    pad = 0.15 * (hi - lo) if hi > lo else 1.0
    return lo - pad, hi + pad


def _panel_axes(axes, n_panels, ncols, panel_size):
    """A 1-D array of ``n_panels`` axes: the given ones, or a new grid."""
    if axes is not None:
        flat = np.ravel(np.asarray(axes, dtype=object))
        if flat.size < n_panels:
            raise ValueError(f"axes must hold at least {n_panels} Axes; got {flat.size}")
        return flat[0].figure, flat[:n_panels]
    ncols = max(1, min(ncols, n_panels))
    nrows = -(-n_panels // ncols)
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        layout="constrained",
    )
    flat = grid.ravel()
    for ax in flat[n_panels:]:
        fig.delaxes(ax)
    return fig, flat[:n_panels]
