"""Compare two suite runs (BASE, HEAD): every metric's change, and a verdict.

A metric regresses when it grows past its threshold (percent of the base;
accuracy: an absolute drop). Deterministic metrics (instruction counts,
sizes) compare their values; noisy ones (cycle counts on real hardware)
regress only when every HEAD sample is worse than every BASE sample by
more than the threshold. Counts of different kinds are incomparable, never
subtracted. A check that passed on BASE and fails on HEAD is a regression.

What cannot be compared is said, never counted as "unchanged":
- a job (or a check) of BASE that HEAD does not have is "not compared",
  and makes the verdict "incomplete" (exit 1); `allow_partial` reports it
  but judges only what was compared; so is a job of HEAD that BASE's suite
  defined but did not run (-k, a shard, interrupted), and a comparison
  that compared nothing is "incomplete" whatever `allow_partial` says;
- a metric or check whose inputs changed version between the runs
  (harness/provenance.py: reference, toolchain, emulator, engine; which
  ones matter per metric is DEPENDS_ON) is "incomparable" (exit 2), unless
  `allow_version_change`;
- an accuracy (or agreement with the user's truth) measured on other
  vectors than BASE's (another file, seed or count) is "incomparable";
  a job whose model file changed is compared (that is the point of the
  gate) and listed in `model_changes`, so no one reads its counts as the
  same model's;
- energy estimates on different bases (measured, cycles estimate,
  instructions x CPI; verified or not) are "incomparable", and so are
  cycles estimates of different timing models (model, clock, memory model,
  calibration: `cycles_basis`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from ..power.energy import basis_label, short_band
from ..provenance import FIRMWARE_AFFECTING, version_changes
from ..timing.validation import band_head

log = logging.getLogger(__name__)

SCHEMA = "hil.compare/1"

#: metric -> (threshold key, unit, higher is worse)
METRICS = {
    "count": ("count_pct", None, True),
    "energy_uj": ("energy_pct", "uJ", True),
    "cycles_estimate": ("cycles_pct", "cycles (estimate)", True),
    "flash_bytes": ("flash_pct", "bytes", True),
    "ram_bytes": ("ram_pct", "bytes", True),
    "arena_bytes": ("arena_pct", "bytes", True),
    "model_bytes": ("model_pct", "bytes", True),
    "accuracy": ("accuracy_drop", "fraction", False),
    # the user's truth (checks/truth.py): fractions, an absolute drop regresses
    "float_top1_agreement": ("float_top1_drop", "fraction", False),
    "float_cosine": ("float_cosine_drop", "fraction", False),
    "expected_match": ("expected_match_drop", "fraction", False),
}
NOISY_KINDS = {"cycles"}  # real counters: caches, interrupts, flash wait states

#: which versions each metric depends on: a change of one of them makes the
#: metric incomparable. Counts and energy: the code that runs (toolchain,
#: engine) and what counts it (emulator); sizes: what was built; the model's
#: size: nothing; accuracy (device top-1 against labels): what runs. Checks
#: against the reference (bit_exact, tolerance, cosine, ...) and metrics not
#: listed here depend on all four, the reference included.
DEPENDS_ON = {
    "count": ("toolchain", "emulator", "engine"),
    "energy_uj": ("toolchain", "emulator", "engine"),
    "cycles_estimate": ("toolchain", "emulator", "engine"),
    "flash_bytes": ("toolchain", "engine"),
    "ram_bytes": ("toolchain", "engine"),
    "arena_bytes": ("engine",),
    "model_bytes": (),
    "accuracy": ("toolchain", "emulator", "engine"),
    "expected_match": ("toolchain", "emulator", "engine"),  # against the user's outputs, not the reference
}
#: budget checks follow the metric they limit
CHECK_DEPENDS_ON = {"max_count": DEPENDS_ON["count"], "max_energy_uj": DEPENDS_ON["energy_uj"],
                    "max_cycles": DEPENDS_ON["cycles_estimate"], "max_latency_ms": DEPENDS_ON["cycles_estimate"],
                    "max_flash": DEPENDS_ON["flash_bytes"], "max_ram": DEPENDS_ON["ram_bytes"],
                    "max_arena": DEPENDS_ON["arena_bytes"], "accuracy_min": DEPENDS_ON["accuracy"],
                    "expected": DEPENDS_ON["expected_match"]}

#: measured on the vectors: another vector set makes them incomparable
ON_VECTORS = ("accuracy", "float_top1_agreement", "float_cosine", "expected_match")

#: an energy figure stored without its label (written before energy_basis existed)
DEFAULT_ENERGY_BASIS = {"kind": "instructions_x_cpi", "verified": False, "error_band": None, "source": None}
NOT_COMPARED = "not compared"


def energy_basis(metrics: dict) -> dict:
    return metrics.get("energy_basis") or DEFAULT_ENERGY_BASIS


def energy_unit(basis: dict) -> str:
    """'uJ (estimate, unverified, -10.4%/+11.2%)', 'uJ (measured)': an
    estimate is compared with its band."""
    if basis.get("kind") == "measured":
        return "uJ (measured)"
    return f"uJ (estimate, {'verified' if basis.get('verified') else 'unverified'}, {short_band(basis)})"


def describe_basis(basis: dict) -> str:
    """'estimate: instructions x CPI, unverified, mps2-an386.toml [power]: ...'."""
    words = "measured" if basis.get("kind") == "measured" else basis_label(basis)
    return words + (f", {basis['source']}" if basis.get("source") else "")


#: what makes two cycles estimates the same kind of figure (cycles_basis keys)
TIMING_IDENTITY = ("model", "clock_hz", "timing_source", "memory_source", "calibration")


def timing_band(basis: dict | None) -> str:
    """'+-9%' or 'band unknown': a cycles estimate's band, short."""
    band = str((basis or {}).get("error_band") or "")
    return band_head(band) if band[:1] in "+-±" else "band unknown"


def timing_label(basis: dict | None) -> str:
    """'cortex-m4 at 120 MHz, +-9%': the timing model a cycles estimate is of."""
    basis = basis or {}
    clock = f" at {basis['clock_hz'] / 1e6:g} MHz" if basis.get("clock_hz") else ""
    calibrated = ", calibrated" if basis.get("calibration") else ""
    return f"{basis.get('model', 'unknown model')}{clock}{calibrated}, {timing_band(basis)}"


@dataclass(frozen=True)
class Change:
    platform: str
    model: str
    metric: str
    unit: str | None
    base: float | None
    head: float | None
    threshold: float
    status: str  # regressed | improved | unchanged | new | incomparable | not compared
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
    if metric == "energy_uj":
        before, after = energy_basis(base), energy_basis(head)
        unit = energy_unit(after if h is not None else before)
        same = all(before.get(k) == after.get(k) for k in ("kind", "verified")) and all(
            not before.get(k) or not after.get(k) or before[k] == after[k]  # a label written before a key existed
            for k in ("source", "basis_text", "power_scaling"))  # power figure, timing model, clock scaling
        cb, ch = base.get("cycles_basis"), head.get("cycles_basis")
        if (b is not None and h is not None and same and cb and ch and after.get("kind") == "cycles_estimate"
                and any(cb.get(k) != ch.get(k) for k in TIMING_IDENTITY)):  # another clock, memory model, calibration
            return Change(platform, model, metric, unit, b, h, threshold, "incomparable",
                          f"energy from cycles estimates of timing model {timing_label(cb)} -> {timing_label(ch)}")
        if b is not None and h is not None and not same:
            return Change(platform, model, metric, unit, b, h, threshold, "incomparable",
                          f"energy basis {describe_basis(before)} -> {describe_basis(after)}")
        if b is not None and h is not None and after.get("kind") != "measured":
            change = _value_change(platform, model, metric, unit, b, h, threshold, higher_is_worse)
            if change.status == "regressed" and not after.get("verified"):
                return replace(change, note=f"on an unverified estimate ({describe_basis(after)})")
            return change
    if metric == "cycles_estimate":
        before, after = base.get("cycles_basis") or {}, head.get("cycles_basis") or {}
        unit = f"cycles (estimate, {timing_label(after if h is not None else before)})"
        if b is not None and h is not None and any(before.get(k) != after.get(k) for k in TIMING_IDENTITY):
            return Change(platform, model, metric, unit, b, h, threshold, "incomparable",
                          f"timing model {timing_label(before)} -> {timing_label(after)}")
    if metric == "count":
        unit = head.get("count_kind") or base.get("count_kind")
        if b is not None and h is not None and base.get("count_kind") != head.get("count_kind"):
            return Change(platform, model, metric, unit, b, h, threshold, "incomparable",
                          f"{base.get('count_kind')} cannot be compared with {head.get('count_kind')}")
    if b is None and h is None:
        return Change(platform, model, metric, unit, None, None, threshold, "unchanged")
    if b is None or h is None:
        if b is None:
            return Change(platform, model, metric, unit, b, h, threshold, "new")
        return Change(platform, model, metric, unit, b, h, threshold, NOT_COMPARED, "not measured in head")
    if unit == "fraction":  # accuracy and the user's truth: an absolute drop
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
    return _value_change(platform, model, metric, unit, b, h, threshold, higher_is_worse)


def _value_change(platform, model, metric, unit, b, h, threshold, higher_is_worse) -> Change:
    limit = abs(b) * threshold / 100.0
    worse = (h - b) if higher_is_worse else (b - h)
    status = "regressed" if worse > limit else ("improved" if worse < -limit else "unchanged")
    return Change(platform, model, metric, unit, b, h, threshold, status)


def _guard_versions(change: Change, changed: dict[str, str], depends: tuple, allow: bool) -> Change:
    """A change whose inputs changed version: incomparable, or (allowed)
    compared with the changed versions in its note."""
    relevant = [changed[k] for k in depends if k in changed]
    if not relevant or change.base is None or change.head is None:
        return change
    note = "; ".join(relevant)
    if allow:
        return replace(change, note="; ".join(filter(None, [change.note, f"versions: {note}"])))
    return replace(change, status="incomparable", note=note)


def _case_status(was: str | None, now: str | None) -> str:
    if was == now:
        return "unchanged"
    if now is None:
        return NOT_COMPARED
    if was is None:
        return "new" if now == "passed" else "regressed"
    if now == "passed":
        return "improved"
    return "regressed" if was == "passed" else "unchanged"


def compare(base: dict, head: dict, thresholds: dict, base_label: str = "base",
            head_label: str = "head", *, allow_partial: bool = False, allow_version_change: bool = False) -> dict:
    """A hil.compare/1 document for two hil.suite/1 documents."""
    base_jobs = {j["id"]: j for j in base.get("jobs", [])}
    head_jobs = {j["id"]: j for j in head.get("jobs", [])}
    changes: list[Change] = []
    job_versions: dict[str, dict[str, str]] = {}
    versions_unknown = []  # jobs whose provenance one side lacks (runs made before hil recorded it)
    base_defined = set((base.get("identity") or {}).get("jobs_defined") or ())  # BASE's suite had, ran or not
    model_changes: dict[str, dict[str, str]] = {}
    vector_changes: dict[str, str] = {}
    for job_id in sorted(set(base_jobs) | set(head_jobs)):
        b, h = base_jobs.get(job_id), head_jobs.get(job_id)
        ref = h or base_jobs[job_id]  # the job ran on one side at least
        bm, hm = (b or {}).get("metrics") or {}, (h or {}).get("metrics") or {}
        if bm.get("model_sha256") and hm.get("model_sha256") and bm["model_sha256"] != hm["model_sha256"]:
            model_changes[job_id] = {"base": bm["model_sha256"], "head": hm["model_sha256"]}
        if bm.get("vectors") and hm.get("vectors") and bm["vectors"] != hm["vectors"]:
            vector_changes[job_id] = f"{describe_vectors(bm['vectors'])} -> {describe_vectors(hm['vectors'])}"
        changed = version_changes((b or {}).get("provenance"), (h or {}).get("provenance")) if b and h else {}
        if changed:
            job_versions[job_id] = changed
        if b and h and not (b.get("provenance") and h.get("provenance")):
            versions_unknown.append(job_id)
        for metric in METRICS:
            change = _metric_change(ref["platform"], ref["model"], metric,
                                    (b or {}).get("metrics", {}), (h or {}).get("metrics", {}), thresholds)
            if h is None and change.base is not None:
                change = replace(change, head=None, status=NOT_COMPARED, note="the job did not run in head")
            if b is None and job_id in base_defined and change.head is not None:  # not new: BASE skipped it
                change = replace(change, base=None, status=NOT_COMPARED, note="the job did not run in base")
            if metric in ON_VECTORS and job_id in vector_changes and change.base is not None \
                    and change.head is not None:
                change = replace(change, status="incomparable",
                                 note=f"measured on other vectors: {vector_changes[job_id]}")
            changes.append(_guard_versions(change, changed, DEPENDS_ON.get(metric, FIRMWARE_AFFECTING),
                                           allow_version_change))
    base_cases = {c["id"]: c for c in base.get("cases", [])}
    head_cases = {c["id"]: c for c in head.get("cases", [])}
    cases = []
    for case_id in sorted(set(base_cases) | set(head_cases)):
        was, now = (base_cases.get(case_id) or {}).get("status"), (head_cases.get(case_id) or {}).get("status")
        case = head_cases.get(case_id) or base_cases[case_id]
        job_id, _, check = case_id.rpartition("/")
        if case.get("platform") and case.get("model"):
            job_id, check = f"{case['platform']}/{case['model']}", case.get("check") or check
        status, note = _case_status(was, now), ""
        if status == NOT_COMPARED:
            note = "the job did not run in head" if job_id not in head_jobs else "the check is not in head"
        if was is None and job_id not in base_jobs and job_id in base_defined:
            status, note = NOT_COMPARED, "the job did not run in base"
        relevant = [v for k, v in job_versions.get(job_id, {}).items()
                    if k in CHECK_DEPENDS_ON.get(check, FIRMWARE_AFFECTING)]
        if relevant and was is not None and now is not None:
            note = "; ".join(relevant) if not allow_version_change else f"versions: {'; '.join(relevant)}"
            status = status if allow_version_change else "incomparable"
        cases.append({"id": case_id, "base": was, "head": now, "status": status, "note": note})

    statuses = {c.status for c in changes} | {c["status"] for c in cases}
    not_compared = sum(c.status == NOT_COMPARED for c in changes) + sum(c["status"] == NOT_COMPARED for c in cases)
    judged = statuses - {NOT_COMPARED} if allow_partial else statuses
    nothing_compared = not any(c.base is not None and c.head is not None for c in changes) and \
        not any(c["base"] is not None and c["head"] is not None for c in cases)
    if "regressed" in judged:
        verdict, code = "regressed", 1
    elif "incomparable" in judged:
        verdict, code = "incomparable", 2
    elif NOT_COMPARED in judged or nothing_compared:  # no "unchanged" about what was never compared
        verdict, code = "incomplete", 1
    elif "improved" in judged:
        verdict, code = "improved", 0
    else:
        verdict, code = "unchanged", 0
    kept = [c for c in changes if c.status != "unchanged" or c.base is not None]
    return {
        "schema": SCHEMA,
        "base": _side(base, base_label),
        "head": _side(head, head_label),
        "thresholds": thresholds,
        "verdict": verdict,
        "exit_code": code,
        "changes": [c.as_dict() for c in kept],
        "cases": cases,
        "compared": sum(c.base is not None and c.head is not None for c in kept),
        "not_compared": not_compared,
        "allow_partial": allow_partial,
        "allow_version_change": allow_version_change,
        "version_changes": job_versions,
        "versions_unknown": versions_unknown,
        "model_changes": model_changes,
        "vector_changes": vector_changes,
    }


def describe_vectors(vectors: dict) -> str:
    """'random (seed 1), 100 vectors', 'a file (sha256 0123456789ab), 500 vectors'."""
    count = f", {vectors['count']} vectors" if vectors.get("count") is not None else ""
    if vectors.get("kind") == "random":
        return f"random (seed {vectors.get('seed')}){count}"
    digest = f" (sha256 {str(vectors['sha256'])[:12]})" if vectors.get("sha256") else ""
    return f"{'a file' if vectors.get('kind') == 'file' else vectors.get('kind', 'unknown')}{digest}{count}"


def _side(doc: dict, label: str) -> dict:
    return {"label": label, "commit": (doc.get("git") or {}).get("commit"), "suite": doc.get("suite"),
            "identity": doc.get("identity"), "provenance": doc.get("provenance")}
