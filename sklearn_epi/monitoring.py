"""Live monitoring of a fit in TensorBoard, through the epoch-end hook.

>>> from sklearn_epi.monitoring import TensorBoardLogger
>>> est.set_params(callbacks=[TensorBoardLogger("runs/oscillator")])  # doctest: +SKIP

then ``tensorboard --logdir runs`` shows, per seed, the entropy, the cost,
``c`` and every constraint violation at each logged training chunk, and at
each epoch end the fresh-sample entropy, violations, p-values and
multipliers.
"""

from __future__ import annotations

import importlib.util
import os

import tensorflow as tf

from ._reporting import EpochCallback

__all__ = ["TensorBoardLogger"]


class TensorBoardLogger(EpochCallback):
    """Write a fit's progress as TensorBoard summaries, one run directory per seed.

    Scalars, with the training iteration as step:

    * ``train/H``, ``train/cost``, ``train/c`` and ``train/R_<constraint>``
      at every logged chunk (every ``log_rate`` iterations);
    * ``test/H``, ``test/H_se``, ``test/R_<constraint>``,
      ``test/p_<constraint>`` and ``test/eta_<constraint>`` at every epoch
      end (fresh samples, the convergence test's values).

    Parameters
    ----------
    logdir : str or os.PathLike
        Directory of the runs; seed ``k`` writes to ``logdir/seed_k``.
    constraint_names : list of str, default=None
        Names for the constraints in the epoch-end scalars; ``None`` takes
        them from the training rows (``mean_f0, ...``).

    Raises
    ------
    ImportError
        Without the ``tensorboard`` package (TensorFlow 2.20 and later no
        longer install it): ``pip install tensorboard``.

    Notes
    -----
    The callback runs in the process that fits the seed, so with
    ``n_jobs > 1`` every worker writes its own seeds' directories; the
    ``logdir`` must be reachable from the workers.
    """

    def __init__(self, logdir, constraint_names=None):
        # TensorFlow writes summaries through the tensorboard package, which
        # TensorFlow 2.20 and later no longer install.
        if importlib.util.find_spec("tensorboard") is None:
            raise ImportError(
                "TensorBoardLogger needs the tensorboard package: "
                "pip install tensorboard (or pip install sklearn_epi[monitoring])"
            )
        self.logdir = logdir
        self.constraint_names = constraint_names
        self._writer = None

    def on_seed_start(self, seed_index, total_iterations):
        path = os.path.join(os.fspath(self.logdir), f"seed_{seed_index}")
        self._writer = tf.summary.create_file_writer(path)

    def on_chunk(self, seed_index, epoch, iteration, row):
        if self.constraint_names is None:
            self.constraint_names = [k[2:] for k in row if k.startswith("R_")]
        with self._writer.as_default(step=iteration):
            for key in ("H", "cost", "c"):
                tf.summary.scalar(f"train/{key}", row[key])
            for name in self.constraint_names:
                tf.summary.scalar(f"train/R_{name}", row[f"R_{name}"])

    def on_epoch_end(self, record):
        names = self.constraint_names or [f"constraint_{i}" for i in range(len(record.R))]
        with self._writer.as_default(step=record.iteration):
            tf.summary.scalar("test/H", record.entropy)
            tf.summary.scalar("test/H_se", record.entropy_se)
            tf.summary.scalar("test/c", record.c)
            for name, r, p, eta in zip(names, record.R, record.pvalues, record.eta):
                tf.summary.scalar(f"test/R_{name}", r)
                tf.summary.scalar(f"test/p_{name}", p)
                tf.summary.scalar(f"test/eta_{name}", eta)
        self._writer.flush()

    def on_seed_end(self, seed_index, iterations):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_writer"] = None  # a file writer stays in its process
        return state
