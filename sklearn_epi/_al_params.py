"""Hyperparameters of the augmented Lagrangian optimisation (Algorithm 1)."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["ALParams"]


class ALParams(BaseEstimator):
    r"""Hyperparameters of the augmented Lagrangian optimisation.

    The objective minimised in each epoch is (paper, Eq. 21)

    .. math:: L(\theta; \eta, c) = -H(q_\theta) + \eta^\top R(\theta)
              + \frac{c}{2} \|R(\theta) / s\|^2 ,

    where each violation :math:`R_i` enters the penalty in the unit of its target
    spread :math:`s_i` (:math:`\sigma_i` for a mean, :math:`\sigma_i^2` for a
    variance), so ``c`` has the same meaning whatever units the statistics
    are written in.

    The defaults were chosen on the paper's 2D oscillator, whose
    maximum-entropy distribution is known (``python -m benchmarks --sections
    maxent``). Its two modes separate while the constraints tighten, and a
    fast tightening freezes an unequal split or drops a mode: a gentle start
    (``c0 = 1e-3``, ``beta = 1.5``), large batches (less gradient noise) and
    short epochs with a warm-started cosine learning rate keep both modes on
    most seeds and let ``eta`` settle. With the paper's schedule
    (``beta = 4``, 10 epochs of 2000 constant-rate steps) the fits fell 0.6
    to 4.7 nats short of the maximum, often on one mode; with these
    defaults and the flow's two base modes (:class:`~sklearn_epi.RealNVP`)
    every one of 10 seeds came within 0.1 nats, in 40 to 53 s on 2 cores
    (the user guide's "A converged fit can still fall short" says what to
    change when a fit falls short).

    Parameters
    ----------
    c0 : float, default=1e-3
        Initial penalty coefficient ``c``, in the targets' units. Small, so
        that the constraints tighten gradually: a larger ``c0`` converges in
        fewer epochs, at the risk of a distribution that commits to one of
        several modes early.
    beta : float, default=1.5
        Factor by which ``c`` grows after an epoch that did not reduce the
        constraint violation by ``gamma``. Must be > 1. An epoch that passes
        the paper's batch test never grows ``c``: the multipliers alone bring
        the violations down to the whole test sample's noise.
    gamma : float, default=0.25
        Required reduction of ``E||R / s||`` per epoch, in (0, 1).
    lr : float, default=2e-3
        Adam learning rate.
    lr_schedule : {'cosine', 'constant'}, default='cosine'
        The learning rate within an epoch. ``'cosine'`` raises it linearly to
        ``lr`` over the first 5% of the epoch's ``num_iters`` steps (Adam's
        moments restart with each epoch, and its first steps are large),
        then lowers it along a cosine to ``lr / 100``, so each epoch ends on
        settled weights and its test does not measure optimiser noise;
        ``'constant'`` keeps ``lr``.
    batch_size : int, default=1000
        Samples of q per step; even, so that the penalty gradient can use two
        independent halves.
    num_iters : int, default=600
        Adam steps per epoch. Adam's moment estimates are reset at the start
        of every epoch, because the objective changes with ``eta`` and ``c``.
    max_epochs : int, default=25
        Maximum number of epochs (``k_max``).
    init_iters : int, default=1000
        Adam steps fitting the flow to the initial Gaussian, before epoch 1;
        with ``init={"samples": ...}`` as many again fitting it to the points.
    log_rate : int, default=50
        Iterations between logged rows of ``history_`` (and the only points
        where training values are copied to the host).
    stop_early : bool, default=False
        Stop at the first converged epoch, as the paper's Algorithm 1 does,
        instead of keeping the converged epoch of greatest entropy.
    patience : int or None, default=2
        Without ``stop_early``, stop once ``patience`` epochs have ended
        since the converged epoch of greatest entropy (the one the fit
        keeps); None runs every one of ``max_epochs``. Once the constraints
        hold, ``c`` stops growing and the entropy of later epochs either
        falls (the oscillator, the bimodal and ring known answers, the RNN
        with N = 2: the first converged epoch was the best, so the epochs
        after it cost a third of the fit and bought nothing) or keeps rising
        slowly, with dips of an epoch or two that end the fit (the paper's
        RNN at N = 10 to 100: 0.25 to 1.6 nats per 10 epochs up to epoch
        60-70); the user guide's "Reading convergence and the history" says
        when to run on, and ``python -m benchmarks --sections plateau``
        measures it.

    Examples
    --------
    >>> from sklearn_epi import ALParams
    >>> ALParams(c0=1e-2).set_params(beta=2.0).beta
    2.0
    """

    def __init__(
        self,
        c0: float = 1e-3,
        beta: float = 1.5,
        gamma: float = 0.25,
        lr: float = 2e-3,
        lr_schedule: str = "cosine",
        batch_size: int = 1000,
        num_iters: int = 600,
        max_epochs: int = 25,
        init_iters: int = 1000,
        log_rate: int = 50,
        stop_early: bool = False,
        patience: int | None = 2,
    ):
        self.c0 = c0
        self.beta = beta
        self.gamma = gamma
        self.lr = lr
        self.lr_schedule = lr_schedule
        self.batch_size = batch_size
        self.num_iters = num_iters
        self.max_epochs = max_epochs
        self.init_iters = init_iters
        self.log_rate = log_rate
        self.stop_early = stop_early
        self.patience = patience

    def __setstate__(self, state):
        # Saved before lr_schedule existed (0.1.0): those fits used a constant rate.
        state.setdefault("lr_schedule", "constant")
        # Saved before patience existed: those fits ran to max_epochs.
        state.setdefault("patience", None)
        super().__setstate__(state)

    def _validate(self) -> None:
        # A wrong type is a TypeError, a wrong value a ValueError, as for the
        # estimator's own parameters.
        def positive(name, value):
            if not isinstance(value, Real) or isinstance(value, bool):
                raise TypeError(f"al_params.{name} must be a number > 0; got {value!r}")
            if not value > 0:
                raise ValueError(f"al_params.{name} must be a number > 0; got {value!r}")

        def count(name, value, minimum):
            if not isinstance(value, Integral) or isinstance(value, bool):
                raise TypeError(f"al_params.{name} must be an integer >= {minimum}; got {value!r}")
            if value < minimum:
                raise ValueError(f"al_params.{name} must be an integer >= {minimum}; got {value!r}")

        positive("c0", self.c0)
        positive("lr", self.lr)
        positive("beta", self.beta)
        if not self.beta > 1:
            raise ValueError(f"al_params.beta must be > 1; got {self.beta!r}")
        positive("gamma", self.gamma)
        if not self.gamma < 1:
            raise ValueError(f"al_params.gamma must be in (0, 1); got {self.gamma!r}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(
                f"al_params.lr_schedule must be 'cosine' or 'constant'; got {self.lr_schedule!r}"
            )
        count("batch_size", self.batch_size, 2)
        if self.batch_size % 2:
            raise ValueError(
                "al_params.batch_size must be even (the penalty gradient uses two "
                f"halves); got {self.batch_size}"
            )
        count("num_iters", self.num_iters, 1)
        count("max_epochs", self.max_epochs, 1)
        count("init_iters", self.init_iters, 0)
        count("log_rate", self.log_rate, 1)
        if not isinstance(self.stop_early, (bool, np.bool_)):
            raise TypeError(f"al_params.stop_early must be a bool; got {self.stop_early!r}")
        if self.patience is not None:
            count("patience", self.patience, 1)
