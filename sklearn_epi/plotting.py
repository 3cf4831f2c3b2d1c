r"""Figures of a fitted EPI distribution: optimisation history, pairplot, predictions.

Every function returns ``(fig, axes)``, draws into ``axes=`` when given, and
never shows or saves anything: call ``plt.show()`` or ``fig.savefig`` yourself
(:func:`animate_epochs` returns a matplotlib animation to save).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from sklearn.utils.validation import check_is_fitted

from ._pairplot import pairplot, pairplot_samples
from .analysis import _check_positive_int, _parameter_index, predictive

__all__ = ["plot_history", "pairplot", "pairplot_samples", "plot_predictive", "animate_epochs"]

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
    names = est.property_.constraint_names
    n_panels = 4 + len(names)
    fig, axes = _panel_axes(axes, n_panels, ncols=4, panel_size=(3.2, 2.4))
    train = hist[hist["phase"] == "train"]
    test = hist[hist["phase"] == "test"]
    seeds = sorted(hist["seed"].unique())
    ax_H, ax_cost, ax_c, ax_p = axes[:4]
    level = est.property_.alpha / len(names)

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
    names, prop = list(frame.columns), est.property_
    fig, axes = _panel_axes(axes, len(names), ncols=len(names), panel_size=(3.2, 2.6))
    for k, (ax, name) in enumerate(zip(axes, names)):
        f = frame[name].to_numpy()
        finite = f[np.isfinite(f)]
        mu = prop.mu[k]
        lines = [mu]
        if prop.sigma2 is not None:
            sd = np.sqrt(prop.sigma2[k])
            lines += [mu - 2 * sd, mu + 2 * sd]
        lo = min(finite.min(initial=mu), min(lines))
        hi = max(finite.max(initial=mu), max(lines))
        ax.hist(finite, bins=40, range=(lo, hi), density=True, color="0.6", alpha=0.8)
        ax.axvline(mu, color="k", lw=1.5, label="target mean")
        if prop.sigma2 is not None:
            for x in lines[1:]:
                ax.axvline(x, color="k", lw=1, ls="--")
        ax.axvline(finite.mean(), color="tab:blue", lw=1.5, ls=":", label="sample mean")
        ax.set_xlabel(name)
        ax.set_yticks([])
    handles = [
        Line2D([], [], color="k", lw=1.5, label="target mean"),
        Line2D([], [], color="tab:blue", lw=1.5, ls=":", label="sample mean"),
    ]
    if prop.sigma2 is not None:
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


def animate_epochs(est, x=0, y=1, seed=None, n_samples=1000, random_state=0, interval=400):
    r"""The optimisation as a movie: samples of every epoch's distribution in one parameter plane.

    Frame ``k`` shows ``n_samples`` draws of epoch ``k``'s flow (epoch 0:
    the Gaussian initialisation) in the ``(x, y)`` plane, coloured by
    :math:`\log q`, titled with the epoch's entropy and whether it passed
    the convergence test. Every frame pushes the same base draws through
    its epoch's flow, so points move smoothly from frame to frame.

    The fit must have kept its per-epoch weights: fit with
    ``checkpoint=<directory>`` (read from there) or ``warm_start=True``
    (kept with the estimator). They cost the flow's weights once per epoch:
    1.2 MB for the oscillator's 26 epochs (RealNVP 3 x 2 x 50), 13 MB at
    D = 200 (RealNVP 3 x 2 x 100).

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator with per-epoch weights (see above).
    x, y : int or str, default=0, 1
        The parameters on the axes, by position or name.
    seed : int, default=None
        The seed to show; ``None``: the selected one (``best_seed_``).
    n_samples : int, default=1000
        Points per frame.
    random_state : int, default=0
        Seeds the base draws (the same in every frame).
    interval : int, default=400
        Milliseconds between frames.

    Returns
    -------
    matplotlib.animation.FuncAnimation
        Save it with ``anim.save("fit.gif", writer="pillow")`` (no ffmpeg
        needed) or ``anim.save("fit.mp4")`` (ffmpeg); in a notebook,
        ``IPython.display.HTML(anim.to_jshtml())``.

    Examples
    --------
    >>> est = EPIEstimator(statistic, bounds, warm_start=True).fit(mu, sigma2)  # doctest: +SKIP
    >>> animate_epochs(est, "a12", "a21").save("fit.gif", writer="pillow")  # doctest: +SKIP
    """
    import tensorflow as tf
    from matplotlib.animation import FuncAnimation

    from ._checkpoint import epoch_records
    from ._queries import FittedFunctions

    check_is_fitted(est, "flow_weights_")
    names = list(est.param_names_)
    columns = [_parameter_index(x, names, "x"), _parameter_index(y, names, "y")]
    _check_positive_int(n_samples, "n_samples")
    seed = est.best_seed_ if seed is None else seed
    records = epoch_records(est, seed)
    flow = est._flow_spec.build(est._support, seed=0, dtype=tf.as_dtype(est.dtype))
    fns = FittedFunctions(flow)
    base = tf.constant(np.random.default_rng(random_state).integers(0, 2**31 - 1, 2), tf.int32)
    frames = []
    for record in records:
        flow.set_weights(record.weights)
        z, log_q = fns.sample(tf.constant(n_samples, tf.int32), base)
        frames.append((z.numpy()[:, columns], log_q.numpy(), record))
    points = np.concatenate([f[0] for f in frames])
    log_qs = np.concatenate([f[1] for f in frames])
    limits = []
    for k, column in enumerate(columns):
        low, high = est.bounds_[column]
        finite = points[np.isfinite(points[:, k]), k]
        q_low, q_high = np.quantile(finite, [0.005, 0.995])
        low = low if np.isfinite(low) else q_low
        high = high if np.isfinite(high) else q_high
        limits.append((low, high))
    vmin, vmax = np.quantile(log_qs[np.isfinite(log_qs)], [0.02, 0.98])
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    scatter = ax.scatter(
        frames[0][0][:, 0],
        frames[0][0][:, 1],
        c=frames[0][1],
        s=5,
        cmap="viridis",
        vmin=vmin,
        vmax=vmax,
    )
    fig.colorbar(scatter, ax=ax, label=r"$\log q(z)$")
    ax.set(xlim=limits[0], ylim=limits[1], xlabel=names[columns[0]], ylabel=names[columns[1]])
    title = ax.set_title("")

    def draw(k):
        z, log_q, record = frames[k]
        scatter.set_offsets(z)
        scatter.set_array(log_q)
        state = "converged" if record.converged else "not converged"
        title.set_text(f"seed {seed}, epoch {record.epoch}: H = {record.entropy:.2f} ({state})")
        return scatter, title

    draw(len(frames) - 1)  # a still of the figure shows where the fit ended
    fig.tight_layout()
    return FuncAnimation(fig, draw, frames=len(frames), interval=interval, blit=False)
