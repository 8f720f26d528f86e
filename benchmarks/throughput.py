"""Throughput of `hil run` on QEMU, and where the time per vector goes.

Runs the demo model (and any model given) through the real pipeline, once
with bulk data read from host files (the emulator default) and once with
everything inline through the emulated UART (what a board does), side by
side in one process, and reports:

- vectors per second for each transfer mode, and their ratio;
- per vector: wall time of the INVOKE round trip (QEMU executing the model
  plus one request/reply) against everything else the harness does per
  vector (SET_INPUT, GET_OUTPUT, comparison, result writing): the harness's
  overhead.

Usage: python benchmarks/throughput.py [--vectors 200] [--model PATH ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from harness.runner import Run, RunConfig

REPO = Path(__file__).resolve().parent.parent


def measure(model: Path, vectors: int, inline: bool, workdir: Path) -> dict:
    run = Run(RunConfig(model=model, platform="mps2-an386", vectors=vectors, seed=7,
                        workdir=workdir, force_inline=inline))
    result = run.execute()
    assert result.status == "passed", result.error
    stats = run.client.stats
    t = result.timings
    per_vector = t["vectors_s"] / vectors
    invoke = stats.by_stage.get("INVOKE", 0.0) / vectors
    counts = [v.count["value"] for v in result.vectors]
    return {
        "mode": "inline (UART)" if inline else "host file (semihosting)",
        "vectors_per_s": vectors / t["vectors_s"],
        "per_vector_ms": per_vector * 1e3,
        "invoke_ms": invoke * 1e3,
        "overhead_ms": (per_vector - invoke) * 1e3,
        "overhead_ratio": (per_vector - invoke) / invoke if invoke else float("nan"),
        "boot_s": t["boot_s"],
        "load_s": t["load_s"],
        "instructions_per_invoke": sum(counts) / len(counts),
        "link_bytes_out": stats.bytes_out,
        "link_bytes_in": stats.bytes_in,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=200)
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    models = args.model or [REPO / "models" / "demo" / "gesture.tflite"]
    report = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            rows = [measure(model, args.vectors, inline, Path(tmp) / f"{model.stem}-{inline}")
                    for inline in (False, True)]
            for row in rows:
                row["model"] = model.name
            report += rows
            print(f"\n{model.name}: {args.vectors} vectors on mps2-an386 (QEMU), "
                  f"{rows[0]['instructions_per_invoke']:,.0f} instructions per invoke")
            print(f"{'transfer':26} {'vectors/s':>10} {'ms/vector':>10} {'invoke ms':>10} "
                  f"{'overhead ms':>12} {'overhead/invoke':>16} {'load s':>7}")
            for r in rows:
                print(f"{r['mode']:26} {r['vectors_per_s']:10.1f} {r['per_vector_ms']:10.2f} "
                      f"{r['invoke_ms']:10.2f} {r['overhead_ms']:12.2f} {r['overhead_ratio']:16.2f} "
                      f"{r['load_s']:7.3f}")
            print(f"host-file / inline throughput ratio: {rows[0]['vectors_per_s'] / rows[1]['vectors_per_s']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
