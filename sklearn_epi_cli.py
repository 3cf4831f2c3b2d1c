"""The ``sklearn-epi`` console script: a stop signal is handled from the first instant.

Importing :mod:`sklearn_epi` starts TensorFlow, which takes seconds. A job
scheduler's SIGTERM, or a Ctrl-C, in that time must end the command as it
does later, with exit code 75 ("run the same command again"), not kill it
(exit -15) or print a traceback. This module lives outside the package so
that it can set the handler before the package is imported; the command
itself is :func:`sklearn_epi.cli.main`.
"""

import signal
import sys

#: sklearn_epi.cli.EXIT_AGAIN, which cannot be imported before the handler is set.
EXIT_AGAIN = 75


def _interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> int:
    """Run ``sklearn-epi`` with SIGTERM raising ``KeyboardInterrupt`` from the start.

    Returns
    -------
    int
        :func:`sklearn_epi.cli.main`'s exit code, or 75 when a signal stops
        the command before it could say so itself.
    """
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from sklearn_epi.cli import main as command

        return command()
    except KeyboardInterrupt as exc:
        print(
            f"sklearn-epi: stopped by {str(exc) or 'SIGINT'} while starting; "
            "run the same command again",
            file=sys.stderr,
        )
        return EXIT_AGAIN


if __name__ == "__main__":
    sys.exit(main())
