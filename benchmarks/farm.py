"""A board farm's speed-up: the same 12-job `hil test` suite over 1, 2 and 3
labgrid places, side by side in one run, and what acquiring and releasing
a place costs.

The lab is tests/labfarm.py: a real labgrid-coordinator and
labgrid-exporter on localhost, three QEMU stand-in boards behind RFC 2217
ports, and a power switch. Each job is the demo model on the stand-in
platform (flashed by its command, through the place's probe id), with
--vectors random vectors. `-j N` makes the suite hold N places.

Reported: wall time of each suite, its speed-up against one place, the
jobs that passed, and the places each used; then the session's connect
time and the median acquire + release of a free place (in-process, the
coordinator's AcquirePlace/ReleasePlace), and one acquire + release through
`labgrid-client` for comparison.

The stand-ins are QEMU processes on this machine. Unpaced (--icount-shift
0) they run as fast as the host's cores let them and share those cores, so
on a loaded 2-core host three boards computing at once gain nothing. Real
boards compute on their own cores; to measure that case the stand-ins are
paced by default like a slow MCU with QEMU's `-icount shift=7,align=on,
sleep=on` (one instruction per 128 ns of wall time, about 7.8 MIPS; QEMU
sleeps instead of spinning), so a job's time is the board's, as it is in
a lab ("when the jobs dominate"). The suite's host work (the reference
interpreter, the link, hil itself) runs here either way.

Usage: python benchmarks/farm.py [--vectors 20] [--jobs 12] [--places 1,2,3] [--icount-shift 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

DEMO = HERE.parent / "models" / "demo" / "gesture.tflite"


def suite(lab, workdir: Path, platform: Path, jobs: int, vectors: int, places: int) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "qemu-board.toml").write_text(platform.read_text())
    models = "".join(f'[[models]]\nname = "m{i:02d}"\npath = "{DEMO}"\nplatforms = ["qemu-board.toml"]\n'
                     f"vectors = {{ random = {vectors}, seed = {i} }}\n\n" for i in range(jobs))
    (workdir / "hil.toml").write_text(f'[project]\nname = "farm-bench"\n\n[labgrid]\ncoordinator = "{lab.address}"\n'
                                      f"wait_s = 600\n\n{models}")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "harness", "test", "-j", str(places), "--no-store", "--no-count",
                           "--json", "suite.json"], cwd=workdir, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - started
    doc = json.loads((workdir / "suite.json").read_text())
    return {"places": places, "wall_s": wall, "exit": proc.returncode,
            "passed": sum(j["status"] == "passed" for j in doc["jobs"]), "jobs": len(doc["jobs"]),
            "used": sorted({j.get("place") for j in doc["jobs"] if j.get("place")}),
            "stderr": proc.stderr[-2000:] if proc.returncode else ""}


def overhead(lab, rounds: int = 20) -> dict:
    from harness.targets.labgrid import PlaceWanted, acquire

    t0 = time.monotonic()
    coordinator = lab.session()
    connect_s = time.monotonic() - t0
    times = []
    try:
        for _ in range(rounds):
            t0 = time.monotonic()
            lease = acquire(coordinator, PlaceWanted(name="board-0"), 10)
            if lease is None:  # only give_up_on_own or cancelled return None; this call asks neither
                raise RuntimeError("board-0 was not acquired")
            lease.release()
            times.append(time.monotonic() - t0)
    finally:
        coordinator.close()
    t0 = time.monotonic()
    for args in (("-p", "board-0", "acquire"), ("-p", "board-0", "release")):
        done = lab.client(*args)
        if done.returncode:
            raise SystemExit(f"labgrid-client {' '.join(args)} failed: {done.stderr}")
    cli_s = time.monotonic() - t0
    return {"connect_s": connect_s, "acquire_release_ms": 1000 * statistics.median(times),
            "acquire_release_max_ms": 1000 * max(times), "cli_acquire_release_s": cli_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vectors", type=int, default=20, help="random vectors per job")
    parser.add_argument("--icount-shift", type=int, default=7,
                        help="pace the stand-ins at one instruction per 2^N ns (0: unpaced, as fast as the host)")
    parser.add_argument("--jobs", type=int, default=12)
    parser.add_argument("--places", default="1,2,3", help="place counts to compare, the first is the base")
    args = parser.parse_args()
    counts = [int(n) for n in args.places.split(",")]

    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform
    from labfarm import Lab, labgrid_missing

    if labgrid_missing():
        raise SystemExit(labgrid_missing())
    shift = args.icount_shift
    icount = f"shift={shift},align=on,sleep=on" if shift else "shift=0,align=off,sleep=off"
    with tempfile.TemporaryDirectory(prefix="hil-farm-") as tmp, \
            Lab(Path(tmp) / "lab", boards=max(counts), icount=icount) as lab:
        platform = lab.boards[0].platform_file(Path(tmp) / "qemu-board.toml")
        build_firmware(load_platform(str(platform)), {})  # once, before the timed suites (they find it cached)
        cost = overhead(lab)
        rows = [suite(lab, Path(tmp) / f"suite-{n}", platform, args.jobs, args.vectors, n) for n in counts]
    base = rows[0]["wall_s"]
    print(f"{args.jobs}-job suite, {args.vectors} vectors per job, demo model on QEMU stand-in boards "
          f"(-icount {icount}), hil test -j N --no-count over N labgrid places")
    print(f"{'places':>6}  {'wall s':>7}  {'speed-up':>8}  {'passed':>7}  places used")
    for r in rows:
        print(f"{r['places']:>6}  {r['wall_s']:>7.1f}  {base / r['wall_s']:>7.2f}x  {r['passed']:>3}/{r['jobs']:<3}  "
              f"{', '.join(r['used'])}")
        if r["stderr"]:
            print(f"        exit {r['exit']}: {r['stderr']}")
    print(f"session connect: {cost['connect_s'] * 1000:.0f} ms; acquire + release of a free place: median "
          f"{cost['acquire_release_ms']:.1f} ms (max {cost['acquire_release_max_ms']:.1f} ms, 20 rounds); "
          f"the same through labgrid-client (two processes): {cost['cli_acquire_release_s']:.2f} s")


if __name__ == "__main__":
    main()
