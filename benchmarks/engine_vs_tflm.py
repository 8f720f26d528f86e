"""The built-in engine against TFLM, side by side in one run.

For one platform, runs each model on the built-in engine twice (the portable
reference kernels, HIL_KERNELS=reference, and the platform's own kernel set,
e.g. "dsp" on a Cortex-M4) and on a TFLM runner (CMSIS-NN when the tree
has them, whether or not --cmsis-nn insists, else TFLM's reference kernels;
the column is named by what the device reports, `device.engine`), and
prints instructions per invoke (QEMU -icount:
instructions, not cycles) with the ratios, then per operator. Every run
checks its outputs against the TFLM reference interpreter, so only
bit-exact runs are compared.

The TFLM runner is built from a tree made by TFLM's create_tflm_tree.py
(docs/build.md; TFLM's sources are not in the package registries this
project uses, so you supply the tree), or given as an ELF already built
with `hil build --engine tflm` for these models (--tflm-firmware).

Usage: python benchmarks/engine_vs_tflm.py --tflm-dir ~/tflm-tree [--cmsis-nn] [--platform P] [--model PATH ...]
       python benchmarks/engine_vs_tflm.py --tflm-firmware firmware.elf --label "TFLM+CMSIS-NN" [...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.platforms import load_platform
from harness.runner import Run, RunConfig

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_speed import run_once  # noqa: E402


def run_tflm(model: Path, platform: str, workdir: Path, firmware: Path, vectors: int) -> tuple[dict, str]:
    """The run's summary and the engine the device named in HELLO (tflm-reference, tflm-cmsis-nn)."""
    result = Run(RunConfig(model=model, platform=platform, vectors=vectors, seed=1, workdir=workdir,
                           firmware=firmware)).execute().as_dict()
    if result["status"] != "passed":
        sys.exit(f"{model.name} did not pass on TFLM: {result['error']}")
    return result["summary"], str((result.get("device") or {}).get("engine"))


#: the column's name by what the device says it runs (firmware/tflm/hil_tflm.cc)
ENGINE_LABELS = {"tflm-cmsis-nn": "TFLM+CMSIS-NN", "tflm-reference": "TFLM reference"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tflm-dir", type=Path)
    source.add_argument("--tflm-firmware", type=Path, help="a TFLM runner ELF built for these models and platform")
    parser.add_argument("--platform", default="mps2-an386")
    parser.add_argument("--cmsis-nn", action="store_true")
    parser.add_argument("--label", help="name of the TFLM column (default: what the device reports: TFLM reference "
                                        "or TFLM+CMSIS-NN)")
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--vectors", type=int, default=2)
    args = parser.parse_args()
    models = args.model or [REPO / "models" / "demo" / "gesture.tflite", REPO / "models" / "test" / "conv_sweep.tflite",
                            REPO / "models" / "test" / "dwconv_pool.tflite"]
    label = args.label
    own = load_platform(args.platform).firmware.kernels
    if args.tflm_firmware:
        elf = args.tflm_firmware
    else:
        build = [sys.executable, "-m", "harness", "build", "-p", args.platform, "--engine", "tflm",
                 "--tflm-dir", str(args.tflm_dir), "-q", *(["--cmsis-nn"] if args.cmsis_nn else [])]
        for m in models:
            build += ["--model", str(m)]
        elf = Path(subprocess.run(build, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            ref = run_once(model, args.platform, "reference", args.vectors, Path(tmp) / f"{model.stem}-ref", detail=True)
            opt = run_once(model, args.platform, own, args.vectors, Path(tmp) / f"{model.stem}-{own}", detail=True)
            tflm, engine = run_tflm(model, args.platform, Path(tmp) / f"{model.stem}-tflm", elf, args.vectors)
            if label is None:
                label = ENGINE_LABELS.get(engine, f"TFLM ({engine})")
            elif engine not in label.lower().replace("+", "-").replace(" ", "-"):
                print(f"note: the TFLM runner says it runs {engine} (column named {label!r} by --label)")
            if ref["status"] != "passed" or opt["status"] != "passed":
                sys.exit(f"{model.name} did not pass on the built-in engine: {ref['status']} / {opt['status']}")
            t = tflm["count"]["median"]
            table.append((model.name, ref["instructions"], opt["instructions"], t))
            print(f"\n{model.name} on {args.platform}: built-in reference {ref['instructions']:,.0f}, "
                  f"built-in {own} {opt['instructions']:,.0f}, {label} {t:,.0f} instructions per invoke")
            theirs = {o["index"]: o["median"] for o in tflm.get("operators", [])}
            mine = {o["index"]: o["median"] for o in ref["operators"]}
            print(f"  {'#':>3} {'operator':20} {'reference':>12} {own:>12} {label:>14}")
            for op in opt["operators"]:
                print(f"  {op['index']:3} {op['op']:20} {mine.get(op['index'], 0):12,.0f} {op['median']:12,.0f} "
                      f"{theirs.get(op['index'], 0):14,.0f}")
    print(f"\n| model | built-in reference | built-in {own} | {label} | reference / {own} | {own} / {label} |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r, o, t in table:
        print(f"| {name} | {r / 1e6:.2f} M | {o / 1e6:.2f} M | {t / 1e6:.2f} M | {r / o:.2f}x | {o / t:.2f}x |")


if __name__ == "__main__":
    main()
