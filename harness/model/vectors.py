"""Test vectors: seeded random ones that respect each input's dtype and
quantization, or arrays from .npy/.npz files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .tflite import ModelInfo, TensorSpec


@dataclass
class VectorSet:
    vectors: list[list[np.ndarray]]  # vectors[i][input_index]
    source: dict
    labels: np.ndarray | None = None
    classes: list[str] = field(default_factory=list)

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


def _fit(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    """Shape an array as [N, *spec.shape] and convert it to the input dtype
    only when no value changes."""
    shape = tuple(spec.shape)
    if array.shape == shape:
        array = array[None]
    elif array.shape[1:] != shape:
        if shape and shape[0] == 1 and array.shape[1:] == shape[1:]:
            array = array[:, None]
        else:
            raise UsageError(f"{where}: shape {array.shape} does not fit input {spec.name!r} of shape {shape}",
                             hint=f"give an array of shape {shape} or [N, {', '.join(map(str, shape))}]")
    dtype = np.dtype(spec.dtype)
    if array.dtype != dtype:
        converted = array.astype(dtype)
        if not np.array_equal(converted.astype(array.dtype), array):
            raise UsageError(f"{where}: values of dtype {array.dtype} do not fit input {spec.name!r} ({dtype.name})",
                             hint=f"store the vectors as {dtype.name}")
        array = converted
    return array


def load_vectors(path: Path, model: ModelInfo, limit: int | None = None) -> VectorSet:
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read vectors from {path}: {exc}",
                         hint="pass a .npy array or a .npz archive (numpy.save / numpy.savez)") from exc
    labels, classes = None, []
    if isinstance(loaded, np.ndarray):
        if len(model.inputs) != 1:
            raise UsageError(f"{path}: a .npy file holds one array but the model has {len(model.inputs)} inputs",
                             hint="use a .npz with one array per input (input_0, input_1, ...)")
        arrays = [_fit(loaded, model.inputs[0], str(path))]
    else:
        with loaded:
            keys = set(loaded.files)
            arrays = []
            for i, spec in enumerate(model.inputs):
                key = next((k for k in (f"input_{i}", spec.name) if k in keys), None)
                if key is None:
                    raise UsageError(f"{path}: no array for input {i} ({spec.name!r}); it has {sorted(keys)}",
                                     hint=f"name the array input_{i}")
                arrays.append(_fit(loaded[key], spec, f"{path}[{key}]"))
            if "labels" in keys:
                labels = loaded["labels"]
            if "classes" in keys:
                classes = [str(c) for c in loaded["classes"]]
    counts = {len(a) for a in arrays}
    if len(counts) != 1:
        raise UsageError(f"{path}: inputs have different numbers of vectors {sorted(counts)}")
    n = counts.pop()
    if limit is not None:
        n = min(n, limit)
    vectors = [[a[i] for a in arrays] for i in range(n)]
    if labels is not None:
        labels = labels[:n]
    return VectorSet(vectors, {"kind": "file", "path": str(path), "count": n}, labels, classes)
