"""`hil compare` never says "unchanged" (exit 0) about what it did not
compare. A BASE interrupted before any job finished (a real `hil test`
stopped by SIGTERM: "INTERRUPTED 0/0 checks passed in 0 jobs", identity
`complete: false`, both jobs defined) against a complete HEAD used to give
"verdict: unchanged", exit 0, with nothing compared; a BASE run with `-k`
left HEAD's other jobs out of the verdict without a word. A job BASE's
suite defined but did not run is now "not compared" (the verdict
"incomplete", exit 1; --allow-partial judges the rest), and a comparison
that compared nothing is "incomplete" even with --allow-partial.

The documents are hil.suite/1 documents cut to what compare reads (jobs
with their metrics, cases, identity), as `hil test` writes them; the
comparison is pure, so no emulator runs."""

from __future__ import annotations

from harness.config import COMPARE_DEFAULTS
from harness.results.compare import compare

JOBS = ["mps2-an386/a", "mps2-an386/b"]


def _job(job_id: str, count: float) -> dict:
    platform, model = job_id.split("/")
    return {"id": job_id, "platform": platform, "model": model, "status": "passed", "exit_code": 0,
            "metrics": {"count": count, "count_kind": "instructions", "flash_bytes": 82896.0}}


def _case(job_id: str) -> dict:
    platform, model = job_id.split("/")
    return {"id": f"{job_id}/bit_exact", "platform": platform, "model": model, "check": "bit_exact",
            "status": "passed"}


def _suite(ran: list[str], *, defined: list[str] = JOBS, counts: dict | None = None) -> dict:
    counts = counts or {}
    return {"schema": "hil.suite/1", "suite": "c", "git": {"commit": None}, "status": "passed",
            "jobs": [_job(j, counts.get(j, 11440.0)) for j in ran], "cases": [_case(j) for j in ran],
            "identity": {"complete": set(defined) <= set(ran), "jobs_defined": sorted(defined),
                         "jobs_selected": sorted(ran), "keyword": None, "shards": []}}


def test_a_base_that_ran_no_job_is_never_unchanged():
    doc = compare(_suite([]), _suite(JOBS), dict(COMPARE_DEFAULTS))
    assert (doc["verdict"], doc["exit_code"]) == ("incomplete", 1), doc["verdict"]
    doc = compare(_suite([]), _suite(JOBS), dict(COMPARE_DEFAULTS), allow_partial=True)
    assert (doc["verdict"], doc["exit_code"]) == ("incomplete", 1), "nothing compared is nothing judged"


def test_a_job_the_base_suite_defined_but_did_not_run_is_not_compared():
    base, head = _suite(JOBS[:1]), _suite(JOBS, counts={JOBS[1]: 99999.0})
    doc = compare(base, head, dict(COMPARE_DEFAULTS))
    assert (doc["verdict"], doc["exit_code"]) == ("incomplete", 1)
    missing = [c for c in doc["changes"] if c["platform"] + "/" + c["model"] == JOBS[1]]
    assert missing and all(c["status"] == "not compared" for c in missing)
    assert any("did not run in base" in c["note"] for c in missing)
    assert {c["id"]: c["status"] for c in doc["cases"]}[f"{JOBS[1]}/bit_exact"] == "not compared"
    # --allow-partial judges what both ran
    partial = compare(base, head, dict(COMPARE_DEFAULTS), allow_partial=True)
    assert (partial["verdict"], partial["exit_code"]) == ("unchanged", 0)


def test_a_job_new_in_head_is_still_new():
    doc = compare(_suite(JOBS[:1], defined=JOBS[:1]), _suite(JOBS), dict(COMPARE_DEFAULTS))
    assert (doc["verdict"], doc["exit_code"]) == ("unchanged", 0)
    assert {c["id"]: c["status"] for c in doc["cases"]}[f"{JOBS[1]}/bit_exact"] == "new"
