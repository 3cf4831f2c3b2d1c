"""XLA's persistent compilation cache, so that a second process does not compile a fit again.

A fit compiles its training step, its test and its Gaussian start with XLA:
about 4 of the 9 seconds before a first fit's first iteration on two
cores. The same problem fitted again in another process (a rerun of the
command line, the next task of a job array, the other test worker) would
compile the same programs again. TensorFlow can keep compiled XLA programs
on disk (``--tf_xla_persistent_cache_directory`` in ``TF_XLA_FLAGS``, read
when XLA first compiles); :func:`configure` turns it on, before TensorFlow
starts, when the user asks for it.

It is off unless asked for, because TensorFlow (2.18 to 2.21) prints two
error-level lines on stderr for every program it loads from the cache: a
failed text-format parse before the binary one succeeds, and a notice that
the program's machine features (a tuning flag such as
``+prefer-no-scatter``) are not the host's and "could lead to SIGILL",
even on the machine that compiled it. Both are harmless there, but they
are what the package's quiet start exists to keep out of a scientist's
output.

The directory is named by the TensorFlow version and by the processor
(architecture and instruction-set flags): a compiled program is machine
code for the processor that compiled it, and a cluster's nodes may share a
home directory while their processors differ. The files are XLA's own
(written by this user, on this machine type); they hold compiled programs,
so the directory is made readable by its owner only.

``SKLEARN_EPI_COMPILE_CACHE`` chooses: unset, ``0``, ``off`` or empty, no
cache; ``1`` or ``on``, the user's cache (``$XDG_CACHE_HOME/sklearn_epi/xla``
or ``~/.cache/sklearn_epi/xla``); any other value, that directory. A cache
directory already named in ``TF_XLA_FLAGS`` is the user's choice and is
left alone.
"""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata
from pathlib import Path

#: The environment variable that places or turns off the cache.
VARIABLE = "SKLEARN_EPI_COMPILE_CACHE"
FLAG = "--tf_xla_persistent_cache_directory"


def root() -> Path | None:
    """The cache's root directory, or ``None`` when the user has not asked for one."""
    chosen = os.environ.get(VARIABLE, "").strip()
    if chosen.lower() in ("", "0", "off", "false", "no"):
        return None
    if chosen.lower() not in ("1", "on", "true", "yes"):
        return Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sklearn_epi" / "xla"


def machine() -> str:
    """The processor's name for the cache: architecture and a hash of its instruction sets."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:  # not Linux: the architecture and the processor's name
        flags = platform.processor()
    return f"{platform.machine()}-{hashlib.sha256(flags.encode()).hexdigest()[:12]}"


def directory() -> Path | None:
    """Where this TensorFlow on this processor keeps its compiled programs (``None``: off)."""
    base = root()
    if base is None:
        return None
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:  # tensorflow-cpu and other builds
        version = next(
            (
                metadata.version(name)
                for name in ("tensorflow-cpu", "tensorflow-macos", "tf-nightly")
                if _installed(name)
            ),
            "unknown",
        )
    return base / f"tf-{version}" / machine()


def _installed(name) -> bool:
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def configure() -> Path | None:
    """Turn the cache on in ``TF_XLA_FLAGS``, before TensorFlow reads the flags.

    Returns the directory used, or ``None`` (not asked for, chosen by the
    user in ``TF_XLA_FLAGS``, or a directory that cannot be made: then every
    process compiles, as without a cache).
    """
    flags = os.environ.get("TF_XLA_FLAGS", "")
    if FLAG in flags:
        return None
    path = directory()
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    os.environ["TF_XLA_FLAGS"] = f"{flags} {FLAG}={path}".strip()
    return path
