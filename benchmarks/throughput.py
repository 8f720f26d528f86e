"""Throughput of `hil run` on QEMU, and where the time per vector goes.

Runs the demo model (and any model given) through the real pipeline, once
with bulk data read from host files (the emulator default) and once with
everything inline through the emulated UART (what a board does), side by
side in one process, and reports:

- vectors per second for each transfer mode, and their ratio;
- per vector: wall time of the INVOKE round trip (QEMU executing the model
  plus one request/reply) against everything else the harness does per
  vector (SET_INPUT, GET_OUTPUT, comparison, result writing): the harness's
  overhead, split into the other device round trips (SET_INPUT, GET_OUTPUT,
  GET_PROFILE: each waits on the emulated UART) and the host's own CPU time
  in the vector loop (thread CPU time: comparison, counts, results);
- with --trips, the host-file mode twice more, side by side: each vector's
  outputs and operator profile in INVOKE's reply (one round trip, the
  default) against asking GET_OUTPUT and GET_PROFILE after it (four, as
  before the OUTPUTS/PROFILE flags), on the same firmware;
- with --suite, `hil test -j 1` against `-j 2` on a 4-job suite (each
  model 4 times on mps2-an386, --suite-vectors each), alternated for
  --suite-rounds rounds: each round's ratio, their median and range, the
  load average, with the reference computed in every job and read from a
  warm cache; beside it the ceiling (the jobs' streams alone, side by side
  against one at a time), what the machine gives two busy loops side by
  side against one after the other (`machine_ratio`, no -j beats it) and
  hil's time outside the streams (`measure_suite`); --suite-shards adds
  two `--shard i/2` processes.

- with --overhead, issue 14's figure: the harness's overhead per vector
  against the device's INVOKE time, both from one run: bare INVOKE round
  trips (count only) interleaved with the vectors (`_BareInvokes`), the
  overhead the wall time per vector less their mean.

Usage: python benchmarks/throughput.py [--vectors 200] [--model PATH ...] [--trips] [--no-modes]
       [--suite [--suite-rounds 3] [--suite-vectors 100] [--suite-cache off|warm] [--suite-shards]]
       [--overhead [--every 4]] [--gap] [--firmware ELF]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.link.protocol import DeviceClient
from harness.runner import Run, RunConfig
from harness.timing.align import RunCycles

REPO = Path(__file__).resolve().parent.parent


class _HostCpu:
    """The harness thread's CPU time inside the vector loop (Run._stream_vectors):
    what the host itself spends per vector, apart from waiting on the device."""

    def __init__(self, run: Run) -> None:
        self.seconds = 0.0
        inner = run._stream_vectors

        def timed(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds += time.thread_time() - t0
        setattr(run, "_stream_vectors", timed)  # wrapped for this run only


def _four_trips(client_invoke, client_hello):
    """The path before INVOKE's OUTPUTS/PROFILE/INPUTS flags: the host takes
    the device for one without them (so it sends SET_INPUT first), and asks
    GET_OUTPUT and GET_PROFILE after the count-only reply."""
    def invoke(self, *args, outputs=False, profile=False, inputs=None, **kwargs):
        assert inputs is None
        return client_invoke(self, *args, **kwargs)

    def hello(self, *args, **kwargs):
        found = client_hello(self, *args, **kwargs)
        self.one_trip_invoke = False
        return found
    return invoke, hello


def measure(model: Path, vectors: int, inline: bool, workdir: Path, trips: int = 1) -> dict:
    run = Run(RunConfig(model=model, platform="mps2-an386", vectors=vectors, seed=7,
                        workdir=workdir, force_inline=inline))
    host = _HostCpu(run)
    original = DeviceClient.invoke, DeviceClient.hello
    if trips == 4:
        for name, method in zip(("invoke", "hello"), _four_trips(*original)):
            setattr(DeviceClient, name, method)
    try:
        result = run.execute()
    finally:
        for name, method in zip(("invoke", "hello"), original):
            setattr(DeviceClient, name, method)
    assert result.status == "passed", result.error
    assert run.client is not None, "execute() keeps the link's client (its statistics)"
    stats = run.client.stats
    t = result.timings
    per_vector = t["vectors_s"] / vectors
    invoke = stats.by_stage.get("INVOKE", 0.0) / vectors
    counts = [v.count["value"] for v in result.vectors if v.count is not None]
    others = {k: stats.by_stage.get(k, 0.0) / vectors * 1e3 for k in ("SET_INPUT", "GET_OUTPUT", "GET_PROFILE")}
    return {
        "trips": trips,
        "round_trips_ms": others,
        "host_cpu_ms": host.seconds / vectors * 1e3,
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


class _BareInvokes:
    """Times the device's INVOKE alone, interleaved with the vectors of a
    real run: before every `every`-th vector's request, one bare INVOKE
    (count only: no inputs, outputs or profile; the device runs the model on
    the inputs it holds), its round trip timed. That round trip is the
    device's invoke plus the protocol's smallest request and reply (11 and
    17 bytes): what no harness can avoid. The vector's own request goes out
    after it, so the run's results are those of an undisturbed run."""

    def __init__(self, run: Run, every: int) -> None:
        self.run, self.every, self.seen = run, every, 0
        self.seconds: list[float] = []  # each bare INVOKE's round trip
        self.busy = False  # in a bare invoke (which calls the patched method too)
        # a bare INVOKE sent ahead of the previous vector's cycle records being read (the runner reads them
        # after the next request, up to a cut): its own records, dropped once the vector's are read
        self.drop_upto: int | None = None
        self.cycles_invoke = RunCycles.invoke
        self.original = DeviceClient.start_invoke if hasattr(DeviceClient, "start_invoke") else DeviceClient.invoke
        name = self.original.__name__

        def start(client, *args, empty=False, until=None, **kwargs):
            if not empty and until is None and not self.busy:  # a vector's invoke
                if self.seen % self.every == 0:
                    self._bare(client)
                self.seen += 1
            return self.original(client, *args, empty=empty, until=until, **kwargs)
        self.name, self.patched = name, start

    def _bare(self, client) -> None:
        invoke = DeviceClient.invoke if self.name == "start_invoke" else self.original
        cycles = self.run.cycles
        unread = cycles is not None and self.seen > 0 and hasattr(cycles, "cut")  # the previous vector's
        self.busy = True
        try:
            t0 = time.monotonic()
            invoke(client)
            self.seconds.append(time.monotonic() - t0)
        finally:
            self.busy = False
        if cycles is not None and unread:
            self.drop_upto = cycles.cut()  # its cycle records are not the vector's: dropped after the vector's
        elif cycles is not None:
            cycles.skip()

    def _cycles_invoke(self, cycles: RunCycles, *args, **kwargs):
        found = self.cycles_invoke(cycles, *args, **kwargs)
        if self.drop_upto is not None:
            cycles.skip(upto=self.drop_upto)
            self.drop_upto = None
        return found

    def __enter__(self) -> "_BareInvokes":
        setattr(DeviceClient, self.name, self.patched)
        bare = self
        setattr(RunCycles, "invoke", lambda cycles, *args, **kwargs: bare._cycles_invoke(cycles, *args, **kwargs))
        return self

    def __exit__(self, *exc) -> None:
        setattr(DeviceClient, self.name, self.original)
        setattr(RunCycles, "invoke", self.cycles_invoke)


def measure_overhead(model: Path, vectors: int, workdir: Path, firmware: Path | None, every: int) -> dict:
    """Harness overhead per vector, as issue 14 defines the goal: the wall
    time of the vector stream per vector, less the bare INVOKE round trips
    injected into it, less the mean bare INVOKE round trip; side by side in
    one run (one QEMU session), so the machine's load hits both alike."""
    run = Run(RunConfig(model=model, platform="mps2-an386", vectors=vectors, seed=7, workdir=workdir,
                        firmware=firmware))
    host = _HostCpu(run)
    with _BareInvokes(run, every) as bare:
        result = run.execute()
    assert result.status == "passed", result.error
    stream = result.timings["vectors_s"] - sum(bare.seconds)
    per_vector = stream / vectors
    invoke = statistics.fmean(bare.seconds)
    counts = [v.count["value"] for v in result.vectors if v.count is not None]
    assert run.client is not None, "execute() keeps the link's client (its statistics)"
    return {
        "model": model.name,
        "vectors": vectors,
        "instructions_per_invoke": statistics.median(counts),
        "per_vector_ms": per_vector * 1e3,
        "bare_invoke_ms": invoke * 1e3,
        "bare_invoke_median_ms": statistics.median(bare.seconds) * 1e3,
        "bare_invokes": len(bare.seconds),
        "overhead_ms": (per_vector - invoke) * 1e3,
        "overhead_ratio": (per_vector - invoke) / invoke,
        "host_cpu_ms": host.seconds / vectors * 1e3,  # the streaming thread's CPU, bare invokes' wait included
        "vectors_per_s": vectors / stream,
        "reference_wait_s": result.timings.get("reference_wait_s"),
        "link_bytes_per_vector": (run.client.stats.bytes_out + run.client.stats.bytes_in) / vectors,
    }


class _Gaps:
    """The host's time between reading an INVOKE's reply and sending the
    next INVOKE request: what the host keeps the device waiting for when
    the next request is sent ahead (`Run._stream_vector`)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self.replied: float | None = None
        self.original = DeviceClient.await_reply, DeviceClient.send_request

    def __enter__(self) -> "_Gaps":
        await_reply, send_request = self.original
        gaps = self

        def awaited(client, pending):
            reply = await_reply(client, pending)
            gaps.replied = time.perf_counter() if int(pending.msg) == 0x04 else None
            return reply

        def send(client, msg, payload=b"", **kwargs):
            if int(msg) == 0x04 and gaps.replied is not None:
                gaps.seconds.append(time.perf_counter() - gaps.replied)
            gaps.replied = None
            return send_request(client, msg, payload, **kwargs)
        setattr(DeviceClient, "await_reply", awaited)
        setattr(DeviceClient, "send_request", send)
        return self

    def __exit__(self, *exc) -> None:
        setattr(DeviceClient, "await_reply", self.original[0])
        setattr(DeviceClient, "send_request", self.original[1])


def measure_gap(model: Path, vectors: int, workdir: Path, firmware: Path | None) -> dict:
    """Reply of vector i read -> request of vector i+1 sent, per vector (ms)."""
    run = Run(RunConfig(model=model, platform="mps2-an386", vectors=vectors, seed=7, workdir=workdir,
                        firmware=firmware))
    with _Gaps() as gaps:
        result = run.execute()
    assert result.status == "passed", result.error
    return {"model": model.name, "vectors": vectors, "gaps": len(gaps.seconds),
            "gap_median_ms": statistics.median(gaps.seconds) * 1e3, "gap_mean_ms": statistics.fmean(gaps.seconds) * 1e3,
            "load": os.getloadavg()[0]}


SUITE = """[project]
name = "throughput"
platforms = ["mps2-an386"]
results = "results"
""" + "".join(f"""
[[models]]
name = "demo{i}"
path = "{{model}}"
vectors = {{{{ random = {{vectors}}, seed = {i} }}}}
""" for i in range(4))


def _suite_run(workdir: Path, env: dict, out: str, *args: str) -> subprocess.Popen:
    """One `hil test` process on the benchmark's project (output to files,
    so the wall time ends when hil exits, not when the last child that
    inherited a pipe closes it)."""
    log = open(workdir / f"{out}.log", "w")
    try:
        return subprocess.Popen([sys.executable, "-m", "harness", "test", "--no-store", "--out", str(workdir / out),
                                 *args], cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env)
    finally:
        log.close()


def _children_cpu() -> float:
    """CPU seconds of the children waited for so far (hil, and through it its emulators and reference children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _suite_timings(suite_dir: Path) -> dict:
    """From a suite's documents: its duration (hil's own clock, start-up and
    exit excluded) and each job's stream time (timings.vectors_s)."""
    doc = json.loads((suite_dir / "suite.json").read_text())
    assert doc["status"] == "passed", doc.get("error") or doc["status"]
    streams = [json.loads((suite_dir / job["result"]).read_text())["timings"]["vectors_s"] for job in doc["jobs"]]
    return {"duration_s": doc["duration_s"], "streams_s": streams}


_BURN = "for _ in range({n}): pass"


def _burn_loops() -> int:
    """Loop iterations that keep one core busy for about a second here."""
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-c", _BURN.format(n=10_000_000)], check=True)
    return int(10_000_000 / max(time.monotonic() - t0, 0.05))


def machine_ratio(loops: int, pairs: int = 3) -> float:
    """What this machine gives two independent CPU-bound processes: a busy
    loop alone against two copies side by side, alternated `pairs` times
    (medians: this VM's speed drifts within seconds); 2 x alone / side by
    side is 2.0 on two free cores, less on a VM whose cores share a host or
    a loaded machine, and above 2.0 only when the machine's speed changed
    between the two (which says how far a round's ratio can be trusted).
    No -j can beat it; measured in every round, beside the suites."""
    def burn(copies: int) -> float:
        t0 = time.monotonic()
        procs = [subprocess.Popen([sys.executable, "-c", _BURN.format(n=loops)]) for _ in range(copies)]
        assert [p.wait() for p in procs] == [0] * copies
        return time.monotonic() - t0
    alone, both = zip(*[(burn(1), burn(2)) for _ in range(pairs)])
    return 2 * statistics.median(alone) / statistics.median(both)


def measure_suite(model: Path, vectors: int, workdir: Path, cache: str = "off", rounds: int = 3,
                  shards: bool = False) -> dict:
    """`hil test -j 1` and `-j 2` on the same 4-job suite, alternated for
    `rounds` rounds (the machine's load drifts: each round's ratio compares
    two runs made one after the other), with the firmware already built (a
    first, untimed run builds it). `cache`: "off" computes every reference
    (HIL_REFERENCE_CACHE=0), "warm" reads them from the reference cache the
    untimed run filled (CI's steady state: the same vectors through the
    same model on every commit). `shards`: also two `hil test -j 1 --shard
    i/2` processes side by side (processes instead of threads).

    The ceiling: the jobs' stream times (each run's vectors_s) summed at -j 1
    against the same sum at -j 2 halved: how much faster two streams side by
    side get through the vectors than one at a time. That part is the
    machine's (two emulators and two harness threads on its cores); the rest
    of the gap is hil's own time outside the streams (start-up, boots,
    reports, exit)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "hil.toml").write_text(SUITE.format(model=model, vectors=vectors))
    env = {**os.environ, "HIL_REFERENCE_CACHE": "0" if cache == "off" else "1"}
    row: dict[str, Any] = {"model": model.name, "jobs": 4, "vectors_per_job": vectors, "cpus": os.cpu_count(),
                           "reference_cache": cache, "rounds": []}

    def timed(out: str, *variants: tuple[str, ...]) -> dict:
        cpu0 = _children_cpu()
        t0 = time.monotonic()
        procs = [_suite_run(workdir, env, f"{out}-{k}" if len(variants) > 1 else out, *args)
                 for k, args in enumerate(variants)]
        codes = [proc.wait() for proc in procs]
        wall = time.monotonic() - t0
        cpu = _children_cpu() - cpu0  # hil's, its emulators' and its reference children's CPU seconds
        assert codes == [0] * len(codes), f"hil test exited {codes}: see {workdir}/{out}*.log"
        found = [_suite_timings(workdir / (f"{out}-{k}" if len(variants) > 1 else out)) for k in range(len(variants))]
        return {"wall_s": wall, "cpu_s": cpu, "duration_s": max(f["duration_s"] for f in found),
                "streams_s": [s for f in found for s in f["streams_s"]]}

    timed("warm-up", ("-j", "2"))
    loops = _burn_loops()
    row["load_before"] = os.getloadavg()[0]
    for k in range(rounds):
        one = timed(f"r{k}-j1", ("-j", "1"))
        two = timed(f"r{k}-j2", ("-j", "2"))
        entry = {"j1": one, "j2": two, "ratio": one["wall_s"] / two["wall_s"],
                 # -j 1 keeps `cores_used` cores busy on average; two cores can then give at most 2 / that
                 "cores_used": one["cpu_s"] / one["wall_s"], "cpu_bound": 2 * one["wall_s"] / one["cpu_s"],
                 "stream_ratio": sum(one["streams_s"]) / (sum(two["streams_s"]) / 2), "load": os.getloadavg()[0],
                 "machine_ratio": machine_ratio(loops)}
        if shards:
            both = timed(f"r{k}-shards", ("-j", "1", "--shard", "1/2"), ("-j", "1", "--shard", "2/2"))
            entry.update(shards=both, shards_ratio=one["wall_s"] / both["wall_s"])
        row["rounds"].append(entry)
    row["load_after"] = os.getloadavg()[0]

    def spread(values: list[float]) -> dict:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    rs = row["rounds"]
    row["ratio"] = spread([r["ratio"] for r in rs])
    row["stream_ratio"] = spread([r["stream_ratio"] for r in rs])  # the ceiling: the machine's part
    row["machine_ratio"] = spread([r["machine_ratio"] for r in rs])
    row["of_machine"] = spread([r["ratio"] / r["machine_ratio"] for r in rs])
    row["cores_used"] = spread([r["cores_used"] for r in rs])
    row["cpu_bound"] = spread([r["cpu_bound"] for r in rs])
    row["j1_s"] = spread([r["j1"]["wall_s"] for r in rs])
    row["j2_s"] = spread([r["j2"]["wall_s"] for r in rs])
    row["stream_s_per_job"] = spread([s for r in rs for s in r["j1"]["streams_s"]])  # one job's vectors alone
    # hil's time outside the streams at -j 1: start-up and exit (wall - duration), per job (duration - streams)
    row["outside_suite_s"] = spread([r[j]["wall_s"] - r[j]["duration_s"] for r in rs for j in ("j1", "j2")])
    row["per_job_other_s"] = spread([(r["j1"]["duration_s"] - sum(r["j1"]["streams_s"])) / 4 for r in rs])
    if shards:
        row["shards_ratio"] = spread([r["shards_ratio"] for r in rs])
    return row


def _print_suite(row: dict) -> None:
    def fmt(d: dict, unit: str = "", digits: int = 2) -> str:
        return f"{d['median']:.{digits}f}{unit} ({d['min']:.{digits}f}-{d['max']:.{digits}f})"

    print(f"\nhil test, 4 jobs x {row['vectors_per_job']} vectors of {row['model']} on mps2-an386, {row['cpus']} CPUs, "
          f"reference cache {row['reference_cache']}, {len(row['rounds'])} rounds of -j 1 then -j 2; "
          f"load average {row['load_before']:.1f} before, {row['load_after']:.1f} after")
    print(f"{'round':>5} {'-j 1 s':>7} {'-j 2 s':>7} {'ratio':>6} {'streams ratio':>14} {'machine':>8}"
          f"{' shards s':>9}{' shards ratio':>13} {'load':>5}")
    for k, r in enumerate(row["rounds"]):
        shards = f"{r['shards']['wall_s']:9.1f}{r['shards_ratio']:13.2f}" if "shards" in r else f"{'':9}{'':13}"
        print(f"{k:5d} {r['j1']['wall_s']:7.1f} {r['j2']['wall_s']:7.1f} {r['ratio']:6.2f} {r['stream_ratio']:14.2f}"
              f" {r['machine_ratio']:8.2f}"
              f"{shards} {r['load']:5.1f}")
    print(f"-j 2 / -j 1 throughput: median (range) {fmt(row['ratio'], 'x')}; -j 1 {fmt(row['j1_s'], ' s', 1)}, "
          f"-j 2 {fmt(row['j2_s'], ' s', 1)}")
    print(f"ceiling, the streams alone (sum of the jobs' vectors_s at -j 1 / at -j 2 halved): "
          f"{fmt(row['stream_ratio'], 'x')}; one job's stream alone {fmt(row['stream_s_per_job'], ' s')}")
    print(f"the machine (two busy loops side by side against one after the other): {fmt(row['machine_ratio'], 'x')};"
          f" -j 2's ratio as a share of it {fmt(row['of_machine'])}")
    print(f"hil outside the streams: start-up and exit {fmt(row['outside_suite_s'], ' s')} per suite, "
          f"{fmt(row['per_job_other_s'], ' s')} per job at -j 1 (prepare, boot, load, judge, close)")
    print(f"CPU: -j 1 keeps {fmt(row['cores_used'])} cores busy (hil, QEMU and the reference children's CPU "
          f"time / wall time); on {row['cpus']} cores -j 2 can be at most {fmt(row['cpu_bound'], 'x')} "
          f"({row['cpus']} / that, were the cores free)")
    if "shards_ratio" in row:
        print(f"two processes (--shard 1/2 and 2/2 side by side) / -j 1: {fmt(row['shards_ratio'], 'x')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vectors", type=int, default=200)
    parser.add_argument("--model", type=Path, action="append")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--suite", action="store_true", help="also hil test -j 1 vs -j 2 on a 4-job suite")
    parser.add_argument("--suite-vectors", type=int, default=100)
    parser.add_argument("--suite-cache", choices=("off", "warm"), action="append",
                        help="--suite: reference cache off (computed in every job) and/or warm; default both")
    parser.add_argument("--suite-rounds", type=int, default=3,
                        help="--suite: rounds of -j 1 then -j 2 (each round's ratio; median and range)")
    parser.add_argument("--suite-shards", action="store_true",
                        help="--suite: also two `hil test --shard i/2` processes side by side in each round")
    parser.add_argument("--no-modes", action="store_true", help="skip the host-file/inline comparison")
    parser.add_argument("--repeats", type=int, default=5, help="--trips: alternating pairs (the machine's noise)")
    parser.add_argument("--trips", action="store_true",
                        help="also outputs and profile in INVOKE's reply against asked for after it, side by side")
    parser.add_argument("--overhead", action="store_true",
                        help="harness overhead per vector against bare INVOKE round trips interleaved in the run")
    parser.add_argument("--every", type=int, default=4, help="--overhead: one bare INVOKE before every N-th vector")
    parser.add_argument("--firmware", type=Path, help="a runner ELF for mps2-an386 instead of building one")
    parser.add_argument("--gap", action="store_true",
                        help="the host's time from an INVOKE's reply to the next INVOKE request (median, mean)")
    args = parser.parse_args()
    args.suite_cache = args.suite_cache or ["off", "warm"]
    models = args.model or [REPO / "models" / "demo" / "gesture.tflite"]
    report: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.overhead:
            for model in models:
                row = measure_overhead(model, args.vectors, Path(tmp) / f"overhead-{model.stem}", args.firmware,
                                       args.every)
                report.append({"overhead": row})
                print(f"\n{model.name}: {args.vectors} vectors on mps2-an386 (QEMU, host-file transfer), "
                      f"{row['instructions_per_invoke']:,.0f} instructions per invoke; {row['bare_invokes']} bare "
                      f"INVOKE round trips interleaved")
                print(f"{'vectors/s':>10} {'ms/vector':>10} {'bare INVOKE ms':>15} {'overhead ms':>12} "
                      f"{'overhead/invoke':>16} {'host CPU ms':>12} {'link bytes':>11}")
                print(f"{row['vectors_per_s']:10.1f} {row['per_vector_ms']:10.2f} {row['bare_invoke_ms']:15.2f} "
                      f"{row['overhead_ms']:12.2f} {row['overhead_ratio']:16.3f} {row['host_cpu_ms']:12.2f} "
                      f"{row['link_bytes_per_vector']:11.0f}")
        if args.gap:
            for model in models:
                row = measure_gap(model, args.vectors, Path(tmp) / f"gap-{model.stem}", args.firmware)
                report.append({"gap": row})
                print(f"\n{model.name}: {args.vectors} vectors, reply read -> next INVOKE request sent: median "
                      f"{row['gap_median_ms']:.3f} ms, mean {row['gap_mean_ms']:.3f} ms ({row['gaps']} gaps, "
                      f"load average {row['load']:.1f})")
        for model in ([] if args.no_modes else models):
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
            print("overhead per vector, split (ms): " + "; ".join(
                f"{r['mode']}: " + ", ".join(f"{k} {v:.2f}" for k, v in r["round_trips_ms"].items())
                + f", host CPU {r['host_cpu_ms']:.2f} ({r['host_cpu_ms'] / r['invoke_ms']:.2f} of invoke)"
                for r in rows))
        if args.trips:
            model = models[0]
            rows = [measure(model, args.vectors, False, Path(tmp) / f"trips-{k}-{n}", trips=n)
                    for k in range(args.repeats) for n in (4, 1)]
            report.append({"trips": rows})
            print(f"\n{model.name}, host file, {args.vectors} vectors, alternating: SET_INPUT, INVOKE, GET_OUTPUT, "
                  "GET_PROFILE (4 round trips) against one INVOKE that reads the inputs and replies with all (1)")
            print(f"{'trips':>5} {'vectors/s':>10} {'ms/vector':>10} {'invoke ms':>10} {'overhead ms':>12} "
                  f"{'overhead/invoke':>16} {'host CPU ms':>12}")
            for r in rows:
                print(f"{r['trips']:5d} {r['vectors_per_s']:10.1f} {r['per_vector_ms']:10.2f} {r['invoke_ms']:10.2f} "
                      f"{r['overhead_ms']:12.2f} {r['overhead_ratio']:16.2f} {r['host_cpu_ms']:12.2f}")
            four = [r for r in rows if r["trips"] == 4]
            one = [r for r in rows if r["trips"] == 1]
            def med(rs, k):
                return statistics.median(r[k] for r in rs)
            invoke4 = med(four, "invoke_ms")  # the INVOKE round trip carrying only the count
            after1 = (med(one, "per_vector_ms") - invoke4) / invoke4
            after4 = (med(four, "per_vector_ms") - invoke4) / invoke4
            print(f"medians of {args.repeats} alternating pairs, 1 trip / 4 trips: ms per vector "
                  f"{med(one, 'per_vector_ms'):.2f} / {med(four, 'per_vector_ms'):.2f} "
                  f"(throughput {med(four, 'per_vector_ms') / med(one, 'per_vector_ms'):.2f}x); per-vector time "
                  f"beyond a count-only INVOKE round trip ({invoke4:.2f} ms), as a ratio of it: "
                  f"{after1:.2f} / {after4:.2f}")
        if args.suite:
            for model in models:
                for cache in args.suite_cache:
                    row = measure_suite(model, args.suite_vectors, Path(tmp) / f"suite-{model.stem}-{cache}", cache,
                                        args.suite_rounds, args.suite_shards)
                    report.append({"suite": row})
                    _print_suite(row)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
