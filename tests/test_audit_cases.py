"""A job whose run stopped before all its vectors ran (the emulator killed,
a broken link, Ctrl-C) never has a check that "passed": the vectors that
did not run were not checked. A real `hil test -j 2` whose job lost its
QEMU (kill -9) after 330 of 3000 vectors gave the case bit_exact
"passed: 330/330 vectors bit-exact" (a passing JUnit testcase) and "ERROR
2/2 checks passed". The case is now an error that says how many ran and
why the run stopped; a check that failed on the vectors that ran still
fails (a firmware verdict is never hidden). The job document is cut to
what evaluate reads, as a run writes it; no emulator runs."""

from __future__ import annotations

from harness.checks.suite import evaluate

WHY = "the emulator exited (QEMU, process 13790, exit status -9)"


def _result(ran: int, total: int, status: str = "error", diff_at: int | None = None) -> dict:
    vectors = [{"index": i, "status": "mismatch" if i == diff_at else "passed", "passed": i != diff_at,
                "max_abs_diff": 1.0 if i == diff_at else 0.0, "mismatches": int(i == diff_at)} for i in range(ran)]
    failed = int(diff_at is not None)
    return {"status": status, "exit_code": 3 if status == "error" else 130, "error": {"message": WHY},
            "vectors": vectors, "duration_s": 4.5,
            "summary": {"total": total, "run": ran, "passed": ran - failed, "failed": failed, "not_run": total - ran}}


def test_checks_of_a_run_that_stopped_early_are_errors_not_passes():
    for status in ("error", "interrupted"):
        [case] = evaluate("mps2-an386", "a", {"bit_exact": True}, {}, _result(330, 3000, status))
        assert case.status == "error", (status, case.message)
        assert "330 of 3000" in case.message


def test_a_mismatch_among_the_vectors_that_ran_still_fails():
    [case] = evaluate("mps2-an386", "a", {"bit_exact": True}, {}, _result(330, 3000, diff_at=7))
    assert case.status == "failed"


def test_a_run_with_every_vector_checked_keeps_its_pass():
    """A disk that failed after the last vector: every vector was checked."""
    [case] = evaluate("mps2-an386", "a", {"bit_exact": True}, {}, _result(5, 5))
    assert case.status == "passed"
