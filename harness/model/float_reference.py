"""The float original of a quantized model, run on the host on the device's
inputs, to say what quantization costs (harness/checks/truth.py).

The float model gets exactly the inputs the device got: integer inputs
dequantized with the quantized model's input scale and zero point (float
inputs as they are), so the comparison measures the int8 model, not a
different input rounding. It runs in the same kind of child process as the
TFLM reference (harness/model/reference.py: TFLM's interpreter runs float
kernels too), alongside the device.

Everything that can be known about the pair is checked before anything
boots: the file is a model, it is float (float32 inputs and outputs, and no
QUANTIZE of its input: a quantized model with float I/O is not the float
original), and it has the same inputs and outputs, with the same shapes, as
the model under test.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import InfraError, UsageError
from .reference import ReferenceRunner
from .tflite import ModelInfo, TensorSpec, load_model

log = logging.getLogger(__name__)

_FIX = ("pass the float32 .tflite converted from the same trained model without quantization "
        "(TFLiteConverter.from_keras_model(model).convert(), no optimizations)")


def dequantize(values: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Real values of a tensor: (q - zero_point) * scale for quantized ones,
    float tensors as they are (float64, for the comparison)."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return values.astype(np.float64)
    return (values.astype(np.float64) - spec.zero_point) * spec.scale


def _shapes(specs) -> str:
    return ", ".join(f"{s.name!r} {list(s.shape)} {np.dtype(s.dtype).name}" for s in specs)


def check_float_model(float_model: ModelInfo, model: ModelInfo) -> None:
    """UsageError (exit 2) unless `float_model` is a float model with the
    inputs and outputs of `model`."""
    where = f"--float-model {float_model.path}"
    for kind, specs in (("input", float_model.inputs), ("output", float_model.outputs)):
        for i, spec in enumerate(specs):
            if np.dtype(spec.dtype) != np.float32:
                raise UsageError(f"{where}: is not a float model: {kind} {i} ({spec.name!r}) is "
                                 f"{np.dtype(spec.dtype).name}, not float32", hint=_FIX)
    first = next((op for op in float_model.operators if op.name == "QUANTIZE"
                  and set(op.inputs) & {s.index for s in float_model.inputs}), None)
    if first is not None:
        raise UsageError(f"{where}: is a quantized model with float inputs and outputs (operator {first.index} "
                         f"QUANTIZE converts input {first.inputs[0]} to an integer type), not the float original",
                         hint=_FIX)
    for kind, mine, theirs in (("inputs", float_model.inputs, model.inputs),
                               ("outputs", float_model.outputs, model.outputs)):
        if len(mine) != len(theirs):
            raise UsageError(f"{where}: has {len(mine)} {kind}, the model under test {model.path.name} has "
                             f"{len(theirs)} ({_shapes(theirs)})", hint=_FIX)
        for i, (f, q) in enumerate(zip(mine, theirs)):
            if tuple(f.shape) != tuple(q.shape):
                raise UsageError(f"{where}: {kind[:-1]} {i} has shape {list(f.shape)}, the model under test's "
                                 f"{kind[:-1]} {i} ({q.name!r}) has shape {list(q.shape)}",
                                 hint="the float model must be the one the tested model was quantized from, "
                                      "with the same batch size and layout; " + _FIX)
    for i, spec in enumerate(model.inputs):
        if np.dtype(spec.dtype).kind in "iu" and not spec.scale > 0:
            raise UsageError(f"{model.path}: input {i} ({spec.name!r}) is {np.dtype(spec.dtype).name} without "
                             f"quantization parameters, so its values cannot be given to a float model",
                             hint="--float-model needs a quantized model (scale and zero point on its inputs)")
    for i, spec in enumerate(model.outputs):
        if np.dtype(spec.dtype).kind in "iu" and not spec.scale > 0:
            raise UsageError(f"{model.path}: output {i} ({spec.name!r}) is {np.dtype(spec.dtype).name} without "
                             f"quantization parameters, so it cannot be compared with a float output",
                             hint="--float-model needs a quantized model (scale and zero point on its outputs)")


def load_float_model(path: Path, model: ModelInfo) -> ModelInfo:
    """The float model at `path`, checked against the model under test."""
    path = Path(path)
    if path.is_dir() or path.suffix in (".keras", ".h5", ".pb"):
        raise UsageError(f"--float-model {path}: is a Keras model or SavedModel; hil runs the float model in TFLM's "
                         f"interpreter, which takes .tflite",
                         hint="convert it once, where TensorFlow is installed: open('model_float.tflite', 'wb')"
                              ".write(tf.lite.TFLiteConverter.from_keras_model(model).convert()) (or "
                              ".from_saved_model(directory)), without optimizations")
    if not path.is_file():
        raise UsageError(f"--float-model {path}: no such file", hint="check the path")
    try:
        float_model = load_model(path)
    except UsageError as exc:
        raise UsageError(f"--float-model: {exc.args[0]}", hint=exc.hint) from exc
    check_float_model(float_model, model)
    return float_model


class FloatReference:
    """The float model's outputs for the device's inputs, computed in a
    child process while the device runs; `output(i)` waits for vector i."""

    def __init__(self, float_model: ModelInfo, model: ModelInfo) -> None:
        self.float_model = float_model
        self.model = model
        self._runner = ReferenceRunner(float_model.data, len(float_model.outputs))

    def inputs(self, vector: list[np.ndarray]) -> list[np.ndarray]:
        """The float model's inputs for one device vector."""
        return [dequantize(value, spec).astype(np.float32).reshape(spec.shape)
                for value, spec in zip(vector, self.model.inputs)]

    def submit(self, vectors: list[list[np.ndarray]]) -> None:
        self._runner.submit([self.inputs(v) for v in vectors])

    def output(self, index: int) -> list[np.ndarray]:
        try:
            return self._runner.output(index)
        except InfraError as exc:
            raise UsageError(f"the float model {self.float_model.path.name} failed in the TFLite-Micro "
                             f"interpreter at vector {index}: {exc.args[0]}",
                             hint="check that TFLite Micro runs it (its operators, float32 kernels); "
                                  + _FIX) from exc

    def close(self) -> None:
        self._runner.close()
