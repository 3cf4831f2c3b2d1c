"""The file format of saved fits and checkpoints: data that cannot run code when read.

A file is a ZIP archive (NumPy's ``.npz`` layout) of ``content.json``, which
describes the saved objects, and one ``.npy`` array per dtype holding every
array's numbers back to back. Nothing in it is executable: the JSON names
only the types below (a closed list of plain data and this package's own
records), arrays are read with ``allow_pickle=False``, and a user's function
(the statistic, callbacks) is stored as its importable name, never by value.
Reading a file can import the module that defines the statistic, as ``import``
would (never one of Python's standard library, such as ``os``); it never runs
code the file holds.

``unzip -p fit.npz content.json`` shows what a file holds.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePath

import numpy as np
import pandas as pd

#: Bumped when what the format can hold changes incompatibly.
FORMAT = 1
_CONTENT = "content.json"
_MAGIC = b"PK\x03\x04"
_TAG = "__type__"


class NotSafeFileError(ValueError):
    """The file is not in the safe format (a pickle, another program's file, damaged)."""


def _registered() -> dict:
    """The classes a file may name, by their tag: this package's records and settings."""
    from ._al_params import ALParams
    from ._checkpoint import RunStore
    from ._seed_state import EpochRecord, SeedResult
    from .analysis import Coverage
    from .flows import MAF, RealNVP
    from .persistence import MissingStatistic
    from .property import EmergentProperty
    from .support import Support

    classes = (
        ALParams,
        RealNVP,
        MAF,
        EmergentProperty,
        Support,
        EpochRecord,
        SeedResult,
        RunStore,
        MissingStatistic,
        Coverage,
    )
    return {cls.__name__: cls for cls in classes}


class _Encoder:
    """Turns an object tree into JSON-ready data, collecting its arrays."""

    def __init__(self):
        self.arrays: list[np.ndarray] = []
        self._open: set[int] = set()  # the containers being encoded, to refuse a cycle

    def array(self, value: np.ndarray, where: str) -> dict:
        if value.dtype.hasobject:
            items = value.ravel().tolist()
            if not all(isinstance(x, str) or x is None for x in items):
                kinds = sorted({type(x).__name__ for x in items})
                raise TypeError(f"{where}: an object array of {', '.join(kinds)} cannot be saved")
            return {_TAG: "objects", "shape": list(value.shape), "items": items}
        if value.dtype.kind not in "biufcUS":
            raise TypeError(f"{where}: arrays of dtype {value.dtype} cannot be saved")
        self.arrays.append(np.asarray(value, order="C"))  # (ascontiguousarray makes 0-d 1-d)
        return {_TAG: "ndarray", "index": len(self.arrays) - 1}

    def encode(self, value, where: str = "fit"):
        if id(value) in self._open:
            raise TypeError(f"{where}: holds itself (a cycle), which cannot be saved")
        if isinstance(value, (list, tuple, dict)) or hasattr(value, "__dict__"):
            self._open.add(id(value))
            try:
                return self._encode(value, where)
            finally:
                self._open.discard(id(value))
        return self._encode(value, where)

    def _encode(self, value, where: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and type(value) in (int, float):
            return value
        if isinstance(value, np.generic):
            return {_TAG: "scalar", "value": self.array(np.asarray(value), where)}
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple) and not hasattr(value, "_fields"):
            items = [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {_TAG: "tuple", "items": items}
        if isinstance(value, dict):
            if all(isinstance(k, str) for k in value) and _TAG not in value:
                return {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}
            pairs = [
                [self.encode(k, where), self.encode(v, f"{where}[{k!r}]")] for k, v in value.items()
            ]
            return {_TAG: "dict", "items": pairs}
        if isinstance(value, PurePath):
            return {_TAG: "path", "value": str(value)}
        if isinstance(value, pd.DataFrame):
            return {
                _TAG: "DataFrame",
                "columns": self.column(pd.Series(value.columns), f"{where}.columns"),
                "data": [
                    self.column(value.iloc[:, i], f"{where}[{c!r}]")
                    for i, c in enumerate(value.columns)
                ],
                "index": self.index(value.index, where),
            }
        if isinstance(value, pd.Series):
            return {
                _TAG: "Series",
                "name": self.encode(value.name, where),
                "data": self.column(value, where),
                "index": self.index(value.index, where),
            }
        if isinstance(value, np.random.RandomState):
            return {_TAG: "RandomState", "state": self.encode(value.get_state(legacy=False), where)}
        if type(value).__name__ == "Memory" and type(value).__module__.startswith("joblib"):
            return {_TAG: "Memory", "location": self.encode(value.location, where)}
        name = type(value).__name__
        if _registered().get(name) is type(value):
            if dataclasses.is_dataclass(value):
                fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            elif hasattr(value, "get_params"):
                fields = value.get_params(deep=False)
            else:
                fields = dict(vars(value))
            state = {k: self.encode(v, f"{where}.{k}") for k, v in fields.items()}
            return {_TAG: name, "fields": state}
        raise TypeError(
            f"{where}: a {type(value).__module__}.{type(value).__qualname__} cannot be saved "
            "in the safe format (it holds only data: numbers, strings, arrays, DataFrames)"
        )

    def index(self, index: pd.Index, where: str) -> dict:
        if isinstance(index, pd.RangeIndex):
            return {_TAG: "range", "start": index.start, "stop": index.stop, "step": index.step}
        return self.column(pd.Series(index), f"{where}.index")

    def column(self, series: pd.Series, where: str) -> dict:
        """A DataFrame column or index, with its pandas dtype."""
        dtype = series.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            return {
                _TAG: "categorical",
                "categories": self.column(pd.Series(dtype.categories), where),
                "codes": self.array(series.cat.codes.to_numpy(), where),
                "ordered": bool(dtype.ordered),
            }
        if isinstance(dtype, np.dtype) and dtype.kind in "biufc":
            return {
                _TAG: "column",
                "dtype": str(dtype),
                "values": self.array(series.to_numpy(), where),
            }
        if isinstance(series.array, pd.api.extensions.ExtensionArray) and isinstance(
            getattr(dtype, "numpy_dtype", None), np.dtype
        ):  # nullable Int64, boolean, Float64
            values = series.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
            return {
                _TAG: "column",
                "dtype": str(dtype),
                "values": self.array(values, where),
                "mask": self.array(series.isna().to_numpy(), where),
            }
        items = [None if _is_missing(x) else self.encode(x, where) for x in series.tolist()]
        return {_TAG: "column", "dtype": str(dtype), "items": items}


def _is_missing(x) -> bool:
    return x is None or (isinstance(x, float) and np.isnan(x)) or x is pd.NA


class _Decoder:
    def __init__(self, arrays: list[np.ndarray]):
        self.arrays = arrays
        self.classes = _registered()

    def decode(self, value):
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        tag = value.get(_TAG)
        if tag is None:
            return {k: self.decode(v) for k, v in value.items()}
        if tag == "ndarray":
            return self.arrays[value["index"]]
        if tag == "objects":
            out = np.empty(len(value["items"]), dtype=object)
            out[:] = value["items"]
            return out.reshape(tuple(value["shape"]))
        if tag == "scalar":
            return self.decode(value["value"])[()]
        if tag == "tuple":
            return tuple(self.decode(v) for v in value["items"])
        if tag == "dict":
            return {_hashable(self.decode(k)): self.decode(v) for k, v in value["items"]}
        if tag == "path":
            return Path(value["value"])
        if tag == "DataFrame":
            columns = pd.Index(self.column(value["columns"]))
            data = {i: self.column(c) for i, c in enumerate(value["data"])}
            frame = pd.DataFrame(data, index=self.index(value["index"]), copy=False)
            frame.columns = columns
            return frame
        if tag == "Series":
            index = self.index(value["index"])
            return pd.Series(
                self.column(value["data"]), index=index, name=self.decode(value["name"])
            )
        if tag == "RandomState":
            rng = np.random.RandomState()
            rng.set_state(self.decode(value["state"]))
            return rng
        if tag == "Memory":
            from joblib import Memory

            return Memory(self.decode(value["location"]), verbose=0)
        if tag in self.classes:
            cls = self.classes[tag]
            fields = {k: self.decode(v) for k, v in value["fields"].items()}
            if dataclasses.is_dataclass(cls) or hasattr(cls, "get_params"):
                return cls(**fields)
            obj = cls.__new__(cls)
            obj.__dict__.update(fields)
            return obj
        raise NotSafeFileError(f"unknown entry type {tag!r}")

    def index(self, value) -> pd.Index:
        if value[_TAG] == "range":
            return pd.RangeIndex(value["start"], value["stop"], value["step"])
        return pd.Index(self.column(value))

    def column(self, value):
        """A column's values as an array (NumPy or pandas), without an index to align on."""
        if value[_TAG] == "categorical":
            categories = self.column(value["categories"])
            codes = self.decode(value["codes"])
            return pd.Categorical.from_codes(codes, categories, ordered=value["ordered"])
        if "values" in value:
            values = self.decode(value["values"])
            if "mask" not in value:
                return values  # a NumPy column: as it was
            values = np.where(self.decode(value["mask"]), None, values.astype(object))
            return pd.array(values, dtype=value["dtype"])
        items = [self.decode(x) for x in value["items"]]
        if value["dtype"] == "object":
            out = np.empty(len(items), dtype=object)
            out[:] = items
            return out
        return pd.array(items, dtype=value["dtype"])


def _hashable(key):
    return tuple(key) if isinstance(key, list) else key


def header(kind: str, run: str | None = None) -> dict:
    """A file's header: what it holds, what wrote it, its run's key.

    What wrote it: this package's version, the git commit of its source when
    it runs from a checkout (:data:`SOURCE_COMMIT`), and TensorFlow's version,
    which alone can change a fit's course (see "Several seeds" in the user
    guide).
    """
    from . import __version__

    tensorflow = sys.modules.get("tensorflow")
    return {
        "kind": kind,
        "sklearn_epi": __version__,
        "commit": SOURCE_COMMIT,
        "tensorflow": getattr(tensorflow, "__version__", None),
        "run": run,
    }


def find_source_commit(module_file) -> str | None:
    """The git commit of the checkout holding this package's ``module_file``; else None.

    ``"<sha>+dirty"`` when the package's tracked files differ from that commit
    (changes elsewhere in the checkout, such as the data a script writes, do
    not count). None for an installed copy, or where git is missing.
    """
    package = Path(module_file).resolve().parent

    def git(*args) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(package), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    # A package inside some other repository (a virtual environment in a
    # project's folder) is not that repository's: its own file must be tracked.
    if git("ls-files", "--error-unmatch", "--", Path(module_file).name) is None:
        return None
    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit + ("+dirty" if changed else "")


#: The commit of the code this process imported, asked when the package is
#: imported (a few milliseconds): a commit made while a long fit runs does
#: not describe the code that made it.
SOURCE_COMMIT = find_source_commit(__file__)


def dumps(content, header: dict) -> bytes:
    """The bytes of a file holding ``content`` (see the module's docstring)."""
    encoder = _Encoder()
    tree = encoder.encode(content)
    # Arrays of one dtype go back to back into one member: a checkpoint holds
    # hundreds of small weight arrays, and one .npy each would dominate its size.
    groups, sizes, refs = {}, {}, []  # dtype: arrays, numbers so far
    for array in encoder.arrays:
        key = array.dtype.str
        if key not in groups:
            groups[key], sizes[key] = [], 0
        refs.append([list(groups).index(key), sizes[key], list(array.shape)])
        groups[key].append(array)
        sizes[key] += array.size
    document = {"sklearn_epi": {"format": FORMAT, **header}, "arrays": refs, "content": tree}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(_CONTENT, json.dumps(document, allow_nan=True))
        for member, group in enumerate(groups.values()):
            with archive.open(f"{member}.npy", "w") as f:
                flat = np.concatenate([a.ravel() for a in group])
                np.lib.format.write_array(f, flat, allow_pickle=False)
    return buffer.getvalue()


def is_safe_file(path) -> bool:
    """Whether ``path`` starts like a file of this format (a ZIP archive)."""
    with open(path, "rb") as f:
        return f.read(4) == _MAGIC


def read_header(archive: zipfile.ZipFile, path) -> tuple[dict, dict]:
    """The archive's whole JSON document and its ``sklearn_epi`` header."""
    try:
        document = json.loads(archive.read(_CONTENT))
        header = document["sklearn_epi"]
    except (KeyError, ValueError, TypeError) as exc:
        raise NotSafeFileError(
            f"{path} is a ZIP archive but not a sklearn_epi file ({exc})"
        ) from exc
    return document, header


def read_file_header(path) -> dict:
    """The header of a file in this format (:func:`header`), without reading its arrays.

    Raises
    ------
    NotSafeFileError
        If the file is not in this format, naming it.
    """
    path = Path(path)
    try:
        if not is_safe_file(path):
            raise NotSafeFileError(f"{path} is not a file in sklearn_epi's safe format")
        with zipfile.ZipFile(path) as archive:
            return read_header(archive, path)[1]
    except (OSError, zipfile.BadZipFile) as exc:
        raise NotSafeFileError(f"{path} cannot be read ({type(exc).__name__}: {exc})") from exc


def load(path, kind: str) -> tuple:
    """``(content, header)`` of a file written by :func:`write` with this ``kind``.

    Raises
    ------
    NotSafeFileError
        If the file is not in this format (a pickle, another kind of file,
        a damaged or truncated one), naming it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NotSafeFileError(f"{path} cannot be read ({exc})") from exc
    return loads(data, kind, path)


def loads(data: bytes, kind: str, path="<bytes>") -> tuple:
    """:func:`load` of a file's bytes; ``path`` names it in errors."""
    if data[:4] != _MAGIC:
        raise NotSafeFileError(f"{path} is not a file in sklearn_epi's safe format")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            document, header = read_header(archive, path)
            if header.get("kind") != kind:
                raise NotSafeFileError(f"{path} holds a {header.get('kind')!r}, not a {kind!r}")
            if header.get("format") != FORMAT:
                raise NotSafeFileError(
                    f"{path} is in file format {header.get('format')!r}; "
                    f"this version reads {FORMAT}"
                )
            flats, arrays = {}, []
            for member, offset, shape in document["arrays"]:
                if member not in flats:
                    with archive.open(f"{int(member)}.npy") as f:
                        flats[member] = np.lib.format.read_array(f, allow_pickle=False)
                size = int(np.prod(shape, dtype=np.int64))
                arrays.append(flats[member][offset : offset + size].reshape(tuple(shape)))
            content = _Decoder(arrays).decode(document["content"])
    except NotSafeFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, OSError, EOFError) as exc:
        raise NotSafeFileError(f"{path} is damaged ({type(exc).__name__}: {exc})") from exc
    return content, header


def write(path, content, header: dict) -> Path:
    """Write ``content`` to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    data = dumps(content, header)
    atomic_write(path, data)
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    A failure at any point leaves an existing file at ``path`` untouched and
    no temporary file behind.
    """
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        try:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            os.unlink(f.name)
            raise
    try:
        os.replace(f.name, path)
    except BaseException:
        Path(f.name).unlink(missing_ok=True)
        raise


def reference(obj) -> str | None:
    """``"module:qualname"`` of an importable function or class; None if it has none."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or module in ("__main__", "__mp_main__") or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def resolve(name: str):
    """The object ``"module:qualname"`` names, importing its module (else an ``ImportError``)."""
    module_name, _, qualname = name.partition(":")
    if (
        not module_name
        or not qualname
        or not all(part.isidentifier() for part in (*module_name.split("."), *qualname.split(".")))
    ):
        raise ImportError(f"{name!r} is not an importable name (module:qualname)")
    top = module_name.partition(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        # A statistic is a TensorFlow function, never the standard library's:
        # a file naming os:system, or a module that acts on import, is refused.
        raise ImportError(
            f"{name!r} is in Python's standard library, which a saved fit never names"
        )
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no {qualname!r}") from None
    return obj
