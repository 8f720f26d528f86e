"""Start-up time of the `hil` command line, side by side with a bare Python.

Runs, interleaved round by round so a busy machine slows all alike:
`python -c pass`, `hil --help`, `hil run --help`, `hil test --help` and
`hil platforms` (`python -m harness`, the same entry point as the `hil`
script), and prints the median wall time of each and its ratio to
`python -c pass`. `hil --help` imports no sub-command
(harness/commands/__init__.py); the goal is under 0.3 s on an idle
machine. A command's `--help` imports its module, which declares its
options with click alone and imports what a run needs (numpy, the
reference, the runner) only when it runs (tests/test_command_help.py
checks which modules are imported): it should cost about what `hil --help`
does. `hil platforms` reads every platform file.

To compare two trees, run this script from either with PYTHONPATH set to
the other's root (the `python -m harness` children import that tree).

Usage: python benchmarks/cli_startup.py [--rounds 15] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "hil --help": [sys.executable, "-m", "harness", "--help"],
    "hil run --help": [sys.executable, "-m", "harness", "run", "--help"],
    "hil test --help": [sys.executable, "-m", "harness", "test", "--help"],
    "hil platforms": [sys.executable, "-m", "harness", "platforms"],
}


def wall_time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in CASES}
    for name, command in CASES.items():  # one warm-up each: the page cache, .pyc files
        wall_time(command)
    for _ in range(args.rounds):
        for name, command in CASES.items():
            times[name].append(wall_time(command))
    base = statistics.median(times["python -c pass"])
    load = os.getloadavg()[0]
    print(f"{args.rounds} rounds, load average {load:.2f} on {os.cpu_count()} CPUs (medians)")
    rows = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        rows[name] = {"median_s": median, "min_s": min(samples), "max_s": max(samples), "ratio_to_python": median / base}
        print(f"  {name:16} {median:6.3f} s  (min {min(samples):.3f}, max {max(samples):.3f})  "
              f"{median / base:5.1f}x python -c pass")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": args.rounds, "load_average": load, "cases": rows}, f, indent=1)


if __name__ == "__main__":
    main()
