"""The built-in engine against TFLM's own kernels, side by side in one run.

Builds the runner twice for one platform (built-in engine, and TFLM from a
tree made by TFLM's create_tflm_tree.py: docs/build.md), runs each model on
both, and prints instructions per invoke and per operator. TFLM's sources
are not in the package registries this project uses, so you supply the tree.

Usage: python benchmarks/engine_vs_tflm.py --tflm-dir ~/tflm-tree [--cmsis-nn] [--model PATH ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.runner import Run, RunConfig

REPO = Path(__file__).resolve().parent.parent


def run(model: Path, platform: str, workdir: Path, firmware: Path | None) -> dict:
    result = Run(RunConfig(model=model, platform=platform, vectors=3, seed=1, workdir=workdir,
                           firmware=firmware)).execute().as_dict()
    if result["status"] != "passed":
        sys.exit(f"{model.name} did not pass on {'TFLM' if firmware else 'the built-in engine'}: {result['error']}")
    return result["summary"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tflm-dir", type=Path, required=True)
    parser.add_argument("--platform", default="mps2-an386")
    parser.add_argument("--cmsis-nn", action="store_true")
    parser.add_argument("--model", type=Path, action="append")
    args = parser.parse_args()
    models = args.model or [REPO / "models" / "demo" / "gesture.tflite", REPO / "models" / "test" / "conv_sweep.tflite",
                            REPO / "models" / "test" / "dwconv_pool.tflite"]
    build = [sys.executable, "-m", "harness", "build", "-p", args.platform, "--engine", "tflm",
             "--tflm-dir", str(args.tflm_dir), "-q", *(["--cmsis-nn"] if args.cmsis_nn else [])]
    for m in models:
        build += ["--model", str(m)]
    elf = Path(subprocess.run(build, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            ours = run(model, args.platform, Path(tmp) / f"{model.stem}-builtin", None)
            tflm = run(model, args.platform, Path(tmp) / f"{model.stem}-tflm", elf)
            a, b = ours["count"]["median"], tflm["count"]["median"]
            print(f"\n{model.name} on {args.platform}: built-in {a:,.0f}, TFLM {b:,.0f} instructions per invoke "
                  f"({100 * (a - b) / b:+.1f}%)")
            theirs = {o["index"]: o["median"] for o in tflm.get("operators", [])}
            for op in ours.get("operators", []):
                t = theirs.get(op["index"])
                change = f"{100 * (op['median'] - t) / t:+6.1f}%" if t else ""
                print(f"  {op['index']:3} {op['op']:20} {op['median']:12,.0f} {t or 0:12,.0f} {change}")


if __name__ == "__main__":
    main()
