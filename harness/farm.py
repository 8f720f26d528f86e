"""Runs on a board farm (labgrid places, harness/targets/labgrid.py).

`run_on_place`: one `hil run` on one place: acquire (or wait for) it, run
with its serial port, probe and power switch, release it on every way out
(errors, Ctrl-C, SIGTERM). A run whose place is lost meanwhile (the
coordinator went away, the place was taken) is stopped: exit 3, and the
result says what became of the place.

`run_jobs`: the board jobs of `hil test` over several places at once: up
to -j workers, each holding one place and taking jobs from a shared queue.
Every job is prepared (its firmware built, or taken from the build cache)
before any place is asked for: a slow build never holds a board, and a
failed one is that job's failure, on no place. A job that ends as
infrastructure (exit 3) after it reached its board (a build or host failure
is no board's fault) is run once more on another place, and the place it
failed on is given back and not used again in this suite. Each attempt is
a run of its own, with its own run directory (the caller's), and every
attempt is recorded: the result of one is never replaced by the next, nor
by a retry that found no place.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import signal
import threading
import time
from typing import Callable

from .errors import EXIT_INFRA, EXIT_INTERRUPTED, HilError, InfraError, UsageError
from .platforms import load_platform
from .runner import Reporter, Run, RunConfig, SilentReporter
from .runner import signals_deferred as _signals_held  # no second Ctrl-C/SIGTERM cuts a release short
from .targets import capabilities_of
from .targets.board import BoardSpec
from .targets.labgrid import (DEFAULT_WAIT_S, Lease, PlaceWanted, acquire, coordinator_address,
                              connect, labgrid_settings, parse_tags)

log = logging.getLogger(__name__)

WATCH_EVERY_S = 1.0


class _Stop(BaseException):
    """SIGTERM while hil waits for a place or holds one: stop, release."""


@contextlib.contextmanager
def _sigterm_stops():
    def on_term(signum, frame):
        raise _Stop()

    try:
        old = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)


def failed_run(config: RunConfig, reporter: Reporter | None, code: int, message: str) -> Run:
    """A run that ended before it could start: its result says why."""
    run = Run(config, reporter)
    run.record_failure(code, message)
    return run


def build_before_lease(config: RunConfig, reporter: Reporter | None = None) -> Run | None:
    """Check the model and vectors and build the firmware (cached for the
    run that follows) before a place is asked for: a usage or build error
    must not wait for, or hold, a shared board. Returns the failed run (its
    result written, saying why), or None when the run may go on."""
    check = Run(dataclasses.replace(config, board=BoardSpec("(the place's serial port)")), reporter)
    try:
        platform = check.prepare()[0]
        check.firmware(platform)
    except HilError as exc:
        return failed_run(config, reporter, exc.exit_code, str(exc))
    return None


def place_request(options: dict) -> tuple[PlaceWanted, float | None] | None:
    """--place / --place-tag / --place-wait, taken out of the run options."""
    name, tags, wait = options.pop("place", None), options.pop("place_tags", ()), options.pop("place_wait", None)
    if not name and not tags:
        if wait is not None:
            raise UsageError("--place-wait is for --place or --place-tag", hint="name the place, or drop --place-wait")
        return None
    if name and tags:
        raise UsageError("--place and --place-tag both choose the place", hint="give the place's name or its tags")
    wanted = PlaceWanted(name=name) if name else PlaceWanted(tags=tuple(sorted(parse_tags(tags).items())))
    return wanted, wait


def check_board_platform(platform_name: str) -> None:
    platform = load_platform(platform_name)
    if not capabilities_of(platform).flash:
        raise UsageError(f"--place is for boards; platform {platform.name} runs in {platform.target_kind}",
                         hint="choose a board platform (`hil platforms`, target serial-board)")


def _watch(lease: Lease, run: Run, done: threading.Event, lost: list[str]) -> None:
    while not done.wait(WATCH_EVERY_S):
        if lost:  # again: an abort while the board was being flashed is undone when the run opens its link
            run.abort()
            continue
        try:
            reason = lease.lost()
        except Exception as exc:  # the session itself broke
            reason = f"the labgrid session failed: {exc}"
        if reason:
            lost.append(reason)
            run.abort()


def run_with_lease(config: RunConfig, lease: Lease, reporter: Reporter | None, active: set | None = None) -> Run:
    """One Run on a held place, stopped (exit 3) if the place is lost.
    `active`: the caller's set of running runs (to abort them all on Ctrl-C)."""
    cfg = dataclasses.replace(config, board=lease.board_spec(), ports=[], probes=[])
    run = Run(cfg, reporter)
    done, lost = threading.Event(), list[str]()
    watcher = threading.Thread(target=_watch, args=(lease, run, done, lost), name="hil-place-watch", daemon=True)
    watcher.start()
    if active is not None:
        active.add(run)
    try:
        run.execute()
    finally:
        done.set()
        watcher.join(5)
        if active is not None:
            active.discard(run)
    if lost and run.result is not None:
        run.fail(EXIT_INFRA, "error", f"{lost[0]}; the run was stopped (nothing else may use a place it "
                                       f"does not hold)")
    if run.result is not None:
        target = run.result.target if isinstance(run.result.target, dict) else {}
        run.result.target = {**target, "place": lease.describe()}
        run.save()
    return run


def run_on_place(config: RunConfig, wanted: PlaceWanted, reporter: Reporter | None = None,
                 wait_s: float | None = None, address: str | None = None) -> Run:
    """`hil run --place NAME` / `--place-tag KEY=VALUE`."""
    reporter = reporter or SilentReporter()
    if config.ports or config.probes:
        raise UsageError("--place and --port/--probe both name a board",
                         hint="give the place (its serial port and probe come from labgrid) or the port, not both")
    check_board_platform(config.platform)  # before anything connects, acquires or builds
    address = address or coordinator_address()[0]
    failed = build_before_lease(config, reporter)
    if failed is not None:
        return failed
    if wait_s is None:
        wait_s = float(labgrid_settings().get("wait_s", DEFAULT_WAIT_S))
    coordinator = lease = None
    with _sigterm_stops():
        try:
            coordinator = connect(address)
            reporter.stage(f"acquiring {wanted.describe()} from the labgrid coordinator at {address}")
            lease = held = acquire(coordinator, wanted, wait_s, reporter.stage)
            if held is None:  # only a wait that can be cancelled ends without a place; this one cannot
                raise InfraError(f"no place was acquired for {wanted.describe()}")
            reporter.stage(f"acquired place {held.name} as {coordinator.identity}"
                           + (f" after waiting {held.waited_s:.1f} s" if held.waited_s >= 1 else ""))
            return run_with_lease(config, held, reporter)
        except (KeyboardInterrupt, _Stop):
            return failed_run(config, reporter, EXIT_INTERRUPTED,
                               f"interrupted (Ctrl-C or SIGTERM) while waiting for {wanted.describe()}"
                               if lease is None else "interrupted (Ctrl-C or SIGTERM)")
        except HilError as exc:
            return failed_run(config, reporter, exc.exit_code, str(exc))
        finally:
            with _signals_held():
                if lease is not None:
                    problem = lease.release()
                    reporter.stage(problem or f"released place {lease.name}")
                if coordinator is not None:
                    coordinator.close()


# -- a suite's board jobs over the farm ----------------------------------------------------------

@dataclasses.dataclass
class FarmJob:
    key: object                 # the suite's job
    wanted: PlaceWanted
    attempts: list = dataclasses.field(default_factory=list)  # one record per run on a place, in order
    last: tuple | None = None   # the last attempt's (result, error), kept until the job is finished


Outcome = tuple[dict | None, str | None]  # a run's result document (as_dict) and its error message


def _job_name(job: FarmJob) -> str:
    return str(getattr(job.key, "id", job.key))


def _error_result(exc: HilError) -> Outcome:
    return {"status": "error", "exit_code": exc.exit_code, "error": {"message": str(exc)}, "vectors": []}, str(exc)


def _not_run_again(job: FarmJob, why: str) -> Outcome | None:
    """A job whose retry never ran (no place left, the suite stopped): its
    last attempt's result stands, saying why it was not run again."""
    if job.last is None:
        return None
    result, error = job.last
    return result, f"{error or 'the attempt ended as infrastructure'}; not run again: {why}"


def run_jobs(jobs: list[FarmJob], address: str, workers: int,
             run_job: Callable[[FarmJob, Lease, int], Outcome],
             done: Callable[[FarmJob, dict | None, str | None], None],
             wait_s: float = DEFAULT_WAIT_S, progress: Callable[[str], None] | None = None,
             abort_all: Callable[[], None] | None = None,
             prepare: Callable[[FarmJob], Outcome | None] | None = None, record: dict | None = None) -> dict:
    """Run `jobs` over free matching places, `workers` at a time (each
    worker holds one place); `done` is called once per job, from one thread
    at a time. `prepare(job)` builds a job before any place is asked for
    (None: ready; else the job's failed outcome, on no place); `run_job(job,
    lease, attempt)` runs attempt 1, 2 of it on a held place. Returns the
    farm's record (places used, released, failed), filled into `record` as
    it grows, so that a caller stopped by Ctrl-C still has it."""
    record = record if record is not None else {}
    progress = progress or (lambda text: None)
    lock = threading.Lock()
    finished: set[int] = set()

    def finish(job: FarmJob, result: dict | None, error: str | None) -> None:
        with lock:
            if id(job) in finished:
                return
            finished.add(id(job))
            if result is not None and job.attempts:
                result["attempts"] = job.attempts
            done(job, result, error)

    ready = []
    for job in jobs:  # before the coordinator is asked for anything: a build never holds a place
        failed = prepare(job) if prepare is not None else None
        if failed is None:
            ready.append(job)
        else:
            finish(job, *failed)
    try:
        coordinator = connect(address) if ready else None
    except HilError as exc:  # no lab: each board job says so, and the suite's other jobs still run
        for job in ready:
            finish(job, *_error_result(exc))
        record.update({"coordinator": address, "workers": workers, "places": [], "failed_places": [],
                       "release_errors": [], "error": str(exc)})
        return record
    queue = collections.deque(ready)
    bad: set[str] = set()
    places: list[dict] = []
    failed_places: list[dict] = []
    release_errors: list[str] = []
    record.update({"coordinator": address, "acquired_as": coordinator.identity if coordinator else None,
                   "workers": workers, "places": places, "failed_places": failed_places,
                   "release_errors": release_errors})
    if coordinator is None:
        return record
    stopping = threading.Event()
    holding = [0]
    crashed: list[str] = []

    def worker() -> None:
        try:
            work()
        except Exception as exc:  # a bug in hil: every job this worker had is reported, none is lost
            import traceback

            crashed.append(f"internal error in hil's farm: {type(exc).__name__}: {exc}\n{traceback.format_exc()}")

    def work() -> None:
        assert coordinator is not None
        lease: Lease | None = None
        try:
            while not stopping.is_set():
                with lock:
                    if not queue:
                        return
                    job = queue[0]
                if lease is not None and not job.wanted.matches(lease.place):
                    _give_back(lease)
                    lease = None
                if lease is None:
                    try:
                        lease = acquire(coordinator, job.wanted, wait_s, progress, exclude=bad,
                                        give_up_on_own=True, cancelled=lambda: stopping.is_set() or not queue)
                    except HilError as exc:
                        with lock:
                            if holding[0]:  # the others go on; this worker is not needed
                                return
                            failed = [j for j in queue if j.wanted == job.wanted]
                            for j in failed:
                                queue.remove(j)
                        for j in failed:
                            finish(j, *(_not_run_again(j, str(exc)) or _error_result(exc)))
                        continue
                    if lease is None:
                        return  # every matching place is held by a sibling worker, or the suite stops
                    with lock:
                        holding[0] += 1
                        places.append({"name": lease.name, "waited_s": round(lease.waited_s, 3),
                                       "acquire_s": round(lease.acquire_s, 3)})
                    progress(f"acquired place {lease.name}")
                with lock:
                    if not queue:
                        return
                    job = queue.popleft()
                attempt = len(job.attempts) + 1
                result, error = job.last = run_job(job, lease, attempt)
                code = (result or {}).get("exit_code", EXIT_INFRA) if result else EXIT_INFRA
                job.attempts.append({"attempt": attempt, "place": lease.name,
                                     "status": (result or {}).get("status", "error"), "exit_code": code,
                                     "error": error})
                # only a run that got as far as the board can blame it: a host failure before the firmware
                # was flashed is the same on every place, and no reason to give this one up
                reached_board = bool((result or {}).get("firmware"))
                if code == EXIT_INFRA and reached_board and attempt == 1 and not stopping.is_set():
                    reason = (error or "").splitlines()[0] if error else "no reason given"
                    progress(f"{_job_name(job)} ended as infrastructure on place {lease.name} ({reason}); the "
                             f"place is given back and not used again, and the job runs again on another place")
                    with lock:
                        bad.add(lease.name)
                        failed_places.append({"name": lease.name, "error": error, "job": _job_name(job)})
                        queue.appendleft(job)
                    _give_back(lease)
                    lease = None
                    continue
                finish(job, result, error)
        finally:
            if lease is not None:
                _give_back(lease)

    def _give_back(lease: Lease) -> None:
        problem = lease.release()
        with lock:
            holding[0] -= 1
            if problem:
                release_errors.append(problem)
        progress(problem or (f"place {lease.name} was taken away: left to whoever holds it now" if lease.taken_away
                             else f"released place {lease.name}"))

    threads = [threading.Thread(target=worker, name=f"hil-farm-{i}", daemon=True) for i in range(max(1, workers))]
    try:
        for t in threads:
            t.start()
            time.sleep(0.05)  # workers acquire in turn, not all at the same instant
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except BaseException:
        stopping.set()
        if abort_all is not None:
            abort_all()
        for t in threads:
            t.join(30)
        for job in jobs:  # a retry still queued: the attempt that ran is kept (the others never started)
            kept = _not_run_again(job, "the suite was interrupted") if id(job) not in finished else None
            if kept is not None:
                finish(job, *kept)
        raise
    finally:
        with _signals_held():
            coordinator.close()
    for job in jobs:  # never finished: a worker gave up with nobody left to run it, or hil failed
        if id(job) not in finished:
            message = crashed[0] if crashed else f"no place ran this job ({job.wanted.describe()})"
            finish(job, *(_not_run_again(job, message) or ({"status": "error", "exit_code": EXIT_INFRA,
                                                            "error": {"message": message}, "vectors": []}, message)))
    return record


def wanted_for(platform: str, place: str | None, tags: dict | None) -> PlaceWanted:
    """A job's place: hil.toml's `place` or `tags`, else any place tagged
    board=<platform>."""
    if place:
        return PlaceWanted(name=place)
    return PlaceWanted(tags=tuple(sorted((tags or {"board": platform}).items())))



def suite_jobs(config, jobs: list) -> tuple[str | None, float, list[FarmJob]]:
    """The suite jobs that run on the farm: board jobs, when hil.toml has a
    [labgrid] coordinator (or the model names a place or tags and
    LG_COORDINATOR is set). Returns the coordinator, the wait and the jobs."""
    settings = getattr(config, "labgrid", None) or {}
    farm = []
    address = None
    for job in jobs:
        platform = load_platform(job.platform)
        if not capabilities_of(platform).flash:
            continue
        named = job.model.place or job.model.tags
        if not settings.get("coordinator") and not named:
            continue
        address = address or coordinator_address(config.root)[0]
        farm.append(FarmJob(job, wanted_for(platform.name, job.model.place, job.model.tags)))
    return address, float(settings.get("wait_s", DEFAULT_WAIT_S)), farm
