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
              + \frac{c}{2} \|R(\theta)\|^2 .

    Defaults follow the paper's 2D linear-system settings (Adam with learning
    rate 1e-3, ``beta = 4``, ``gamma = 0.25``) with a budget that converges on
    two CPU cores in about a minute.

    Parameters
    ----------
    c0 : float, default=1.0
        Initial penalty coefficient ``c``.
    beta : float, default=4.0
        Factor by which ``c`` grows after an epoch that did not reduce the
        constraint violation by ``gamma``. Must be > 1.
    gamma : float, default=0.25
        Required reduction of ``E||R||`` per epoch, in (0, 1).
    lr : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=500
        Samples of q per step; even, so that the penalty gradient can use two
        independent halves.
    num_iters : int, default=2000
        Adam steps per epoch. Adam's moment estimates are reset at the start
        of every epoch, because the objective changes with ``eta`` and ``c``.
    max_epochs : int, default=10
        Maximum number of epochs (``k_max``).
    init_iters : int, default=1000
        Adam steps fitting the flow to the initial Gaussian, before epoch 1.
    log_rate : int, default=50
        Iterations between logged rows of ``history_`` (and the only points
        where training values are copied to the host).
    stop_early : bool, default=False
        Stop at the first converged epoch instead of running ``max_epochs``
        and keeping the converged epoch of greatest entropy.

    Examples
    --------
    >>> from sklearn_epi import ALParams
    >>> ALParams(c0=1e-2).set_params(beta=2.0).beta
    2.0
    """

    def __init__(
        self,
        c0: float = 1.0,
        beta: float = 4.0,
        gamma: float = 0.25,
        lr: float = 1e-3,
        batch_size: int = 500,
        num_iters: int = 2000,
        max_epochs: int = 10,
        init_iters: int = 1000,
        log_rate: int = 50,
        stop_early: bool = False,
    ):
        self.c0 = c0
        self.beta = beta
        self.gamma = gamma
        self.lr = lr
        self.batch_size = batch_size
        self.num_iters = num_iters
        self.max_epochs = max_epochs
        self.init_iters = init_iters
        self.log_rate = log_rate
        self.stop_early = stop_early

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
