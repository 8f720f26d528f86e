"""Damaged and odd input files for the fault benchmark (benchmarks/faults.py).

Each maker writes files into a directory and returns, per file, what a
right `hil run` does with it: the exit codes that are right and words the
message must contain (the file's name, so the error blames the right
file). All are derived from the bundled demo model and its labelled test
set, so every case differs from a passing run by exactly one damage.
"""

from __future__ import annotations

import io
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

VECTORS = 6  # vectors per input file: enough to show per-vector handling, quick to run


@dataclass
class FileCase:
    name: str
    path: Path
    expect: tuple[int, ...]           # exit codes that are right
    keywords: tuple[str, ...] = ()    # regexes that must all match the message (case-insensitive)
    note: str = ""
    extra_args: list[str] = field(default_factory=list)


# -- models -------------------------------------------------------------------------------


def with_input_shape(data: bytes, shape: tuple[int, ...]) -> bytes:
    """The same model with its first input's declared shape replaced."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(data, 0)
    graph = model.subgraphs[0]
    tensor = graph.tensors[graph.inputs[0]]
    tensor.shape = np.array(shape, dtype=np.int32)
    tensor.shapeSignature = None
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def damaged_models(model: Path, out: Path, unsupported: Path) -> list[FileCase]:
    out.mkdir(parents=True, exist_ok=True)
    data = model.read_bytes()
    rng = random.Random(11)

    def write(name: str, content: bytes) -> Path:
        path = out / name
        path.write_bytes(content)
        return path

    damaged = ("damaged|truncated|flatbuffer|corrupt",)
    cases = [
        FileCase("truncated half", write("truncated_half.tflite", data[: len(data) // 2]), (2,), damaged),
        FileCase("truncated tail", write("truncated_tail.tflite", data[:-64]), (2,), damaged),
        FileCase("wrong magic", write("wrong_magic.tflite", data[:4] + b"XXXX" + data[8:]), (2,),
                 ("TFL3|not a TFLite|flatbuffer",)),
        FileCase("empty file", write("empty.tflite", b""), (2,), ("empty|too short|0 bytes",)),
        FileCase("zero input dimension", write("zero_dim.tflite", with_input_shape(data, (1, 0, 1, 3))), (2,),
                 ("dimension|shape",)),
        FileCase("negative input dimension", write("negative_dim.tflite", with_input_shape(data, (1, -1, 1, 3))),
                 (2,), ("dimension|shape",)),
        FileCase("huge declared input (2^30 elements)",
                 write("huge_input.tflite", with_input_shape(data, (1, 1 << 28, 1, 4))), (2,),
                 ("bytes|memory|too large|does not fit|capacity",)),
        FileCase("unsupported operator", unsupported, (2,), ("GATHER",)),
        FileCase("missing file", out / "no_such_model.tflite", (2,), ("no_such_model",)),
    ]
    for k in range(4):
        flipped = bytearray(data)
        for _ in range(8):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        cases.append(FileCase(f"8 bits flipped (seed {k})", write(f"bitflip_{k}.tflite", bytes(flipped)), (0, 2),
                              ("damaged|truncated|flatbuffer|corrupt|unsupported|dimension|shape|type|operator|buffer",),
                              note="a flip inside weights leaves a valid model: 0 (device and reference agree) "
                                   "or 2 (named as damaged) are both right"))
    return cases


# -- --inputs files ------------------------------------------------------------------------


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _npy(path: Path, array: np.ndarray, allow_pickle: bool = False) -> Path:
    np.save(path, array, allow_pickle=allow_pickle)
    return path


def damaged_inputs(test_set: Path, out: Path) -> list[FileCase]:
    """The issue's kinds of damaged or odd --inputs files for the demo model
    (input int8 [1, 128, 1, 3], 5 classes), plus a healthy file."""
    out.mkdir(parents=True, exist_ok=True)
    with np.load(test_set) as npz:
        x = npz["input_0"][:VECTORS]
        labels = npz["labels"][:VECTORS]
    shape = x.shape
    onehot = np.eye(5, dtype=np.float32)[labels]
    buf = io.BytesIO()
    np.save(buf, x)
    npy_bytes = buf.getvalue()
    good_npz = _npz(out / "good.npz", input_0=x, labels=labels)

    def raw(name: str, content: bytes) -> Path:
        (out / name).write_bytes(content)
        return out / name

    def bad(name: str, path: Path, words: str = "") -> FileCase:
        """Exit 2, and the message names the file (and the problem, when `words`)."""
        return FileCase(name, path, (2,), (re.escape(path.name),) + ((words,) if words else ()))

    objects = np.empty(VECTORS, dtype=object)
    for i in range(VECTORS):
        objects[i] = x[i]
    return [
        FileCase("healthy .npz with labels", good_npz, (0,)),
        FileCase("one-hot labels (Keras style)", _npz(out / "onehot.npz", input_0=x, labels=onehot), (0,),
                 note="must pass: labels are taken as argmax"),
        FileCase("an expected-output key (output_0)",
                 _npz(out / "with_output.npz", input_0=x, labels=labels, output_0=np.zeros((VECTORS, 1, 5), np.int8)),
                 (0,), note="output_* keys are allowed (the next issue may use them)"),
        bad("damaged zip (.npz cut in half)", raw("cut.npz", good_npz.read_bytes()[: good_npz.stat().st_size // 2])),
        bad("damaged .npy (cut)", raw("cut.npy", npy_bytes[: len(npy_bytes) // 2])),
        bad(".npy that is not numpy at all", raw("garbage.npy", bytes(random.Random(3).randrange(256) for _ in range(900)))),
        bad("empty file", raw("empty.npz", b"")),
        bad("object dtype", _npy(out / "object.npy", objects, allow_pickle=True), "object|dtype"),
        bad("string dtype", _npy(out / "strings.npy", np.full(shape, "a")), "dtype|str"),
        bad("wrong shape", _npy(out / "wrong_shape.npy", np.zeros((VECTORS, 127, 1, 3), np.int8)), "shape"),
        bad("no input_0 key", _npz(out / "no_input_key.npz", x=x), "input_0"),
        bad("fewer labels than vectors", _npz(out / "few_labels.npz", input_0=x, labels=labels[:3]), "label"),
        bad("string labels", _npz(out / "string_labels.npz", input_0=x, labels=np.array(["up"] * VECTORS)), "label"),
        bad("NaN labels", _npz(out / "nan_labels.npz", input_0=x,
                               labels=np.where(np.arange(VECTORS) == 2, np.nan, labels).astype(np.float64)), "label"),
        bad("label outside the classes", _npz(out / "label_7.npz", input_0=x, labels=np.full(VECTORS, 7)), "label"),
        bad("labels neither indices nor one-hot",
            _npz(out / "soft_labels.npz", input_0=x, labels=np.full((VECTORS, 5), 0.3, np.float32)), "label"),
        bad("fractional floats for an int8 input", _npy(out / "fractions.npy", x.astype(np.float32) + 0.5), "int8|dtype"),
        bad("zero vectors", _npy(out / "zero_vectors.npy", np.zeros((0, *shape[1:]), np.int8)), "no vectors|zero|empty"),
        bad("uint8 200 for an int8 input", _npy(out / "uint8_200.npy", np.full(shape, 200, np.uint8)), "range|dtype|uint8"),
        bad("int64 300 for an int8 input", _npy(out / "int64_300.npy", np.full(shape, 300, np.int64)), "range|dtype|int64"),
        bad("unused keys input_1..input_4",
            _npz(out / "unused_keys.npz", input_0=x, **{f"input_{i}": x for i in range(1, 5)}), "input_1"),
        bad("missing file", out / "no_such_inputs.npz"),
    ]
