"""Verdicts for a suite: one case per (platform, model, check), computed
from a run's hil.result/1 document. The runner measures; this decides.

A run that faulted, hung or errored fails (or errors) every check of its
job with the reason, so CI shows each check that could not pass and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from .localize import describe as describe_localization
from .metrics import describe_mismatch
from .truth import CHECKS as TRUTH_CHECKS
from .truth import suite_check as truth_check

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Case:
    platform: str
    model: str
    check: str
    status: str  # passed | failed | error | skipped
    message: str
    measured: float | None = None
    limit: float | None = None
    duration_s: float | None = None

    @property
    def id(self) -> str:
        return f"{self.platform}/{self.model}/{self.check}"

    def as_dict(self) -> dict:
        return {"id": self.id, "platform": self.platform, "model": self.model, "check": self.check,
                "status": self.status, "message": self.message, "measured": self.measured,
                "limit": self.limit, "duration_s": self.duration_s}


def _ran(vectors: list[dict]) -> list[dict]:
    return [v for v in vectors if v["status"] in ("passed", "mismatch")]


def reasons(result: dict) -> str:
    """Why outputs differ, for a failing output check's message: the first
    diverging operator (the run's localisation) and the worst vector, with
    how many elements differ and the largest difference, where and what."""
    parts = []
    loc = result.get("localization")
    if loc:
        parts.append(describe_localization(loc))
    differing = [v for v in _ran(result.get("vectors", [])) if not v["passed"]]
    if differing:
        worst = max(differing, key=lambda v: (v.get("max_abs_diff") is None, v.get("max_abs_diff") or 0,
                                              v.get("mismatches") or 0))
        m = worst.get("mismatch")
        detail = (describe_mismatch(m) if m else f"{worst.get('mismatches')} elements differ, largest |diff| "
                  f"{worst.get('max_abs_diff')}")
        many = f"worst of {len(differing)} differing vectors" if len(differing) > 1 else "differing"
        parts.append(f"{many}: vector {worst['index']}, {detail}")
    return "; ".join(parts)


#: checks of the outputs against the reference: a failure names where they diverge
OUTPUT_CHECKS = ("bit_exact", "tolerance_lsb", "cosine_min", "l2_rel_max", "top1_agreement_min")


def _check(name: str, limit, vectors: list[dict], summary: dict) -> tuple[str, str, float | None, float | None]:
    """(status, message, measured, limit) for one output check."""
    if name in TRUTH_CHECKS:  # against the user's expected outputs or float model (checks/truth.py)
        return truth_check(name, limit, summary)
    ran = _ran(vectors)
    n = len(ran)
    if name == "bit_exact":
        exact = sum(v["passed"] for v in ran)
        ok = exact == n and n > 0
        return ("passed" if ok else "failed", f"{exact}/{n} vectors bit-exact", exact, n)
    if n == 0:
        return "error", "no vector ran", None, limit
    if name == "tolerance_lsb":
        worst = max(v["max_abs_diff"] or 0 for v in ran)
        return ("passed" if worst <= limit else "failed", f"largest |diff| {worst:g} LSB (limit {limit})", worst, limit)
    if name == "cosine_min":
        worst = min(v.get("cosine", 0.0) for v in ran)
        return ("passed" if worst >= limit else "failed", f"smallest cosine {worst:.6f} (min {limit})", worst, limit)
    if name == "l2_rel_max":
        worst = max(float("inf") if v.get("l2_rel") is None else v["l2_rel"] for v in ran)
        return ("passed" if worst <= limit else "failed", f"largest relative L2 error {worst:.3g} (max {limit})",
                worst, limit)
    if name == "top1_agreement_min":
        agree = sum(v.get("top1") == v.get("ref_top1") for v in ran) / n
        return ("passed" if agree >= limit else "failed", f"top-1 agrees with the reference on {agree:.1%} "
                f"(min {limit:.1%})", agree, limit)
    if name == "accuracy_min":
        acc = summary.get("accuracy")
        if acc is None:
            return "error", "accuracy_min needs labelled vectors (an .npz with `labels`)", None, limit
        return ("passed" if acc["top1"] >= limit else "failed", f"top-1 accuracy {acc['top1']:.1%} "
                f"({acc['correct']}/{acc['total']}, min {limit:.1%})", acc["top1"], limit)
    raise ValueError(f"unknown check {name}")


def evaluate(platform: str, model: str, checks: dict, budgets: dict, result: dict | None,
             error: str | None = None) -> list[Case]:
    """Cases for one job. `result` is its hil.result/1 document (None when
    the job could not start; then `error` says why)."""
    wanted = [name for name, value in checks.items() if value is not False]
    names = wanted + [b for b, v in budgets.items() if v is not None]
    duration = result.get("duration_s") if result else None
    if result is None or result.get("status") in ("error", "interrupted") and not result.get("vectors"):
        why = error or (result or {}).get("error", {}).get("message", "the run did not start")
        return [Case(platform, model, n, "error", why, duration_s=duration) for n in names]
    vectors, summary = result["vectors"], result["summary"]
    broken = [v for v in vectors if v["status"] in ("fault", "timeout", "error")]
    total = summary.get("total") or len(vectors)
    stopped = result.get("status") in ("error", "interrupted") and len(vectors) < total  # the rest never ran
    cases = []
    for name in wanted:
        if broken:
            v = broken[0]
            cases.append(Case(platform, model, name, "failed", f"vector {v['index']} {v['status']}: "
                              f"{v.get('error', '')}", duration_s=duration))
            continue
        status, message, measured, limit = _check(name, checks[name], vectors, summary)
        if status == "passed" and stopped:  # a pass on the vectors that ran says nothing of the others
            why = (result.get("error") or {}).get("message") or result["status"]
            status, message = "error", f"only {len(vectors)} of {total} vectors ran ({why}); {message}"
        if status == "failed" and name in OUTPUT_CHECKS:
            why = reasons(result)
            message += f"; {why}" if why else ""
        cases.append(Case(platform, model, name, status, message, measured, limit, duration))
    by_name = {b["name"]: b for b in result.get("budgets", [])}
    for name in names[len(wanted):]:
        b = by_name.get(name)
        if broken or b is None:
            cases.append(Case(platform, model, name, "failed" if broken else "error",
                              "the run stopped before budgets were measured" if broken
                              else (result.get("error") or {}).get("message", "not measured"),
                              limit=budgets[name], duration_s=duration))
            continue
        cases.append(Case(platform, model, name, "passed" if b["passed"] else "failed", b["message"],
                          b["measured"], b["limit"], duration))
    return cases
