"""A suite: every (platform, model) job of a hil.toml, run and judged.

    hil.toml -> jobs -> select (-k) -> shard (i/N) -> runs (-j in parallel)
             -> cases (checks/suite.py) -> hil.suite/1 document -> store

Each job is an ordinary `hil run` (runner.Run) in its own run directory
under the suite's directory, so every job keeps its full hil.result/1
document, console log and inputs next to the suite document.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .checks.suite import evaluate
from .checks.truth import job_metrics as truth_metrics
from .config import ModelEntry, ProjectConfig
from .dirlock import lock_directory
from .errors import EXIT_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, DiskError, HilError, UsageError
from .provenance import host_provenance
from .results.result import emulator_log, write_json_copies
from .runner import Reporter, Run, RunConfig
from .verdict import case_code, code_of, combine, status_word

log = logging.getLogger(__name__)

SCHEMA = "hil.suite/1"


@dataclass(frozen=True)
class Job:
    platform: str
    model: ModelEntry

    @property
    def id(self) -> str:
        return f"{self.platform}/{self.model.name}"


def all_jobs(config: ProjectConfig) -> list[Job]:
    return sorted((Job(p, m) for m in config.models for p in m.platforms), key=lambda j: j.id)


def select(jobs: list[Job], expression: str | None) -> list[Job]:
    """pytest-style -k: words match as substrings of the job id
    (`platform/model`), combined with and / or / not and parentheses."""
    if not expression:
        return jobs
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    allowed = {"and", "or", "not", "(", ")"}

    def matches(job_id: str) -> bool:
        code = " ".join(t if t in allowed else repr(t.lower() in job_id.lower()) for t in tokens)
        try:
            return bool(eval(code, {"__builtins__": {}}, {}))  # only True/False/and/or/not/() reach here
        except SyntaxError:
            raise UsageError(f"-k {expression!r} is not a valid expression",
                             hint="use words joined by and / or / not, e.g. -k 'an386 and not float'") from None

    return [j for j in jobs if matches(j.id)]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    m = re.fullmatch(r"(\d+)/(\d+)", text)
    if not m or not (1 <= int(m[1]) <= int(m[2])):
        raise UsageError(f"--shard {text!r} is not i/N with 1 <= i <= N", hint="e.g. --shard 2/4")
    return int(m[1]), int(m[2])


def shard(jobs: list[Job], spec: tuple[int, int] | None) -> list[Job]:
    """Deterministic round-robin over the sorted job ids: every runner of a
    CI matrix computes the same split without talking to the others."""
    if spec is None:
        return jobs
    index, count = spec
    return [j for k, j in enumerate(sorted(jobs, key=lambda j: j.id)) if k % count == index - 1]


def git_info(directory: Path) -> dict:
    def git(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=directory, capture_output=True, text=True, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "branch": None, "dirty": None, "subject": None}
    branch = git("rev-parse", "--abbrev-ref", "HEAD")
    return {"commit": commit, "branch": None if branch == "HEAD" else branch,
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "subject": git("log", "-1", "--format=%s")}


# -- a run's identity: which jobs of which configuration, from which tree ---------------------------

def _plain(value, root: Path):
    """A config value as JSON data, paths relative to the project (so two
    checkouts of one commit hash alike)."""
    if isinstance(value, Path):
        try:
            return value.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name), root) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, root) for v in value]
    return value


def config_basis(config: ProjectConfig, count: bool = True) -> dict:
    """What of hil.toml (and `hil test`'s options) decides the results: the
    models, their vectors, platforms, checks and budgets, the firmware, and
    whether counts were taken. Not the store, the results directory or the
    [compare] thresholds (they change no measurement)."""
    return {"models": [_plain(m, config.root) for m in config.models],
            "firmware": {"defines": config.defines, "build": _plain(config.build, config.root)},
            "count": count}


def config_hash(basis: dict) -> str:
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_identity(*, defined: list[str], selected: list[str], ran: list[str], keyword: str | None,
                 shards: list[dict], dirty: bool | None, basis: dict | None, recorded: bool,
                 interrupted: bool = False) -> dict:
    """`identity` of a hil.suite/1 document. Complete: every job the suite
    defines ran (no -k or shard, or merged shards that cover them all) and
    the run was not interrupted; clean: the git tree had no uncommitted
    changes to tracked files. `hil compare` and `hil history` use only
    complete, clean runs unless told otherwise."""
    return {"complete": bool(defined) and set(defined) <= set(ran) and not interrupted,
            "clean": None if dirty is None else not dirty,
            "recorded": recorded, "keyword": keyword, "shards": shards,
            "jobs_selected": sorted(selected), "jobs_defined": sorted(defined),
            "config_hash": config_hash(basis) if basis is not None else None, "config": basis}


def identity_of(doc: dict) -> dict:
    """A document's identity; for documents written before hil recorded it,
    inferred from what they have (the -k selection and the shards)."""
    if isinstance(doc.get("identity"), dict):
        return doc["identity"]
    ids = [j.get("id") for j in doc.get("jobs", [])]
    partial = bool(doc.get("selection") or doc.get("shards")) or doc.get("status") in ("interrupted", "running")
    dirty = (doc.get("git") or {}).get("dirty")
    return {"complete": not partial, "clean": None if dirty is None else not dirty, "recorded": True,
            "keyword": doc.get("selection"), "shards": doc.get("shards", []), "jobs_selected": ids,
            "jobs_defined": None, "config_hash": None, "config": None, "inferred": True}


def describe_identity(identity: dict, tree: bool = True) -> str:
    """'complete, clean' or 'partial (-k 'an386'; 2 of 5 jobs), dirty'
    (without the tree's state: `tree` False)."""
    if identity.get("complete"):
        words = "complete"
    else:
        how = []
        if identity.get("keyword"):
            how.append(f"-k {identity['keyword']!r}")
        shards = identity.get("shards") or []
        if shards:
            how.append("shard " + ", ".join(f"{s['index']}/{s['count']}" for s in shards))
        selected, defined = identity.get("jobs_selected"), identity.get("jobs_defined")
        if selected is not None and defined:
            how.append(f"{len(selected)} of {len(defined)} jobs")
        words = "partial" + (f" ({'; '.join(how)})" if how else "")
    clean = identity.get("clean")
    if not tree:
        return words
    return words + (", clean" if clean else ", dirty" if clean is False else ", no git")


def job_metrics(result: dict | None) -> dict:
    """The numbers `hil compare` and the history track for one job."""
    if not result:
        return {}
    s = result.get("summary", {})
    mem = result.get("memory", {})
    device = mem.get("device") or {}
    counts = [v["count"]["value"] for v in result.get("vectors", []) if v.get("count")]
    return {
        "count": s.get("count", {}).get("median"),
        "count_kind": s.get("count", {}).get("kind"),
        "count_samples": counts,
        "energy_uj": s.get("energy_uj", {}).get("median"),
        "energy_basis": s.get("energy_basis"),  # the estimate's label (harness/power/energy.py)
        "cycles_estimate": s.get("cycles", {}).get("median"),  # the timing model's estimate (harness/timing)
        "latency_ms": s.get("latency_ms", {}).get("median"),
        "cycles_basis": s.get("cycles_basis"),  # its label: model, clock, band
        "battery": _battery_metrics(result.get("battery")),  # --rate/--battery-mah (harness/power/battery.py)
        "flash_bytes": mem.get("flash_bytes"),
        "ram_bytes": mem.get("ram_bytes"),
        "arena_bytes": device.get("arena_high_water"),
        "model_bytes": result.get("model", {}).get("bytes"),
        "accuracy": (s.get("accuracy") or {}).get("top1"),
        "operators": [{"index": o["index"], "op": o["op"], "count": o["median"]} for o in s.get("operators", [])],
        **truth_metrics(s),  # float_top1_agreement, float_cosine, expected_match (checks/truth.py)
        # what was measured: hil compare says when the model changed, and will not compare an
        # accuracy measured on other vectors
        "model_sha256": (result.get("model") or {}).get("sha256"),
        "vectors": {k: v for k, v in (result.get("vector_source") or {}).items()
                    if k in ("kind", "seed", "count", "sha256")} or None,
    }


_active: set[Run] = set()


def job_run_dir(suite_dir: Path, job: Job) -> Path:
    """A job's run directory in the suite's: runs/<platform>/<model>. A
    platform given as a file's path (hil.toml may name one, even absolute)
    is its file's stem, so the directory stays inside the suite's."""
    platform = Path(job.platform).stem if job.platform.endswith(".toml") else job.platform
    return suite_dir / "runs" / platform / job.model.name


def job_run_config(job: Job, config: ProjectConfig, run_dir: Path, count: bool, firmware: Path | None) -> RunConfig:
    """The RunConfig of a job's run (`firmware`: hil.toml's [firmware] build, or None for hil's runner)."""
    spec = job.model.vectors
    return RunConfig(model=job.model.path, platform=job.platform, vectors=spec.random or 0, seed=spec.seed,
                     inputs=spec.file, input_limit=spec.limit, workdir=run_dir, extra_defines=config.defines,
                     budgets=dict(job.model.budgets), count=count, firmware=firmware, battery=job.model.battery,
                     expected=spec.expected, expected_file=spec.expected_file,
                     expected_tolerance=spec.expected_tolerance, float_model=job.model.float_model)


def _run_job(job: Job, config: ProjectConfig, suite_dir: Path, count: bool,
             reporter: Reporter | None = None) -> tuple[dict | None, str | None]:
    run_dir = job_run_dir(suite_dir, job)
    firmware = None
    if config.build is not None:  # hil.toml's [firmware] names what to build (docs/build.md)
        from .build.project import build_for_suite

        try:
            firmware = build_for_suite(config, job.platform)
        except HilError as exc:
            return {"status": "error", "exit_code": exc.exit_code, "error": {"message": str(exc)},
                    "vectors": []}, str(exc)
    run = Run(job_run_config(job, config, run_dir, count, firmware), reporter)
    _active.add(run)
    try:
        result = run.execute()
    except HilError as exc:  # before the run could write a result
        return {"status": "error", "exit_code": exc.exit_code, "error": {"message": str(exc)},
                "vectors": []}, str(exc)
    finally:
        _active.discard(run)
    if result.status == "error" and result.error:
        return result.as_dict(), result.error["message"]
    return result.as_dict(), None


def unrecorded_dir(config: ProjectConfig) -> Path:
    """Where `hil test --no-store` puts its suite directories: beside the
    results directory, never inside it, so no scan of it (trends, history)
    finds them."""
    return config.results_dir.with_name(config.results_dir.name + "-unstored")


def run_suite(config: ProjectConfig, *, keyword: str | None = None, shard_spec: tuple[int, int] | None = None,
              jobs_in_parallel: int = 1, out_dir: Path | None = None, count: bool = True,
              on_job: Callable[[str, dict], None] | None = None,
              reporter_for: Callable[[str], Reporter] | None = None,  # a job's progress (hil test's console)
              json_out: Path | None = None, recorded: bool = True) -> tuple[dict, Path]:
    """Run the selected jobs; return the hil.suite/1 document and its path.
    The document is written to the suite directory and to `json_out`, each
    on its own: a disk that fails for one copy does not stop the other, and
    the suite then ends as infrastructure (exit 3) with the reason in its
    `error`. `recorded` False (--no-store) keeps the run out of the results
    directory and marks it so (identity.recorded)."""
    defined = all_jobs(config)
    jobs = shard(select(defined, keyword), shard_spec)
    git = git_info(config.root)
    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    parent = config.results_dir if recorded else unrecorded_dir(config)
    suite_dir = Path(out_dir or parent / f"{stamp}-{(git['commit'] or 'nogit')[:8]}").resolve()
    try:
        suite_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DiskError(f"cannot create the suite directory {suite_dir}: {exc.strerror or exc}", suite_dir,
                        hint="run where you can write, or choose a writable --out") from exc
    suite_lock = lock_directory(suite_dir, "the suite directory", "--out")  # one suite per directory
    doc: dict[str, Any] = {  # the hil.suite/1 document, saved as it grows
        "schema": SCHEMA, "suite": config.name, "git": git,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "duration_s": 0.0,
        "status": "running", "exit_code": None,
        "shards": [{"index": shard_spec[0], "count": shard_spec[1]}] if shard_spec else [],
        "selection": keyword, "emulators": {}, "jobs": [], "cases": [], "provenance": host_provenance()}
    basis = config_basis(config, count)

    def identify(interrupted: bool = False) -> None:
        doc["identity"] = run_identity(defined=[j.id for j in defined], selected=[j.id for j in jobs],
                                       ran=[j["id"] for j in doc["jobs"]], keyword=keyword, shards=doc["shards"],
                                       dirty=git["dirty"], basis=basis, recorded=recorded,
                                       interrupted=interrupted or doc["status"] == "running")

    identify()
    path = suite_dir / "suite.json"
    copies = [path, *([Path(json_out)] if json_out else [])]
    write_failed: list[DiskError] = []

    def save() -> None:
        failed = write_json_copies(copies, doc)
        if failed is not None and not write_failed:
            write_failed.append(failed)

    save()
    if write_failed:  # before any job runs, as `hil run` stops before booting
        doc.update(exit_code=EXIT_INFRA, status=status_word(EXIT_INFRA), error={"message": str(write_failed[0])})
        save()
        raise write_failed[0]
    if not jobs:
        raise UsageError(f"no job matches (-k {keyword!r}, shard {shard_spec})" if keyword or shard_spec
                         else "the project has no jobs", hint="`hil test --list` shows the jobs")

    def finish(job: Job, result: dict | None, error: str | None, run_dir: Path | None = None) -> None:
        cases = evaluate(job.platform, job.model.name, job.model.checks, job.model.budgets, result, error)
        run_dir = run_dir or job_run_dir(suite_dir, job)  # a farm job's: its last attempt's (_run_on_farm)
        entry = {"id": job.id, "platform": job.platform, "model": job.model.name,
                 "status": result["status"] if result else "error",
                 "result": str((run_dir / "result.json").relative_to(suite_dir)),
                 "error": error, "exit_code": result.get("exit_code") if result else EXIT_INFRA,
                 "metrics": job_metrics(result), "provenance": (result or {}).get("provenance")}
        place = ((result or {}).get("target") or {}).get("place")
        if place:  # a board farm's job: the place and the board's probe, and any retry (harness/farm.py)
            entry.update(place=place["name"], probe_id=place.get("probe"), attempts=(result or {}).get("attempts", []))
        elif (result or {}).get("attempts"):  # its last attempt on a place stands; no place ran it again
            entry["attempts"] = (result or {})["attempts"]
        log = emulator_log(run_dir)
        if log is not None:
            entry["emulator_log"] = str(log.relative_to(suite_dir))
        if result and result.get("target", {}).get("emulator"):
            doc["emulators"][result["target"].get("kind", "emulator")] = result["target"]["emulator"]
        doc["jobs"].append(entry)
        doc["cases"] += [c.as_dict() for c in cases]
        save()
        if on_job:
            on_job(job.id, entry)

    interrupted = False
    from .farm import suite_jobs

    address, wait_s, on_farm = suite_jobs(config, jobs)
    pool = ThreadPoolExecutor(max_workers=max(1, jobs_in_parallel))
    futures: dict = {}
    finished: set = set()
    try:
        if on_farm:  # board jobs over the lab's places, -j of them at a time
            assert address is not None, "suite_jobs names the coordinator of its farm jobs"
            doc["farm"] = {}  # filled as the farm runs: kept if the suite is stopped
            _run_on_farm(config, on_farm, address, wait_s, jobs_in_parallel, suite_dir, count, reporter_for, finish,
                         doc["farm"])
        futures = {pool.submit(_run_job, job, config, suite_dir, count, reporter_for and reporter_for(job.id)): job
                   for job in jobs if job.id not in {f.key.id for f in on_farm if isinstance(f.key, Job)}}
        for future in as_completed(futures):
            result, error = future.result()
            finish(futures[future], result, error)
            finished.add(future)
            if result and result.get("status") == "interrupted":
                interrupted = True
    except KeyboardInterrupt:
        interrupted = True
        for run in list(_active):
            run.abort()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    for future, job in futures.items():  # the jobs stopped mid-run: their vectors so far are results too
        if future not in finished and future.done() and not future.cancelled() and future.exception() is None:
            finish(job, *future.result())
    doc["jobs"].sort(key=lambda j: j["id"])
    doc["cases"].sort(key=lambda c: c["id"])
    doc["duration_s"] = round(time.time() - started, 3)
    doc["exit_code"] = suite_exit(doc["jobs"], doc["cases"], interrupted)
    doc["status"] = status_word(doc["exit_code"])
    identify(interrupted)
    save()
    if write_failed and doc["exit_code"] in (EXIT_OK, EXIT_FAILED):  # as one run does (Run.execute)
        doc.update(exit_code=EXIT_INFRA, status=status_word(EXIT_INFRA), error={"message": str(write_failed[0])})
        save()
    if suite_lock is not None:
        suite_lock.release()
    return doc, path


def _run_on_farm(config: ProjectConfig, on_farm: list, address: str, wait_s: float, workers: int, suite_dir: Path,
                 count: bool, reporter_for, finish, record: dict) -> dict:
    from .farm import build_before_lease, failed_run, run_jobs, run_with_lease

    firmware: dict[str, Path | None] = {}
    last_dir: dict[str, Path] = {}

    def attempt_dir(job: Job, attempt: int) -> Path:  # each attempt keeps its result and logs: runs/.../attempt-N
        return job_run_dir(suite_dir, job) / f"attempt-{attempt}"

    def prepare(farm_job) -> tuple[dict | None, str | None] | None:
        """Built (or taken from the build cache) before any place is asked
        for: a build never holds a board, and its failure blames none."""
        job = farm_job.key
        reporter = reporter_for and reporter_for(job.id)
        run_config = job_run_config(job, config, job_run_dir(suite_dir, job), count, None)
        try:
            if config.build is not None:  # hil.toml's [firmware] names what to build (docs/build.md)
                from .build.project import build_for_suite

                run_config.firmware = firmware[job.id] = build_for_suite(config, job.platform)
            failed = build_before_lease(run_config, reporter)
        except HilError as exc:
            failed = failed_run(run_config, reporter, exc.exit_code, str(exc))
        if failed is None or failed.result is None:
            return None
        return failed.result.as_dict(), (failed.result.error or {}).get("message")

    def run_one(farm_job, lease, attempt: int) -> tuple[dict | None, str | None]:
        job = farm_job.key
        last_dir[job.id] = attempt_dir(job, attempt)
        run = run_with_lease(job_run_config(job, config, last_dir[job.id], count, firmware.get(job.id)), lease,
                             reporter_for and reporter_for(job.id), active=_active)
        if run.result is None:
            return None, "the run left no result"
        error = run.result.error["message"] if run.result.status == "error" and run.result.error else None
        return run.result.as_dict(), error

    def done(farm_job, result: dict | None, error: str | None) -> None:
        job = farm_job.key
        for attempt in (result or {}).get("attempts", []):
            attempt["result"] = str((attempt_dir(job, attempt["attempt"]) / "result.json").relative_to(suite_dir))
        finish(job, result, error, last_dir.get(job.id))

    def abort_all():
        for run in list(_active):
            run.abort()

    progress = reporter_for("farm").stage if reporter_for else None
    return run_jobs(on_farm, address, workers, run_one, done, wait_s=wait_s, progress=progress, abort_all=abort_all,
                    prepare=prepare, record=record)


def suite_exit(jobs: list[dict], cases: list[dict], interrupted: bool = False) -> int:
    """One exit status for a suite's jobs and their checks (harness/verdict.py),
    the same for a whole suite and for its merged shards."""
    job_codes = {j["id"]: code_of(j) for j in jobs}
    codes = [EXIT_INTERRUPTED] if interrupted else []
    codes += job_codes.values()
    codes += [case_code(c["status"], job_codes.get(f"{c['platform']}/{c['model']}")) for c in cases]
    return combine(codes)


def load_suite(path: Path) -> dict:
    """Read a hil.suite/1 (or a single hil.result/1, wrapped as a one-job suite)."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}", hint="pass a suite.json written by `hil test`") from exc
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema == SCHEMA:
        return doc
    if schema == "hil.result/1":
        platform, model = doc["platform"]["name"], Path(doc["model"]["path"]).stem
        return {"schema": SCHEMA, "suite": model, "git": {"commit": None, "branch": None, "dirty": None},
                "status": doc["status"], "exit_code": doc.get("exit_code"), "shards": [], "cases": [],
                "provenance": doc.get("provenance"),
                "identity": run_identity(defined=[f"{platform}/{model}"], selected=[f"{platform}/{model}"],
                                         ran=[f"{platform}/{model}"], keyword=None, shards=[], dirty=None,
                                         basis=None, recorded=True),
                "jobs": [{"id": f"{platform}/{model}", "platform": platform, "model": model,
                          "status": doc["status"], "exit_code": doc.get("exit_code"), "result": str(path),
                          "metrics": job_metrics(doc), "provenance": doc.get("provenance")}]}
    raise UsageError(f"{path} is not a hil result (schema {schema!r})",
                     hint=f"expected {SCHEMA} (hil test) or hil.result/1 (hil run)")


def merge(paths: list[Path], recorded: bool = False, partial: bool = False) -> dict:
    """Merge shard documents of one suite and commit into one document
    (`recorded`: it goes into a result store). The shards of an `i/N` split
    must all be there: a missing one (its CI job crashed, its artifact was
    not uploaded) would otherwise leave a merge that passes on the jobs that
    ran. `partial` merges what is there, marked incomplete."""
    docs = [(Path(p), load_suite(p)) for p in paths]
    first = docs[0][1]
    merged = {**first, "jobs": [], "cases": [], "shards": [], "emulators": {}}
    seen = set()
    for path, doc in docs:
        if (doc["suite"], doc["git"].get("commit")) != (first["suite"], first["git"].get("commit")):
            raise UsageError(f"{path} is suite {doc['suite']!r} at {doc['git'].get('commit')}, not "
                             f"{first['suite']!r} at {first['git'].get('commit')}",
                             hint="merge only the shards of one `hil test` run")
        merged["shards"] += doc.get("shards", [])
        merged["emulators"].update(doc.get("emulators", {}))
        merged["duration_s"] = max(merged.get("duration_s", 0), doc.get("duration_s", 0))
        for job in doc["jobs"]:
            if job["id"] in seen:
                raise UsageError(f"job {job['id']} appears in two shard documents",
                                 hint="each shard must hold different jobs (same --shard N everywhere)")
            seen.add(job["id"])
            absolute: dict[str, Any] = {key: str((path.parent / job[key]).resolve()) for key in ("result", "emulator_log")
                                        if job.get(key)}
            if job.get("attempts"):  # a board-farm job's attempts, each with its own result (harness/farm.py)
                absolute["attempts"] = [{**a, "result": str((path.parent / a["result"]).resolve())} if a.get("result")
                                        else a for a in job["attempts"]]
            merged["jobs"].append({**job, **absolute})  # relative to the shard's directory: absolute once merged
        merged["cases"] += doc["cases"]
    merged["jobs"].sort(key=lambda j: j["id"])
    merged["cases"].sort(key=lambda c: c["id"])
    _check_shards_cover_the_split(docs, partial)
    interrupted = any(d.get("status") == "interrupted" for _, d in docs)
    merged["exit_code"] = suite_exit(merged["jobs"], merged["cases"], interrupted)
    merged["status"] = status_word(merged["exit_code"])
    merged["identity"] = _merged_identity(docs, merged, interrupted, recorded)
    return merged


def _check_shards_cover_the_split(docs: list[tuple[Path, dict]], partial: bool) -> None:
    specs = [(path, (spec["index"], spec["count"])) for path, doc in docs for spec in doc.get("shards") or []]
    counts = {count for _, (_, count) in specs}
    if len(counts) > 1:
        raise UsageError("the shards split the suite in different ways: "
                         + ", ".join(f"{path} is shard {i}/{n}" for path, (i, n) in specs),
                         hint="merge the shards of one `hil test --shard i/N` run (the same N everywhere)")
    if not counts or partial:
        return
    (count,) = counts
    missing = sorted(set(range(1, count + 1)) - {i for _, (i, _) in specs})
    if missing:
        raise UsageError(f"shard {', '.join(f'{i}/{count}' for i in missing)} missing: the "
                         f"{len(docs)} document(s) given hold {count - len(missing)} of the {count} shards, "
                         "so their jobs would pass or fail as if they were the whole suite",
                         hint="give every shard's suite.json, or --partial to merge what is there "
                              "(marked incomplete: not a baseline for hil compare)")


def _merged_identity(docs: list[tuple[Path, dict]], merged: dict, interrupted: bool, recorded: bool) -> dict:
    """The shards' identities as one: complete when they cover every job the
    suite defines; clean when every shard was. Shards of different
    configurations are not one run."""
    identities = [(path, identity_of(doc)) for path, doc in docs]
    first_path, first = identities[0]
    for path, identity in identities[1:]:
        if identity.get("config_hash") != first.get("config_hash"):
            raise UsageError(f"{path} was run with another configuration than {first_path} "
                             f"(config hash {identity.get('config_hash')} vs {first.get('config_hash')})",
                             hint="merge only the shards of one `hil test` run of one hil.toml")
    defined = first.get("jobs_defined") or []
    selected = sorted({j for _, i in identities for j in (i.get("jobs_selected") or [])})
    cleans = [i.get("clean") for _, i in identities]
    dirty = None if None in cleans else not all(cleans)
    identity = run_identity(defined=defined, selected=selected, ran=[j["id"] for j in merged["jobs"]],
                            keyword=first.get("keyword"), shards=merged["shards"], dirty=dirty,
                            basis=first.get("config"), recorded=recorded, interrupted=interrupted)
    if first.get("jobs_defined") is None:  # shards written before hil recorded identities
        identity["complete"] = False
    return identity


def _battery_metrics(battery: dict | None) -> dict | None:
    """The battery-life estimate's figures a suite keeps (its assumptions
    stay in the job's result.json)."""
    if not battery or battery.get("error"):
        return battery or None
    return {k: battery.get(k) for k in ("rate", "battery_mah", "battery_v", "average_uw", "life_days", "band",
                                        "sleep_status", "error_band")}
