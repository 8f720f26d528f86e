"""The reference alongside the device, against the reference before it.

`hil run` used to compute the TFLite-Micro reference for every vector
before streaming the first one; now the reference child returns each
vector's outputs as it computes them and the runner checks vectors as both
outputs arrive. This runs both schedules side by side in one process on
the same model and vectors, through the real pipeline (real firmware,
QEMU, the real reference child), and reports per schedule:

- time to the first verdict (from the start of the run to vector 0 checked);
- total wall time of the run;
- how long the device waited for the reference (`reference_wait_s`);
- the reference's own time for all vectors (`reference_s`).

"batch" reproduces the old schedule by waiting for every reference output
before streaming (a Run whose `_stream` first collects them all).

Models: the demo model, and a convolution stack generated here (the
flatbuffer schema's object API, no TensorFlow): its TFLM reference takes
several ms per vector, like a keyword-spotting network, so a batch of a few
hundred vectors is seconds of silence in the old schedule.

Usage: python benchmarks/pipeline.py [--vectors 500] [--model PATH ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as s

from harness.model.reference import ReferenceRunner

os.environ["HIL_REFERENCE_CACHE"] = "0"  # it measures the reference computing alongside: never read it from the cache
from harness.runner import Run, RunConfig

REPO = Path(__file__).resolve().parent.parent


class BatchReferenceRun(Run):
    """The old schedule: every reference output first, then the vectors."""

    def _stream(self, platform, model, vectors, golden, batch, elf, keep_outputs=None):
        if isinstance(golden, ReferenceRunner):
            t0 = time.monotonic()
            golden = golden.result()
            self._reference_wait += time.monotonic() - t0
        super()._stream(platform, model, vectors, golden, batch, elf, keep_outputs)


def conv_stack(path: Path, layers: int = 4, channels: int = 32, height: int = 25, width: int = 10) -> Path:
    """An int8 stack of 3x3 CONV_2D layers (SAME padding, ReLU) and a
    FULLY_CONNECTED to 12 classes: keyword-spotting sized work for the
    reference (about 10 M multiply-accumulates per inference)."""
    rng = np.random.default_rng(12)
    buffers, tensors, operators = [s.BufferT()], [], []

    def tensor(name, shape, dtype, scale, zero_point, data=None, channel_scales=None):
        t = s.TensorT()
        t.name, t.shape, t.type = name.encode(), list(shape), dtype
        t.quantization = s.QuantizationParametersT()
        t.quantization.scale = list(channel_scales) if channel_scales is not None else [scale]
        t.quantization.zeroPoint = [zero_point] * len(t.quantization.scale)
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
            buffers.append(b)
            t.buffer = len(buffers) - 1
        tensors.append(t)
        return len(tensors) - 1

    def op(code, inputs, outputs, options_type, options):
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = code, inputs, outputs
        o.builtinOptionsType, o.builtinOptions = options_type, options
        operators.append(o)

    act_scale = 0.05
    x = first = tensor("input", (1, height, width, 1), s.TensorType.INT8, act_scale, 0)
    depth = 1
    for i in range(layers):
        w_scales = np.full(channels, 0.02, dtype=np.float32)
        weights = rng.integers(-60, 60, size=(channels, 3, 3, depth), dtype=np.int8)
        bias = rng.integers(-500, 500, size=channels, dtype=np.int32)
        w = tensor(f"w{i}", weights.shape, s.TensorType.INT8, 0, 0, weights, w_scales)
        b = tensor(f"b{i}", bias.shape, s.TensorType.INT32, 0, 0, bias, w_scales * act_scale)
        y = tensor(f"conv{i}", (1, height, width, channels), s.TensorType.INT8, act_scale, -128)
        options = s.Conv2DOptionsT()
        options.padding, options.strideW, options.strideH = s.Padding.SAME, 1, 1
        options.dilationWFactor = options.dilationHFactor = 1
        options.fusedActivationFunction = s.ActivationFunctionType.RELU
        op(0, [x, w, b], [y], s.BuiltinOptions.Conv2DOptions, options)
        x, depth = y, channels
    flat = height * width * channels
    weights = rng.integers(-60, 60, size=(12, flat), dtype=np.int8)
    bias = rng.integers(-500, 500, size=12, dtype=np.int32)
    w = tensor("fc_w", weights.shape, s.TensorType.INT8, 0.01, 0, weights)
    b = tensor("fc_b", bias.shape, s.TensorType.INT32, 0.01 * act_scale, 0, bias)
    out = tensor("logits", (1, 12), s.TensorType.INT8, 0.5, 0)
    options = s.FullyConnectedOptionsT()
    op(1, [x, w, b], [out], s.BuiltinOptions.FullyConnectedOptions, options)

    codes = []
    for builtin in (s.BuiltinOperator.CONV_2D, s.BuiltinOperator.FULLY_CONNECTED):
        code = s.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = builtin
        code.version = 3
        codes.append(code)
    graph = s.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = tensors, [first], [out], operators
    graph.name = b"main"
    model = s.ModelT()
    model.version, model.description = 3, b"hil benchmarks/pipeline.py: int8 conv stack"
    model.operatorCodes, model.subgraphs, model.buffers = codes, [graph], buffers
    builder = flatbuffers.Builder(1 << 20)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def measure(schedule: type[Run], model: Path, vectors: int, workdir: Path) -> dict:
    started = time.monotonic()
    run = schedule(RunConfig(model=model, platform="mps2-an386", vectors=vectors, seed=3, workdir=workdir))
    result = run.execute()
    wall = time.monotonic() - started
    assert result.status == "passed", result.error
    t = result.timings
    return {"schedule": "batch (before)" if schedule is BatchReferenceRun else "pipelined (now)",
            "first_verdict_s": t["first_verdict_s"], "wall_s": wall, "reference_wait_s": t["reference_wait_s"],
            "reference_s": t.get("reference_s"), "vectors_s": t["vectors_s"],
            "passed": result.summary()["passed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=500)
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        models = args.model or [REPO / "models" / "demo" / "gesture.tflite", conv_stack(Path(tmp) / "conv_stack.tflite")]
        for model in models:
            rows = [measure(schedule, model, args.vectors, Path(tmp) / f"{model.stem}-{schedule.__name__}")
                    for schedule in (BatchReferenceRun, Run)]
            for row in rows:
                row["model"] = model.name
            report += rows
            print(f"\n{model.name}: {args.vectors} vectors on mps2-an386 (QEMU)")
            print(f"{'schedule':18} {'first verdict s':>16} {'wall s':>8} {'device waited s':>16} {'reference s':>12}")
            for r in rows:
                print(f"{r['schedule']:18} {r['first_verdict_s']:16.2f} {r['wall_s']:8.2f} "
                      f"{r['reference_wait_s']:16.2f} {r['reference_s'] or float('nan'):12.2f}")
            before, now = rows
            print(f"first verdict {before['first_verdict_s'] / now['first_verdict_s']:.1f}x sooner, "
                  f"wall time {before['wall_s'] / now['wall_s']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
