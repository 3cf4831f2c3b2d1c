"""The paper's circuit simulators against plain NumPy re-implementations."""

import pickle

import numpy as np
import pytest
import tensorflow as tf

from sklearn_epi.circuits import (
    SC_EIGENMODES,
    STG_NEURONS,
    V1_H_B,
    V1_H_C,
    V1_W,
    hub_frequency,
    rnn_bounds,
    rnn_param_names,
    rnn_stable_amplification,
    sc_connectivity,
    sc_simulate,
    sc_task_accuracy,
    stg_hub_frequency,
    stg_simulate,
    v1_excitatory_variability,
    v1_simulate,
)


def _gradient(f, z, *args):
    z = tf.constant(z, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(z)
        out = f(z, *args)
    return out, tape.gradient(out, z).numpy()


# ------------------------------------------------------------------ RNN
def _rnn_reference(z, N, g, seed):
    rng = np.random.RandomState(seed)
    chi_U, chi_V = rng.standard_normal((N, 2)), rng.standard_normal((N, 2))
    out = []
    for row in z:
        U1, U2, V1, V2 = row.reshape(4, N)
        U = np.stack([U1, U2], 1) + g * chi_U
        V = np.stack([V1, V2], 1) + g * chi_V
        W = U @ V.T
        reduced = np.linalg.eigvals(V.T @ U)
        lam_s = np.linalg.eigvalsh((W + W.T) / 2)[-1]
        out.append([reduced.real.max(), lam_s])
    return np.array(out)


@pytest.mark.parametrize("N", [2, 3, 4, 5, 12])
def test_rnn_statistic_matches_numpy_eigenvalues(N):
    z = np.random.default_rng(N).uniform(-1, 1, (50, 4 * N))
    f = rnn_stable_amplification(N, g=0.1, random_state=3)
    np.testing.assert_allclose(f(z).numpy(), _rnn_reference(z, N, 0.1, 3), atol=1e-10)


def test_rnn_real_lambda1_is_the_greatest_real_part_of_W_when_positive():
    N = 6
    f = rnn_stable_amplification(N, g=0.01)
    z = np.random.default_rng(0).uniform(-1, 1, (200, 4 * N))
    real_lambda1 = f(z).numpy()[:, 0]
    eig_W = np.linalg.eigvals(f.connectivity(z).numpy()).real.max(axis=1)
    positive = real_lambda1 > 1e-6
    assert positive.sum() > 50
    np.testing.assert_allclose(real_lambda1[positive], eig_W[positive], atol=1e-8)


@pytest.mark.parametrize("N", [2, 10])
def test_rnn_statistic_gradient_is_finite_and_dtype_follows_z(N):
    f = rnn_stable_amplification(N)
    z = np.random.default_rng(0).uniform(-1, 1, (20, 4 * N))
    out, grad = _gradient(f, z)
    assert out.shape == (20, 2) and out.dtype == tf.float64
    assert np.all(np.isfinite(grad))
    assert f(z.astype(np.float32)).dtype == tf.float32


def test_rnn_parameters_and_bounds_cover_4N_entries():
    assert rnn_param_names(3)[:4] == ("U1_0", "U1_1", "U1_2", "U2_0")
    bounds = rnn_bounds(3)
    assert len(bounds) == 12 and set(bounds.values()) == {(-1.0, 1.0)}


def test_rnn_statistic_pickles_with_its_random_part():
    f = rnn_stable_amplification(4, g=0.1, random_state=7)
    z = np.random.default_rng(1).uniform(-1, 1, (5, 16))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(f))(z).numpy(), f(z).numpy())


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"N": 1}, ValueError, "N"),
        ({"N": 2.5}, TypeError, "N"),
        ({"N": 3, "g": -0.1}, ValueError, "g"),
        ({"N": 3, "g": "big"}, TypeError, "g"),
    ],
)
def test_rnn_bad_arguments_are_named(kwargs, error, name):
    with pytest.raises(error, match=rf"^{name} must"):
        rnn_stable_amplification(**kwargs)


def test_rnn_wrong_parameter_dimension_is_a_value_error():
    with pytest.raises(ValueError, match=r"z must have shape \(n, 12\)"):
        rnn_stable_amplification(3)(np.zeros((2, 8)))


# ------------------------------------------------------------------ STG
def _stg_reference(z, noise, dt, T, sigma_I):
    g_ca = np.array([1.9e-2, 1.9e-2, 1.7e-2, 8.5e-3, 8.5e-3]) * 1e-6
    g_k = np.array([3.9e-2, 3.9e-2, 1.9e-2, 1.5e-2, 1.5e-2]) * 1e-6
    g_h = np.array([2.5e-2, 2.5e-2, 8.0e-3, 1.0e-2, 1.0e-2]) * 1e-6
    out = []
    for row, xi in zip(z, noise):
        g_el, g_a, g_b = row[0] * 1e-9, row[1] * 1e-9, 5e-9
        V = np.array([-41.69771, -43.19491, 8.83992, -68.79824, 30.48103]) * 1e-3
        N = np.array([0.00151316, 0.19784773, 0.56514935, 0.12214069, 0.35290397])
        H = np.array([0.08614699, 0.04938177, 0.05568701, 0.07007949, 0.05790969])
        trace = [V.copy()]
        for k in range(T):
            M_inf = 0.5 * (1 + np.tanh(V / 20e-3))
            N_inf = 0.5 * (1 + np.tanh(V / 15e-3))
            H_inf = 1 / (1 + np.exp((V + 78.3e-3) / 10.5e-3))
            S = 1 / (1 + np.exp((-25e-3 - V) / 5e-3))
            f1, f2, hub, s1, s2 = V
            elec = g_el * np.array([0, f2 - hub, 2 * hub - f2 - s2, 0, s2 - hub])
            syn_g = np.array([g_b * S[1], g_b * S[0], g_a * (S[0] + S[3]), g_b * S[4], g_b * S[3]])
            current = (
                1e-10 * (V + 40e-3)
                + g_ca * M_inf * (V - 100e-3)
                + g_k * N * (V + 80e-3)
                + g_h * H * (V + 20e-3)
                + elec
                + syn_g * (V + 75e-3)
            )
            lam_N = 2.0 * np.cosh(V / 30e-3)
            tau_h = (272 + 1499 / (1 + np.exp((-42.2e-3 - V) / 87.3e-3))) * 1e-3
            V, N, H = (
                V + dt * (-current + sigma_I * xi[k]) / 1e-9,
                N + dt * lam_N * (N_inf - N),
                H + dt * (H_inf - H) / tau_h,
            )
            trace.append(V.copy())
        out.append(np.array(trace))
    return np.array(out)  # volts


def _hub_frequency_reference(v_hub, dt, beta):
    freqs = np.arange(101) * 0.01
    out = []
    for v in v_hub:
        r = np.maximum(v[20:], 0.0)
        smooth = np.array([r[i : i + 20].mean() for i in range(len(r) - 19)])
        smooth -= smooth.mean()
        t = np.arange(len(smooth)) * dt
        X = np.abs(np.exp(-2j * np.pi * np.outer(freqs, t)) @ smooth)
        psi = np.exp(beta * X - (beta * X).max())
        out.append((psi / psi.sum()) @ freqs)
    return np.array(out)


def test_stg_simulation_and_hub_frequency_match_numpy():
    z = np.array([[4.5, 3.0], [6.0, 1.2]])
    noise = np.random.default_rng(0).standard_normal((2, 300, 5))
    ref = _stg_reference(z, noise, 0.025, 300, 1e-12)
    v = stg_simulate(tf.constant(z), noise, sigma_I=1e-12).numpy()
    np.testing.assert_allclose(v * 1e-3, ref, atol=1e-9)
    expected = _hub_frequency_reference(ref[:, :, 2], 0.025, 100.0)
    f = stg_hub_frequency()
    np.testing.assert_allclose(f(tf.constant(z), noise).numpy()[:, 0], expected, atol=1e-8)
    np.testing.assert_allclose(hub_frequency(tf.constant(ref[:, :, 2] * 1e3)), expected, atol=1e-8)


def test_stg_hub_frequency_lies_between_the_fast_and_slow_rhythms_and_has_gradients():
    out, grad = _gradient(stg_hub_frequency(T=120), np.array([[4.5, 3.0], [6.0, 1.2]]))
    assert out.shape == (2, 1)
    assert np.all((out.numpy() >= 0) & (out.numpy() <= 1))
    assert np.all(np.isfinite(grad))


def test_stg_fast_and_slow_neurons_spike_at_the_two_rhythms_the_paper_names():
    # Figure 1B's parameters; the paper names the rhythms ".35Hz" and ".68Hz".
    v = stg_simulate(tf.constant([[4.5, 3.0]], tf.float64), seed=tf.constant([0, 1])).numpy()
    freq = {n: float(hub_frequency(tf.constant(v[:, :, i]))[0]) for i, n in enumerate(STG_NEURONS)}
    for fast in ("f1", "f2"):
        assert freq[fast] == pytest.approx(0.68, abs=0.02)
    for slow in ("s1", "s2"):
        assert freq[slow] == pytest.approx(0.35, abs=0.03)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"T": 30}, ValueError, "T"),
        ({"T": 300.0}, TypeError, "T"),
        ({"dt": -0.01}, ValueError, "dt"),
        ({"sigma_I": -1.0}, ValueError, "sigma_I"),
        ({"beta": 0.0}, ValueError, "beta"),
    ],
)
def test_stg_bad_arguments_are_named(kwargs, error, name):
    with pytest.raises(error, match=rf"^{name} must"):
        stg_hub_frequency(**kwargs)


def test_stg_wrong_parameter_dimension_is_a_value_error():
    with pytest.raises(ValueError, match=r"z must have shape \(n, 2\)"):
        stg_hub_frequency()(np.zeros((3, 4)))


# ------------------------------------------------------------------- SC
def _sc_reference(z, noise, gamma):
    dt, tau, K = 0.024, 0.09, 75
    t = np.arange(K + 1) * dt
    out = []
    for i, (s, v, h, d) in enumerate(z):
        W = np.array([[s, v, h, d], [v, s, d, h], [h, d, s, v], [d, h, v, s]])
        final = []
        for c, rule in enumerate(([1, 0, 1, 0], [0, 1, 0, 1])):
            x = np.full((noise.shape[3], 4), 0.1)
            u = 0.05 + 0.5 * np.arctanh(2 * x - 1)
            for k in range(K):
                inp = 0.75 + 0.5 * np.array([1, 0, 1, 0])
                inp = inp + (0.6 * np.array(rule) if t[k] <= 1.2 else 0.25)
                if 1.2 < t[k] < 1.5:
                    inp = inp + 0.5 * np.array([1, 1, 0, 0])
                u = u + dt / tau * (-u + x @ W.T + inp + 0.2 * noise[k, i, c])
                gain = 1 - gamma if 0.8 < t[k + 1] < 1.2 else 1.0
                x = gain * (0.5 * np.tanh((u - 0.05) / 0.5) + 0.5)
            final.append(x)
        sig = lambda a: 1 / (1 + np.exp(-100 * a))  # noqa: E731
        out.append(
            [
                sig(final[0][:, 0] - final[0][:, 2]).mean(),
                sig(final[1][:, 2] - final[1][:, 0]).mean(),
            ]
        )
    return np.array(out)


@pytest.mark.parametrize("gamma", [0.0, 0.85])
def test_sc_accuracies_match_numpy(gamma):
    z = np.array([[1.0, -0.5, -1.5, 0.3], [-0.2, 0.4, 0.1, -0.3], [2.0, -1.0, -2.0, 0.5]])
    noise = np.random.default_rng(1).standard_normal((75, 3, 2, 7, 4))
    f = sc_task_accuracy(n_trials=7, opto_strength=gamma)
    np.testing.assert_allclose(f(tf.constant(z), noise).numpy(), _sc_reference(z, noise, gamma))


def test_sc_simulation_shape_and_gradient():
    x = sc_simulate(np.zeros((2, 4)), n_trials=3)
    assert x.shape == (76, 2, 2, 3, 4)
    out, grad = _gradient(sc_task_accuracy(n_trials=5), np.array([[1.0, -0.5, -1.5, 0.3]]))
    assert out.shape == (1, 2) and np.all(np.isfinite(grad))


def test_sc_eigenmodes_change_one_connectivity_eigenvalue_each():
    z = np.array([0.7, -0.2, 0.4, 1.1])
    Q = 0.5 * np.array([[1, 1, 1, 1], [1, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]]).T
    eig = lambda w: np.diag(Q.T @ sc_connectivity(w[None]).numpy()[0] @ Q)  # noqa: E731
    for a, v in enumerate(SC_EIGENMODES):
        change = eig(z + 0.3 * v) - eig(z)
        expected = np.zeros(4)
        expected[a] = 0.6  # |dz/d lambda_a| = 1/2, so a unit step raises lambda_a by 2
        np.testing.assert_allclose(change, expected, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"n_trials": 0}, ValueError, "n_trials"),
        ({"n_trials": 2.0}, TypeError, "n_trials"),
        ({"opto_strength": 1.5}, ValueError, "opto_strength"),
    ],
)
def test_sc_bad_arguments_are_named(kwargs, error, name):
    with pytest.raises(error, match=rf"^{name} must"):
        sc_task_accuracy(**kwargs)


def test_sc_wrong_parameter_dimension_is_a_value_error():
    with pytest.raises(ValueError, match=r"z must have shape \(n, 4\)"):
        sc_task_accuracy()(np.zeros((3, 3)))


# ------------------------------------------------------------------- V1
def _v1_reference(z, x0, noise, contrast):
    W = np.array(
        [
            [0.218, -0.119, -0.0594, -0.0229],
            [0.166, -0.0651, -0.068, -0.0242],
            [0.0895, -5.22e-4, -1.51e-5, -0.0761],
            [0.334, -0.231, -0.0254, -2.52e-5],
        ]
    )
    h = np.array([4.16, 4.29, 4.91, 4.86]) + contrast * np.array([3.59, 4.03, 0, 0])
    tau, tau_n, dt = 1e-3, 5e-3, 5e-4
    s_E = []
    for i, sigma in enumerate(z):
        per_trial = []
        for j in range(x0.shape[1]):
            x, eps = x0[i, j].copy(), np.zeros(4)
            xs = [x[0]]
            for k in range(200):
                x_new = x + dt / tau * (-x + np.maximum(W @ x + h + eps, 0) ** 2)
                dB = np.sqrt(dt) * noise[k, i, j]
                eps = (
                    eps
                    + dt / tau_n * (-eps)
                    + np.sqrt(2 / tau_n) * sigma * np.sqrt(1 + tau / tau_n) * dB
                )
                x = x_new
                xs.append(x[0])
            per_trial.append(np.std(xs[150:]))
        s_E.append(np.mean(per_trial))
    return np.array(s_E)


@pytest.mark.parametrize("contrast", [0.0, 0.5])
def test_v1_excitatory_variability_matches_numpy(contrast):
    z = np.array([[0.1, 0.2, 0.05, 0.3], [0.4, 0.0, 0.5, 0.1]])
    rng = np.random.default_rng(2)
    x0 = rng.uniform(10, 25, (2, 3, 4))
    noise = rng.standard_normal((200, 2, 3, 4))
    f = v1_excitatory_variability(n_trials=3, contrast=contrast)
    out = f(tf.constant(z), x0, noise).numpy()[:, 0]
    np.testing.assert_allclose(out, _v1_reference(z, x0, noise, contrast), rtol=1e-7)


def test_v1_constants_are_the_fitted_model_on_a_100_fold_rate_scale():
    # Eq. 71-73, the model fitted on the original scale, as printed.
    W_fit = np.array(
        [
            [2.18, -1.19, -0.594, -0.229],
            [1.66, -0.651, -0.680, -0.242],
            [0.895, -5.22e-3, -1.51e-4, -0.761],
            [3.34, -2.31, -0.254, -2.52e-4],
        ]
    )
    h_b_fit, h_c_fit = np.array([0.416, 0.429, 0.491, 0.486]), np.array([0.359, 0.403, 0, 0])
    np.testing.assert_allclose(V1_W, W_fit / 10, rtol=1e-12)  # Eq. 74
    np.testing.assert_allclose(V1_H_C, 10 * h_c_fit, rtol=1e-12)  # Eq. 76
    np.testing.assert_allclose(V1_H_B, 10 * h_b_fit, rtol=1e-12)  # Eq. 75, derived
    x_fit = np.full(4, 0.15)
    for _ in range(20_000):  # the fitted model's steady state at contrast 0
        x_fit = x_fit + 0.01 * (-x_fit + np.maximum(W_fit @ x_fit + h_b_fit, 0) ** 2)
    x = v1_simulate(np.zeros((1, 4)), n_trials=3).numpy()[-1, 0]  # noise-free, 100 ms
    np.testing.assert_allclose(x, np.tile(100 * x_fit, (3, 1)), rtol=1e-3)
    np.testing.assert_allclose(x[0], [19.2, 19.4, 11.6, 42.2], atol=0.05)
    assert 10 <= x[0, 0] <= 25 and 10 <= x[0, 1] <= 25  # inside the paper's x(0) range


def test_v1_noise_free_network_settles_without_variability():
    x = v1_simulate(np.zeros((1, 4)), n_trials=2).numpy()
    assert x.shape == (201, 1, 2, 4)
    assert v1_excitatory_variability(n_trials=2)(np.zeros((1, 4))).numpy()[0, 0] < 1e-3


def test_v1_gradient_is_finite_even_without_noise():
    out, grad = _gradient(v1_excitatory_variability(n_trials=4), np.array([[0.0] * 4, [0.2] * 4]))
    assert out.shape == (2, 1) and np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"n_trials": 0}, ValueError, "n_trials"),
        ({"contrast": 2.0}, ValueError, "contrast"),
        ({"contrast": "high"}, TypeError, "contrast"),
    ],
)
def test_v1_bad_arguments_are_named(kwargs, error, name):
    with pytest.raises(error, match=rf"^{name} must"):
        v1_excitatory_variability(**kwargs)


def test_v1_wrong_parameter_dimension_is_a_value_error():
    with pytest.raises(ValueError, match=r"z must have shape \(n, 4\)"):
        v1_excitatory_variability()(np.zeros((3, 2)))


def test_stochastic_circuits_repeat_exactly_for_the_same_seed():
    from sklearn_epi.circuits import SC_BOUNDS, sc_task_accuracy

    stat = sc_task_accuracy(n_trials=8)
    low, high = np.array(list(SC_BOUNDS.values())).T
    z = tf.constant(np.random.default_rng(0).uniform(low, high, size=(3, len(low))), tf.float32)
    a = stat(z, seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(a.numpy(), stat(z, seed=tf.constant([1, 2])).numpy())
    assert not np.array_equal(a.numpy(), stat(z, seed=tf.constant([3, 4])).numpy())
