"""A seed's state as typed records: an epoch's test, where a seed stands, how it ended.

:func:`~sklearn_epi.optimize.fit_seed` hands an :class:`EpochRecord` to the
epoch-end hooks, keeps its progress in a :class:`SeedState`, and returns a
:class:`SeedResult`. A checkpoint (and a warm start) holds a :class:`Saved`:
the state to go on from, and the result once the seed has ended. On disk
they are the plain dictionaries of :meth:`Saved.to_file`, unchanged since
checkpoint format 1, so checkpoints written before these classes still load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["EpochRecord", "SeedState", "SeedResult", "Saved", "STATUSES"]

#: A seed's ``status`` in ``seeds_``: its kept epoch converged; it ran to its
#: end without converging; it failed (an exception, a non-finite step, a dead
#: worker); Ctrl-C or SIGTERM stopped it; ``max_time`` stopped it; it never ran.
STATUSES = ("converged", "ended", "failed", "interrupted", "out of time", "not run")

#: Statuses that a later fit with the same settings continues.
UNFINISHED = ("interrupted", "out of time", "not run")


@dataclass
class EpochRecord:
    """An epoch's test on fresh samples: what the epoch-end hook receives.

    ``c`` and ``eta`` are the values the epoch trained with; the update that
    follows the test is in the next record. ``reached``: the paper's test
    on batches passed; ``converged``: the constraints also hold on the
    whole test sample (:meth:`~sklearn_epi.property.EmergentProperty.test`);
    ``moment_error`` and ``slack`` are that sample's diagnostics
    (:func:`~sklearn_epi.convergence.moment_errors`,
    :func:`~sklearn_epi.convergence.entropy_slack`).
    """

    seed_index: int
    epoch: int
    iteration: int
    entropy: float
    entropy_se: float
    R: np.ndarray
    pvalues: np.ndarray
    converged: bool
    c: float
    eta: np.ndarray
    R_batches: np.ndarray = field(repr=False)
    worst_t: float
    weights: list = field(repr=False)
    wall_time: float
    statistic_range: np.ndarray = field(repr=False, default=None)
    c_pvalue: float = np.nan
    moment_error: float = np.nan
    slack: float = np.nan
    reached: bool = False


@dataclass
class SeedState:
    """Where a seed stands at its last epoch end: enough to go on exactly as an unbroken fit would.

    ``weights``, ``step`` (the position in the seed's random stream), ``eta``,
    ``c`` and ``scale`` (the violations' units) are the trainer's, taken by
    :meth:`capture`; ``rng`` is the generator of the ``c`` decisions, ``rows``
    the training rows of ``history_``, ``epochs`` every :class:`EpochRecord`
    so far (epoch 0 is the initial distribution's test) and ``iteration`` the
    training iterations done. ``started`` is the ``time.perf_counter()`` at
    which the seed would have started had every call on it been one.
    """

    seed_index: int
    rng: np.random.Generator
    epochs: list
    rows: list = field(default_factory=list)
    iteration: int = 0
    weights: list = field(default=None, repr=False)
    step: int = 0
    eta: np.ndarray = None
    c: float = np.nan
    scale: np.ndarray = None
    started: float = field(default_factory=time.perf_counter, repr=False)

    @property
    def wall_time(self) -> float:
        """Seconds spent on the seed, over every call."""
        return time.perf_counter() - self.started

    def capture(self, trainer) -> None:
        """Take the trainer's weights, stream position, multipliers, penalty and units."""
        self.weights = trainer.flow.get_weights()
        self.step = int(trainer.step.numpy())
        self.eta, self.c, self.scale = (v.numpy() for v in (trainer.eta, trainer.c, trainer.scale))

    def restore(self, trainer) -> None:
        """Put the captured values back into a trainer started at ``weights`` and ``step``."""
        for name in ("eta", "c", "scale"):
            getattr(trainer, name).assign(getattr(self, name))

    def to_file(self) -> dict:
        """The checkpoint dictionary (format 1)."""
        data = {name: getattr(self, name) for name in _FILE_FIELDS}
        data.update(
            finished=False,
            rng=self.rng.bit_generator.state,
            rows=list(self.rows),
            epochs=list(self.epochs),
            wall_time=self.wall_time,
        )
        return data

    @classmethod
    def from_file(cls, data: dict, seed_index: int) -> SeedState:
        rng = np.random.default_rng()
        rng.bit_generator.state = data["rng"]
        return cls(
            seed_index=seed_index,
            rng=rng,
            epochs=list(data["epochs"]),
            rows=list(data["rows"]),
            started=time.perf_counter() - data["wall_time"],
            **{name: data[name] for name in _FILE_FIELDS},
        )


_FILE_FIELDS = ("weights", "step", "eta", "c", "scale", "iteration")


@dataclass
class SeedResult:
    """A seed's outcome: plain arrays and DataFrames, no TensorFlow objects.

    ``status`` is one of :data:`STATUSES` (build results with
    :meth:`without_epochs`, which sets it); ``failed`` and ``interrupted``
    say the same for code that predates it.
    """

    seed_index: int
    seed: int
    weights: list | None
    converged: bool
    failed: bool
    epoch: int | None
    entropy: float
    entropy_se: float
    eta: np.ndarray | None
    c: float
    history: pd.DataFrame
    n_iter: int
    wall_time: float
    jit_compile: bool
    message: str = ""
    pvalues: np.ndarray | None = None
    worst_t: float = np.inf
    moment_error: float = np.nan
    slack: float = np.nan
    interrupted: bool = False
    traceback: str = ""
    statistic_range: np.ndarray | None = None
    n_simulations: int = 0
    final_state: dict | None = field(default=None, repr=False)
    status: str = ""

    def __setstate__(self, state):
        self.__dict__.update(state)
        if not self.__dict__.get("status"):  # pickled before the status existed
            self.status = _status_of(self)

    @classmethod
    def without_epochs(cls, seed_index, seed, status, message, traceback="") -> SeedResult:
        """The result of a seed with no usable epoch: never run, or lost with its worker."""
        return cls(
            seed_index=seed_index,
            seed=seed,
            weights=None,
            converged=False,
            failed=status == "failed",
            epoch=None,
            entropy=np.nan,
            entropy_se=np.nan,
            eta=None,
            c=np.nan,
            history=pd.DataFrame(),
            n_iter=0,
            wall_time=np.nan,
            jit_compile=False,
            message=message,
            traceback=traceback,
            interrupted=status in UNFINISHED,
            status=status,
        )


def _status_of(result) -> str:
    """The status of a result pickled before ``status`` existed.

    Checkpoints and warm starts keep a result only once its seed has ended,
    so such a result was never interrupted.
    """
    if result.failed:
        return "failed"
    return "converged" if result.converged else "ended"


@dataclass
class Saved:
    """What a checkpoint or a warm start holds for one seed.

    ``state`` is the seed's :meth:`SeedState.to_file` dictionary at its last
    finished epoch (None when it ended before any); once the seed has ended,
    ``result`` is its :class:`SeedResult` and ``ended_by`` says why:
    ``"max_epochs"`` (a fit allowed more epochs goes on), ``"stop"`` (a
    stopping rule) or ``"failed"``.
    """

    state: dict | None
    result: SeedResult | None = None
    ended_by: str | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def epochs(self) -> list:
        """The epoch records the saved state holds."""
        return [] if self.state is None else list(self.state["epochs"])

    def can_continue(self, max_epochs: int) -> bool:
        """Whether the seed ended only for want of epochs that ``max_epochs`` now allows."""
        return (
            self.ended_by == "max_epochs"
            and self.state is not None
            and self.state["epochs"][-1].epoch < max_epochs
        )

    def to_file(self) -> dict | None:
        """The checkpoint dictionary: the state alone until the seed has ended."""
        if not self.finished:
            return self.state
        return {
            "finished": True,
            "ended_by": self.ended_by,
            "state": self.state,
            "result": self.result,
        }

    @classmethod
    def from_file(cls, data: dict | None) -> Saved | None:
        """The :class:`Saved` of a checkpoint dictionary (None for none)."""
        if data is None:
            return None
        if not data.get("finished"):
            return cls(data)
        return cls(data["state"], data["result"], data.get("ended_by"))
