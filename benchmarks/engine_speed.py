"""Instructions per inference of the built-in engine, reference against
optimised kernels, side by side in one run.

Runs every bundled model (or those given) for a few vectors on each platform
through the real pipeline (each run checks its outputs against the TFLM
reference, so every figure is of a bit-exact run) once per kernel set: the
portable reference C (HIL_KERNELS=reference) and the platform's own set
(`[firmware] kernels` in its file, e.g. "dsp" on Cortex-M4/M7/M33). Reports
the median instruction count per invoke (QEMU -icount: instructions, not
cycles), the ratio, instructions per multiply-accumulate where
models/test/MANIFEST.json gives the MAC count, and the costliest operator
with the optimised set.

Usage: python benchmarks/engine_speed.py [--platform P ...] [--model PATH ...] [--vectors 2]
                                         [--kernels reference,dsp] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from harness.platforms import load_platform
from harness.runner import Run, RunConfig

REPO = Path(__file__).resolve().parent.parent


def macs_by_file() -> dict[str, int]:
    manifest = json.loads((REPO / "models" / "test" / "MANIFEST.json").read_text())
    macs = {m["file"]: m["macs"] for m in manifest["models"].values() if m.get("macs")}
    demo = REPO / "models" / "demo" / "gesture.json"
    if demo.exists():
        info = json.loads(demo.read_text())
        if info.get("macs"):
            macs["gesture.tflite"] = info["macs"]
    return macs


def run_once(model: Path, platform: str, kernels: str, vectors: int, workdir: Path, detail: bool = False) -> dict:
    """One bit-exact run with HIL_KERNELS=kernels (the build cache keys on it);
    `detail` adds the per-operator medians."""
    saved = os.environ.get("HIL_KERNELS")
    os.environ["HIL_KERNELS"] = kernels
    try:
        result = Run(RunConfig(model=model, platform=platform, vectors=vectors, seed=1,
                               workdir=workdir)).execute().as_dict()
    finally:
        if saved is None:
            os.environ.pop("HIL_KERNELS", None)
        else:
            os.environ["HIL_KERNELS"] = saved
    s = result["summary"]
    if result["status"] != "passed" or "count" not in s:
        return {"status": result["status"]}
    top = max(s.get("operators", []), key=lambda o: o["median"], default=None)
    row = {"status": "passed", "instructions": s["count"]["median"],
           "top_op": f"{top['op']} #{top['index']} ({top['share']:.0%})" if top else ""}
    if detail:
        row["operators"] = s.get("operators", [])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", action="append")
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--vectors", type=int, default=2)
    parser.add_argument("--kernels", help="comma-separated kernel sets (default: reference and the platform's own)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    platforms = args.platform or ["mps2-an386"]
    models = args.model or sorted([REPO / "models" / "demo" / "gesture.tflite",
                                   *(p for p in (REPO / "models" / "test").glob("*.tflite")
                                     if not p.name.startswith("unsupported_"))])
    macs = macs_by_file()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for platform in platforms:
            own = load_platform(platform).firmware.kernels
            sets = args.kernels.split(",") if args.kernels else list(dict.fromkeys(["reference", own]))
            for model in models:
                row = {"model": model.name, "platform": platform, "macs": macs.get(model.name), "runs": {}}
                for k in sets:
                    row["runs"][k] = run_once(model, platform, k, args.vectors, Path(tmp) / f"{model.stem}-{platform}-{k}")
                rows.append(row)
    sets_seen = list(dict.fromkeys(k for r in rows for k in r["runs"]))
    head = "".join(f"{k:>14}" for k in sets_seen)
    ratio_head = f"{'ratio':>7}" if len(sets_seen) == 2 else ""
    print(f"{'model':26} {'platform':12}{head}{ratio_head} {'instr/MAC':>10}  costliest operator ({sets_seen[-1]})")
    for r in rows:
        cells, counts = "", []
        for k in sets_seen:
            run = r["runs"].get(k, {"status": "-"})
            if run["status"] == "passed":
                cells += f"{run['instructions']:14,.0f}"
                counts.append(run["instructions"])
            else:
                cells += f"{run['status']:>14}"
                counts.append(None)
        ratio = (f"{counts[0] / counts[1]:6.2f}x" if len(counts) == 2 and all(counts) else f"{'-':>7}") \
            if len(sets_seen) == 2 else ""
        last = counts[-1]
        per_mac = f"{last / r['macs']:.1f}" if r["macs"] and last else "-"
        top = r["runs"].get(sets_seen[-1], {}).get("top_op", "")
        print(f"{r['model']:26} {r['platform']:12}{cells}{ratio} {per_mac:>10}  {top}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
