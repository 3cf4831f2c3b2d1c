r"""Fast stochastic simulation inside a statistic: noise and Euler-Maruyama steps.

A statistic that simulates a noisy network over time is evaluated on every
sample of every training step, together with its gradient, so its cost is
the fit's cost. Three things decide that cost on a CPU (see the user guide,
"Making a simulator fast", for the measurements):

* **the loop**: a ``tf.while_loop`` that carries only the current state and
  running summaries (moments, a final value) instead of a ``tf.scan`` that
  stacks every step's state;
* **the noise**: drawn inside the loop, one step at a time, by
  :func:`gaussian_noise`, which costs about half of
  ``tf.random.stateless_normal``;
* **the compile path**: time-stepped simulations often run faster without
  XLA; time a few epochs with ``jit_compile=True`` and ``False`` (the
  ``seeds_`` table's ``wall_time``) and keep the faster.

:func:`euler_maruyama` puts the three together for a stochastic differential
equation :math:`dx = a(k, x)\,dt + b\,dB`.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf
from scipy.special import ndtri

__all__ = ["gaussian_noise", "euler_maruyama"]

_TABLE_BITS = 16


@functools.cache
def _normal_quantiles(dtype_name):
    """The 2**16 equiprobable quantiles of N(0, 1), scaled to unit variance."""
    q = ndtri((np.arange(2**_TABLE_BITS) + 0.5) / 2**_TABLE_BITS)
    return (q / np.sqrt(np.mean(q * q))).astype(dtype_name)


def gaussian_noise(shape, seed, dtype=tf.float32):
    r"""Standard-normal draws from a stateless seed, by inverse-CDF table lookup.

    Each draw is one of the :math:`2^{16}` equiprobable quantiles of
    :math:`\mathcal N(0, 1)`, picked by 16 random bits (two draws per 32-bit
    Philox word), then scaled so the variance is exactly 1. The draws are
    symmetric with mean 0; they differ from exact normal draws only beyond
    4.3 standard deviations (probability 1.7e-5, where they stop) and by
    the 16-bit quantisation, which no Euler-Maruyama statistic can resolve.
    On 2 CPU cores this is about twice as fast as
    ``tf.random.stateless_normal`` (see ``python -m benchmarks --sections
    simulators``).

    Parameters
    ----------
    shape : tuple of int or 1-D int tensor
        Shape of the draws.
    seed : tf.Tensor or array of shape (2,)
        Stateless seed (int32 or int64); equal seeds give equal draws.
    dtype : tf.DType, default=tf.float32
        Floating dtype of the draws.

    Returns
    -------
    tf.Tensor of shape ``shape``

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_epi.simulate import gaussian_noise
    >>> x = gaussian_noise((1000, 1000), seed=[1, 2]).numpy()
    >>> abs(float(x.mean())) < 0.01, round(float(x.var()), 2)
    (True, 1.0)
    """
    dtype = tf.as_dtype(dtype)
    if not dtype.is_floating:
        raise TypeError(f"dtype must be a floating dtype; got {dtype.name}")
    shape = tf.cast(shape, tf.int32)
    count = tf.reduce_prod(shape)
    seed = tf.cast(seed, tf.int32)
    words = tf.random.stateless_uniform(
        [(count + 1) // 2], seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox"
    )
    index = tf.cast(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:count], tf.int32)
    table = tf.constant(_normal_quantiles(dtype.name), dtype)
    return tf.reshape(tf.gather(table, index), shape)


def _as(value, dtype):
    """``value`` in ``dtype``; Python floats without a float32 detour (0.8 stays 0.8 in float64)."""
    return tf.cast(tf.convert_to_tensor(value, dtype_hint=dtype), dtype)


def euler_maruyama(
    drift,
    x0,
    n_steps,
    dt,
    noise_scale,
    *,
    seed=None,
    noise=None,
    observe=None,
    initial=None,
):
    r"""Integrate :math:`dx = a(k, x)\,dt + b\,dB` by Euler-Maruyama in a ``tf.while_loop``.

    Each step is :math:`x_{k+1} = x_k + a(k, x_k)\,\Delta t + b \sqrt{\Delta t}\,
    \xi_k` with :math:`\xi_k` standard normal (:func:`gaussian_noise`, drawn
    inside the loop one step at a time). Only the current state and what
    ``observe`` accumulates are carried from step to step, so memory does
    not grow with ``n_steps`` in the forward pass, and the loop lowers to
    XLA as well as to a plain graph. Gradients flow through ``x0``,
    ``noise_scale`` and every tensor ``drift`` and ``observe`` read.

    Parameters
    ----------
    drift : callable
        ``drift(k, x)`` returns :math:`a(k, x)`, the deterministic rate of
        change, with the structure of ``x``; ``k`` is the step index (an
        int32 scalar tensor, :math:`t = k\,\Delta t`), for time-varying
        input.
    x0 : tf.Tensor or tuple of tf.Tensor
        Initial state: one tensor or a tuple (e.g. rates and an input
        noise process).
    n_steps : int
        Number of steps.
    dt : float
        Step size :math:`\Delta t`.
    noise_scale : tf.Tensor, float, None, or a tuple of them
        Diffusion :math:`b`, with the structure of ``x0``; each entry
        broadcasts against its state component, ``None`` (or 0.0) makes a
        component noise-free.
    seed : tf.Tensor or array of shape (2,), default=None
        Stateless seed of the noise: equal seeds give equal paths. Pass the
        ``seed`` that :class:`~sklearn_epi.EPIEstimator` gives a statistic
        so fits repeat exactly. ``None`` takes one from TensorFlow's global
        generator.
    noise : tf.Tensor, array or tuple, default=None
        Given standard-normal increments instead of drawn ones, of shape
        ``(n_steps,) + component.shape`` for every noisy component (``None``
        for the others): to compare with a reference implementation or to
        reuse draws.
    observe : callable, default=None
        ``observe(k, x, acc)`` returns the updated accumulator after step
        ``k`` (``k = 1 .. n_steps``, ``x`` the state at step ``k``): running
        sums for time averages and moments, instead of storing the path.
    initial : tf.Tensor or tuple, default=None
        The accumulator before the first step; required with ``observe``.

    Returns
    -------
    x : tf.Tensor or tuple
        The state after ``n_steps`` steps.
    acc : tf.Tensor or tuple
        The final accumulator; returned only with ``observe``.

    Examples
    --------
    An Ornstein-Uhlenbeck process :math:`dx = -x\,dt + \sqrt 2\,dB` has
    stationary variance 1; its time average of :math:`x^2` over the last
    half of a long run:

    >>> import tensorflow as tf
    >>> from sklearn_epi.simulate import euler_maruyama
    >>> x, (total,) = euler_maruyama(
    ...     lambda k, x: -x, tf.zeros([1000]), n_steps=500, dt=0.02,
    ...     noise_scale=2.0**0.5, seed=[0, 1],
    ...     observe=lambda k, x, acc: (acc[0] + tf.cast(k > 250, x.dtype) * x**2,),
    ...     initial=(tf.zeros([1000]),))
    >>> round(float(tf.reduce_mean(total) / 250), 1)
    1.0
    """
    if not callable(drift):
        raise TypeError(f"drift must be callable as drift(k, x); got {drift!r}")
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}")
    if isinstance(dt, bool) or not np.isscalar(dt) or not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive number; got {dt!r}")
    if observe is not None and not callable(observe):
        raise TypeError(f"observe must be callable as observe(k, x, acc); got {observe!r}")
    if (observe is None) != (initial is None):
        raise ValueError("observe and initial must be given together")
    single = not isinstance(x0, (tuple, list))
    state = tuple(tf.convert_to_tensor(c) for c in ((x0,) if single else x0))

    def per_component(value, name):
        values = (value,) if single or value is None else tuple(value)
        if single and isinstance(value, (tuple, list)):
            raise ValueError(f"{name} must match x0, a single tensor; got a {type(value).__name__}")
        if value is None:
            values = (None,) * len(state)
        if len(values) != len(state):
            raise ValueError(
                f"{name} must have one entry per state component ({len(state)}); got {len(values)}"
            )
        return values

    scales = per_component(noise_scale, "noise_scale")
    noisy = [
        i
        for i, b in enumerate(scales)
        if b is not None and not (np.isscalar(b) and not isinstance(b, str) and b == 0)
    ]
    given = None
    if noise is not None:
        given = per_component(noise, "noise")
        for i in noisy:
            if given[i] is None:
                raise ValueError(f"noise has no increments for noisy state component {i}")
        given = [None if g is None else _as(g, state[i].dtype) for i, g in enumerate(given)]
    elif noisy:
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        seed = tf.cast(seed, tf.int32)
        streams = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(len(state))]
    root_dt = float(np.sqrt(dt))
    kicks = [
        None if i not in noisy else _as(scales[i], state[i].dtype) * root_dt
        for i in range(len(state))
    ]

    def step(k, x):
        rates = drift(k, x[0] if single else x)
        rates = (rates,) if single else rates
        if not isinstance(rates, (tuple, list)) or len(rates) != len(x):
            raise ValueError(
                f"drift must return one rate per state component ({len(x)}); got {len(rates)}"
            )
        new = []
        for i, (xi, ai) in enumerate(zip(x, rates)):
            xi = xi + dt * ai
            if i in noisy:
                if given is not None:
                    draw = given[i][k]
                else:
                    draw = gaussian_noise(
                        tf.shape(xi),
                        tf.random.experimental.stateless_fold_in(streams[i], k),
                        xi.dtype,
                    )
                xi = xi + kicks[i] * draw
            new.append(xi)
        return tuple(new)

    def body(k, x, acc):
        x = step(k, x)
        if observe is not None:
            acc = observe(k + 1, x[0] if single else x, acc)
        return k + 1, x, acc

    acc0 = () if initial is None else initial
    _, x, acc = tf.while_loop(
        lambda k, x, acc: k < n_steps,
        body,
        (tf.constant(0, tf.int32), state, acc0),
        maximum_iterations=n_steps,
    )
    x = x[0] if single else x
    return x if observe is None else (x, acc)
