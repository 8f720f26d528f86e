"""Host tests of the built-in inference engine (firmware/engine).

The engine is built once per session from firmware/host (CMake, Debug, with
AddressSanitizer and UBSan) into the session's cache directory. Then, for
every .tflite under models/:

* supported models run 50 seeded random input vectors through ``eng_run`` and
  through the TFLite Micro reference interpreter (the ``tflite-micro``
  package), one interpreter each so state carries over, with a reset before
  vectors 20 and 35 on both sides (``eng_reset`` / ``reset()``); every output
  byte must be identical;
* stateful models (resource variables) answer the same input differently
  from invoke to invoke, and differently again after a reset, identically
  to TFLite Micro;
* the reported input/output tensors match the reference interpreter's;
* the memory plan keeps buffers with overlapping lifetimes apart, model
  inputs apart from model outputs, and everything inside ``arena_used``;
* ENG_E_ARENA_TOO_SMALL reports the exact number of bytes needed, and an
  arena of exactly that size (also unaligned) gives the same outputs;
* models named ``unsupported_*`` fail to load, naming the offending operator,
  also when it sits in a subgraph that CALL_ONCE calls;
* the engine's own expf/tanhf (firmware/engine/fmath.c) match the host C
  library bit for bit on a sweep of float inputs.

Damaged models (truncated at sampled cut points, random bytes, bytes flipped
in a valid model) must fail cleanly with a message, never crash: the
sanitizers abort the process on any out-of-bounds read or undefined
behaviour, which these tests report as a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
HOST_SRC = REPO / "firmware" / "host"
MODELS_DIR = REPO / "models"
N_VECTORS = 50
RESETS = (20, 35)  # reset before these vectors (both engine and reference)
RUN_TIMEOUT = 120

# BuiltinOperator codes the engine implements.
SUPPORTED_OPS = {
    0: "ADD",
    1: "AVERAGE_POOL_2D",
    2: "CONCATENATION",
    3: "CONV_2D",
    4: "DEPTHWISE_CONV_2D",
    6: "DEQUANTIZE",
    9: "FULLY_CONNECTED",
    14: "LOGISTIC",
    17: "MAX_POOL_2D",
    18: "MUL",
    19: "RELU",
    21: "RELU6",
    22: "RESHAPE",
    25: "SOFTMAX",
    28: "TANH",
    34: "PAD",
    39: "TRANSPOSE",
    40: "MEAN",
    41: "SUB",
    45: "STRIDED_SLICE",
    49: "SPLIT",
    60: "PADV2",
    77: "SHAPE",
    83: "PACK",
    88: "UNPACK",
    102: "SPLIT_V",
    114: "QUANTIZE",
    117: "HARD_SWISH",
    129: "CALL_ONCE",
    142: "VAR_HANDLE",
    143: "READ_VARIABLE",
    144: "ASSIGN_VARIABLE",
}

# TensorType code -> numpy dtype, for the types a model input/output may have.
TFLITE_DTYPES = {
    0: np.float32,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    7: np.int16,
    9: np.int8,
}


# --------------------------------------------------------------------------
# Model discovery and parsing


def _model_dirs() -> list[Path]:
    """models/, plus any directories listed in ENG_TEST_EXTRA_MODELS
    (os.pathsep separated), e.g. for models generated while developing."""
    dirs = [MODELS_DIR]
    extra = os.environ.get("ENG_TEST_EXTRA_MODELS", "")
    dirs += [Path(d) for d in extra.split(os.pathsep) if d]
    return [d for d in dirs if d.is_dir()]


def _all_models() -> list[Path]:
    found = []
    for d in _model_dirs():
        found += sorted(d.rglob("*.tflite"))
    return found


def _model_id(path: Path) -> str:
    for d in _model_dirs():
        if path.is_relative_to(d):
            rel = str(path.relative_to(d))
            return rel if d == MODELS_DIR else f"{d.name}/{rel}"
    return path.name


def _is_unsupported(path: Path) -> bool:
    return path.name.startswith("unsupported_")


def _param(paths: list[Path]):
    if not paths:
        return [pytest.param(None, marks=pytest.mark.skip(reason="no models"))]
    return [pytest.param(p, id=_model_id(p)) for p in paths]


SUPPORTED_MODELS = [p for p in _all_models() if not _is_unsupported(p)]
UNSUPPORTED_MODELS = [p for p in _all_models() if _is_unsupported(p)]


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import (
        schema_py_generated as schema_fb,
    )

    return schema_fb


def _op_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {v: k for k, v in vars(ops).items() if not k.startswith("_")}


def _parse(path: Path):
    """(model object, subgraph 0, [builtin code of each operator])."""
    schema_fb = _schema()
    model = schema_fb.ModelT.InitFromObj(
        schema_fb.Model.GetRootAsModel(path.read_bytes(), 0)
    )
    sg = model.subgraphs[0]
    codes = []
    for op in sg.operators or []:
        oc = model.operatorCodes[op.opcodeIndex]
        codes.append(max(oc.builtinCode, oc.deprecatedBuiltinCode))
    return model, sg, codes


def _io_specs(sg, indices):
    """[(numpy dtype, shape)] of the given tensor indices."""
    specs = []
    for t in indices:
        tensor = sg.tensors[t]
        shape = tuple(int(d) for d in (tensor.shape if tensor.shape is not None else []))
        specs.append((np.dtype(TFLITE_DTYPES[tensor.type]), shape))
    return specs


def _random_vectors(path: Path, specs, n: int):
    """n lists of input arrays, seeded by the model's file name."""
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    vectors = []
    for _ in range(n):
        vec = []
        for dtype, shape in specs:
            if dtype.kind == "f":
                # magnitudes from 0.01 to 100 so quantizers both round and clamp
                spread = 10.0 ** rng.uniform(-2, 2)
                a = (rng.standard_normal(shape) * spread).astype(dtype)
            else:
                info = np.iinfo(dtype)
                a = rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
            vec.append(a)
        vectors.append(vec)
    return vectors


# --------------------------------------------------------------------------
# Build and run


@pytest.fixture(scope="session")
def eng_run(tmp_path_factory) -> Path:
    """Builds firmware/host once per session; returns the eng_run binary."""
    if shutil.which("cmake") is None:
        pytest.fail("cmake is needed to build the host engine")
    cache = os.environ.get("HIL_CACHE_DIR")
    build = (Path(cache) / "engine-host") if cache else tmp_path_factory.mktemp("engine-host")
    build.mkdir(parents=True, exist_ok=True)
    steps = [
        ["cmake", "-S", str(HOST_SRC), "-B", str(build), "-DCMAKE_BUILD_TYPE=Debug"],
        ["cmake", "--build", str(build), "-j", "2"],
    ]
    for cmd in steps:
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed:\n{p.stdout}\n{p.stderr}")
    exe = build / "eng_run"
    assert exe.is_file()
    return exe


def _run(exe: Path, *args, timeout=RUN_TIMEOUT) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0:exitcode=99"
    env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1:exitcode=98"
    return subprocess.run(
        [str(exe), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )


def _field(pattern: str, text: str) -> str:
    """The first group of `pattern` in `text`: fails here, naming it, when the text lacks it."""
    m = re.search(pattern, text)
    assert m is not None, (pattern, text)
    return m.group(1)


def _assert_clean_failure(p: subprocess.CompletedProcess, what: str):
    """Load failed with a status and a message, no sanitizer report."""
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, (
        f"{what}: sanitizer report\n{p.stderr[-4000:]}"
    )
    assert p.returncode == 2, f"{what}: exit {p.returncode}\n{p.stderr[-2000:]}"
    m = re.search(r"failed: (ENG_E_\w+) \(\d+\) detail=\d+ op=-?\d+: (.+)", p.stderr)
    assert m, f"{what}: no error message\n{p.stderr}"
    assert m.group(2).strip(), f"{what}: empty message"
    return m.group(1), m.group(2)


def _parse_info(text: str):
    info: dict[str, Any] = {"inputs": [], "outputs": []}
    for line in text.splitlines():
        if line.startswith("arena_used "):
            info["arena_used"] = int(line.split()[1])
        m = re.match(
            r"(input|output) (\d+) dtype=(\d+) shape=(\S*) bytes=(\d+) "
            r"scale=(\S+) zero_point=(-?\d+)",
            line,
        )
        if m:
            shape = tuple(int(d) for d in m.group(4).split("x")) if m.group(4) else ()
            info[m.group(1) + "s"].append(
                {
                    "dtype": int(m.group(3)),
                    "shape": shape,
                    "bytes": int(m.group(5)),
                    "scale": float(m.group(6)),
                    "zero_point": int(m.group(7)),
                }
            )
    return info


# --------------------------------------------------------------------------
# Bit-exactness against TFLite Micro


def _reference_outputs(path: Path, vectors, n_outputs: int, resets=()) -> list[bytes]:
    """Outputs of one TFLM interpreter fed the vectors in order (state carries
    over), with reset() before the vectors listed in `resets`."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=8 << 20)
    results = []
    for k, vec in enumerate(vectors):
        if k in resets:
            interp.reset()
        for i, a in enumerate(vec):
            interp.set_input(a, i)
        interp.invoke()
        results.append(
            b"".join(np.ascontiguousarray(interp.get_output(i)).tobytes() for i in range(n_outputs))
        )
    return results


def _engine_outputs(exe: Path, path: Path, vectors, tmp_path: Path, *opts,
                    resets=()) -> bytes:
    fin = tmp_path / "inputs.bin"
    fout = tmp_path / "outputs.bin"
    fin.write_bytes(b"".join(a.tobytes() for vec in vectors for a in vec))
    for k in resets:
        opts += ("--reset-at", k)
    p = _run(exe, *opts, path, fin, fout)
    assert p.returncode == 0, f"eng_run failed ({p.returncode}):\n{p.stderr[-4000:]}"
    return fout.read_bytes()


def _compare(got: bytes, expected: list[bytes], path: Path):
    per_vector = len(expected[0]) if expected else 0
    assert len(got) == per_vector * len(expected), (
        f"{path.name}: engine wrote {len(got)} bytes, expected {per_vector * len(expected)}"
    )
    for v, exp in enumerate(expected):
        chunk = got[v * per_vector : (v + 1) * per_vector]
        if chunk != exp:
            g = np.frombuffer(chunk, np.uint8)
            e = np.frombuffer(exp, np.uint8)
            bad = np.nonzero(g != e)[0]
            pytest.fail(
                f"{path.name}: vector {v}: {len(bad)} of {len(e)} output bytes differ "
                f"from TFLM, first at byte {bad[0]} (engine {g[bad[0]]}, TFLM {e[bad[0]]})"
            )


@pytest.mark.parametrize("model_path", _param(SUPPORTED_MODELS))
def test_bit_exact_with_tflm(eng_run, model_path, tmp_path):
    _, sg, _ = _parse(model_path)
    in_specs = _io_specs(sg, sg.inputs)
    out_specs = _io_specs(sg, sg.outputs)

    # tensors reported by the engine match the model
    p = _run(eng_run, "--info", model_path)
    assert p.returncode == 0, p.stderr
    info = _parse_info(p.stdout)
    assert [(t["shape"], np.dtype(TFLITE_DTYPES[t["dtype"]])) for t in info["inputs"]] == [
        (s, d) for d, s in in_specs
    ]
    assert [(t["shape"], np.dtype(TFLITE_DTYPES[t["dtype"]])) for t in info["outputs"]] == [
        (s, d) for d, s in out_specs
    ]
    for t, idx in zip(info["inputs"] + info["outputs"], list(sg.inputs) + list(sg.outputs)):
        q = sg.tensors[idx].quantization
        if q is not None and q.scale is not None and len(q.scale) and q.zeroPoint is not None:
            assert t["scale"] == pytest.approx(float(q.scale[0]), rel=1e-6)
            assert t["zero_point"] == int(q.zeroPoint[0])

    vectors = _random_vectors(model_path, in_specs, N_VECTORS)
    expected = _reference_outputs(model_path, vectors, len(out_specs), RESETS)
    got = _engine_outputs(eng_run, model_path, vectors, tmp_path, resets=RESETS)
    _compare(got, expected, model_path)


def _is_stateful(path: Path) -> bool:
    model, _, _ = _parse(path)
    for sg in model.subgraphs:
        for op in sg.operators or []:
            oc = model.operatorCodes[op.opcodeIndex]
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == 142:  # VAR_HANDLE
                return True
    return False


STATEFUL_MODELS = [p for p in SUPPORTED_MODELS if _is_stateful(p)]


@pytest.mark.parametrize("model_path", _param(STATEFUL_MODELS))
def test_state_across_invokes_and_reset(eng_run, model_path, tmp_path):
    """One input vector 6 times, reset, 6 times more, and once more after a
    second reset: identical to TFLM byte for byte, the answers move while
    the state accumulates, and the first answer after a reset differs from
    the very first one (the variables start from CALL_ONCE's values, a
    reset zeroes them and CALL_ONCE does not run again)."""
    _, sg, _ = _parse(model_path)
    vec = _random_vectors(model_path, _io_specs(sg, sg.inputs), 1)[0]
    vectors = [vec] * 13
    resets = (6, 12)
    expected = _reference_outputs(model_path, vectors, len(sg.outputs), resets)
    got = _engine_outputs(eng_run, model_path, vectors, tmp_path, resets=resets)
    _compare(got, expected, model_path)
    assert len(set(expected[:6])) > 1, "the state never changes the output"
    assert expected[6] != expected[0], "reset() restored CALL_ONCE's initial state"
    assert expected[12] == expected[6], "two resets must leave the same state"


# --------------------------------------------------------------------------
# Memory plan and arena size


def _parse_plan(text: str):
    base = persistent = None
    variables: tuple[int | None, ...] = (None, 0)
    ops, tensors = [], []
    for line in text.splitlines():
        if line.startswith("persistent "):
            base, persistent = (int(x) for x in line.split()[1:3])
        if line.startswith("variables "):
            variables = tuple(int(x) for x in line.split()[1:3])
        m = re.match(r"op (\d+) builtin=(-?\d+) offset=(\d+) bytes=(\d+)", line)
        if m:
            ops.append((int(m.group(3)), int(m.group(4))))
        m = re.match(
            r"tensor (\d+) offset=(-?\d+) bytes=(\d+) first=(-?\d+) last=(-?\d+) "
            r"root=(\d+) const=(\d) flags=(\d+)",
            line,
        )
        if m:
            tensors.append(dict(zip(
                ("index", "offset", "bytes", "first", "last", "root", "const", "flags"),
                (int(g) for g in m.groups()),
            )))
    return base, persistent, variables, ops, tensors


@pytest.mark.parametrize("model_path", _param(SUPPORTED_MODELS))
def test_memory_plan(eng_run, model_path):
    p = _run(eng_run, "--plan", model_path)
    assert p.returncode == 0, p.stderr
    arena_used = _parse_info(p.stdout)["arena_used"]
    base, persistent, (var_offset, var_bytes), ops, tensors = _parse_plan(p.stdout)
    region = base + persistent + var_bytes

    # per-op data: disjoint, then the resource variables, then the tensors
    end = base
    for off, size in ops:
        assert off == end and size % 16 == 0
        end += size
    assert end == base + persistent == var_offset
    assert var_bytes % 16 == 0 and region <= arena_used

    # buffers: one per alias group (RESHAPE outputs share their input's)
    IN, OUT = 0x01, 0x02
    groups: dict[int, dict[str, Any]] = {}
    for t in tensors:
        if t["const"] or t["offset"] < 0:
            continue
        assert t["offset"] >= region and t["offset"] + t["bytes"] <= arena_used
        assert (t["offset"] - region) % 16 == 0
        g = groups.setdefault(t["root"], {"offset": t["offset"], "bytes": 0, "first": 10**9,
                                          "last": -1, "io": 0, "io_members": set()})
        assert g["offset"] == t["offset"], "alias group members must share one buffer"
        g["bytes"] = max(g["bytes"], t["bytes"])
        g["io"] |= t["flags"] & (IN | OUT)
        if t["flags"] & (IN | OUT):
            g["io_members"].add(t["index"])
        if t["first"] >= 0:
            g["first"] = min(g["first"], t["first"])
            g["last"] = max(g["last"], t["last"])
    for g in groups.values():
        # a model input and a different model output never share a buffer
        if g["io"] & IN and g["io"] & OUT:
            assert len(g["io_members"]) == 1, g

    items = list(groups.values())
    for i, a in enumerate(items):
        for b in items[i + 1 :]:
            if a["bytes"] == 0 or b["bytes"] == 0:
                continue
            overlap_mem = a["offset"] < b["offset"] + b["bytes"] and b["offset"] < a["offset"] + a["bytes"]
            overlap_time = a["first"] <= b["last"] and b["first"] <= a["last"]
            io_clash = (a["io"] & IN and b["io"] & OUT) or (a["io"] & OUT and b["io"] & IN)
            assert not (overlap_mem and (overlap_time or io_clash)), (a, b)


def _smallest_supported():
    models = sorted(SUPPORTED_MODELS, key=lambda p: p.stat().st_size)
    return models[0] if models else None


@pytest.mark.parametrize("offset", [0, 3])
def test_arena_too_small_reports_bytes_needed(eng_run, tmp_path, offset):
    model_path = _smallest_supported()
    if model_path is None:
        pytest.skip("no models")
    _, sg, _ = _parse(model_path)
    p = _run(eng_run, "--arena-offset", offset, "--info", model_path)
    assert p.returncode == 0, p.stderr
    used = _parse_info(p.stdout)["arena_used"]

    p = _run(eng_run, "--arena", used - 1, "--arena-offset", offset, "--info", model_path)
    status, message = _assert_clean_failure(p, "small arena")
    assert status == "ENG_E_ARENA_TOO_SMALL"
    needed = int(_field(r"detail=(\d+)", p.stderr))
    assert needed == used
    assert str(needed) in message

    vectors = _random_vectors(model_path, _io_specs(sg, sg.inputs), 5)
    expected = _reference_outputs(model_path, vectors, len(sg.outputs))
    got = _engine_outputs(eng_run, model_path, vectors, tmp_path,
                          "--arena", needed, "--arena-offset", offset)
    _compare(got, expected, model_path)


# --------------------------------------------------------------------------
# Unsupported operators


@pytest.mark.parametrize("model_path", _param(UNSUPPORTED_MODELS))
def test_unsupported_model_names_operator(eng_run, model_path):
    _, _, codes = _parse(model_path)
    names = _op_names()
    p = _run(eng_run, "--info", model_path)
    status, message = _assert_clean_failure(p, model_path.name)
    assert status in ("ENG_E_UNSUPPORTED_OP", "ENG_E_UNSUPPORTED"), message
    assert "not supported by the built-in engine" in message
    m = re.search(r"operator (\d+): ([A-Z0-9_]+)", message)
    assert m, message
    index, name = int(m.group(1)), m.group(2)
    assert name == names[codes[index]]
    op_index = int(_field(r"op=(-?\d+)", p.stderr))
    assert op_index == index
    unknown = [i for i, c in enumerate(codes) if c not in SUPPORTED_OPS]
    if status == "ENG_E_UNSUPPORTED_OP":
        assert index == unknown[0]
        assert int(_field(r"detail=(\d+)", p.stderr)) == codes[index]
    else:
        assert not unknown and codes[index] in SUPPORTED_OPS


# --------------------------------------------------------------------------
# Damaged models


def _sample_model():
    return _smallest_supported()


def test_truncated_models_fail_cleanly(eng_run, tmp_path):
    model_path = _sample_model()
    if model_path is None:
        pytest.skip("no models")
    data = model_path.read_bytes()
    rng = np.random.default_rng(7)
    cuts = {0, 1, 4, 7, 8, 16, len(data) // 2, len(data) - 4, len(data) - 1}
    cuts |= {int(c) for c in rng.integers(0, len(data), size=40)}
    for cut in sorted(cuts):
        f = tmp_path / f"cut{cut}.tflite"
        f.write_bytes(data[:cut])
        p = _run(eng_run, "--info", f)
        status, _ = _assert_clean_failure(p, f"{model_path.name} cut at {cut}")
        assert status == "ENG_E_MODEL_INVALID", (cut, p.stderr)


def test_random_bytes_fail_cleanly(eng_run, tmp_path):
    rng = np.random.default_rng(11)
    for i in range(40):
        n = int(rng.integers(0, 4096))
        blob = rng.integers(0, 256, size=n, dtype=np.uint8).tobytes()
        if i % 4 == 0 and n >= 8:
            # a plausible root offset, so the reader gets past the first check
            blob = (int(rng.integers(4, 64))).to_bytes(4, "little") + b"TFL3" + blob[8:]
        f = tmp_path / f"random{i}.tflite"
        f.write_bytes(blob)
        p = _run(eng_run, "--info", f)
        status, _ = _assert_clean_failure(p, f"random bytes #{i}")
        assert status == "ENG_E_MODEL_INVALID", p.stderr


def test_corrupted_models_never_crash(eng_run, tmp_path):
    """Bytes flipped in valid models either fail to load with a message or
    load and run; never an out-of-bounds access or undefined behaviour."""
    models = sorted(SUPPORTED_MODELS, key=lambda p: p.stat().st_size)[:3]
    if not models:
        pytest.skip("no models")
    rng = np.random.default_rng(3)
    for m_i, model_path in enumerate(models):
        data = model_path.read_bytes()
        for k in range(25):
            blob = bytearray(data)
            for _ in range(int(rng.integers(1, 5))):
                pos = int(rng.integers(0, len(blob)))
                blob[pos] = int(rng.integers(0, 256))
            f = tmp_path / f"corrupt{m_i}_{k}.tflite"
            f.write_bytes(bytes(blob))
            p = _run(eng_run, "--info", f)
            what = f"{model_path.name} corruption #{k}"
            if p.returncode != 0:
                _assert_clean_failure(p, what)
                continue
            n_in = sum(t["bytes"] for t in _parse_info(p.stdout)["inputs"])
            fin = tmp_path / "cin.bin"
            fin.write_bytes(rng.integers(0, 256, size=2 * n_in, dtype=np.uint8).tobytes())
            r = _run(eng_run, f, fin, tmp_path / "cout.bin")
            assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, (
                f"{what}: sanitizer report\n{r.stderr[-4000:]}"
            )
            assert r.returncode in (0, 3), f"{what}: exit {r.returncode}\n{r.stderr[-2000:]}"


def test_unsupported_op_in_called_subgraph(eng_run, tmp_path):
    """An unsupported operator inside the subgraph CALL_ONCE calls is named
    with its subgraph before anything runs."""
    import flatbuffers

    stateful = [p for p in STATEFUL_MODELS if p.parent.name == "test"]
    if not stateful:
        pytest.skip("no stateful model")
    schema_fb = _schema()
    model = schema_fb.ModelT.InitFromObj(
        schema_fb.Model.GetRootAsModel(stateful[0].read_bytes(), 0)
    )
    code = schema_fb.OperatorCodeT()
    code.builtinCode = 36  # GATHER
    code.deprecatedBuiltinCode = 36
    code.version = 1
    model.operatorCodes.append(code)
    model.subgraphs[1].operators[1].opcodeIndex = len(model.operatorCodes) - 1
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    bad = tmp_path / "gather_in_init.tflite"
    bad.write_bytes(bytes(builder.Output()))
    p = _run(eng_run, "--info", bad)
    status, message = _assert_clean_failure(p, bad.name)
    assert status == "ENG_E_UNSUPPORTED_OP", message
    assert message.startswith("subgraph 1 operator 1: GATHER is not supported"), message


@pytest.fixture(scope="session")
def fmath_check(eng_run) -> Path:
    exe = eng_run.parent / "fmath_check"
    assert exe.is_file()
    return exe


@pytest.mark.parametrize("func", ["exp", "tanh"])
def test_float_math_matches_host_libm(fmath_check, func):
    """expf/tanhf of the engine vs glibc on every 4099th float bit pattern
    (about a million inputs; the full 2^32 sweep passes too, see README)."""
    p = _run(fmath_check, func, 0, 0xFFFFFFFF, 4099)
    assert p.returncode == 0, p.stdout + p.stderr
    assert " 0 mismatches" in p.stdout


def test_exact_fma(fmath_check):
    p = _run(fmath_check, "fma", 400000, 1)
    assert p.returncode == 0, p.stdout + p.stderr


# --------------------------------------------------------------------------
# Damaged dimensions and strides (issue 11)


def _repacked(model, path: Path) -> Path:
    import flatbuffers

    builder = flatbuffers.Builder(1 << 16)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def _model_object(path: Path):
    schema_fb = _schema()
    return schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAsModel(path.read_bytes(), 0))


@pytest.mark.parametrize("dim, value", [(3, 0), (1, 0), (2, -7), (3, 1 << 30)])
def test_zero_negative_and_oversized_input_dimensions_are_refused_at_load(eng_run, tmp_path, dim, value):
    """A zero input channel count made conv_prepare divide by zero (the
    device faulted); every zero, negative or oversized dimension is refused
    at load with MODEL_INVALID naming the tensor and the dimension."""
    model = _model_object(MODELS_DIR / "test" / "conv_sweep.tflite")
    sg = model.subgraphs[0]
    tensor = int(sg.inputs[0])
    shape = np.array(sg.tensors[tensor].shape, dtype=np.int32)
    shape[dim] = value
    sg.tensors[tensor].shape = shape
    bad = _repacked(model, tmp_path / f"dim{dim}_{value}.tflite")
    p = _run(eng_run, "--info", bad)
    status, message = _assert_clean_failure(p, bad.name)
    assert status == "ENG_E_MODEL_INVALID", message
    assert f"tensor {tensor}" in message and f"dimension {dim}" in message and str(value) in message, message


def test_dynamic_dimension_stays_unsupported_not_invalid(eng_run, tmp_path):
    model = _model_object(MODELS_DIR / "test" / "conv_sweep.tflite")
    sg = model.subgraphs[0]
    shape = np.array(sg.tensors[sg.inputs[0]].shape, dtype=np.int32)
    shape[0] = -1
    sg.tensors[sg.inputs[0]].shape = shape
    p = _run(eng_run, "--info", _repacked(model, tmp_path / "dynamic.tflite"))
    status, message = _assert_clean_failure(p, "dynamic batch")
    assert status == "ENG_E_UNSUPPORTED" and "dynamic dimension" in message, message


@pytest.mark.parametrize("stride", [-(1 << 31), (1 << 31) - 1])
def test_extreme_strided_slice_strides_never_overflow(eng_run, tmp_path, stride):
    """STRIDED_SLICE's span + stride arithmetic overflowed a signed int on a
    damaged model (INT32_MIN negated, INT32_MAX added). Every stride of every
    slice is set to the extreme in turn: load fails cleanly or runs clean."""
    source = MODELS_DIR / "test" / "slicing_int8.tflite"
    base = _model_object(source)
    sg = base.subgraphs[0]
    slices = [k for k, op in enumerate(sg.operators)
              if max(base.operatorCodes[op.opcodeIndex].builtinCode,
                     base.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode) == 45]
    assert slices
    n_in = sum(int(np.prod(sg.tensors[i].shape)) for i in sg.inputs)
    fin = tmp_path / "in.bin"
    fin.write_bytes((bytes(range(256)) * (2 * n_in // 256 + 1))[:2 * n_in])

    for k in slices:
        for axis in range(4):
            model = _model_object(source)
            g = model.subgraphs[0]
            strides = g.tensors[g.operators[k].inputs[3]]
            data = np.frombuffer(bytes(model.buffers[strides.buffer].data), dtype="<i4").copy()
            data[axis] = stride
            model.buffers[strides.buffer].data = np.frombuffer(data.tobytes(), dtype=np.uint8)
            bad = _repacked(model, tmp_path / f"slice{k}_{axis}.tflite")
            p = _run(eng_run, "--info", bad)
            what = f"op {k} axis {axis} stride {stride}"
            if p.returncode != 0:
                _assert_clean_failure(p, what)
                continue
            r = _run(eng_run, bad, fin, tmp_path / "out.bin")
            assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, f"{what}\n{r.stderr[-3000:]}"
            assert r.returncode in (0, 3), f"{what}: exit {r.returncode}\n{r.stderr[-2000:]}"



# --------------------------------------------------------------------------
# Optimised kernels (firmware/engine/kernels/s8_dsp.c, issue 14)
#
# eng_run_dsp / eng_run_mve are the same engine built with the DSP or the
# Helium kernel set, their intrinsics in portable C (firmware/host/
# acle_portable.h, mve_portable.h): the arithmetic the Cortex-M4/M7/M33 and
# the M55 run, here under the sanitizers. Every kernel set must give TFLM's
# bytes on every bundled model and on random single layers built to hit what
# SIMD code gets wrong.


@pytest.fixture(scope="session", params=["dsp", "mve"])
def eng_run_dsp(eng_run, request) -> Path:
    """The engine with an optimised kernel set: DSP (SMLAD) or MVE (Helium)."""
    exe = eng_run.parent / f"eng_run_{request.param}"
    assert exe.is_file(), f"firmware/host did not build {exe.name}"
    return exe


@pytest.mark.parametrize("model_path", _param([p for p in SUPPORTED_MODELS
                                               if p.name not in {"gesture_float.tflite"}]))
def test_dsp_kernels_bit_exact_on_bundled_models(eng_run, eng_run_dsp, model_path, tmp_path):
    """Same outputs from both kernel sets (the reference set is compared
    with TFLM above), state and resets included."""
    _, sg, _ = _parse(model_path)
    vectors = _random_vectors(model_path, _io_specs(sg, sg.inputs), 12)
    ref = _engine_outputs(eng_run, model_path, vectors, tmp_path, resets=(6,))
    dsp = _engine_outputs(eng_run_dsp, model_path, vectors, tmp_path, resets=(6,))
    assert dsp == ref, f"{model_path.name}: DSP kernels differ from the reference kernels"


def test_dsp_kernels_keep_the_demo_arena_budget(eng_run_dsp):
    """The demo model's arena with an optimised kernel set stays within the
    8,192 B that robot/demo.robot and examples/pytest/test_gesture_model.py
    budget (dsp 6,672 B, mve 7,696 B: each optimised op keeps its dsp_chan
    array instead of the reference's multipliers, not both; the MVE set's
    padding and a negated shift once took both sets to 9,696 B)."""
    p = _run(eng_run_dsp, "--info", MODELS_DIR / "demo" / "gesture.tflite")
    assert p.returncode == 0, p.stderr
    assert _parse_info(p.stdout)["arena_used"] <= 8 * 1024


def test_per_op_data_size_of_a_huge_conv_does_not_wrap(eng_run_dsp, tmp_path):
    """A 1x1 CONV_2D with 160 M output channels (a 160 MB model): the
    optimised sets' per-op data (8 B + sizeof(dsp_chan) per channel) was
    summed in 32 bits and wrapped, so the engine asked for too little (and
    a wrap to a few bytes let prepare write gigabytes). Such layers take the
    reference kernels now: the arena needed is at least their 8 B a channel."""
    import flatbuffers

    if eng_run_dsp.name != "eng_run_dsp":
        pytest.skip("one kernel set is enough (the guard is shared; 3 s a run)")
    c = 160_000_000
    s = _schema()

    def tensor(shape, buffer, name):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = np.array(shape, np.int32), 9, buffer, name
        t.quantization = s.QuantizationParametersT(scale=[0.05], zeroPoint=[0])
        return t

    buffers = [s.BufferT(), s.BufferT(), s.BufferT()]
    buffers[1].data = np.zeros(c, np.uint8)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1], np.int32), np.array([2], np.int32)
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.Conv2DOptions, s.Conv2DOptionsT()
    op.builtinOptions.padding, op.builtinOptions.strideH, op.builtinOptions.strideW = 1, 1, 1
    sg = s.SubGraphT()
    sg.tensors = [tensor([1, 1, 1, 1], 0, "x"), tensor([c, 1, 1, 1], 1, "w"), tensor([1, 1, 1, c], 2, "y")]
    sg.inputs, sg.outputs, sg.operators = np.array([0], np.int32), np.array([2], np.int32), [op]
    opcode = s.OperatorCodeT()
    opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = 3, 3, 1
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [opcode], [sg], buffers
    builder = flatbuffers.Builder(c + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "huge_conv.tflite"
    path.write_bytes(builder.Output())
    del builder, buffers
    p = _run(eng_run_dsp, "--arena", 1 << 20, "--info", path)
    path.unlink()
    status, message = _assert_clean_failure(p, "huge conv")
    assert status == "ENG_E_ARENA_TOO_SMALL", message
    assert int(_field(r"detail=(\d+)", p.stderr)) >= 8 * c, message


_ACTIVATIONS = (0, 1, 2, 3)  # NONE, RELU, RELU_N1_TO_1, RELU6


def _out_size(size: int, f: int, stride: int, dil: int, same: bool) -> int:
    eff = (f - 1) * dil + 1
    return (size + stride - 1) // stride if same else (size - eff + stride) // stride


def _layer(kind: str, rng: np.random.Generator) -> tuple[bytes, str]:
    """One random int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED model:
    odd and even channel counts, 1x1 to 9x8 filters (72 taps: more than
    64), depth multipliers 1, 2, 4 and 5, strides 1-3, dilation
    1-2, SAME/VALID padding, per-channel or per-tensor scales, zero points
    at -128 and 127, scales that saturate the output, every fused activation."""
    s = _schema()
    zp = lambda: int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))  # noqa: E731
    in_zp, out_zp = zp(), zp()
    in_scale = float(rng.uniform(0.005, 0.1))
    act = int(rng.choice(_ACTIVATIONS))
    per_channel = bool(rng.integers(0, 2))
    batches = int(rng.choice([1, 1, 2]))
    if kind == "fc":
        depth = int(rng.choice([1, 3, 4, 7, 8, 16, 33]))
        units = int(rng.choice([1, 2, 3, 5, 10]))
        in_shape, w_shape, out_shape = [batches, depth], [units, depth], [batches, units]
        channels, k, qdim = units, depth, 0
        opts_type, opts = s.BuiltinOptions.FullyConnectedOptions, s.FullyConnectedOptionsT()
        opts.fusedActivationFunction = act
        code = 9
        desc = f"fc b{batches} d{depth} u{units}"
    else:
        fh, fw = (int(v) for v in rng.choice([(1, 1), (3, 3), (3, 3), (5, 3), (2, 2), (1, 3), (3, 1), (9, 8)]))
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        dh, dw = (1, 1) if rng.random() < 0.6 else (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        same = bool(rng.integers(0, 2))
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        if _out_size(h, fh, sh, dh, same) <= 0 or _out_size(w, fw, sw, dw, same) <= 0:
            same = True
        oh, ow = _out_size(h, fh, sh, dh, same), _out_size(w, fw, sw, dw, same)
        if kind == "conv":
            cin = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 16]))
            channels = int(rng.choice([1, 2, 3, 5, 8, 13]))
            w_shape, qdim, k = [channels, fh, fw, cin], 0, fh * fw * cin
            opts_type, opts, code = s.BuiltinOptions.Conv2DOptions, s.Conv2DOptionsT(), 3
        else:
            cin = int(rng.choice([1, 2, 3, 4, 5, 7, 8, 9, 16]))
            mult = 1 if rng.random() < 0.75 else int(rng.choice([2, 4, 5]))
            channels = cin * mult
            w_shape, qdim, k = [1, fh, fw, channels], 3, fh * fw
            opts_type, opts, code = s.BuiltinOptions.DepthwiseConv2DOptions, s.DepthwiseConv2DOptionsT(), 4
            opts.depthMultiplier = mult
        opts.padding = 0 if same else 1
        opts.strideH, opts.strideW, opts.dilationHFactor, opts.dilationWFactor = sh, sw, dh, dw
        opts.fusedActivationFunction = act
        in_shape, out_shape = [batches, h, w, cin], [batches, oh, ow, channels]
        desc = (f"{kind} b{batches} {h}x{w}x{cin} f{fh}x{fw} s{sh}{sw} d{dh}{dw} "
                f"{'SAME' if same else 'VALID'} -> {channels}")
    n_scales = channels if per_channel else 1
    w_scales = rng.uniform(0.001, 0.05, n_scales).astype(np.float32)
    # output scale around the accumulator's spread: some layers saturate
    out_scale = float(in_scale * float(w_scales.mean()) * 127 * np.sqrt(k) * rng.choice([0.05, 0.5, 2.0]))
    weights = rng.integers(-128, 128, w_shape, dtype=np.int8)
    bias = rng.integers(-(1 << 16), 1 << 16, channels).astype(np.int32)

    def quant(scales, zps, dim=0):
        return s.QuantizationParametersT(scale=[float(v) for v in scales], zeroPoint=[int(z) for z in zps],
                                         quantizedDimension=dim)

    def tensor(shape, dtype, buffer, name, q):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name, t.quantization = np.array(shape, np.int32), dtype, buffer, name, q
        return t

    buffers = [s.BufferT(), s.BufferT(), s.BufferT(), s.BufferT(), s.BufferT()]
    buffers[2].data = np.frombuffer(weights.tobytes(), np.uint8)
    buffers[3].data = np.frombuffer(bias.astype("<i4").tobytes(), np.uint8)
    bias_scales = (in_scale * w_scales.astype(np.float64)).astype(np.float32)
    tensors = [
        tensor(in_shape, 9, 1, "input", quant([in_scale], [in_zp])),
        tensor(w_shape, 9, 2, "weights", quant(w_scales, [0] * n_scales, qdim)),
        tensor([channels], 2, 3, "bias", quant(bias_scales if per_channel else bias_scales[:1],
                                              [0] * n_scales)),
        tensor(out_shape, 9, 4, "output", quant([out_scale], [out_zp])),
    ]
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1, 2], np.int32), np.array([3], np.int32)
    op.builtinOptionsType, op.builtinOptions = opts_type, opts
    sg = s.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, np.array([0], np.int32), np.array([3], np.int32), [op]
    opcode = s.OperatorCodeT()
    opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = code, code, 1
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [opcode], [sg], buffers
    model.description = desc
    import flatbuffers

    builder = flatbuffers.Builder(1 << 12)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    desc += f" {'per-channel' if per_channel else 'per-tensor'} zp {in_zp}/{out_zp} act {act}"
    return bytes(builder.Output()), desc


@pytest.mark.parametrize("kind", ["conv", "dwconv", "fc"])
def test_dsp_kernels_bit_exact_on_random_layers(eng_run, eng_run_dsp, kind, tmp_path):
    """24 random layers per operator, 3 vectors each (extreme inputs -128 and
    127 included): the DSP kernels, the reference kernels and TFLM agree to
    the byte."""
    rng = np.random.default_rng(zlib.crc32(kind.encode()))
    for i in range(24):
        data, desc = _layer(kind, rng)
        path = tmp_path / f"{kind}{i}.tflite"
        path.write_bytes(data)
        _, sg, _ = _parse(path)
        shape = tuple(int(d) for d in sg.tensors[sg.inputs[0]].shape)
        vectors = [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)],
                   [rng.integers(-128, 128, shape, dtype=np.int8)]]
        expected = _reference_outputs(path, vectors, 1)
        for exe in (eng_run, eng_run_dsp):
            got = _engine_outputs(exe, path, vectors, tmp_path)
            assert got == b"".join(expected), f"{exe.name} differs from TFLM on layer {i}: {desc}"


@pytest.mark.parametrize("cin", [300, 144])
def test_dsp_conv_larger_than_the_im2col_scratch_falls_back(eng_run, eng_run_dsp, cin, tmp_path):
    """A 3x3 filter over 300 channels (2,700 taps) does not fit the two
    2,304-byte im2col columns: the op runs the reference kernel, same bytes.
    Over 144 channels (1,296 taps) two columns fit but not the four the MVE
    set blocks by: it takes one column at a time, same bytes."""
    rng = np.random.default_rng(7)
    for _ in range(50):
        data, desc = _layer("conv", rng)
        if "f3x3" in desc:
            break
    model = _schema().ModelT.InitFromObj(_schema().Model.GetRootAsModel(data, 0))
    sg = model.subgraphs[0]
    shape = list(sg.tensors[0].shape)
    shape[3] = cin
    sg.tensors[0].shape = np.array(shape, np.int32)
    w_shape = list(sg.tensors[1].shape)
    w_shape[3] = cin
    sg.tensors[1].shape = np.array(w_shape, np.int32)
    model.buffers[2].data = np.frombuffer(rng.integers(-128, 128, int(np.prod(w_shape)), dtype=np.int8).tobytes(),
                                          np.uint8)
    path = _repacked(model, tmp_path / "wide.tflite")
    vectors = [[rng.integers(-128, 128, shape, dtype=np.int8)] for _ in range(2)]
    expected = b"".join(_reference_outputs(path, vectors, 1))
    assert _engine_outputs(eng_run_dsp, path, vectors, tmp_path) == expected, desc
    assert _engine_outputs(eng_run, path, vectors, tmp_path) == expected, desc


@pytest.mark.parametrize("platform, kernels, ok", [
    ("mps2-an386", "dsp", True), ("mps3-an547", "mve", True), ("mps3-an547", "dsp", True),
    ("mps2-an385", "dsp", False), ("mps2-an505", "mve", False), ("riscv32-virt", "dsp", False),
    ("mps2-an386", "fast", False),
])
def test_kernel_set_the_core_cannot_run_is_refused_before_building(monkeypatch, platform, kernels, ok):
    """HIL_KERNELS (or [firmware] kernels) naming a set the platform's core
    lacks the instructions for is a usage error naming both, not a compiler
    #error after a build (files only, no build)."""
    from harness.build.cmake import _kernel_set
    from harness.errors import UsageError
    from harness.platforms import load_platform

    monkeypatch.setenv("HIL_KERNELS", kernels)
    if ok:
        assert _kernel_set(load_platform(platform)) == kernels
        return
    with pytest.raises(UsageError) as err:
        _kernel_set(load_platform(platform))
    assert kernels in str(err.value) and "HIL_KERNELS" in str(err.value)


@pytest.mark.parametrize("cpu, kernels, ok", [
    ("cortex-m55", "mve", True), ("cortex-m55+nomve", "mve", False), ("cortex-m55+nodsp", "mve", False),
    ("cortex-m55+nomve", "dsp", True), ("cortex-m55+nodsp", "dsp", False),
])
def test_nodsp_takes_mve_away_too(monkeypatch, cpu, kernels, ok):
    """GCC's +nodsp also disables MVE: kernels = "mve" on such a core is
    refused before building, like +nomve."""
    import dataclasses

    from harness.build.cmake import _kernel_set
    from harness.errors import UsageError
    from harness.platforms import load_platform

    platform = load_platform("mps3-an547")
    platform = dataclasses.replace(platform, firmware=dataclasses.replace(
        platform.firmware, cpu_flags=(f"-mcpu={cpu}", "-mfloat-abi=hard")))
    monkeypatch.setenv("HIL_KERNELS", kernels)
    if ok:
        assert _kernel_set(platform) == kernels
    else:
        with pytest.raises(UsageError, match=kernels):
            _kernel_set(platform)


def _add_layer(rng: np.random.Generator, builtin: int) -> tuple[bytes, str]:
    """One random same-shape int8 ADD (0) or SUB (41): zero points at -128
    and 127 among them, scales a decade apart, every fused activation."""
    s = _schema()
    shape = [1, int(rng.integers(1, 6)), int(rng.integers(1, 6)), int(rng.choice([1, 3, 4, 5, 8, 13]))]
    zp = lambda: int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))  # noqa: E731
    scales = [float(v) for v in rng.uniform(0.005, 0.1, 3)]
    zps = [zp(), zp(), zp()]
    tensors = []
    for k, name in enumerate(("a", "b", "y")):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = np.array(shape, np.int32), 9, 0, name
        t.quantization = s.QuantizationParametersT(scale=[scales[k]], zeroPoint=[zps[k]])
        tensors.append(t)
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0, 1], np.int32), np.array([2], np.int32)
    if builtin == 0:
        op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.AddOptions, s.AddOptionsT()
    else:
        op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.SubOptions, s.SubOptionsT()
    op.builtinOptions.fusedActivationFunction = int(rng.choice(_ACTIVATIONS))
    sg = s.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, np.array([0, 1], np.int32), np.array([2], np.int32), [op]
    opcode = s.OperatorCodeT()
    opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = builtin, builtin, 1
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [opcode], [sg], [s.BufferT()]
    import flatbuffers

    builder = flatbuffers.Builder(1 << 10)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), f"{'ADD' if builtin == 0 else 'SUB'} {shape} scales {scales} zps {zps}"


@pytest.mark.parametrize("builtin", [0, 41], ids=["add", "sub"])
def test_dsp_elementwise_add_sub_bit_exact_on_random_layers(eng_run, eng_run_dsp, builtin, tmp_path):
    """Same-shape int8 ADD / SUB (the optimised sets' one-loop / vector
    path): 16 random layers, extreme and random inputs, TFLM's bytes."""
    rng = np.random.default_rng(1000 + builtin)
    for i in range(16):
        data, desc = _add_layer(rng, builtin)
        path = tmp_path / f"binary{i}.tflite"
        path.write_bytes(data)
        _, sg, _ = _parse(path)
        shape = tuple(int(d) for d in sg.tensors[0].shape)
        vectors = [[np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)],
                   [np.full(shape, 127, np.int8), np.full(shape, -128, np.int8)],
                   [rng.integers(-128, 128, shape, dtype=np.int8), rng.integers(-128, 128, shape, dtype=np.int8)]]
        expected = b"".join(_reference_outputs(path, vectors, 1))
        for exe in (eng_run, eng_run_dsp):
            assert _engine_outputs(exe, path, vectors, tmp_path) == expected, f"{exe.name} differs from TFLM: {desc}"


def _pool_layer(rng: np.random.Generator, builtin: int) -> tuple[bytes, str]:
    """One random int8 AVERAGE_POOL_2D (1) or MAX_POOL_2D (17): odd channel
    counts and more than 16 and 64 (the vector and sum chunks), SAME padding
    (border windows partly outside the input), strides above the window,
    batches, zero points at the extremes, every fused activation."""
    fh, fw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    same = bool(rng.integers(0, 2))
    h, w = int(rng.integers(1, 9)), int(rng.integers(1, 9))
    if _out_size(h, fh, sh, 1, same) <= 0 or _out_size(w, fw, sw, 1, same) <= 0:
        same = True
    c = int(rng.choice([1, 3, 5, 16, 17, 31, 64, 67, 130]))
    b = int(rng.choice([1, 1, 2]))
    scale, zp = float(rng.uniform(0.005, 0.1)), int(rng.choice([-128, 127, int(rng.integers(-128, 128))]))
    return _pool_model(builtin, [b, h, w, c], (fh, fw), (sh, sw), same, scale, zp, int(rng.choice(_ACTIVATIONS)))


def _pool_model(builtin: int, shape: list[int], window: tuple[int, int], strides: tuple[int, int], same: bool,
                scale: float, zp: int, activation: int) -> tuple[bytes, str]:
    """An int8 AVERAGE_POOL_2D (1) or MAX_POOL_2D (17) of input `shape`
    (NHWC) as a one-operator model, and its description."""
    s = _schema()
    (b, h, w, c), (fh, fw), (sh, sw) = shape, window, strides
    out_shape = [b, _out_size(h, fh, sh, 1, same), _out_size(w, fw, sw, 1, same), c]
    tensors = []
    for name, sh_ in (("x", shape), ("y", out_shape)):
        t = s.TensorT()
        t.shape, t.type, t.buffer, t.name = np.array(sh_, np.int32), 9, 0, name
        t.quantization = s.QuantizationParametersT(scale=[scale], zeroPoint=[zp])
        tensors.append(t)
    opts = s.Pool2DOptionsT()
    opts.padding, opts.strideH, opts.strideW, opts.filterHeight, opts.filterWidth = (
        0 if same else 1, sh, sw, fh, fw)
    opts.fusedActivationFunction = activation
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, np.array([0], np.int32), np.array([1], np.int32)
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.Pool2DOptions, opts
    sg = s.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, np.array([0], np.int32), np.array([1], np.int32), [op]
    opcode = s.OperatorCodeT()
    opcode.builtinCode, opcode.deprecatedBuiltinCode, opcode.version = builtin, builtin, 1
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [opcode], [sg], [s.BufferT()]
    import flatbuffers

    builder = flatbuffers.Builder(1 << 10)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), (f"{'AVG' if builtin == 1 else 'MAX'} {shape} f{fh}x{fw} s{sh}{sw} "
                                     f"{'SAME' if same else 'VALID'} zp {zp} act {opts.fusedActivationFunction}")


@pytest.mark.parametrize("builtin", [1, 17], ids=["avgpool", "maxpool"])
def test_pools_bit_exact_on_random_layers(eng_run, eng_run_dsp, builtin, tmp_path):
    """int8 pools (pooling.c; dsp: the max pool four channels per word; mve:
    sixteen (max) or four (average) channels per vector, tail-predicated):
    16 random layers, extreme and random inputs, TFLM's bytes from the
    reference and the optimised sets."""
    rng = np.random.default_rng(2000 + builtin)
    for i in range(16):
        data, desc = _pool_layer(rng, builtin)
        path = tmp_path / f"pool{i}.tflite"
        path.write_bytes(data)
        _, sg, _ = _parse(path)
        shape = tuple(int(d) for d in sg.tensors[0].shape)
        vectors = [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)],
                   [rng.integers(-128, 128, shape, dtype=np.int8)]]
        expected = b"".join(_reference_outputs(path, vectors, 1))
        for exe in (eng_run, eng_run_dsp):
            assert _engine_outputs(exe, path, vectors, tmp_path) == expected, f"{exe.name} differs from TFLM: {desc}"


#: (input NHWC, window, strides, SAME) of average pools whose sums outgrow 16 bits: the dsp set adds four channels
#: per word in 16-bit lanes, exact up to 256 taps, and widens them into 32-bit sums every 256 taps at most
_LARGE_AVERAGE_POOLS = [
    ([1, 25, 5, 64], (25, 5), (1, 1), False),   # keyword spotting's, 125 taps
    ([1, 20, 20, 7], (20, 20), (1, 1), False),  # 400 taps: widened after 12 rows, then 8; 3 channels left over
    ([2, 17, 17, 9], (16, 16), (1, 1), True),   # 256 taps inside, fewer at the border
    ([1, 3, 300, 5], (3, 300), (1, 1), False),  # rows of 300 taps: more than one lane can hold
    ([1, 2, 260, 4], (2, 257), (1, 3), True),   # rows of 257 taps, and shorter ones at the border
    ([1, 6, 4, 13], (5, 6), (1, 1), True),      # windows cut to the input's width: one run of taps
]


@pytest.mark.parametrize("shape, window, strides, same", _LARGE_AVERAGE_POOLS,
                         ids=["kws", "400taps", "256taps", "row300", "row257", "fullwidth"])
def test_average_pool_sums_beyond_16_bits_bit_exact(eng_run, eng_run_dsp, shape, window, strides, same, tmp_path):
    """Average pools with up to 900 taps, fed all -128, all 127 (the largest
    sums) and random inputs: TFLM's bytes from every kernel set."""
    rng = np.random.default_rng(sum(shape) + sum(window))
    for zp, act in ((0, 0), (-128, 1), (127, 3)):
        data, desc = _pool_model(1, shape, window, strides, same, 0.02, zp, act)
        path = tmp_path / "pool.tflite"
        path.write_bytes(data)
        vectors = [[np.full(shape, -128, np.int8)], [np.full(shape, 127, np.int8)],
                   [rng.integers(-128, 128, shape, dtype=np.int8)]]
        expected = b"".join(_reference_outputs(path, vectors, 1))
        for exe in (eng_run, eng_run_dsp):
            assert _engine_outputs(exe, path, vectors, tmp_path) == expected, f"{exe.name} differs from TFLM: {desc}"


# --------------------------------------------------------------------------
# Small operators' fast paths (issue 14): edge values against TFLM


def _single_op_model(source: Path, op_index: int, tmp_path: Path) -> Path:
    """`source` cut down to one operator of subgraph 0, whose input and
    output become the model's, so that operator's bytes are compared."""
    model = _model_object(source)
    sg = model.subgraphs[0]
    op = sg.operators[op_index]
    sg.operators = [op]
    sg.inputs = [int(op.inputs[0])]
    sg.outputs = [int(op.outputs[0])]
    return _repacked(model, tmp_path / f"{source.stem}_op{op_index}.tflite")


def test_quantize_rounding_edges_match_tflm(eng_run, tmp_path):
    """float32 -> int8 QUANTIZE rounds x / scale half away from zero on a
    fast path (quantize.c: trunc(2q) - trunc(q) here, VRINTA on the M55) and
    keeps the reference's formula beyond it: exact ties, their float
    neighbours, the 2^23 and int32 boundaries, -0.0, subnormals, infinities
    and NaN give TFLM's bytes."""
    path = _single_op_model(MODELS_DIR / "test" / "float_io.tflite", 0, tmp_path)
    _, sg, _ = _parse(path)
    (dtype, shape), = _io_specs(sg, sg.inputs)
    scale = np.float32(sg.tensors[sg.outputs[0]].quantization.scale[0])
    ties = (np.arange(-300, 300, dtype=np.float32) + np.float32(0.5)) * scale
    specials = np.array([np.nan, np.inf, -np.inf, 3e38, -3e38, -0.0, 1e-40, -1e-40,
                         8388608.0 * scale, -8388608.0 * scale, 2147483648.0 * scale,
                         -2147483904.0 * scale], dtype=np.float32)
    values = np.concatenate([ties, np.nextafter(ties, np.float32(np.inf)),
                             np.nextafter(ties, np.float32(-np.inf)), specials]).astype(dtype)
    per = int(np.prod(shape))
    values = np.resize(values, -(-values.size // per) * per)
    vectors = [[v.reshape(shape)] for v in values.reshape(-1, per)]
    expected = _reference_outputs(path, vectors, 1)
    _compare(_engine_outputs(eng_run, path, vectors, tmp_path), expected, path)


def test_dequantize_every_int8_value_matches_tflm(eng_run, tmp_path):
    """DEQUANTIZE multiplies in float, not double (quantize.c): every int8
    value gives TFLM's float bytes."""
    source = MODELS_DIR / "test" / "float_io.tflite"
    model = _model_object(source)
    last = len(model.subgraphs[0].operators) - 1
    path = _single_op_model(source, last, tmp_path)
    _, sg, _ = _parse(path)
    (dtype, shape), = _io_specs(sg, sg.inputs)
    per = int(np.prod(shape))
    values = np.resize(np.arange(-128, 128, dtype=np.int8), -(-256 // per) * per)
    vectors = [[v.reshape(shape)] for v in values.reshape(-1, per)]
    expected = _reference_outputs(path, vectors, 1)
    _compare(_engine_outputs(eng_run, path, vectors, tmp_path), expected, path)
