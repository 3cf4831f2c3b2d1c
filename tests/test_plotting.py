"""Plotting functions: returned axes, labels, limits, user axes, nothing shown or saved."""

import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import identity  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from sklearn_epi import ALParams, EPIEstimator, RealNVP  # noqa: E402
from sklearn_epi.circuits import LDS_BOUNDS, LDS_MU, LDS_SIGMA2, lds_eigenvalues  # noqa: E402
from sklearn_epi.plotting import (  # noqa: E402
    animate_epochs,
    pairplot,
    pairplot_samples,
    plot_history,
    plot_predictive,
)

BOUNDS = {"a": (-1.0, 3.0), "b": (-np.inf, np.inf)}
MU, SIGMA2 = [1.0, -2.0], [0.25, 1.0]


@pytest.fixture(scope="module")
def est():
    # The figures need a fitted estimator, not a converged one: a small budget.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return EPIEstimator(
            identity,
            BOUNDS,
            al_params=ALParams(num_iters=100, max_epochs=2, init_iters=100, batch_size=500),
            n_seeds=2,
            random_state=0,
            jit_compile=False,
        ).fit(MU, SIGMA2)


@pytest.fixture(autouse=True)
def no_show_no_files(monkeypatch, tmp_path):
    """Fail on plt.show(); run in an empty directory that must stay empty."""

    def forbidden(*args, **kwargs):
        raise AssertionError("plotting functions must not call plt.show()")

    monkeypatch.setattr(plt, "show", forbidden)
    monkeypatch.chdir(tmp_path)
    yield
    plt.close("all")
    assert list(tmp_path.iterdir()) == []


def test_pairplot_returns_square_axes_labelled_by_parameter_names(est):
    fig, axes = pairplot(est, n_samples=300)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert axes.shape == (2, 2)
    assert [ax.get_xlabel() for ax in axes[-1]] == ["a", "b"]
    assert axes[1, 0].get_ylabel() == "b"
    assert not axes[0, 1].axison


def test_pairplot_limits_are_the_finite_bounds_and_cover_samples_elsewhere(est):
    Z = est.sample(300, random_state=0)
    fig, axes = pairplot(est, Z=Z)
    assert axes[1, 0].get_xlim() == pytest.approx(BOUNDS["a"])
    assert axes[0, 0].get_xlim() == pytest.approx(BOUNDS["a"])
    low, high = axes[1, 1].get_xlim()
    assert low < Z[:, 1].min() and Z[:, 1].max() < high
    assert axes[1, 0].get_ylim() == pytest.approx((low, high))


def test_pairplot_uses_given_labels_and_limits(est):
    limits = [[0.0, 2.0], [-5.0, 1.0]]
    fig, axes = pairplot(est, n_samples=200, labels=["alpha", "beta"], limits=limits)
    assert [ax.get_xlabel() for ax in axes[-1]] == ["alpha", "beta"]
    assert axes[1, 0].get_ylabel() == "beta"
    assert axes[1, 0].get_xlim() == pytest.approx((0.0, 2.0))
    assert axes[1, 0].get_ylim() == pytest.approx((-5.0, 1.0))


def test_pairplot_draws_into_given_axes_without_a_new_figure(est):
    fig, given = plt.subplots(2, 2)
    before = plt.get_fignums()
    out_fig, axes = pairplot(est, n_samples=200, axes=given)
    assert out_fig is fig
    assert all(a is b for a, b in zip(axes.ravel(), given.ravel()))
    assert plt.get_fignums() == before


def test_pairplot_draws_into_a_given_figure(est):
    fig = plt.figure()
    out_fig, axes = pairplot(est, n_samples=200, fig=fig)
    assert out_fig is fig
    assert all(ax.figure is fig for ax in axes.ravel())


def test_pairplot_marks_points_and_draws_one_arrow_per_eigenvector(est):
    z = np.array([1.0, -2.0])
    fig, axes = pairplot(est, n_samples=200, points=z, hessian_at=z)
    marked = [line for line in axes[1, 0].lines if line.get_marker() == "x"]
    assert len(marked) == 1
    np.testing.assert_allclose(marked[0].get_xydata(), [[1.0, -2.0]])
    arrows = [t for t in axes[1, 0].texts if getattr(t, "arrow_patch", None) is not None]
    assert len(arrows) == 2
    assert all(tuple(t.xyann) == (1.0, -2.0) for t in arrows)


def test_pairplot_rejects_samples_of_the_wrong_width(est):
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        pairplot(est, Z=np.zeros((10, 3)))


def test_pairplot_reads_the_public_fitted_bounds(est):
    np.testing.assert_array_equal(est.bounds_, [[-1.0, 3.0], [-np.inf, np.inf]])


def test_pairplot_samples_overlays_two_methods_with_a_legend_and_shared_limits():
    rng = np.random.default_rng(0)
    first = pd.DataFrame(rng.normal(size=(300, 3)), columns=["g", "tau", "w"])
    fig, axes = pairplot_samples(first, label="EPI")
    out_fig, out_axes = pairplot_samples(rng.normal(5.0, 1.0, (300, 3)), axes=axes, label="SNPE")
    assert out_fig is fig and out_axes.shape == (3, 3)
    assert [ax.get_xlabel() for ax in axes[-1]] == ["g", "tau", "w"]
    legend = axes[0, -1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["EPI", "SNPE"]
    scatters = [c for c in axes[1, 0].collections if isinstance(c, PathCollection)]
    colors = [c.get_facecolor()[0][:3] for c in scatters]
    assert len({tuple(np.round(c, 3)) for c in colors}) == 2  # one colour per method
    low, high = axes[1, 0].get_xlim()
    assert low < first["g"].min() and high > 5.0  # limits grew to show both sets


def test_pairplot_samples_colours_by_values_with_a_colour_bar():
    Z = np.random.default_rng(1).normal(size=(200, 2))
    fig, axes = pairplot_samples(Z, color=Z[:, 0], colorbar_label="x")
    (colorbar,) = axes[0, -1].child_axes  # inset in the empty upper corner
    assert colorbar.get_ylabel() == "x"
    with pytest.raises(ValueError, match="one value per sample"):
        pairplot_samples(Z, color=Z[:10, 0])


def test_plot_history_has_four_panels_plus_one_per_constraint(est):
    fig, axes = plot_history(est)
    m = len(est.property_.constraint_names)
    assert axes.shape == (4 + m,)
    titles = [ax.get_title() for ax in axes]
    for name in est.property_.constraint_names:
        assert f"R {name}" in titles
    assert axes[2].get_yscale() == "log"  # penalty c


def test_plot_history_draws_one_line_per_seed_and_stars_the_selected_epoch(est):
    fig, axes = plot_history(est)
    seed_lines = [line for line in axes[0].lines if line.get_label().startswith("seed")]
    assert len(seed_lines) == est.seeds_.shape[0]
    stars = [line for line in axes[0].lines if line.get_marker() == "*"]
    assert len(stars) == 1


def test_plot_history_accepts_axes_and_rejects_too_few(est):
    m = len(est.property_.constraint_names)
    fig, given = plt.subplots(2, 4)
    out_fig, axes = plot_history(est, axes=given)
    assert out_fig is fig and len(axes) == 4 + m
    with pytest.raises(ValueError, match="at least"):
        plot_history(est, axes=given.ravel()[:3])


def test_plot_predictive_one_panel_per_statistic_with_target_lines(est):
    fig, axes = plot_predictive(est, n_samples=300)
    assert axes.shape == (len(MU),)
    assert [ax.get_xlabel() for ax in axes] == list(est.property_.statistic_names)
    for ax, mu, s2 in zip(axes, MU, SIGMA2):
        xs = sorted(line.get_xdata()[0] for line in ax.lines if line.get_color() == "k")
        np.testing.assert_allclose(xs, [mu - 2 * np.sqrt(s2), mu, mu + 2 * np.sqrt(s2)])


def test_plot_predictive_accepts_axes(est):
    fig, given = plt.subplots(1, 2)
    out_fig, axes = plot_predictive(est, n_samples=100, axes=given)
    assert out_fig is fig
    assert all(a is b for a, b in zip(axes, given))


def test_estimator_methods_delegate_to_the_plotting_functions(est):
    for method in ("plot_history", "plot_predictive"):
        fig, axes = getattr(est, method)()
        assert fig is np.ravel(axes)[0].figure
        plt.close(fig)
    fig, axes = est.pairplot(n_samples=50)
    assert axes.shape == (len(est.param_names_),) * 2
    plt.close(fig)


def test_animate_epochs_has_a_frame_per_epoch_and_saves_a_gif(tmp_path_factory):
    from PIL import Image

    est = EPIEstimator(
        lds_eigenvalues,
        LDS_BOUNDS,
        flow=RealNVP(num_units=16),
        al_params=ALParams(
            c0=1.0, beta=4.0, num_iters=50, max_epochs=3, init_iters=50, batch_size=200
        ),
        random_state=0,
        warm_start=True,
        jit_compile=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(LDS_MU, LDS_SIGMA2)
    anim = animate_epochs(est, "a12", "a21", n_samples=200)
    gif_path = tmp_path_factory.mktemp("movie") / "fit.gif"
    anim.save(gif_path, writer="pillow", fps=4)
    with Image.open(gif_path) as gif:
        assert gif.n_frames == 4  # epochs 0 .. 3
    title = anim._fig.axes[0].get_title()
    assert title.startswith(f"seed {est.best_seed_}, epoch 3: H = ")
    plt.close(anim._fig)
    with pytest.raises(ValueError, match="x names an unknown parameter 'b12'"):
        animate_epochs(est, "b12", "a21")
    est.set_params(warm_start=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(LDS_MU, LDS_SIGMA2)
    with pytest.raises(ValueError, match="fit with checkpoint=<directory> or warm_start=True"):
        animate_epochs(est)
