"""Test vectors: seeded random ones that respect each input's dtype and
quantization, or arrays from .npy/.npz files.

A vector file is checked completely here, before anything is built or
booted: every problem it can have is a UsageError (exit 2) naming the file,
the key and the fix, never something the device or the reference meets
half-way through a run.

Choices made for files:

- Values are never converted silently: an integer input takes only values
  inside its dtype's range and floats only when they are whole numbers; 200
  for an int8 input is an error, not -56. A float input takes any finite
  number its dtype can hold (float64 is rounded to float32: the device and
  the reference both get the rounded values, so the verdict is unaffected).
- NaN and infinity are refused in float inputs too. TFLM accepts them, but
  what a model makes of them is not defined (converting NaN to an integer,
  as QUANTIZE does, is undefined behaviour in C), so a device and the
  reference could differ without either being wrong: no verdict is possible.
- Labels are class indices (one per vector, integers in range of the first
  output's class count) or one-hot rows (Keras' usual format), which are
  turned into indices by argmax and recorded as such in the vector source.
  There must be exactly as many labels as vectors: more labels than vectors
  means the two arrays do not belong together, and pairing them by position
  would report a wrong accuracy.
- Every key must be used: `input_<i>` (or the input's tensor name),
  `labels`, `classes`, and `output_<k>` as expected outputs (checked for
  shape and recorded; compared with the device's outputs when the run asks
  for it: `hil run --expected`, `vectors = { ..., expected = true }`).
  Anything else is most likely a misnamed input and is an error naming it.
- Expected outputs that are checked are the output tensor's own values
  (int8 codes for an int8 output), one per vector, for every output, and
  are converted to the output's dtype only when no value changes, as
  inputs are (`expected_outputs`).
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .tflite import ModelInfo, TensorSpec

log = logging.getLogger(__name__)

#: dtype kinds a vector file may hold: bool, signed, unsigned, float
_NUMERIC_KINDS = "biuf"
_FILE_FIX = "write the vectors with numpy.save (.npy) or numpy.savez (.npz: input_0, input_1, ..., labels)"


@dataclass
class VectorSet:
    vectors: list[list[np.ndarray]]  # vectors[i][input_index]
    source: dict
    labels: np.ndarray | None = None  # class indices, int64, one per vector
    classes: list[str] = field(default_factory=list)
    #: `output_<k>` arrays of the file, [N, *output_shape] each, in output order
    #: (None for an output the file has no array for); checked by `expected_outputs`
    expected_outputs: list[np.ndarray | None] | None = None
    #: vectors in the file before a limit (None for random vectors)
    file_count: int | None = None

    def __len__(self) -> int:
        return len(self.vectors)


def _random_for(model: ModelInfo, spec: TensorSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    shape = (n, *spec.shape)
    dtype = np.dtype(spec.dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = max(info.min, -(1 << 15)), min(info.max, (1 << 15) - 1)
        return rng.integers(low, high, size=shape, endpoint=True, dtype=dtype)
    if dtype == np.float32:
        # A float input that feeds a QUANTIZE: draw the integers the body will
        # see and dequantize them, so every code of the int8 range is exercised
        # and the float -> int8 step is exact.
        for op in model.consumers(spec.index):
            out = model.tensors.get(op.outputs[0])
            if op.name == "QUANTIZE" and out is not None and out.scale > 0:
                info = np.iinfo(out.dtype)
                q = rng.integers(info.min, info.max, size=shape, endpoint=True)
                return ((q - out.zero_point) * out.scale).astype(np.float32)
        return rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raise UsageError(f"cannot make random vectors for input {spec.name!r} of type {dtype.name}",
                     hint="pass --inputs FILE with the vectors")


def random_vectors(model: ModelInfo, n: int, seed: int) -> VectorSet:
    if n < 1:
        raise UsageError(f"--vectors must be at least 1 (got {n})")
    rng = np.random.default_rng(seed)
    per_input = [_random_for(model, spec, n, rng) for spec in model.inputs]
    vectors = [[arr[i] for arr in per_input] for i in range(n)]
    return VectorSet(vectors, {"kind": "random", "seed": seed, "count": n})


def _value_range_hint(spec: TensorSpec, low, high) -> str:
    dtype = np.dtype(spec.dtype)
    if dtype == np.int8 and low >= 0 and high <= 255:
        return ("these look like uint8 pixels: subtract 128, or quantize the real values with the input's "
                f"scale {spec.scale:g} and zero point {spec.zero_point} (q = round(x / scale) + zero_point)")
    if dtype.kind in "iu" and spec.scale > 0:
        return (f"quantize the real values with the input's scale {spec.scale:g} and zero point "
                f"{spec.zero_point}: q = round(x / scale) + zero_point, clipped to [{np.iinfo(dtype).min}, "
                f"{np.iinfo(dtype).max}]")
    return f"store values that {dtype.name} can hold"


def fit_input(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """The public name of `_fit` (session.Session shapes the vectors it is given with it)."""
    return _fit(array, spec, where)


def _fit(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """Shape an array as [N, *spec.shape] and convert it to the input dtype
    only when no value changes; anything else is a UsageError saying why."""
    array = np.asarray(array)
    dtype = np.dtype(spec.dtype)
    if array.dtype.kind not in _NUMERIC_KINDS:
        what = {"U": "strings", "S": "byte strings", "O": "Python objects", "c": "complex numbers",
                "V": "records", "M": "dates", "m": "time deltas"}.get(array.dtype.kind, array.dtype.name)
        raise UsageError(f"{where}: holds {what} (dtype {array.dtype}); input {spec.name!r} takes {dtype.name}",
                         hint=f"store the vectors as a numeric array of {dtype.name}")
    shape = tuple(spec.shape)
    if array.shape == shape:
        array = array[None]
    elif array.shape[1:] != shape:
        if shape and shape[0] == 1 and array.shape[1:] == shape[1:]:
            array = array[:, None]
        else:
            raise UsageError(f"{where}: shape {array.shape} does not fit input {spec.name!r} of shape {shape}",
                             hint=f"give an array of shape {shape} or [N, {', '.join(map(str, shape))}]")
    if len(array) == 0:
        raise UsageError(f"{where}: holds 0 vectors (shape {array.shape})",
                         hint="give at least one vector; an empty set would pass without testing anything")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            raise UsageError(f"{where}: {int(bad.sum())} value(s) are NaN or infinite (first in vector "
                             f"{int(np.argwhere(bad)[0][0])}); input {spec.name!r} is {dtype.name}",
                             hint="replace them with finite values: what a model computes from NaN or infinity "
                                  "is not defined, so no verdict is possible")
    if array.dtype == dtype:
        return array
    if array.dtype.kind == "b":  # True/False are not the numbers a quantised or float input means
        raise UsageError(f"{where}: holds bool values (True/False); input {spec.name!r} takes {dtype.name}",
                         hint=f"store the vectors as {dtype.name} (astype({dtype.name}) if 0 and 1 are meant)")
    if dtype.kind == "f":
        with np.errstate(over="ignore"):  # checked just below
            converted = array.astype(dtype)
        if array.dtype.kind == "f" and not np.isfinite(converted).all():
            raise UsageError(f"{where}: values of dtype {array.dtype} overflow input {spec.name!r} ({dtype.name})",
                             hint=f"store values that {dtype.name} can hold")
        return converted
    if dtype.kind == "b":
        if not np.isin(array, (0, 1)).all():
            raise UsageError(f"{where}: input {spec.name!r} is bool but the file holds values other than 0 and 1",
                             hint="store the vectors as bool")
        return array.astype(dtype)
    # an integer input
    if array.dtype.kind == "f" and not np.array_equal(np.round(array), array):
        count = int(np.count_nonzero(np.round(array) != array))
        raise UsageError(f"{where}: {count} value(s) are not whole numbers (dtype {array.dtype}); input "
                         f"{spec.name!r} is {dtype.name}", hint=_value_range_hint(spec, -np.inf, np.inf))
    info = np.iinfo(dtype)
    wide = array.astype(np.float64) if array.dtype.kind == "f" else array.astype(np.int64) \
        if array.dtype != np.uint64 else array
    outside = (wide < info.min) | (wide > info.max)
    if outside.any():
        low, high = wide.min(), wide.max()
        raise UsageError(f"{where}: {int(outside.sum())} of {array.size} values do not fit input {spec.name!r} "
                         f"({dtype.name}: {info.min} to {info.max}); the file's values range from "
                         f"{low:g} to {high:g}", hint=_value_range_hint(spec, low, high))
    return array.astype(dtype)


class _Reader:
    """Reads arrays from a .npy or .npz, turning every way a file can be
    damaged into a UsageError that names it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.loaded = np.load(path, allow_pickle=False)
        except FileNotFoundError as exc:
            raise UsageError(f"cannot read vectors from {path}: no such file",
                             hint="check the --inputs path") from exc
        except IsADirectoryError as exc:
            raise UsageError(f"cannot read vectors from {path}: it is a directory",
                             hint="give the .npy or .npz file") from exc
        except Exception as exc:  # numpy raises ValueError, OSError, EOFError, BadZipFile, ... on damage
            raise UsageError(f"cannot read vectors from {path}: {self._why(exc)}", hint=_FILE_FIX) from exc

    @staticmethod
    def _why(exc: Exception) -> str:
        if isinstance(exc, ValueError) and "allow_pickle" in str(exc):
            return "it holds Python objects (a pickled object array), which hil does not load"
        if isinstance(exc, (zipfile.BadZipFile, zlib.error, EOFError)):
            return f"the file is damaged or truncated ({type(exc).__name__}: {exc})"
        return f"not a readable numpy file ({type(exc).__name__}: {exc})"

    @property
    def keys(self) -> list[str] | None:
        """The .npz keys, or None for a .npy (one array)."""
        return None if isinstance(self.loaded, np.ndarray) else list(self.loaded.files)

    def array(self, key: str | None = None) -> np.ndarray:
        if key is None:
            return self.loaded
        try:
            return self.loaded[key]
        except Exception as exc:
            raise UsageError(f"cannot read array {key!r} from {self.path}: {self._why(exc)}",
                             hint=_FILE_FIX) from exc

    def close(self) -> None:
        if not isinstance(self.loaded, np.ndarray):
            self.loaded.close()


def _class_count(model: ModelInfo) -> int:
    return int(np.prod(model.outputs[0].shape, dtype=np.int64))


def _labels(raw: np.ndarray, n: int, classes: int, where: str) -> tuple[np.ndarray, str]:
    """Class indices from `labels`: indices, or one-hot rows (argmax).
    Returns the indices and how they were given."""
    if raw.dtype.kind not in _NUMERIC_KINDS:
        raise UsageError(f"{where}: labels are {raw.dtype} values, not class indices",
                         hint="store each label as its class index (0, 1, ...) and the class names in `classes`")
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all():
            raise UsageError(f"{where}: {int((~np.isfinite(raw)).sum())} label(s) are NaN or infinite",
                             hint="give every vector a class index, or leave `labels` out")
    kind = "index"
    if raw.ndim == 2 and raw.shape[1] == 1 and classes != 1:
        raw = raw[:, 0]
    if raw.ndim == 2:
        if raw.shape[1] != classes:
            raise UsageError(f"{where}: one-hot labels of shape {raw.shape} have {raw.shape[1]} classes, the "
                             f"model's first output has {classes}",
                             hint=f"give [N, {classes}] one-hot rows or [N] class indices")
        top = raw.max(axis=1, keepdims=True)
        ties = np.count_nonzero(raw == top, axis=1) != 1
        if ties.any():
            raise UsageError(f"{where}: one-hot label row {int(np.argmax(ties))} has no single largest value",
                             hint="give each vector exactly one class (one 1 per row), or class indices")
        one_hot = np.isin(raw, (0, 1)).all()
        raw, kind = np.argmax(raw, axis=1), ("one-hot (argmax)" if one_hot else "scores (argmax)")
    elif raw.ndim != 1:
        raise UsageError(f"{where}: labels of shape {raw.shape}; expected [N] class indices or [N, {classes}] "
                         f"one-hot rows", hint="reshape the labels")
    elif raw.dtype.kind == "f" and not np.array_equal(np.round(raw), raw):
        raise UsageError(f"{where}: labels are not whole numbers (e.g. {raw[np.round(raw) != raw][0]:g})",
                         hint="store each label as its class index (0, 1, ...)")
    if len(raw) != n:
        raise UsageError(f"{where}: {len(raw)} labels for {n} vectors",
                         hint="give exactly one label per vector, in the same order"
                              + (" (more labels than vectors: the files do not belong together)" if len(raw) > n
                                 else ""))
    indices = raw.astype(np.int64)
    bad = (indices < 0) | (indices >= classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise UsageError(f"{where}: label {indices[i]} of vector {i} is outside the model's {classes} classes "
                         f"(0 to {classes - 1}); {int(bad.sum())} label(s) are out of range",
                         hint="labels are class indices of the first output")
    return indices, kind


def load_vectors(path: Path, model: ModelInfo, limit: int | None = None) -> VectorSet:
    path = Path(path)
    if limit is not None and limit < 1:
        raise UsageError(f"the vector limit must be at least 1 (got {limit})")
    reader = _Reader(path)
    try:
        keys = reader.keys
        labels = None
        classes: list[str] = []
        expected: list[np.ndarray | None] | None = None
        source: dict[str, object] = {"kind": "file", "path": str(path)}
        if keys is None:
            if len(model.inputs) != 1:
                raise UsageError(f"{path}: a .npy file holds one array but the model has {len(model.inputs)} "
                                 f"inputs", hint="use a .npz with one array per input (input_0, input_1, ...)")
            arrays = [_fit(reader.array(), model.inputs[0], str(path))]
        else:
            used, arrays = set(), []
            for i, spec in enumerate(model.inputs):
                key = next((k for k in (f"input_{i}", spec.name) if k in keys), None)
                if key is None:
                    raise UsageError(f"{path}: no array for input {i} ({spec.name!r}); it has {sorted(keys)}",
                                     hint=f"name the array input_{i}")
                used.add(key)
                arrays.append(_fit(reader.array(key), spec, f"{path} (array {key!r})"))
            n_file = len(arrays[0])
            for k, spec in enumerate(model.outputs):
                key = f"output_{k}"
                if key in keys:
                    used.add(key)
                    expected = expected or [None] * len(model.outputs)
                    expected[k] = _expected_output(reader.array(key), spec, n_file, f"{path} (array {key!r})")
            unused = [k for k in keys if k not in used and k not in ("labels", "classes")]
            if unused:
                known = [f"input_{i}" for i in range(len(model.inputs))] + \
                        [f"output_{k}" for k in range(len(model.outputs))] + ["labels", "classes"]
                raise UsageError(f"{path}: array(s) {', '.join(map(repr, unused))} are not used: the model has "
                                 f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s)",
                                 hint=f"the keys hil reads are {', '.join(known)}; remove or rename the others")
            if "classes" in keys:
                names = reader.array("classes")
                if names.ndim != 1:
                    raise UsageError(f"{path} (array 'classes'): shape {names.shape}; expected one name per "
                                     f"class", hint="store the class names as a 1-D array")
                classes = [str(c) for c in names]
                if len(classes) != _class_count(model):
                    raise UsageError(f"{path} (array 'classes'): {len(classes)} class names for a first output of "
                                     f"{_class_count(model)} values", hint="give one name per output class")
            if "labels" in keys:
                labels, how = _labels(reader.array("labels"), n_file, _class_count(model),
                                      f"{path} (array 'labels')")
                source["labels"] = how
            if expected is not None:
                source["expected_outputs"] = [f"output_{k}" for k, e in enumerate(expected) if e is not None]
        counts = {len(a) for a in arrays}
        if len(counts) != 1:
            raise UsageError(f"{path}: inputs have different numbers of vectors {sorted(counts)}",
                             hint="give every input the same number of vectors")
    finally:
        reader.close()
    n = counts_in_file = counts.pop()
    if limit is not None:
        n = min(n, limit)
    vectors = [[a[i] for a in arrays] for i in range(n)]
    if labels is not None:
        labels = labels[:n]
    if expected is not None:
        expected = [e[:n] if e is not None else None for e in expected]
    source["count"] = n
    source["sha256"] = _digest([a[:n] for a in arrays], labels)
    return VectorSet(vectors, source, labels, classes, expected, file_count=counts_in_file)


def _digest(arrays: list[np.ndarray], labels) -> str:
    """What the vectors used hold (inputs and labels): `hil compare` tells
    an accuracy measured on other data from one that moved."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    if labels is not None:
        digest.update(np.asarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _expected_output(array: np.ndarray, spec: TensorSpec, n: int, where: str) -> np.ndarray:
    """An `output_<k>` array: numeric, [N, *shape], one per vector."""
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise UsageError(f"{where}: holds {array.dtype} values; expected outputs must be numbers",
                         hint=f"store output {spec.name!r} as numbers, or remove the key")
    shape = tuple(spec.shape)
    if array.shape[1:] != shape and not (shape and shape[0] == 1 and array.shape[1:] == shape[1:]):
        raise UsageError(f"{where}: shape {array.shape} does not fit output {spec.name!r} of shape {shape}",
                         hint=f"give [N, {', '.join(map(str, shape))}] expected outputs, or remove the key")
    if len(array) != n:
        raise UsageError(f"{where}: {len(array)} expected outputs for {n} vectors",
                         hint="give one expected output per vector")
    return array.reshape((n, *shape))


_EXPECTED_FIX = ("give one output_<k> array per model output, [N, *output_shape], holding the output tensor's own "
                 "values (int8 codes for an int8 output)")


def _expected_values(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """An expected output in its output's dtype, converted only when no value
    changes (as inputs are): an int8 output takes whole numbers from -128 to
    127, a float output finite numbers."""
    dtype = np.dtype(spec.dtype)
    if array.dtype == dtype:
        values = array
    elif dtype.kind == "f":
        if array.dtype.kind not in "biuf":
            raise UsageError(f"{where}: holds {array.dtype} values; output {spec.name!r} is {dtype.name}",
                             hint=_EXPECTED_FIX)
        with np.errstate(over="ignore"):
            values = array.astype(dtype)
    elif dtype.kind in "iu":
        if array.dtype.kind == "f" and not np.array_equal(np.round(array), array):
            raise UsageError(f"{where}: values such as {array[np.round(array) != array].flat[0]:g} are not "
                             f"{dtype.name} codes; output {spec.name!r} is {dtype.name} (scale {spec.scale:g}, "
                             f"zero point {spec.zero_point})",
                             hint="expected outputs are the output tensor's own values: quantize real values "
                                  "(q = round(x / scale) + zero_point), or compare with the float model "
                                  "(--float-model) instead")
        info = np.iinfo(dtype)
        wide = array.astype(np.float64)
        outside = (wide < info.min) | (wide > info.max)
        if outside.any():
            raise UsageError(f"{where}: {int(outside.sum())} value(s) are outside output {spec.name!r}'s "
                             f"{dtype.name} range ({info.min} to {info.max}), e.g. {wide[outside].flat[0]:g}",
                             hint=_EXPECTED_FIX)
        values = array.astype(dtype)
    else:
        values = array.astype(dtype)
    if dtype.kind == "f" and not np.isfinite(values).all():
        raise UsageError(f"{where}: {int((~np.isfinite(values)).sum())} value(s) are NaN or infinite (or overflow "
                         f"{dtype.name})", hint="expected outputs must be finite numbers to compare with")
    return values


def expected_outputs(vectors: VectorSet, model: ModelInfo, path: Path | None = None) -> list[np.ndarray]:
    """The expected outputs a run checks, one [N, *shape] array per model
    output in the output's dtype: the `output_<k>` arrays of the vector
    file (`path` None), or of `path` (an .npz with output_<k>, or a .npy
    for a one-output model), which must hold one per vector of the vector
    file. UsageError (exit 2) for anything missing or not comparable."""
    if vectors.source.get("kind") != "file" or vectors.file_count is None:
        raise UsageError("--expected needs --inputs: expected outputs belong to given input vectors, "
                         "not to random ones", hint="pass --inputs FILE with the vectors the outputs belong to")
    source = Path(vectors.source["path"])
    n_file, n = vectors.file_count, len(vectors)
    if path is None:
        found = vectors.expected_outputs or [None] * len(model.outputs)
        missing = [f"output_{k}" for k, e in enumerate(found) if e is None]
        if missing:
            have = f"it has output_{', output_'.join(str(k) for k, e in enumerate(found) if e is not None)}" \
                if any(e is not None for e in found) else "it has no output_<k> array"
            raise UsageError(f"{source}: --expected: no {', '.join(missing)} for the model's "
                             f"{len(model.outputs)} output(s) ({have})",
                             hint=f"add {', '.join(missing)} of shape [N, *output_shape], or pass the expected "
                                  f"outputs in their own file: --expected FILE")
        arrays = [(e, f"{source} (array 'output_{k}')") for k, e in enumerate(found) if e is not None]  # all are
    else:
        arrays = _expected_file(Path(path), model, n_file)
    return [_expected_values(np.asarray(a), spec, where)[:n] for (a, where), spec in zip(arrays, model.outputs)]


def _expected_file(path: Path, model: ModelInfo, n_file: int) -> list[tuple[np.ndarray, str]]:
    """The output_<k> arrays of an --expected FILE, shape-checked; keys of a
    vector file (inputs, labels, classes) are allowed, so the vector file
    itself can be given."""
    if not path.is_file():
        raise UsageError(f"--expected {path}: no such file", hint="check the path, or give --expected alone to "
                                                                 "check the output_<k> arrays of --inputs")
    reader = _Reader(path)
    try:
        keys = reader.keys
        if keys is None:
            if len(model.outputs) != 1:
                raise UsageError(f"--expected {path}: a .npy file holds one array but the model has "
                                 f"{len(model.outputs)} outputs",
                                 hint="use an .npz with one array per output (output_0, output_1, ...)")
            return [(_expected_output(reader.array(), model.outputs[0], n_file, f"--expected {path}"),
                     f"--expected {path}")]
        allowed = {f"input_{i}" for i in range(len(model.inputs))} | {s.name for s in model.inputs} | \
                  {"labels", "classes"} | {f"output_{k}" for k in range(len(model.outputs))}
        unknown = [k for k in keys if k not in allowed]
        if unknown:
            raise UsageError(f"--expected {path}: array(s) {', '.join(map(repr, unknown))} are not expected outputs "
                             f"of a model with {len(model.outputs)} output(s)",
                             hint=f"name them output_0 .. output_{len(model.outputs) - 1}")
        missing = [f"output_{k}" for k in range(len(model.outputs)) if f"output_{k}" not in keys]
        if missing:
            raise UsageError(f"--expected {path}: no {', '.join(missing)} (it has {sorted(keys)})",
                             hint=_EXPECTED_FIX)
        out = []
        for k, spec in enumerate(model.outputs):
            where = f"--expected {path} (array 'output_{k}')"
            out.append((_expected_output(reader.array(f"output_{k}"), spec, n_file, where), where))
        return out
    finally:
        reader.close()
