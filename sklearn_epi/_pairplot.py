r"""Pairwise plots of parameter samples: a fit's (:func:`pairplot`) or any method's.

:func:`pairplot_samples` draws samples of any method (EPI, SNPE, ABC) and
overlays several sets; :func:`pairplot` is its view of a fitted estimator.
Both return ``(fig, axes)``, draw into ``axes=`` when given, and never show
or save anything. Re-exported by :mod:`sklearn_epi.plotting`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from scipy.stats import gaussian_kde
from sklearn.utils.validation import check_is_fitted

from .analysis import sensitivity

__all__ = ["pairplot", "pairplot_samples"]

_EIGEN_COLORS = ["tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]


def pairplot(
    est,
    Z=None,
    n_samples: int = 1000,
    color="log_prob",
    points=None,
    points_label: str = "marked point",
    hessian_at=None,
    labels=None,
    limits=None,
    fig=None,
    axes=None,
    random_state=0,
):
    r"""Pairwise scatter of a fitted distribution's samples, coloured by log density.

    The estimator's view of :func:`pairplot_samples`: samples are drawn from
    ``est`` (or given), coloured by :math:`\log q(z)`, the axes span the
    fitted bounds (``est.bounds_``) where finite, and the Hessian
    eigenvectors of :math:`\log q` can be drawn at a point.

    Parameters
    ----------
    est : EPIEstimator
        A fitted estimator.
    Z : array-like of shape (n, D), default=None
        Samples to plot; ``None`` draws ``n_samples`` from ``est``.
    n_samples : int, default=1000
        Samples drawn when ``Z`` is None.
    color : "log_prob", None, color or array-like of shape (n,), default="log_prob"
        ``"log_prob"`` colours by ``est.score_samples(Z)``; an array gives one
        value per sample (with a colour bar); ``None`` or a matplotlib colour
        draws all points alike.
    points : array-like of shape (k, D) or (D,), default=None
        Points to mark (e.g. a mode), as black crosses and dashed diagonal lines.
    points_label : str, default="marked point"
        Legend entry of the crosses (e.g. ``"mode"``).
    hessian_at : array-like of shape (D,), default=None
        Draw the Hessian eigenvectors of :math:`\log q` at this point
        (usually a mode) as arrows, projected onto each panel. Arrow ``k``
        has length proportional to :math:`1/\sqrt{|\lambda_k|}` (the
        standard deviation along :math:`v_k` for a Gaussian), so sensitive
        directions are short; the longest arrow spans a quarter of the
        narrowest axis range, and none is drawn shorter than an eighth of
        that (the legend gives each :math:`\lambda_k`).
    labels : list of str, default=None
        Axis labels; ``None`` uses ``est.param_names_``.
    limits : array-like of shape (D, 2), default=None
        Axis limits per parameter; ``None`` uses the bounds where finite and
        the sample range (padded by 5 %) where open.
    fig : matplotlib.figure.Figure, default=None
        Figure in which to create the axes; ignored when ``axes`` is given.
    axes : array-like of Axes of shape (D, D), default=None
        Axes to draw into; the upper triangle is switched off.
    random_state : int, RandomState instance or None, default=0
        Seeds the samples drawn when ``Z`` is None.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of Axes of shape (D, D)

    See Also
    --------
    pairplot_samples : the same figure for samples of any method.
    sklearn_epi.analysis.sensitivity : the eigenvectors drawn by ``hessian_at``.

    Examples
    --------
    >>> from sklearn_epi.plotting import pairplot
    >>> fig, axes = pairplot(est, points=mode, hessian_at=mode)  # doctest: +SKIP
    """
    check_is_fitted(est, "flow_weights_")
    names = list(est.param_names_)
    D = len(names)
    if Z is None:
        Z = est.sample(n_samples, random_state=random_state)
    Z = _check_samples(Z, D)
    if limits is None:
        limits = _sample_limits(Z, est.bounds_)
    if isinstance(color, str) and color == "log_prob":
        log_q = est.score_samples(Z)
        finite = np.isfinite(log_q)
        color = np.where(finite, log_q, log_q[finite].min(initial=0.0))
        colorbar_label = r"$\log q(z)$"
    else:
        colorbar_label = ""
    fig, axes = pairplot_samples(
        Z,
        color=color,
        labels=names if labels is None else labels,
        limits=limits,
        points=points,
        points_label=points_label,
        fig=fig,
        axes=axes,
        colorbar_label=colorbar_label,
    )
    if hessian_at is not None:
        limits = np.array([axes[j, j].get_xlim() for j in range(D)])
        _hessian_arrows(est, axes, np.asarray(hessian_at, dtype=float), D, limits)
    return fig, axes


def pairplot_samples(
    Z,
    color=None,
    label=None,
    labels=None,
    limits=None,
    points=None,
    points_label: str = "marked point",
    fig=None,
    axes=None,
    colorbar_label="",
):
    r"""Pairwise scatter of any parameter samples, with density contours and marginals.

    Below the diagonal, panel ``(i, j)`` shows parameter ``j`` (x) against
    parameter ``i`` (y): the samples and Gaussian-KDE contours enclosing
    about 68 % and 95 % of them. The diagonal shows each parameter's
    marginal (histogram and KDE). The upper triangle is left empty (it holds
    the colour bar or the legend). Samples of other methods (SNPE, ABC, a
    grid) go on the same axes: call it again with ``axes=`` and another
    ``color`` and ``label``.

    Parameters
    ----------
    Z : array-like or pandas DataFrame of shape (n, D)
        The samples; a DataFrame's column names label the axes.
    color : None, color or array-like of shape (n,), default=None
        One matplotlib colour for the whole set (contours, marginals and
        points in it; ``None`` takes the next colour of the axes' cycle), or
        one value per sample, drawn with a colour bar and the densest points
        on top.
    label : str, default=None
        Legend entry of this set of samples (for overlays).
    labels : list of str, default=None
        Axis labels; ``None`` uses the DataFrame's columns or ``z0, z1, ...``.
    limits : array-like of shape (D, 2), default=None
        Axis limits per parameter; ``None`` spans the samples (padded by
        5 %), and, when drawing into ``axes``, what they already show.
    points : array-like of shape (k, D) or (D,), default=None
        Points to mark (e.g. a mode), as black crosses and dashed diagonal lines.
    points_label : str, default="marked point"
        Legend entry of the crosses (e.g. ``"mode"``).
    fig : matplotlib.figure.Figure, default=None
        Figure in which to create the axes; ignored when ``axes`` is given.
    axes : array-like of Axes of shape (D, D), default=None
        Axes to draw into; the upper triangle is switched off.
    colorbar_label : str, default=""
        Label of the colour bar when ``color`` gives a value per sample.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : ndarray of Axes of shape (D, D)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi.plotting import pairplot_samples
    >>> rng = np.random.default_rng(0)
    >>> fig, axes = pairplot_samples(rng.normal(size=(500, 2)), label="method A")
    >>> fig, axes = pairplot_samples(rng.normal(1, 1, (500, 2)), axes=axes, label="method B")
    >>> axes.shape
    (2, 2)
    """
    given_labels = labels
    if labels is None and hasattr(Z, "columns"):
        labels = given_labels = [str(c) for c in Z.columns]
    Z = _check_samples(Z, np.shape(Z)[1] if np.ndim(Z) == 2 else None)
    D = Z.shape[1]
    labels = [f"z{i}" for i in range(D)] if labels is None else [str(x) for x in labels]
    if len(labels) != D:
        raise ValueError(f"labels must have {D} entries; got {len(labels)}")
    points = None if points is None else np.atleast_2d(np.asarray(points, dtype=float))
    if points is not None and points.shape[1] != D:
        raise ValueError(f"points must have shape (k, {D}) or ({D},); got {points.shape}")

    drawn_before = axes is not None
    if axes is None:
        if fig is None:
            fig = plt.figure(figsize=(2.3 * D + 0.8, 2.3 * D), layout="constrained")
        axes = np.atleast_2d(fig.subplots(D, D, squeeze=False))
    else:
        axes = np.asarray(axes, dtype=object).reshape(D, D) if np.size(axes) == D * D else None
        if axes is None:
            raise ValueError(f"axes must hold D x D = {D * D} Axes")
        fig = axes[0, 0].figure
        if given_labels is None and axes[-1, 0].get_xlabel():  # keep the first set's labels
            labels = [axes[-1, j].get_xlabel() for j in range(D)]
    if limits is None:
        limits = _sample_limits(Z)
        if drawn_before:
            shown = np.array([axes[j, j].get_xlim() for j in range(D)])
            limits = np.column_stack(
                [np.minimum(limits[:, 0], shown[:, 0]), np.maximum(limits[:, 1], shown[:, 1])]
            )
    else:
        limits = np.asarray(limits, dtype=float)
        if limits.shape != (D, 2) or not np.all(limits[:, 0] < limits[:, 1]):
            raise ValueError(f"limits must have shape ({D}, 2) with low < high; got {limits}")

    values, set_color = _sample_colors(Z, color, axes[0, 0])
    order = np.argsort(values) if values is not None else np.arange(len(Z))
    line_color = "k" if values is not None else set_color
    scatter = None
    for i in range(D):
        for j in range(D):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                _marginal(ax, Z[:, i], limits[i], line_color, filled=values is not None)
            else:
                kw = {"s": 4, "lw": 0, "rasterized": True}
                if values is not None:
                    kw.update(c=values[order], cmap="viridis")
                else:
                    kw.update(color=set_color, alpha=0.5 if drawn_before else 1.0)
                scatter = ax.scatter(Z[order, j], Z[order, i], **kw)
                _kde_contours(ax, Z[:, j], Z[:, i], limits[j], limits[i], line_color)
                ax.set_ylim(limits[i])
            ax.set_xlim(limits[j])
            _label_corner(ax, i, j, D, labels)

    if points is not None:
        _mark_points(axes, points, D, points_label)
    if values is not None and scatter is not None:
        cax = axes[0, -1].inset_axes([0.78, 0.1, 0.07, 0.8])
        fig.colorbar(scatter, cax=cax, label=colorbar_label)
    # The sets drawn on these axes: their count picks the next colour, and
    # the labelled ones make the legend.
    axes[0, 0]._sklearn_epi_sets = getattr(axes[0, 0], "_sklearn_epi_sets", []) + [None]
    if label is not None:
        _add_set_legend(axes, D, label, line_color)
    return fig, axes


def _check_samples(Z, D):
    Z = np.asarray(Z, dtype=float)
    if Z.ndim != 2 or (D is not None and Z.shape[1] != D):
        width = "D" if D is None else D
        raise ValueError(
            f"Z must have shape (n, {width}) (one column per parameter); got {Z.shape}"
        )
    return Z


def _sample_limits(Z, bounds=None):
    """The sample range padded by 5 %, or the bounds where they are finite."""
    finite = Z[np.all(np.isfinite(Z), axis=1)]
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    pad = 0.05 * np.maximum(hi - lo, 1e-12)
    low, high = lo - pad, hi + pad
    if bounds is not None:
        bounds = np.asarray(bounds, dtype=float)
        low = np.where(np.isfinite(bounds[:, 0]), bounds[:, 0], low)
        high = np.where(np.isfinite(bounds[:, 1]), bounds[:, 1], high)
    return np.column_stack([low, high])


def _sample_colors(Z, color, ax):
    """(values per sample or None, the set's single colour)."""
    if color is not None and not isinstance(color, str) and np.ndim(color) == 1:
        values = np.asarray(color, dtype=float)
        if len(values) != len(Z):
            raise ValueError(f"color must have one value per sample ({len(Z)}); got {len(values)}")
        return values, "k"
    if color is None:  # the next colour of the cycle, one per set drawn here
        color = f"C{len(getattr(ax, '_sklearn_epi_sets', []))}"
    return None, color


def _add_set_legend(axes, D, label, color):
    """One legend entry per set of samples, in the empty upper triangle."""
    handles = axes[0, 0]._sklearn_epi_sets
    handles[-1] = Line2D([], [], color=color, lw=2, label=label)
    labelled = [h for h in handles if h is not None]
    ax = axes[0, -1] if D > 1 else axes[0, 0]
    ax.legend(handles=labelled, loc="lower left", fontsize="small", frameon=False)


def _marginal(ax, x, lim, color="k", filled=True):
    x = x[np.isfinite(x)]
    if filled:
        ax.hist(x, bins=30, range=tuple(lim), density=True, color="0.75")
    else:
        ax.hist(x, bins=30, range=tuple(lim), density=True, color=color, alpha=0.25)
    if np.ptp(x) > 0:
        grid = np.linspace(*lim, 200)
        ax.plot(grid, gaussian_kde(x)(grid), color=color, lw=1)
    ax.set_yticks([])


def _kde_contours(ax, x, y, xlim, ylim, color="k", masses=(0.95, 0.68)):
    """Contours of a 2D Gaussian KDE enclosing about ``masses`` of the samples."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 10 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return
    try:
        kde = gaussian_kde(np.vstack([x, y]))
    except np.linalg.LinAlgError:
        return  # samples on a line: no 2D density to draw
    # The density level that a fraction p of the samples exceeds bounds a
    # region holding about p of the mass (a highest-density region).
    at_samples = kde(np.vstack([x, y]))
    levels = np.sort(np.quantile(at_samples, 1.0 - np.asarray(masses)))
    if not np.all(np.diff(levels) > 0):
        return
    gx, gy = np.meshgrid(np.linspace(*xlim, 80), np.linspace(*ylim, 80))
    density = kde(np.vstack([gx.ravel(), gy.ravel()])).reshape(gx.shape)
    ax.contour(gx, gy, density, levels=levels, colors=color, linewidths=[0.6, 1.0])


def _label_corner(ax, i, j, D, labels):
    if i == D - 1:
        ax.set_xlabel(labels[j])
    else:
        ax.tick_params(labelbottom=False)
    if j == 0 and i > 0:
        ax.set_ylabel(labels[i])
    elif i != j:
        ax.tick_params(labelleft=False)


def _mark_points(axes, points, D, label):
    """Crosses and dashed lines at ``points``, with a legend entry in the upper triangle."""
    handle = Line2D([], [], marker="x", color="k", ms=8, mew=2, ls="none", label=label)
    axes[0, 0]._sklearn_epi_points = [handle]
    if D > 1:
        axes[0, 1].legend(handles=[handle], loc="upper left", fontsize="small", frameon=False)
    for i in range(D):
        for j in range(i + 1):
            ax = axes[i, j]
            if i == j:
                for p in points:
                    ax.axvline(p[i], color="k", lw=1.2, ls="--")
            else:
                ax.plot(points[:, j], points[:, i], "x", color="k", ms=8, mew=2, zorder=4)


def _hessian_arrows(est, axes, z, D, limits):
    eigenvalues, eigenvectors = sensitivity(est, z)
    lengths = 1.0 / np.sqrt(np.maximum(np.abs(eigenvalues), np.finfo(float).tiny))
    # Lengths keep the paper's proportion 1 / sqrt|lambda_k|; the longest
    # spans a quarter of the narrowest axis so that every panel shows it.
    span = np.min(limits[:, 1] - limits[:, 0])
    lengths *= 0.25 * span / lengths.max()
    # The most sensitive directions would shrink to dots: none is drawn
    # shorter than an eighth of the longest (the legend gives lambda).
    lengths = np.maximum(lengths, 0.25 * span / 8)
    handles = list(getattr(axes[0, 0], "_sklearn_epi_points", []))
    for k in range(D):
        color = _EIGEN_COLORS[k % len(_EIGEN_COLORS)]
        v = lengths[k] * eigenvectors[:, k]
        for i in range(1, D):
            for j in range(i):
                axes[i, j].annotate(
                    "",
                    xy=(z[j] + v[j], z[i] + v[i]),
                    xytext=(z[j], z[i]),
                    arrowprops={
                        "arrowstyle": "-|>",
                        "color": color,
                        "lw": 1.8,
                        "shrinkA": 0,
                        "shrinkB": 0,
                    },
                    zorder=6,
                )
        label = rf"$v_{{{k + 1}}}$, $\lambda$ = {eigenvalues[k]:.3g}"
        handles.append(Line2D([], [], color=color, lw=1.8, label=label))
    if D > 1:
        axes[0, 1].legend(
            handles=handles,
            loc="upper left",
            fontsize="small",
            frameon=False,
            title=r"Hessian eigenvectors",
            title_fontsize="small",
        )
