"""Read a .tflite flatbuffer on the host: operators, inputs and outputs.

Used to reject a bad model (truncated, not a model, an operator the engine
lacks) before any firmware boots, and to know each input's dtype and
quantization for making test vectors.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

from ..errors import UsageError

log = logging.getLogger(__name__)

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
DTYPES = {
    schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8, schema.TensorType.INT16: np.int16,
    schema.TensorType.INT32: np.int32, schema.TensorType.INT64: np.int64,
    schema.TensorType.BOOL: np.bool_,
}

#: bits per element of each tensor type, for sizing tensors the host never streams
_ELEMENT_BITS = {
    schema.TensorType.FLOAT32: 32, schema.TensorType.FLOAT16: 16, schema.TensorType.INT32: 32,
    schema.TensorType.UINT8: 8, schema.TensorType.INT64: 64, schema.TensorType.BOOL: 8,
    schema.TensorType.INT16: 16, schema.TensorType.COMPLEX64: 64, schema.TensorType.INT8: 8,
    schema.TensorType.FLOAT64: 64, schema.TensorType.COMPLEX128: 128, schema.TensorType.UINT64: 64,
    schema.TensorType.UINT32: 32, schema.TensorType.UINT16: 16, schema.TensorType.INT4: 4,
}

#: Operators the built-in engine runs: the kernels in firmware/engine/kernel_table.c
#: (tests/test_docs_paths.py checks the two lists agree); a model that needs others
#: is refused before anything boots.
BUILTIN_ENGINE_OPS = frozenset({
    "FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D",
    "RESHAPE", "SOFTMAX", "QUANTIZE", "DEQUANTIZE",
    "LOGISTIC", "TANH", "RELU", "RELU6", "HARD_SWISH", "ADD", "SUB", "MUL", "MEAN",
    "PAD", "PADV2", "CONCATENATION", "STRIDED_SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK",
    "SHAPE", "TRANSPOSE", "CALL_ONCE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
})


def op_name(code: int) -> str:
    return _OP_NAMES.get(code, f"BUILTIN_{code}")


@dataclass(frozen=True)
class TensorSpec:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float
    zero_point: int

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize

    def as_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": np.dtype(self.dtype).name,
                "scale": self.scale, "zero_point": self.zero_point}


@dataclass(frozen=True)
class Operator:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph: int = 0


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    data: bytes
    sha256: str
    operators: tuple[Operator, ...]      # subgraph 0, in execution order
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    tensors: dict[int, TensorSpec]
    other_operators: tuple[Operator, ...] = ()  # subgraphs 1.. (CALL_ONCE initialisers, ...)
    #: subgraph 0: bytes each tensor's declared shape needs (any type), and the
    #: tensors whose data is in the model (weights), which need no arena
    tensor_bytes: dict[int, int] = field(default_factory=dict)
    constant_tensors: frozenset[int] = frozenset()
    tensor_names: dict[int, str] = field(default_factory=dict)
    #: every subgraph's tensor count, and the subgraphs each one's CALL_ONCE
    #: operators call (what the built-in engine loads: subgraph 0 and its callees)
    subgraph_tensors: tuple[int, ...] = ()
    calls: dict[int, tuple[int, ...]] = field(default_factory=dict)

    def loaded_subgraphs(self) -> list[int]:
        """Subgraph 0 and the subgraphs its CALL_ONCE operators call, transitively."""
        loaded, i = [0], 0
        while i < len(loaded):
            for callee in self.calls.get(loaded[i], ()):
                if 0 < callee < len(self.subgraph_tensors) and callee not in loaded:
                    loaded.append(callee)
            i += 1
        return loaded

    def unsupported(self, supported: frozenset[str] = BUILTIN_ENGINE_OPS) -> list[Operator]:
        return [op for op in self.operators + self.other_operators if op.name not in supported]

    def consumers(self, tensor: int) -> list[Operator]:
        return [op for op in self.operators if tensor in op.inputs]

    def as_dict(self) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "bytes": len(self.data),
                "operators": [op.name for op in self.operators],
                "inputs": [t.as_dict() for t in self.inputs],
                "outputs": [t.as_dict() for t in self.outputs]}


def _tensor_spec(t, index: int) -> TensorSpec:
    dtype = DTYPES.get(t.type)
    if dtype is None:
        raise ValueError(f"tensor {index} has type {_TYPE_NAMES.get(t.type, t.type)}, which hil cannot stream")
    q = t.quantization
    scale = float(q.scale[0]) if q is not None and q.scale is not None and len(q.scale) else 0.0
    zp = int(q.zeroPoint[0]) if q is not None and q.zeroPoint is not None and len(q.zeroPoint) else 0
    name = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name or "")
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else ()))
    return TensorSpec(index, name, shape, np.dtype(dtype), scale, zp)


def parse_model(data: bytes, path: Path) -> ModelInfo:
    """Parse and sanity-check a model; UsageError (exit 2) names what is wrong."""
    fix = "pass a .tflite file written by the TensorFlow Lite converter"
    if len(data) < 16:
        raise UsageError(f"{path}: {len(data)} bytes is too short to be a .tflite model", hint=fix)
    if data[4:8] != b"TFL3":
        raise UsageError(f"{path}: not a TFLite flatbuffer (file identifier {data[4:8]!r}, expected b'TFL3')",
                         hint=fix)
    try:
        model = schema.ModelT.InitFromPackedBuf(data, 0)
        subgraph = model.subgraphs[0]
        ops: list[Operator] = []
        others: list[Operator] = []  # operators of the other subgraphs
        calls: dict[int, tuple[int, ...]] = {}
        for g, graph in enumerate(model.subgraphs):
            for i, op in enumerate(graph.operators or []):
                code = model.operatorCodes[op.opcodeIndex]
                builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
                (ops if g == 0 else others).append(
                    Operator(i, op_name(builtin), tuple(int(x) for x in op.inputs),
                             tuple(int(x) for x in op.outputs), g))
                if builtin == schema.BuiltinOperator.CALL_ONCE and isinstance(op.builtinOptions,
                                                                              schema.CallOnceOptionsT):
                    calls[g] = (*calls.get(g, ()), int(op.builtinOptions.initSubgraphIndex))
        subgraph_tensors = tuple(len(graph.tensors if graph.tensors is not None else ()) for graph in model.subgraphs)
        for buf in model.buffers or []:
            if buf.offset and buf.offset + buf.size > len(data):
                raise ValueError("a buffer lies past the end of the file")
        tensors = subgraph.tensors
        inputs = tuple(_tensor_spec(tensors[i], int(i)) for i in subgraph.inputs)
        outputs = tuple(_tensor_spec(tensors[i], int(i)) for i in subgraph.outputs)
        specs, sizes, names, constant = {}, {}, {}, set()
        buffers = model.buffers or []
        for i, t in enumerate(tensors):
            shape = [int(d) for d in (t.shape if t.shape is not None else ())]
            count = 1
            for d in shape:
                count *= max(d, 0)  # dynamic (-1) dimensions count as empty here
            sizes[i] = (count * _ELEMENT_BITS.get(t.type, 8) + 7) // 8
            names[i] = t.name.decode("utf-8", "replace") if isinstance(t.name, bytes) else str(t.name or "")
            buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
            if buf is not None and ((buf.data is not None and len(buf.data)) or buf.offset):
                constant.add(i)
            try:
                specs[i] = _tensor_spec(t, i)
            except ValueError:
                pass
    except UsageError:
        raise
    except Exception as exc:  # flatbuffers raises struct/index/type errors on bad input
        raise UsageError(f"{path}: the flatbuffer is damaged or truncated ({type(exc).__name__}: {exc})",
                         hint=fix) from exc
    if not inputs or not outputs:
        raise UsageError(f"{path}: the model has no inputs or no outputs", hint=fix)
    return ModelInfo(path, data, hashlib.sha256(data).hexdigest(), tuple(ops), inputs, outputs, specs,
                     tuple(others), sizes, frozenset(constant), names, subgraph_tensors, calls)


def load_model(path: Path) -> ModelInfo:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read model {path}: {exc.strerror}", hint="check the --model path") from exc
    return parse_model(data, path)
