#!/usr/bin/env python3
"""Build and run the firmware's libFuzzer targets (firmware/fuzz/).

    python scripts/fuzz.py build [TARGET ...]          build with clang + ASan/UBSan
    python scripts/fuzz.py run TARGET [--runs N] [--seconds T] [--work DIR]
    python scripts/fuzz.py replay TARGET [FILE ...]    run the corpus (or FILEs) once
    python scripts/fuzz.py seed                        (re)write the seed inputs

Targets: `proto` (the protocol server with the built-in engine behind it,
fed sequences of frames) and `engine` (loader + prepare + invoke on model
bytes). `run` fuzzes on one core from a scratch copy of the committed
corpus (firmware/fuzz/corpus/TARGET, which stays small: seeds and every
crash found, minimised) and prints executions/s, total executions and the
corpus size. A crash leaves its input in the work directory and exits 1.

Needs Debian's clang and its fuzzer runtime (packages clang,
libclang-rt-14-dev).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
FUZZ_DIR = FIRMWARE / "fuzz"
CORPUS = FUZZ_DIR / "corpus"
BUILD = REPO / "build" / "fuzz"

ENGINE_SOURCES = sorted((FIRMWARE / "engine").glob("*.c")) + sorted((FIRMWARE / "engine" / "kernels").glob("*.c"))
PROTOCOL_SOURCES = [FIRMWARE / "protocol" / n for n in ("proto.c", "cobs.c", "crc32.c")]
TARGETS = {
    "engine": [FUZZ_DIR / "engine_fuzz.c", *ENGINE_SOURCES],
    "proto": [FUZZ_DIR / "proto_fuzz.c", *PROTOCOL_SOURCES, FIRMWARE / "app" / "builtin_ops.c",
              *ENGINE_SOURCES],
}
# the largest input each target is fuzzed with: models up to 64 KB (the
# smallest platform's model buffer); frame sequences long enough to load the
# small bundled models (the corpus replays longer ones, such as a sequence
# that fills the whole model buffer)
MAX_LEN = {"engine": 65536, "proto": 16384}
CFLAGS = ["-std=c99", "-D_DEFAULT_SOURCE", "-g", "-O1", "-fno-omit-frame-pointer",
          "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
          "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=all"]


class FuzzError(Exception):
    """A fuzz run could not be set up (no clang, no fuzzer runtime)."""


def clang() -> str:
    for name in ("clang", "clang-14"):
        path = shutil.which(name)
        if path:
            return path
    raise FuzzError("clang not found: apt-get install clang libclang-rt-14-dev")


def missing_runtime() -> str | None:
    """Why the fuzzers cannot be built here, or None when they can."""
    try:
        cc = clang()
    except FuzzError as exc:
        return str(exc)
    probe = subprocess.run([cc, "-print-file-name=libclang_rt.fuzzer-x86_64.a"],
                           capture_output=True, text=True)
    found = probe.stdout.strip()
    if probe.returncode != 0 or not os.path.isabs(found) or not os.path.exists(found):
        return "clang's libFuzzer runtime is missing: apt-get install libclang-rt-14-dev"
    return None


def build(target: str, out_dir: Path = BUILD) -> Path:
    """Compile one target; rebuilds only when a source is newer than the binary."""
    why = missing_runtime()
    if why:
        raise FuzzError(why)
    sources = TARGETS[target]
    exe = out_dir / f"{target}_fuzz"
    headers = list((FIRMWARE / "engine").glob("*.h")) + list((FIRMWARE / "protocol").glob("*.h")) + \
        list((FIRMWARE / "app").glob("*.h"))
    if exe.exists() and all(p.stat().st_mtime < exe.stat().st_mtime for p in [*sources, *headers]):
        return exe
    out_dir.mkdir(parents=True, exist_ok=True)
    fresh = exe.with_name(f"{exe.name}.{os.getpid()}.tmp")  # a running fuzzer keeps the old one
    cmd = [clang(), *CFLAGS, "-I", str(FIRMWARE / "engine"), "-o", str(fresh), *map(str, sources), "-lm"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        fresh.unlink(missing_ok=True)
        raise FuzzError(f"building {target} failed:\n{done.stderr[-4000:]}")
    os.replace(fresh, exe)
    return exe


def corpus_files(target: str) -> list[Path]:
    return sorted(p for p in (CORPUS / target).iterdir() if p.is_file())


def replay(target: str, files: list[Path] | None = None) -> subprocess.CompletedProcess:
    """Run each file once through the target (libFuzzer's file-argument mode)."""
    exe = build(target)
    files = files if files is not None else corpus_files(target)
    return subprocess.run([str(exe), "-runs=1", *map(str, files)],
                          capture_output=True, text=True, timeout=600)


def run(target: str, runs: int | None, seconds: int | None, work: Path | None) -> dict:
    """Fuzz on one core; returns the figures it printed."""
    exe = build(target)
    work = work or BUILD / "work" / target
    (work / "corpus").mkdir(parents=True, exist_ok=True)
    (work / "crashes").mkdir(parents=True, exist_ok=True)
    args = [str(exe), str(work / "corpus"), str(CORPUS / target), f"-max_len={MAX_LEN[target]}",
            "-print_final_stats=1", "-timeout=10", "-rss_limit_mb=1024", "-jobs=0",
            f"-artifact_prefix={work / 'crashes'}/"]
    if runs is not None:
        args.append(f"-runs={runs}")
    if seconds is not None:
        args.append(f"-max_total_time={seconds}")
    log = work / "fuzz.log"  # libFuzzer's progress lines, readable while it runs
    started = time.monotonic()
    with open(log, "w") as out:
        done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    text = log.read_text(errors="replace")
    stats = dict(re.findall(r"^stat::(\w+):\s*(\d+)", text, re.M))
    progress = re.findall(r"^#(\d+)\s", text, re.M)  # when it ended before its final stats
    executions = int(stats.get("number_of_executed_units", progress[-1] if progress else 0))
    corpus = [p for p in (work / "corpus").iterdir() if p.is_file()]
    figures = {
        "target": target, "exit": done.returncode, "executions": executions,
        "seconds": round(elapsed, 1), "exec_per_s": round(executions / elapsed) if elapsed else 0,
        "corpus_files": len(corpus), "corpus_bytes": sum(p.stat().st_size for p in corpus),
        "crashes": sorted(p.name for p in (work / "crashes").iterdir()),
    }
    if done.returncode != 0:
        figures["log_tail"] = text[-3000:]
    return figures


# ---- seeds -----------------------------------------------------------------

def _frame_record(msg_type: int, seq: int, payload: bytes = b"", *, twice: bool = False,
                  corrupt: bool = False) -> bytes:
    """One record of the proto target's input (see firmware/fuzz/proto_fuzz.c)."""
    body = bytes([msg_type, seq & 0xFF]) + payload
    control = (0x20 if twice else 0) | (0x40 if corrupt else 0)
    return bytes([control]) + struct.pack("<H", len(body)) + body


def _noise_record(data: bytes) -> bytes:
    return bytes([0x80 | len(data)]) + data


def _session(model: bytes, input_sizes: list[int], chunk: int = 1000) -> bytes:
    """HELLO, a chunked LOAD_MODEL, every input, INVOKE (also repeated), and
    every read-back request: the state a real session walks through."""
    seq = iter(range(1, 1 << 16))
    out = [_frame_record(0x01, next(seq))]
    for offset in range(0, len(model), chunk):
        out.append(_frame_record(0x02, next(seq), struct.pack("<BII", 0, len(model), offset)
                                 + model[offset:offset + chunk]))
    out.append(_frame_record(0x07, next(seq), bytes([0, 0])))
    out.append(_frame_record(0x07, next(seq), bytes([1, 0])))
    for index, size in enumerate(input_sizes):
        data = bytes((i * 37 + index) & 0xFF for i in range(size))
        for offset in range(0, size, chunk):
            out.append(_frame_record(0x03, next(seq), bytes([index]) + struct.pack("<BII", 0, size, offset)
                                     + data[offset:offset + chunk]))
    out.append(_frame_record(0x04, next(seq), b"\x00", twice=True))
    # one round trip per vector: inputs read from the host file, outputs and profile in the reply
    out.append(_frame_record(0x04, next(seq), bytes([0x1C, len(input_sizes)])
                             + struct.pack(f"<{len(input_sizes)}I", *range(len(input_sizes))) + b"/in", twice=True))
    # the batch cursor: INPUTS|NEXT names path, offsets and stride once, then NEXT alone steps through the
    # file (past its end: IO; a stride that would pass 4 GiB: LIMIT), also retransmitted
    out.append(_frame_record(0x04, next(seq), bytes([0x3C, len(input_sizes)])
                             + struct.pack(f"<{len(input_sizes)}II", *range(len(input_sizes)), 64) + b"/in"))
    out.append(_frame_record(0x04, next(seq), b"\x2C", twice=True))
    out.append(_frame_record(0x04, next(seq), b"\x24"))
    out.append(_frame_record(0x04, next(seq), bytes([0x34, len(input_sizes)])
                             + struct.pack(f"<{len(input_sizes)}II", *range(len(input_sizes)), 0xFFFFFFF0) + b"/in"))
    out.append(_frame_record(0x04, next(seq), b"\x20"))
    out.append(_frame_record(0x04, next(seq), b"\x20"))
    out.append(_frame_record(0x05, next(seq), struct.pack("<BIH", 0, 0, 512)))
    out.append(_frame_record(0x08, next(seq), struct.pack("<H", 0)))
    out.append(_frame_record(0x09, next(seq)))
    out.append(_frame_record(0x04, next(seq), struct.pack("<BH", 0x02, 0)))
    out.append(_frame_record(0x0A, next(seq), struct.pack("<HIH", 0, 0, 256)))
    out.append(_frame_record(0x06, next(seq), b"\x00"))
    out.append(_frame_record(0x04, next(seq), b"\x20"))  # RESET forgot the cursor: BAD_SEQUENCE
    out.append(_frame_record(0x04, next(seq), b"\x01"))
    return b"".join(out)


def _damaged_models() -> dict[str, bytes]:
    """The engine bugs of issue 11 as model files: a zero input channel
    count (conv_prepare divided by zero) and an INT32_MIN stride on a
    shrunk STRIDED_SLICE axis (negated in 32 bits)."""
    import flatbuffers
    import numpy as np
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def parse(name):
        data = (REPO / "models" / "test" / name).read_bytes()
        return schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))

    def pack(model) -> bytes:
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    conv = parse("conv_sweep.tflite")
    g = conv.subgraphs[0]
    shape = np.array(g.tensors[g.inputs[0]].shape, dtype=np.int32)
    shape[3] = 0
    g.tensors[g.inputs[0]].shape = shape
    sliced = parse("slicing_int8.tflite")
    g = sliced.subgraphs[0]
    strides = g.tensors[g.operators[6].inputs[3]]
    values = np.frombuffer(bytes(sliced.buffers[strides.buffer].data), dtype="<i4").copy()
    values[0] = -(1 << 31)
    sliced.buffers[strides.buffer].data = np.frombuffer(values.tobytes(), dtype=np.uint8)
    return {"crash-conv-zero-input-channels": pack(conv),
            "crash-strided-slice-int32-min-stride": pack(sliced)}


def seed() -> None:
    """Write the seed inputs: the bundled models for the engine target, and
    whole sessions (and damaged ones) for the protocol target."""
    sys.path.insert(0, str(REPO))
    from harness.model.tflite import load_model

    models = sorted((REPO / "models" / "test").glob("*.tflite")) + [REPO / "models" / "demo" / "gesture.tflite"]
    (CORPUS / "engine").mkdir(parents=True, exist_ok=True)
    (CORPUS / "proto").mkdir(parents=True, exist_ok=True)
    for path in models:
        data = path.read_bytes()
        (CORPUS / "engine" / f"seed-{path.stem}").write_bytes(data)
    # the protocol target gets a few small models (the corpus stays small)
    for path in [REPO / "models" / "test" / n for n in
                 ("activations_int8.tflite", "stateful_int8.tflite", "float_io.tflite", "slicing_int8.tflite")]:
        info = load_model(path)
        (CORPUS / "proto" / f"seed-session-{path.stem}").write_bytes(
            _session(info.data, [t.nbytes for t in info.inputs]))
    tiny = (REPO / "models" / "test" / "activations_int8.tflite").read_bytes()
    damaged = [
        _frame_record(0x01, 1) + _noise_record(b"\x00\x13\x37\x00\xff" * 5) + _frame_record(0x01, 2, corrupt=True),
        # a continuation whose total shrinks below what was already received,
        # near the end of the 64 KB model buffer
        b"".join(_frame_record(0x02, 1 + k, struct.pack("<BII", 0, 65536, 1000 * k) + b"\x11" * 1000)
                 for k in range(65))
        + _frame_record(0x02, 66, struct.pack("<BII", 0, 100, 65000) + b"\x22" * 1000),
        # a host-file transfer served by the stub, then reads past every end
        _frame_record(0x02, 1, struct.pack("<BII", 1, len(tiny), 0) + b"/m"),
        _frame_record(0x02, 1, struct.pack("<BII", 0, len(tiny), 0) + tiny[:1000])
        + _frame_record(0x02, 2, struct.pack("<BII", 0, len(tiny), 1000) + tiny[1000:2000])
        + _frame_record(0x02, 3, struct.pack("<BII", 0, len(tiny), 2000) + tiny[2000:])
        + _frame_record(0x05, 4, struct.pack("<BIH", 0, 0xFFFFFFF0, 0xFFFF))
        + _frame_record(0x0A, 5, struct.pack("<HIH", 0xFFFF, 0xFFFFFFFF, 0xFFFF))
        + _frame_record(0x08, 6, struct.pack("<H", 0xFFFF))
        + _frame_record(0x07, 7, bytes([1, 255]))
        + _frame_record(0x04, 8, struct.pack("<BH", 0x02, 0xFFFF))
        + _frame_record(0x06, 9, b"\x01") + _frame_record(0x01, 10),
    ]
    for i, data in enumerate(damaged):
        # damaged[1] is the bug of issue 11 that ASan showed: named as a crash
        name = "crash-load-model-total-shrinks" if i == 1 else f"seed-damaged-{i}"
        (CORPUS / "proto" / name).write_bytes(data)
    for name, data in _damaged_models().items():
        (CORPUS / "engine" / name).write_bytes(data)
    print(f"seeds: engine {len(list((CORPUS / 'engine').iterdir()))} files, "
          f"proto {len(list((CORPUS / 'proto').iterdir()))} files")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build")
    p.add_argument("targets", nargs="*", metavar="TARGET", help=" or ".join(TARGETS))
    p = sub.add_parser("run")
    p.add_argument("target", choices=TARGETS)
    p.add_argument("--runs", type=int)
    p.add_argument("--seconds", type=int)
    p.add_argument("--work", type=Path)
    p = sub.add_parser("replay")
    p.add_argument("target", choices=TARGETS)
    p.add_argument("files", nargs="*", type=Path)
    sub.add_parser("seed")
    args = parser.parse_args(argv)
    try:
        unknown = [t for t in getattr(args, "targets", []) if t not in TARGETS]
        if unknown:
            parser.error(f"unknown target {unknown[0]!r}: choose from {', '.join(TARGETS)}")
        if args.command == "build":
            for target in args.targets or TARGETS:
                print(build(target))
        elif args.command == "run":
            if args.runs is None and args.seconds is None:
                parser.error("give --runs N or --seconds T")
            figures = run(args.target, args.runs, args.seconds, args.work)
            print(f"{figures['target']}: {figures['executions']} executions in {figures['seconds']} s "
                  f"({figures['exec_per_s']} exec/s), corpus {figures['corpus_files']} files "
                  f"{figures['corpus_bytes']} bytes, crashes {len(figures['crashes'])}")
            if figures["exit"] != 0:
                print(figures.get("log_tail", ""), file=sys.stderr)
                return 1
        elif args.command == "replay":
            done = replay(args.target, args.files or None)
            if done.returncode != 0:
                print(done.stderr[-4000:], file=sys.stderr)
                return 1
            print(f"{args.target}: replayed {len(args.files or corpus_files(args.target))} files, no crash")
        elif args.command == "seed":
            seed()
    except FuzzError as exc:
        print(f"fuzz.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
