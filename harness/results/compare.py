"""Compare two suite runs (BASE, HEAD): every metric's change, and a verdict.

A metric regresses when it grows past its threshold (percent of the base;
accuracy: an absolute drop). Deterministic metrics (instruction counts,
sizes) compare their values; noisy ones (cycle counts on real hardware)
regress only when every HEAD sample is worse than every BASE sample by
more than the threshold. Counts of different kinds are incomparable, never
subtracted. A check that passed on BASE and fails on HEAD is a regression.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA = "hil.compare/1"

#: metric -> (threshold key, unit, higher is worse)
METRICS = {
    "count": ("count_pct", None, True),
    "energy_uj": ("energy_pct", "uJ (estimate)", True),
    "flash_bytes": ("flash_pct", "bytes", True),
    "ram_bytes": ("ram_pct", "bytes", True),
    "arena_bytes": ("arena_pct", "bytes", True),
    "model_bytes": ("model_pct", "bytes", True),
    "accuracy": ("accuracy_drop", "fraction", False),
}
NOISY_KINDS = {"cycles"}  # real counters: caches, interrupts, flash wait states


@dataclass(frozen=True)
class Change:
    platform: str
    model: str
    metric: str
    unit: str | None
    base: float | None
    head: float | None
    threshold: float
    status: str  # regressed | improved | unchanged | new | removed | incomparable
    note: str = ""

    @property
    def delta(self) -> float | None:
        return None if self.base is None or self.head is None else self.head - self.base

    @property
    def delta_pct(self) -> float | None:
        if self.delta is None or not self.base:
            return None
        return 100.0 * self.delta / abs(self.base)

    def as_dict(self) -> dict:
        return {"platform": self.platform, "model": self.model, "metric": self.metric, "unit": self.unit,
                "base": self.base, "head": self.head, "delta": self.delta,
                "delta_pct": None if self.delta_pct is None else round(self.delta_pct, 4),
                "threshold": self.threshold, "status": self.status, "note": self.note}


def _metric_change(platform: str, model: str, metric: str, base: dict, head: dict, thresholds: dict) -> Change:
    key, unit, higher_is_worse = METRICS[metric]
    threshold = float(thresholds.get(key, 0.0))
    b, h = base.get(metric), head.get(metric)
    if metric == "count":
        unit = head.get("count_kind") or base.get("count_kind")
        if b is not None and h is not None and base.get("count_kind") != head.get("count_kind"):
            return Change(platform, model, metric, unit, b, h, threshold, "incomparable",
                          f"{base.get('count_kind')} cannot be compared with {head.get('count_kind')}")
    if b is None and h is None:
        return Change(platform, model, metric, unit, None, None, threshold, "unchanged")
    if b is None or h is None:
        return Change(platform, model, metric, unit, b, h, threshold, "new" if b is None else "removed")
    if metric == "accuracy":
        drop = b - h
        status = "regressed" if drop > threshold else ("improved" if drop < -threshold else "unchanged")
        return Change(platform, model, metric, unit, b, h, threshold, status)
    noisy = metric == "count" and unit in NOISY_KINDS
    if noisy and base.get("count_samples") and head.get("count_samples"):
        worst_base, best_head = max(base["count_samples"]), min(head["count_samples"])
        best_base, worst_head = min(base["count_samples"]), max(head["count_samples"])
        if best_head > worst_base * (1 + threshold / 100):
            status = "regressed"
        elif worst_head < best_base * (1 - threshold / 100):
            status = "improved"
        else:
            status = "unchanged"
        return Change(platform, model, metric, unit, b, h, threshold, status, "noisy: sample ranges compared")
    limit = abs(b) * threshold / 100.0
    worse = (h - b) if higher_is_worse else (b - h)
    status = "regressed" if worse > limit else ("improved" if worse < -limit else "unchanged")
    return Change(platform, model, metric, unit, b, h, threshold, status)


def compare(base: dict, head: dict, thresholds: dict, base_label: str = "base",
            head_label: str = "head") -> dict:
    """A hil.compare/1 document for two hil.suite/1 documents."""
    base_jobs = {j["id"]: j for j in base.get("jobs", [])}
    head_jobs = {j["id"]: j for j in head.get("jobs", [])}
    changes: list[Change] = []
    for job_id in sorted(set(base_jobs) | set(head_jobs)):
        b, h = base_jobs.get(job_id), head_jobs.get(job_id)
        ref = h or b
        for metric in METRICS:
            changes.append(_metric_change(ref["platform"], ref["model"], metric,
                                          (b or {}).get("metrics", {}), (h or {}).get("metrics", {}), thresholds))
    base_cases = {c["id"]: c["status"] for c in base.get("cases", [])}
    head_cases = {c["id"]: c["status"] for c in head.get("cases", [])}
    cases = []
    for case_id in sorted(set(base_cases) | set(head_cases)):
        was, now = base_cases.get(case_id), head_cases.get(case_id)
        if was == now:
            status = "unchanged"
        elif now is None:
            status = "removed"
        elif was is None:
            status = "new" if now == "passed" else "regressed"
        elif now == "passed":
            status = "improved"
        else:
            status = "regressed" if was == "passed" else "unchanged"
        cases.append({"id": case_id, "base": was, "head": now, "status": status})

    statuses = {c.status for c in changes} | {c["status"] for c in cases}
    if "regressed" in statuses:
        verdict, code = "regressed", 1
    elif "incomparable" in statuses:
        verdict, code = "incomparable", 2
    elif "improved" in statuses:
        verdict, code = "improved", 0
    else:
        verdict, code = "unchanged", 0
    return {
        "schema": SCHEMA,
        "base": {"label": base_label, "commit": base.get("git", {}).get("commit"), "suite": base.get("suite")},
        "head": {"label": head_label, "commit": head.get("git", {}).get("commit"), "suite": head.get("suite")},
        "thresholds": thresholds,
        "verdict": verdict,
        "exit_code": code,
        "changes": [c.as_dict() for c in changes if c.status != "unchanged" or c.base is not None],
        "cases": cases,
    }
