"""The ``sklearn-epi`` configuration: read from TOML, JSON or YAML, checked key by key.

One set of sections and keys in three formats: TOML for people, and JSON or
YAML where another program writes or reads the file (NeuroCAAS's job manager
reads only ``.json`` and ``.yaml`` configurations; the graphical interface
writes JSON). The format is chosen by the file's suffix, never guessed from
its content, and a repeated key is refused in every format (TOML refuses it
itself; JSON and YAML readers would keep the last one silently).

Two top-level keys are NeuroCAAS's own: ``__duration__``, the minutes a job
may run, sets ``max_time`` (see :func:`duration_max_time`), and
``__dataset_size__`` (extra disk for the job's instance) is accepted and
ignored.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import json
import numbers
import os
import re
import sys
from pathlib import Path

import numpy as np

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

#: The suffixes of the formats read, and the name of each format.
FORMATS = {".toml": "TOML", ".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}

#: The copy of its configuration that ``sklearn-epi fit`` keeps in an output
#: directory, under the configuration's own suffix.
COPY_NAMES = tuple(f"config{suffix}" for suffix in FORMATS)

#: The sections of a configuration, and NeuroCAAS's reserved top-level keys.
SECTIONS = ("model", "property", "flow", "al_params", "fit", "output")
RESERVED = ("__duration__", "__dataset_size__")

#: The share of a NeuroCAAS job's ``__duration__`` given to the fit; the rest
#: is for writing the outputs (figures, report) and uploading them.
DURATION_SHARE = 0.9


class ConfigError(ValueError):
    """A configuration that cannot describe a fit; the message names the key."""


def load_config(path) -> dict:
    """Read and check a configuration; raise :class:`ConfigError` naming what is wrong.

    The sections are checked key by key here; the values are checked by
    :func:`build_estimator`. ``__duration__`` and ``__dataset_size__`` are
    checked and removed; ``__duration__`` becomes the returned
    configuration's ``[fit] max_time`` (the smaller of the two when both are
    given).
    """
    config = read(Path(path))
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a table of sections, got {type(config).__name__}")
    for key in RESERVED:
        if key in config:
            value = config.pop(key)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or value <= 0:
                raise ConfigError(f"{key} must be a positive number of minutes; got {value!r}")
            if key == "__duration__":
                fit = config.setdefault("fit", {})
                given = fit.get("max_time") if isinstance(fit, dict) else None
                if isinstance(fit, dict) and (given is None or isinstance(given, numbers.Real)):
                    # the job ends at its duration, whatever [fit] asks
                    fit["max_time"] = min(given or np.inf, duration_max_time(value))
    unknown = set(config) - set(SECTIONS)
    if unknown:
        raise ConfigError(
            f"unknown section(s) {sorted(unknown)}; known: {sorted(SECTIONS)} and "
            f"NeuroCAAS's {', '.join(RESERVED)}"
        )
    for section, valid in _KEYS.items():
        _check_keys(section, config.get(section, {}), valid)
    for section, key in (("model", "statistic"), ("model", "bounds"), ("property", "mu")):
        if key not in config.get(section, {}):
            raise ConfigError(f"[{section}] {key} is required")
    return config


def copies_in(directory) -> list:
    """The configuration copies (``config.toml``, ``config.json``, ...) in an output directory."""
    return [p for name in COPY_NAMES if (p := Path(directory) / name).is_file()]


def duration_max_time(minutes: float) -> float:
    """The fit's ``max_time`` in seconds for a NeuroCAAS job of ``minutes``.

    The fit gets :data:`DURATION_SHARE` of the job (54 of 60 minutes); the
    rest writes and uploads the outputs, so that a job stopped by its
    duration still delivers its checkpoint and can be resubmitted.
    """
    return DURATION_SHARE * 60.0 * float(minutes)


def read(path) -> object:
    """A configuration file's content, as data, in the format its suffix names.

    Nothing is checked but the format: repeated keys, YAML's object tags and
    an unknown suffix raise :class:`ConfigError`. :func:`load_config` checks
    the sections and keys.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"config {path}: the suffix {path.suffix!r} names no format; use " + ", ".join(FORMATS)
        )
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    try:
        if fmt == "TOML":
            return tomllib.loads(text.decode("utf-8"))
        if fmt == "JSON":
            return json.loads(text, object_pairs_hook=_no_repeated_keys)
        return _read_yaml(text)
    except (ValueError, UnicodeDecodeError) as exc:  # TOMLDecodeError is a ValueError
        raise ConfigError(f"{path} is not valid {fmt}: {exc}") from exc


def _no_repeated_keys(pairs) -> dict:
    table = {}
    for key, value in pairs:
        if key in table:
            raise ValueError(f"the key {key!r} is given twice")
        table[key] = value
    return table


def _read_yaml(text: bytes):
    """YAML with its numbers read as YAML 1.2 reads them, and repeated keys refused.

    PyYAML follows YAML 1.1, in which ``1e-3`` (no dot) is a string: a
    learning rate written that way would be refused as text, or a mean read
    as a word. Safe loading only: a tag that would build an object is refused.
    """
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - PyYAML is a dependency
        raise ConfigError("YAML configurations need PyYAML: pip install pyyaml") from exc

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
            repeated = {k for k in keys if keys.count(k) > 1}
            if repeated:
                raise ValueError(f"the key(s) {sorted(map(str, repeated))} are given twice")
            return super().construct_mapping(node, deep=deep)

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
        list("-+0123456789."),
    )
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ValueError(str(exc)) from exc


#: The keys of the sections read here; [flow], [al_params] and [fit] take
#: the parameters of the flow, ALParams and EPIEstimator.
_KEYS = {
    "model": ("statistic", "bounds", "arguments"),
    "property": ("mu", "sigma2"),
    "output": ("directory",),
}


def _check_keys(section, given, valid):
    """Refuse a key of ``[section]`` outside ``valid``: a typo must not run another job."""
    if not isinstance(given, dict):
        raise ConfigError(f"[{section}] must be a table of keys, got {given!r}")
    for key in given:
        if key not in valid:
            close = difflib.get_close_matches(key, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(
                f"[{section}] unknown key {key!r}{hint}; valid keys: "
                + ", ".join(repr(k) for k in sorted(valid))
            )


def _resolve(reference, what):
    """A name in :mod:`sklearn_epi.circuits`, or ``"package.module:attribute"``.

    Modules are found from the working directory first, as ``python -m``
    finds them (a console script's path does not hold it).
    """
    if not isinstance(reference, str):
        return reference
    module_name, _, attribute = reference.rpartition(":")
    if module_name and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name or "sklearn_epi.circuits")
        return getattr(module, attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"{what} = {reference!r}: not a name in sklearn_epi.circuits nor an importable "
            f"'module:attribute' ({exc}; modules are looked for in {os.getcwd()} and on "
            "the Python path)"
        ) from exc
    except Exception as exc:  # the module itself fails: a SyntaxError, an error at import
        raise ConfigError(
            f"{what} = {reference!r}: importing {module_name} raised {type(exc).__name__}: {exc}"
        ) from exc


def build_estimator(config, directory):
    """The :class:`~sklearn_epi.EPIEstimator` and the ``(mu, sigma2)`` a configuration describes.

    Every value is checked here, before TensorFlow starts, and an error
    names its section and key.
    """
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    from . import MAF, ALParams, EPIEstimator, RealNVP
    from ._validation import _check_targets
    from .support import parse_bounds

    model, prop = config["model"], config["property"]
    statistic = _resolve(model["statistic"], "[model] statistic")
    if "arguments" in model:
        arguments = model["arguments"]
        if not isinstance(arguments, dict):
            raise ConfigError(f"[model] arguments must be a table, {{N = 10}}; got {arguments!r}")
        with _naming("[model] arguments:"):
            statistic = statistic(**arguments)
    flow_params = dict(config.get("flow", {}))
    flow_type = {"realnvp": RealNVP, "maf": MAF}.get(
        str(flow_params.pop("type", "RealNVP")).lower()
    )
    if flow_type is None:
        raise ConfigError("[flow] type must be 'RealNVP' or 'MAF'")
    _check_keys("flow", flow_params, ["type", *flow_type._get_param_names()])
    _check_keys("al_params", config.get("al_params", {}), ALParams._get_param_names())
    fit = dict(config.get("fit", {}))
    reserved = ("statistic", "bounds", "flow", "al_params", "checkpoint", "callbacks")
    for key in reserved:
        if key in fit:
            raise ConfigError(f"[fit] {key} is set elsewhere in the configuration")
    _check_keys("fit", fit, [k for k in EPIEstimator._get_param_names() if k not in reserved])
    for key, value in fit.items():
        try:
            validate_parameter_constraints(
                {key: EPIEstimator._parameter_constraints[key]}, {key: value}, "EPIEstimator"
            )
        except InvalidParameterError as exc:
            raise ConfigError(f"[fit] {key}: {exc}") from exc
    directory_value = config.get("output", {}).get("directory", "")
    if not isinstance(directory_value, str):
        raise ConfigError(f"[output] directory must be a string; got {directory_value!r}")
    with _naming("[flow]", "flow."):
        flow = flow_type(**flow_params)
        flow._validate()
    with _naming("[al_params]", "al_params."):
        al_params = ALParams(**config.get("al_params", {}))
        al_params._validate()
    bounds = _resolve(model["bounds"], "[model] bounds")
    with _naming("[model]"):
        parse_bounds(bounds)
    mu = _resolve(prop["mu"], "[property] mu")
    sigma2 = _resolve(prop["sigma2"], "[property] sigma2") if "sigma2" in prop else None
    with _naming("[property]"):
        _check_targets(mu, sigma2)
    est = EPIEstimator(
        statistic,
        bounds,
        flow=flow,
        al_params=al_params,
        checkpoint=str(Path(directory) / "checkpoint"),
        **fit,
    )
    return est, mu, sigma2


@contextlib.contextmanager
def _naming(section, prefix=None):
    """Turn a ``ValueError`` or ``TypeError`` of a configured value into one naming its key.

    The message follows ``section``; ``prefix`` (``"flow."``) is dropped
    from its start, since the section says it.
    """
    try:
        yield
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if prefix is not None:
            message = message.removeprefix(prefix)
        raise ConfigError(f"{section} {message}") from exc
