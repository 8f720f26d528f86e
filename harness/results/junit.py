"""JUnit XML from a `hil.suite/1` document: one <testcase> per (platform,
model, check), so a CI server shows which check of which model failed on
which platform.

Layout, chosen for what Jenkins, GitLab and the GitHub JUnit actions render:

    <testsuites name="hil: SUITE" tests= failures= errors= skipped= time=>
      <testsuite name="PLATFORM" ...>          one per platform
        <properties> suite, git commit/branch/dirty, emulator versions,
                     firmware build id and model hash per model </properties>
        <testcase classname="hil.PLATFORM.MODEL" name="CHECK" time=>
          <failure|error|skipped message= type=CHECK>message, measured, limit</...>
          <system-out>measured, limit, the job's hil.result/1</system-out>
        </testcase>
      </testsuite>
    </testsuites>

Jenkins splits `classname` at its last dot into package (`hil.PLATFORM`)
and class (`MODEL`); dots inside a model or platform name are therefore
written as `_`. Only elements and attributes of the common JUnit schema
(Jenkins' junit-10.xsd, which GitLab also reads) are used: properties sit on
the testsuite, per-case details go to <system-out>.
"""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from ..power.energy import basis_label, format_estimate, sig3
from .compare import timing_label
from .markdown import attempts_text, case_value

log = logging.getLogger(__name__)

#: budget checks whose measured value is an estimate (printed with its label)
ESTIMATED_CHECKS = ("max_energy_uj", "max_cycles", "max_latency_ms")

# characters XML 1.0 cannot carry (a firmware's console output may hold them)
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_OUTCOME = {"failed": "failure", "error": "error", "skipped": "skipped"}


def _clean(text) -> str:
    return _INVALID_XML.sub("?", "" if text is None else str(text))


def _num(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.6g}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _measured(case: dict) -> str:
    """A case's measured value; an energy is an estimate, printed as one."""
    return case_value(case, "measured") if case.get("check") in ESTIMATED_CHECKS else _num(case.get("measured"))


def _seconds(value) -> str:
    return f"{max(0.0, float(value or 0.0)):.3f}"


def _ident(name: str) -> str:
    return str(name).replace(".", "_")


def classname(platform: str, model: str) -> str:
    return f"hil.{_ident(platform)}.{_ident(model)}"


def _timestamp(started: str | None) -> str | None:
    """ISO 8601 without the zone, as the JUnit schema's pattern wants (UTC)."""
    if not started:
        return None
    m = re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", started)
    return m.group(0) if m else None


def _job_result(suite_path: Path | None, job: dict) -> dict | None:
    """The job's hil.result/1, when it can be read (for build ids and hashes)."""
    ref = job.get("result")
    if not ref:
        return None
    path = Path(ref)
    if not path.is_absolute():
        if suite_path is None:
            return None
        path = suite_path.parent / path
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _synthetic_cases(doc: dict) -> list[dict]:
    """Cases for what has no case of its own: a job without checks, or a suite
    that stopped early, so the failure still shows as a red testcase."""
    have = {(c.get("platform"), c.get("model")) for c in doc.get("cases", [])}
    extra = []
    for job in doc.get("jobs", []):
        if (job.get("platform"), job.get("model")) in have:
            continue
        status = job.get("status") or "error"
        status = {"interrupted": "error"}.get(status, status)
        if status not in ("passed", "failed", "error", "skipped"):
            status = "error"
        extra.append({"id": f"{job.get('id')}/run", "platform": job.get("platform"), "model": job.get("model"),
                      "check": "run", "status": status,
                      "message": job.get("error") or f"the run ended with status {job.get('status')}",
                      "measured": None, "limit": None, "duration_s": None})
    status = doc.get("status")
    if status == "interrupted" or (status == "error" and not doc.get("jobs")):
        why = ("the suite was interrupted: jobs that had not finished are missing" if status == "interrupted"
               else "the suite ended with an error before any job ran")
        extra.append({"id": "suite", "platform": None, "model": None, "check": "suite", "status": "error",
                      "message": f"{why} (exit {doc.get('exit_code')})", "measured": None, "limit": None,
                      "duration_s": None})
    return extra


def build_junit(doc: dict, suite_path: Path | str | None = None) -> ET.Element:
    """The <testsuites> element for a hil.suite/1 document. `suite_path` (the
    document's own path) lets job result files, relative to it, be read for
    the firmware build ids and model hashes."""
    suite_path = Path(suite_path) if suite_path else None
    suite_name = doc.get("suite") or "hil"
    git = doc.get("git") or {}
    cases = list(doc.get("cases", [])) + _synthetic_cases(doc)
    jobs = {(j.get("platform"), j.get("model")): j for j in doc.get("jobs", [])}

    # a job's duration is shared by its checks: spread it so sums stay right
    per_job: dict[tuple, int] = {}
    for c in cases:
        per_job[(c.get("platform"), c.get("model"))] = per_job.get((c.get("platform"), c.get("model")), 0) + 1

    by_platform: dict[str, list[dict]] = {}
    for c in cases:
        by_platform.setdefault(c.get("platform") or "hil", []).append(c)

    root = ET.Element("testsuites", name=f"hil: {suite_name}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    results = {key: _job_result(suite_path, job) for key, job in jobs.items()}

    for index, platform in enumerate(sorted(by_platform)):
        platform_cases = sorted(by_platform[platform], key=lambda c: (str(c.get("model")), str(c.get("check"))))
        suite_el = ET.SubElement(root, "testsuite", name=platform)
        props = ET.SubElement(suite_el, "properties")

        def prop(name: str, value) -> None:
            if value is not None and value != "":
                ET.SubElement(props, "property", name=name, value=_clean(value))

        prop("hil.suite", suite_name)
        prop("hil.platform", platform if platform != "hil" else None)
        prop("git.commit", git.get("commit"))
        prop("git.branch", git.get("branch"))
        prop("git.dirty", None if git.get("dirty") is None else str(bool(git.get("dirty"))).lower())
        prop("git.subject", git.get("subject"))
        prop("hil.started", doc.get("started"))
        prop("hil.status", doc.get("status"))
        for s in doc.get("shards") or []:
            prop("hil.shard", f"{s.get('index')}/{s.get('count')}")
        for emulator, version in sorted((doc.get("emulators") or {}).items()):
            prop(f"emulator.{emulator}", version)
        for (p, model), job in sorted(jobs.items(), key=lambda kv: str(kv[0])):
            if p != platform:
                continue
            result = results.get((p, model)) or {}
            prop(f"firmware.build_id.{model}", (result.get("firmware") or {}).get("build_id"))
            prop(f"model.sha256.{model}", (result.get("model") or {}).get("sha256"))
            prop(f"result.{model}", job.get("result"))
            prop(f"attempts.{model}", attempts_text(job))  # a board-farm job run again (harness/farm.py)
            metrics = job.get("metrics") or {}
            if metrics.get("energy_uj") is not None:  # an estimate: labelled, 3 significant figures
                basis = metrics.get("energy_basis")
                prop(f"energy.{model}", format_estimate(metrics["energy_uj"], "uJ", basis))
                prop(f"energy_basis.{model}", "; ".join(
                    [basis_label(basis, detail=True)] + [f"{k.replace('_', ' ')}: {(basis or {})[k]}"
                                                         for k in ("error_band", "source") if (basis or {}).get(k)]))
            if metrics.get("cycles_estimate") is not None:  # the timing model's estimate: labelled, with its band
                label = timing_label(metrics.get("cycles_basis"))
                prop(f"cycles_estimate.{model}", f"{sig3(metrics['cycles_estimate'])} cycles (estimate, {label})")
                if metrics.get("latency_ms") is not None:
                    prop(f"latency_ms.{model}", f"{sig3(metrics['latency_ms'])} ms (estimate, {label})")
            battery = metrics.get("battery") or {}
            if battery.get("life_days") is not None:  # an estimate with its band and the sleep figure's tag
                band = battery.get("band")
                prop(f"battery_life.{model}", f"{sig3(battery['life_days'])} days at {battery['rate']} on "
                                              f"{battery['battery_mah']:g} mAh (estimate; band "
                                              + (f"{sig3(band['life_days_min'])}-{sig3(band['life_days_max'])} days"
                                                 if band else "unknown") + f"; sleep power {battery.get('sleep_status')})")
        if not len(props):
            suite_el.remove(props)

        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        total_time = 0.0
        for c in platform_cases:
            key = (c.get("platform"), c.get("model"))
            duration = (c.get("duration_s") or 0.0) / max(1, per_job.get(key, 1))
            total_time += duration
            name = _clean(c.get("check"))
            cls = classname(c["platform"], c["model"]) if c.get("platform") else f"hil.{_ident(suite_name)}"
            case_el = ET.SubElement(suite_el, "testcase", name=name, classname=cls, time=_seconds(duration))
            counts["tests"] += 1
            status = c.get("status")
            message = _clean(c.get("message"))
            details = []
            if c.get("measured") is not None or c.get("limit") is not None:
                details.append(f"measured: {_measured(c)}")
                details.append(f"limit: {_num(c.get('limit'))}")
            job = jobs.get(key)
            if job and job.get("result"):
                details.append(f"result: {job['result']}")
            tag = _OUTCOME.get(status or "")
            if status not in ("passed", "failed", "error", "skipped"):
                tag, message = "error", f"unknown case status {status!r}: {message}"
            if tag:
                counts[{"failure": "failures", "error": "errors", "skipped": "skipped"}[tag]] += 1
                summary = message
                if c.get("measured") is not None or c.get("limit") is not None:
                    summary += f" (measured {_measured(c)}, limit {_num(c.get('limit'))})"
                outcome = ET.SubElement(case_el, tag, message=_clean(summary))
                if tag != "skipped":
                    outcome.set("type", name)
                    outcome.text = _clean("\n".join([message, *details]))
            if details:
                ET.SubElement(case_el, "system-out").text = _clean("\n".join(details))

        for k, v in counts.items():
            suite_el.set(k, str(v))
            totals[k] += v
        suite_el.set("time", _seconds(total_time))
        suite_el.set("id", str(index))
        stamp = _timestamp(doc.get("started"))
        if stamp:
            suite_el.set("timestamp", stamp)
        # keep the attribute order readable: name, tests, failures, errors, skipped, time, ...
        ordered: dict[str, str] = {k: suite_el.attrib[k] for k in ("name", "tests", "failures", "errors", "skipped", "time",
                                                    "timestamp", "id") if k in suite_el.attrib}
        suite_el.attrib.clear()
        suite_el.attrib.update(ordered)

    for k, v in totals.items():
        root.set(k, str(v))
    root.set("time", _seconds(doc.get("duration_s")))
    return root


def junit_xml(doc: dict, suite_path: Path | str | None = None) -> str:
    """The JUnit XML document as text (UTF-8, with declaration)."""
    return serialize(build_junit(doc, suite_path))


def serialize(root: ET.Element) -> str:
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
