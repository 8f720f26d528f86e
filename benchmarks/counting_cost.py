"""Wall-time cost of counting: the same vectors with counts (QEMU -icount,
per-operator profiles, the empty-invoke overhead measurement) and without
(`--no-count`), side by side in one process.

Usage: python benchmarks/counting_cost.py [--vectors 200] [--model PATH]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness.runner import Run, RunConfig

REPO = Path(__file__).resolve().parent.parent


def timed(model: Path, vectors: int, count: bool, workdir: Path) -> dict:
    run = Run(RunConfig(model=model, platform="mps2-an386", vectors=vectors, seed=3, workdir=workdir, count=count))
    result = run.execute()
    assert result.status == "passed", result.error
    t = result.timings["vectors_s"]
    client = run.client
    assert client is not None, "execute() stops the target but keeps the link's client (its statistics)"
    return {"vectors_per_s": vectors / t, "ms_per_vector": 1e3 * t / vectors,
            "invoke_ms": 1e3 * client.stats.by_stage.get("INVOKE", 0.0) / vectors,
            "requests": client.stats.requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=200)
    parser.add_argument("--model", type=Path, default=REPO / "models" / "demo" / "gesture.tflite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with_count = timed(args.model, args.vectors, True, Path(tmp) / "count")
        without = timed(args.model, args.vectors, False, Path(tmp) / "nocount")
    print(f"{args.model.name}, {args.vectors} vectors on mps2-an386 (QEMU)")
    print(f"{'':22} {'vectors/s':>10} {'ms/vector':>10} {'INVOKE ms':>10} {'requests':>9}")
    for name, row in (("counting", with_count), ("--no-count", without)):
        print(f"{name:22} {row['vectors_per_s']:10.1f} {row['ms_per_vector']:10.2f} {row['invoke_ms']:10.2f} "
              f"{row['requests']:9d}")
    print(f"counting costs {with_count['ms_per_vector'] / without['ms_per_vector']:.2f}x the wall time per vector "
          f"(INVOKE alone: {with_count['invoke_ms'] / without['invoke_ms']:.2f}x)")


if __name__ == "__main__":
    main()
