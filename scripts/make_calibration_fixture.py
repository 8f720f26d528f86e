#!/usr/bin/env python3
"""Make the SYNTHETIC calibration recording in tests/fixtures/calibration/.

No board and no power analyser were run to make it: there is none on the
machine this project is built on. The recording has the format of
`hil calibrate --record DIR` and is made so that the right answer is known:

- emulator side: REAL per-operator figures from running the calibration set
  (calibration/set.toml) in QEMU on --platform: the cycle plugin's estimate
  ("cycles") where the run has one, else the exact instruction count
  ("count"); the recording's note says which.
- board side: each operator's emulator figure x a known factor for its type
  (FACTORS) x seeded log-normal noise (NOISE, per vector), and the invoke's
  cycles outside operators x DEFAULT_FACTOR x noise.
- analyser: samples at RATE_HZ of a known current: ACTIVE_MA while the board
  computes, IDLE_MA before and after it (the UART bytes of the request and
  the reply, LINK_S each) and between invokes, plus seeded Gaussian noise
  (NOISE_MA); invoke windows span request to reply, as link timing does.

tests/test_calibrate.py checks that the fit recovers FACTORS and ACTIVE_MA
within the noise.

    python scripts/make_calibration_fixture.py [--platform P] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import tomllib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from harness.timing.calibration import ModelRecord, Recording, save_recording  # noqa: E402

FACTORS = {"CONV_2D": 1.18, "DEPTHWISE_CONV_2D": 1.27, "FULLY_CONNECTED": 1.09, "MAX_POOL_2D": 1.35,
           "AVERAGE_POOL_2D": 1.31, "SOFTMAX": 1.12, "RESHAPE": 1.45, "ADD": 1.22, "SUB": 1.22, "MUL": 1.2,
           "LOGISTIC": 1.15, "TANH": 1.15, "HARD_SWISH": 1.17, "RELU": 1.3, "RELU6": 1.3, "MEAN": 1.25,
           "PAD": 1.4, "PADV2": 1.4}
DEFAULT_FACTOR = 1.2      # cycles outside operators
NOISE = 0.01              # log-normal sigma of the board's per-vector cycles
BOARD_CLOCK_HZ = 120_000_000
ACTIVE_MA, IDLE_MA, NOISE_MA, VOLTAGE_V = 12.5, 4.0, 0.4, 3.3
RATE_HZ = 50_000          # samples per second (a PPK2 gives 100k; half keeps the fixture small)
LINK_S = 0.0005           # request / reply bytes on the UART at each end of an invoke window
GAP_S = 0.002             # between invokes
IDLE_S = 0.02             # the idle window after the last invoke
SEED = 13


def emulator_side(platform: str, workdir: Path) -> tuple[dict[str, list[dict]], str, str, int]:
    """Per model, per vector: the emulator's invoke and per-operator figures (a real QEMU run)."""
    from harness.platforms import load_platform
    from harness.runner import RunConfig, run

    cal_set = tomllib.loads((REPO / "calibration" / "set.toml").read_text())
    out: dict[str, list[dict]] = {}
    what = "cycles"
    for m in cal_set["model"]:
        result = run(RunConfig(model=REPO / m["file"], platform=platform, vectors=cal_set["vectors"],
                               seed=cal_set["seed"], workdir=workdir / m["name"], localize="never"))
        if result.exit_code != 0:
            raise SystemExit(f"{m['name']} on {platform}: {result.status} {result.error}")
        vectors = []
        for v in result.vectors:
            cycles = getattr(v, "cycles", None)
            operators = v.operators or []
            if cycles and all("cycles" in op for op in operators):
                ops = [{"index": op["index"], "op": op["op"], "cycles": op["cycles"]} for op in operators]
                vectors.append({"cycles": cycles["value"], "operators": ops})
            else:
                what = "count"
                if v.count is None:
                    raise SystemExit(f"{m['name']} on {platform}: vector {v.index} has neither a cycle estimate "
                                     "nor a count")
                ops = [{"index": op["index"], "op": op["op"], "cycles": op["count"]} for op in operators]
                vectors.append({"cycles": v.count["value"], "operators": ops})
        out[m["name"]] = vectors
    p = load_platform(platform)
    model_id = (p.timing.model if p.timing else "") or p.core
    words = ("the cycle plugin's estimates" if what == "cycles"
             else f"exact instruction counts ({p.counter_kind}), standing in for the cycle estimate")
    return out, words, model_id, (p.timing.clock_hz if p.timing else None) or BOARD_CLOCK_HZ


def board_side(emulated: dict[str, list[dict]], rng: np.random.Generator) -> dict[str, list[dict]]:
    out = {}
    for name, vectors in emulated.items():
        board = []
        for v in vectors:
            ops = [{"index": op["index"], "op": op["op"],
                    "count": round(op["cycles"] * FACTORS[op["op"]] * math.exp(rng.normal(0, NOISE)))}
                   for op in v["operators"]]
            rest = max(v["cycles"] - sum(op["cycles"] for op in v["operators"]), 0)
            board.append({"cycles": sum(op["count"] for op in ops)
                          + round(rest * DEFAULT_FACTOR * math.exp(rng.normal(0, NOISE))), "operators": ops})
        out[name] = board
    return out


def analyser_side(board: dict[str, list[dict]], rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Invoke windows on a host time axis and the samples of a known current over them."""
    windows, segments, t = [], [], 0.0   # segments: (t0, t1, current mA)
    for name, vectors in board.items():
        for i, v in enumerate(vectors):
            busy = v["cycles"] / BOARD_CLOCK_HZ
            t0, t1 = t, t + LINK_S + busy + LINK_S
            windows.append({"kind": "invoke", "model": name, "vector": i, "t0": t0, "t1": t1})
            segments += [(t0 + LINK_S, t0 + LINK_S + busy, ACTIVE_MA)]
            t = t1 + GAP_S
    windows.append({"kind": "idle", "t0": t, "t1": t + IDLE_S})
    end = t + IDLE_S
    ts = np.arange(0.0, end, 1.0 / RATE_HZ)
    ma = np.full(ts.shape, IDLE_MA)
    for a, b, level in segments:
        ma[(ts >= a) & (ts < b)] = level
    ma = ma + rng.normal(0, NOISE_MA, ts.shape)
    samples = {"t": ts + 1000.0, "current_a": (ma / 1e3).astype(np.float32),
               "voltage_v": np.full(ts.shape, VOLTAGE_V, dtype=np.float32)}
    for w in windows:
        w["t0"] += 1000.0
        w["t1"] += 1000.0
    return windows, samples


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--platform", default="mps2-an386", help="emulated platform the estimates come from")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "calibration" / "synthetic")
    args = ap.parse_args()
    rng = np.random.default_rng(SEED)
    with tempfile.TemporaryDirectory(prefix="hil-calfix-") as tmp:
        emulated, words, model_id, clock = emulator_side(args.platform, Path(tmp))
    board = board_side(emulated, rng)
    windows, samples = analyser_side(board, rng)
    note = (f"SYNTHETIC (scripts/make_calibration_fixture.py, seed {SEED}): no board or analyser was run. "
            f"Emulator side: {words} from QEMU on {args.platform}. Board side: emulator figures x known per-type "
            f"factors x log-normal noise (sigma {NOISE}). Analyser: {ACTIVE_MA} mA while computing, {IDLE_MA} mA "
            f"otherwise, Gaussian noise {NOISE_MA} mA, {RATE_HZ} samples/s.")
    cal_set = tomllib.loads((REPO / "calibration" / "set.toml").read_text())
    files = {m["name"]: m["file"] for m in cal_set["model"]}
    rec = Recording(board="nucleo-l4r5zi", emulated=args.platform, timing_model=model_id, clock_hz=clock,
                    board_clock_hz=BOARD_CLOCK_HZ,
                    models=[ModelRecord(name, board[name], emulated[name], file=files[name]) for name in emulated],
                    windows=windows, samples=samples, synthetic=True, note=note,
                    analyser={"kind": "synthetic", "window": "link timing: INVOKE request written to reply read",
                              "guard_s": 2 * LINK_S, "voltage_v": VOLTAGE_V,
                              "conditions": f"synthetic, {VOLTAGE_V} V"})
    save_recording(rec, args.out)
    (args.out / "truth.json").write_text(json.dumps(
        {"factors": FACTORS, "default_factor": DEFAULT_FACTOR, "noise": NOISE, "active_ma": ACTIVE_MA,
         "idle_ma": IDLE_MA, "noise_ma": NOISE_MA}, indent=1) + "\n")
    print(f"wrote {args.out} ({sum(len(v) for v in board.values())} invokes, {len(samples['t'])} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
