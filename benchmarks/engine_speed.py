"""Instructions per inference of the built-in engine, per model and platform.

Runs every bundled model (or those given) for a few vectors on each
platform through the real pipeline and reports the median instruction count
per invoke (QEMU -icount: instructions, not cycles), instructions per
multiply-accumulate where models/test/MANIFEST.json gives the MAC count,
and the operator that costs the most.

Usage: python benchmarks/engine_speed.py [--platform P ...] [--model PATH ...] [--vectors 3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--platform", action="append")
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--vectors", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    platforms = args.platform or ["mps2-an386", "mps3-an547", "riscv32-virt"]
    models = args.model or sorted([REPO / "models" / "demo" / "gesture.tflite",
                                   *(p for p in (REPO / "models" / "test").glob("*.tflite")
                                     if not p.name.startswith("unsupported_"))])
    macs = macs_by_file()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for platform in platforms:
                run = Run(RunConfig(model=model, platform=platform, vectors=args.vectors, seed=1,
                                    workdir=Path(tmp) / f"{model.stem}-{platform}"))
                result = run.execute().as_dict()
                s = result["summary"]
                if result["status"] != "passed" or "count" not in s:
                    rows.append({"model": model.name, "platform": platform, "status": result["status"]})
                    continue
                top = max(s.get("operators", []), key=lambda o: o["median"], default=None)
                rows.append({"model": model.name, "platform": platform, "status": "passed",
                             "instructions": s["count"]["median"], "macs": macs.get(model.name),
                             "top_op": f"{top['op']} #{top['index']} ({top['share']:.0%})" if top else ""})
    print(f"{'model':24} {'platform':14} {'instructions':>14} {'MACs':>10} {'instr/MAC':>10}  most expensive operator")
    for r in rows:
        if r["status"] != "passed":
            print(f"{r['model']:24} {r['platform']:14} {r['status']:>14}")
            continue
        per_mac = f"{r['instructions'] / r['macs']:.1f}" if r["macs"] else "-"
        print(f"{r['model']:24} {r['platform']:14} {r['instructions']:14,.0f} {r['macs'] or '-':>10} "
              f"{per_mac:>10}  {r['top_op']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
