"""A report of one `hil run` (a `hil.result/1` document): an offline HTML
page and a Markdown summary.

The page holds the run's identity (platform, model, firmware, emulator,
provenance), the verdict and summary, every vector (failing ones first, in
collapsed pages of VECTOR_PAGE rows: plain <details>, no script), the
per-operator profile (table and bars), memory, the localisation of the
first divergence, energy with its basis, budgets and what the serial link
needed. Like the suite report it fetches nothing and runs no script.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

from . import markdown as md
from ..model.reference_cache import describe
from ..power.energy import basis_label, sig3
from .compare import timing_band
from .result import EMULATOR_LOGS
from .html import STATUS_CLASS, environment, hil_version, file_link, operator_chart

log = logging.getLogger(__name__)

VECTOR_PAGE = 100
VECTOR_STATUS_CLASS = {"passed": "passed", "mismatch": "failed", "fault": "failed", "timeout": "failed",
                       "error": "error", "not_run": "skipped"}
COUNT_NOTE = {"instructions": "emulator instruction count, not cycles"}


# -- data -----------------------------------------------------------------------------------------------

def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def status_line(result: dict) -> str:
    """'192/200 vectors bit-exact with the TFLM reference, 8 mismatch' and the error, if any."""
    s = _dict(result.get("summary"))
    total, passed = s.get("total") or 0, s.get("passed") or 0
    parts = [f"{passed}/{total} vectors bit-exact with the TFLM reference"]
    others = {k: v for k, v in _dict(s.get("by_status")).items() if k != "passed" and v}
    if s.get("not_run"):
        others.setdefault("not_run", s["not_run"])
    parts += [f"{n} {status.replace('_', ' ')}" for status, n in sorted(others.items())]
    line = ", ".join(parts)
    error = _dict(result.get("error")).get("message")
    return f"{line}; {md.clean(error)}" if error else line


def energy_basis(result: dict) -> dict | None:
    """The summary's energy label (`energy_basis`, harness/power/energy.py);
    for documents written before it, one built from the energy model."""
    energy = _dict(_dict(result.get("summary")).get("energy_uj"))
    if not energy:
        return None
    for basis in (energy.get("energy_basis"), _dict(result.get("summary")).get("energy_basis")):
        if isinstance(basis, dict):
            return basis
    model = _dict(result.get("energy_model"))
    return {"kind": energy.get("basis") or "cycles_estimate", "verified": bool(model.get("figures_verified")),
            "error_band": None, "source": model.get("datasheet")}


def mismatch_text(vector: dict) -> str:
    """What differs in a vector: '1/5 elements differ, worst [2]: expected -128 got -127 (|diff| 1)'."""
    m = _dict(vector.get("mismatch"))
    if m:
        text = f"{m.get('differ')} of {md.plural(m.get('elements') or 0, 'element')} differ"
        if m.get("worst_index") is not None:
            text += f", worst [{m['worst_index']}]: expected {m.get('expected')} got {m.get('got')}"
        if m.get("max_abs_diff") is not None:
            text += f" (|diff| {m['max_abs_diff']:g})"
        return text
    if vector.get("error"):
        return md.clean(vector["error"])
    if vector.get("mismatches"):
        n = vector["mismatches"]
        return f"{md.plural(n, 'element')} differ{'s' if n == 1 else ''}"
    return ""


def vector_rows(result: dict) -> list[dict]:
    """Every vector, failing ones first (then by index)."""
    rows = []
    for v in result.get("vectors") or []:
        if not isinstance(v, dict):
            continue
        count, energy = _dict(v.get("count")), _dict(v.get("energy"))
        rows.append({
            "index": v.get("index"), "status": v.get("status") or "?",
            "class": VECTOR_STATUS_CLASS.get(v.get("status") or "", "error"), "failing": v.get("status") != "passed",
            "max_abs_diff": "-" if v.get("max_abs_diff") is None else f"{v['max_abs_diff']:g}",
            "detail": mismatch_text(v),
            "count": md.fmt_value(count.get("value"), "count"),
            "energy": sig3(energy["uj"]) if energy.get("uj") is not None else "-",
            "cycles": sig3(_dict(v.get("cycles"))["value"]) if _dict(v.get("cycles")).get("value") is not None else "-",
            "latency": (sig3(_dict(v.get("cycles"))["latency_ms"]) if _dict(v.get("cycles")).get("latency_ms") is not None
                        else "-"),
            "cosine": "-" if v.get("cosine") is None else f"{v['cosine']:.6f}",
            "top1": "-" if v.get("top1") is None else f"{v['top1']} / {v.get('ref_top1', '-')}",
            "label": "-" if v.get("label") is None else v["label"],
        })
    return sorted(rows, key=lambda r: (not r["failing"], r["index"] if isinstance(r["index"], int) else 0))


def vector_pages(rows: list[dict]) -> list[dict]:
    """The rows in collapsible pages of VECTOR_PAGE: the vectors that did
    not pass first, their first page open; then the passing ones, collapsed
    (the first page open when nothing failed)."""
    failing = [r for r in rows if r["failing"]]
    passing = [r for r in rows if not r["failing"]]
    pages: list[dict] = []
    for group, what in ((failing, "not passed"), (passing, "passed")):
        for start in range(0, len(group), VECTOR_PAGE):
            chunk = group[start:start + VECTOR_PAGE]
            span = f"{chunk[0]['index']}-{chunk[-1]['index']}" if what == "passed" else f"{start + 1}-{start + len(chunk)}"
            title = (f"{len(chunk)} {what}" + (f" (vectors {span})" if what == "passed" else
                                              f" ({span} of {len(group)})" if len(group) > VECTOR_PAGE else ""))
            pages.append({"rows": chunk, "open": not pages, "title": title, "failing": what != "passed"})
    return pages


def operator_rows(result: dict) -> list[dict]:
    ops = [o for o in _dict(result.get("summary")).get("operators") or [] if isinstance(o, dict)]
    return [{"index": o.get("index"), "op": o.get("op"), "count": o.get("median"),
             "share": o.get("share"),
             "cycles": sig3(o["cycles_median"]) if o.get("cycles_median") is not None else None}  # the estimate
            for o in ops if o.get("median") is not None]


def memory_rows(result: dict) -> list[tuple[str, str, str]]:
    """(what, amount, note) for the memory table."""
    mem = _dict(result.get("memory"))
    dev = _dict(mem.get("device"))
    rows = [("flash", md.fmt_value(mem.get("flash_bytes"), "flash_bytes"), "code region: text + data"
             + (" + the baked model" if _dict(result.get("device")).get("has_baked_model") else "")),
            ("RAM needed", md.fmt_value(mem.get("ram_bytes"), "ram_bytes"), mem.get("ram_formula") or ""),
            ("tensor arena, high-water", md.fmt_value(dev.get("arena_high_water"), "arena_bytes"),
             f"planned {md.fmt_value(dev.get('arena_planned'), 'arena_bytes')} of "
             f"{md.fmt_value(dev.get('arena_size'), 'arena_bytes')}"),
            ("stack, high-water", md.fmt_value(dev.get("stack_high_water"), "ram_bytes"),
             f"of {md.fmt_value(dev.get('stack_size'), 'ram_bytes')}"),
            ("model", md.fmt_value(mem.get("model_bytes"), "model_bytes"),
             f"capacity {md.fmt_value(dev.get('model_capacity'), 'model_bytes')}")]
    for name, region in sorted(_dict(mem.get("regions")).items()):
        region = _dict(region)
        if region.get("used") is not None:
            share = f" ({region['used'] / region['size']:.1%})" if region.get("size") else ""
            rows.append((f"region {name}", md.fmt_value(region["used"], unit="bytes"),
                         f"of {md.fmt_value(region.get('size'), unit='bytes')}{share}: "
                         + ", ".join(f"{k} {v:,}" for k, v in _dict(region.get("sections")).items())))
    return [r for r in rows if r[1] != "-"]


def identity_rows(result: dict) -> list[tuple[str, str]]:
    """What ran, on what, built how, checked against what."""
    platform, model, fw = _dict(result.get("platform")), _dict(result.get("model")), _dict(result.get("firmware"))
    target, device, source = _dict(result.get("target")), _dict(result.get("device")), _dict(result.get("vector_source"))
    rows = [("platform", f"{platform.get('name', '?')}" + (f" ({platform['description']})"
                                                            if platform.get("description") else "")),
            ("model", f"{model.get('path', '?')} ({md.fmt_value(model.get('bytes'), 'model_bytes')}, "
                      f"{len(model.get('operators') or [])} operators, sha256 {str(model.get('sha256', ''))[:16]})"),
            ("firmware", f"build id {str(fw.get('build_id') or device.get('build_id') or '?')[:12]}"
                         + (f", {fw['compiler']}" if fw.get("compiler") else "")
                         + (f", {fw['path']}" if fw.get("path") else "")),
            ("engine", device.get("engine") or "-"),
            ("target", f"{target.get('kind', '?')}: {target.get('emulator') or target.get('machine') or ''}".strip()),
            ("vectors", ", ".join(str(x) for x in (source.get("kind"), source.get("path"),
                                                   f"{source['count']} vectors" if source.get("count") else None,
                                                   f"labels: {source['labels']}" if source.get("labels") else None)
                                  if x)),
            ("started", f"{result.get('started', '?')}"
                        + (f", {result['duration_s']:.1f} s" if isinstance(result.get("duration_s"), (int, float))
                           else ""))]
    return [(k, v) for k, v in rows if v]


def provenance_rows(result: dict) -> list[tuple[str, str]]:
    """`provenance` (harness/provenance.py): the versions that decide what
    bit-exact and the counts mean."""
    rows = []
    for key, value in _dict(result.get("provenance")).items():
        if key == "reference_outputs":  # where the reference outputs came from: one line, not a version
            rows.append(("reference outputs", describe(_dict(value))))
            continue
        if isinstance(value, dict):
            text = " ".join(str(value[k]) for k in ("package", "name") if value.get(k))
            text = f"{text} {value['version']}" if value.get("version") else text
            text = text or ", ".join(f"{k} {v}" for k, v in value.items())
        else:
            text = "-" if value is None else str(value)
        rows.append((key, text.strip() or "-"))
    return rows


def summary_rows(result: dict) -> list[tuple[str, str]]:
    s = _dict(result.get("summary"))
    rows = []
    count = _dict(s.get("count"))
    if count.get("median") is not None:
        kind = count.get("kind") or "count"
        note = COUNT_NOTE.get(kind)
        rows.append((f"{kind} per invoke", f"min {md.fmt_value(count.get('min'), 'count')}, median "
                     f"{md.fmt_value(count.get('median'), 'count')}, max {md.fmt_value(count.get('max'), 'count')}"
                     + (f" ({note})" if note else "")))
    from .console import describe_estimates  # the timing model's cycles and latency, labelled

    for text in describe_estimates(s):
        name, _, value = text.partition(": ")
        rows.append((f"{name} (estimate)", value))
    energy = _dict(s.get("energy_uj"))
    if energy.get("median") is not None:
        basis = energy_basis(result) or {}
        rows.append(("energy per inference", f"{sig3(energy['median'])} uJ median (min {sig3(energy['min'])}, "
                     f"max {sig3(energy['max'])}) ({basis_label(basis, detail=True)})"))
    battery = _dict(result.get("battery"))
    if battery:
        from ..power.battery import describe as describe_battery

        lines = describe_battery(battery)
        rows.append(("battery life (estimate)", "; ".join(line.strip() for line in lines)))
    accuracy = _dict(s.get("accuracy"))
    if accuracy.get("top1") is not None:
        rows.append(("top-1 accuracy", f"{accuracy['top1']:.1%} ({accuracy.get('correct')}/{accuracy.get('total')} "
                                       "labelled vectors)"))
    expected = _dict(s.get("expected"))
    if expected:
        rows.append(("expected outputs", f"{expected.get('matched')}/{expected.get('checked')} match"
                     + (f", largest |diff| {expected['max_abs_diff']:g}" if expected.get("max_abs_diff") is not None
                        else "")))
    float_ref = _dict(s.get("float"))
    if float_ref:
        rows.append(("against the float model", ", ".join(
            f"{k.replace('_', ' ')} {v:.4g}" for k, v in float_ref.items() if isinstance(v, (int, float)))))
    fault = _dict(result.get("fault"))
    if fault:
        rows.append(("fault", ", ".join(f"{k} {v}" for k, v in fault.items() if v is not None)))
    return rows


def localization_view(result: dict) -> dict | None:
    loc = result.get("localization")
    if not isinstance(loc, dict):
        return None
    first = _dict(loc.get("first_divergence"))
    if loc.get("skipped"):
        return {"text": f"not localised: {loc['skipped']}", "first": None}
    if not first:
        return {"text": f"every intermediate tensor checked ({loc.get('tensors_checked')}) matches the reference",
                "first": None}
    return {"text": (f"first divergence at operator {first.get('op_index')} ({first.get('op')}), tensor "
                     f"{first.get('tensor')} '{first.get('tensor_name', '')}': {first.get('mismatches')}/"
                     f"{first.get('elements')} elements differ, largest |diff| {first.get('max_abs_diff'):g} "
                     f"(vector {loc.get('vector')}; {loc.get('tensors_checked')} tensors checked)"),
            "first": first}


def link_rows(result: dict) -> list[tuple[str, str]]:
    link = _dict(result.get("link"))
    damaged = _dict(link.get("damaged_frames"))
    rows = [("requests", link.get("requests")), ("frames sent / received",
                                                 f"{link.get('frames_sent')} / {link.get('frames_received')}"),
            ("bytes out / in", f"{link.get('bytes_out', 0):,} / {link.get('bytes_in', 0):,}"),
            ("retransmissions", f"{link.get('retransmissions')} ({link.get('requests_retried')} requests retried, "
                                f"at most {link.get('most_retransmissions')} for one)"),
            ("damaged frames", f"{link.get('damaged_total')}" + (" (" + ", ".join(f"{k} {v}" for k, v in damaged.items())
                                                                 + ")" if damaged else "")),
            ("frames the device found bad", link.get("device_bad_frames")),
            ("stale replies", link.get("stale_replies"))]
    return [(k, str(v)) for k, v in rows if v is not None] if link else []


# -- renderings -----------------------------------------------------------------------------------------

def run_context(result: dict, source: Path | None = None, report_dir: Path | None = None) -> dict:
    """Everything both renderings show, computed once."""
    ops = operator_rows(result)
    kind = _dict(_dict(result.get("summary")).get("count")).get("kind") or "count"
    total = sum(o["count"] for o in ops) or 0
    platform = _dict(result.get("platform")).get("name") or "?"
    model = Path(str(_dict(result.get("model")).get("path") or "model")).name
    run_dir = source.parent if source else None
    files = []
    if run_dir is not None:
        for name in (*EMULATOR_LOGS, "console.log"):
            if (run_dir / name).is_file():
                files.append((name, file_link(str((run_dir / name).resolve()), report_dir)))
    rows = vector_rows(result)
    return {
        "platform": platform, "model": model, "status": result.get("status") or "unknown",
        "status_class": STATUS_CLASS.get(result.get("status") or "", "error"), "exit_code": result.get("exit_code"),
        "status_line": status_line(result), "identity": identity_rows(result), "provenance": provenance_rows(result),
        "summary": summary_rows(result), "vectors": rows, "pages": vector_pages(rows),
        "failing": [r for r in rows if r["failing"]],
        "operators": ops, "operator_total": total, "count_kind": kind,
        "memory": memory_rows(result), "localization": localization_view(result),
        "budgets": [b for b in result.get("budgets") or [] if isinstance(b, dict)],
        "link": link_rows(result), "files": files,
        "energy_model": _dict(result.get("energy_model")), "energy_label": basis_label(energy_basis(result)),
        "energy_basis": energy_basis(result) or {},
        "estimated": any(r["cycles"] != "-" for r in rows),
        "cycles_band": timing_band(_dict(result.get("cycles_basis"))),  # goes with every cycles column
        "source": str(source) if source else None,
    }


def render_run_html(result: dict, source: Path | None = None, links=(), title: str | None = None,
                    report_dir: Path | None = None) -> str:
    """The run report as one HTML document."""
    ctx = run_context(result, source, report_dir)
    chart = None
    if ctx["operators"]:
        chart = operator_chart([{"index": o["index"], "op": o["op"], "count": o["count"]} for o in ctx["operators"]],
                               ctx["count_kind"], f"{ctx['platform']} / {ctx['model']}", "run-ops")
    return environment().get_template("run.html.j2").render(
        **ctx, result=result, chart=chart, links=list(links),
        title=title or f"hil run: {ctx['model']} on {ctx['platform']}",
        generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), version=hil_version())


def render_run_markdown(result: dict, source: Path | None = None, links=(), title: str | None = None,
                        max_rows: int = 100) -> str:
    """The run as Markdown: verdict, identity, summary, failing vectors,
    operators, memory, localisation."""
    ctx = run_context(result, source)
    lines = [f"## {title or 'hil run: ' + ctx['model'] + ' on ' + ctx['platform']}", "",
             f"**Status: {ctx['status'].upper()}** - {md.cell(ctx['status_line'])}", ""]
    lines += [f"- {k}: {md.cell(v)}" for k, v in ctx["identity"]]
    if ctx["provenance"]:
        lines.append("- provenance: " + md.cell(", ".join(f"{k} {v}" for k, v in ctx["provenance"] if k != "reference outputs")))
        lines += [f"- {k}: {md.cell(v, 1000)}" for k, v in ctx["provenance"] if k == "reference outputs"]  # whole
    lines += [f"- {k}: {md.cell(v)}" for k, v in ctx["summary"]]
    if ctx["localization"]:
        lines.append(f"- localisation: {md.cell(ctx['localization']['text'])}")
    if ctx["failing"]:
        rows, more = md.capped(ctx["failing"], max_rows, "failing vectors")
        lines += ["", f"### Failing vectors ({len(ctx['failing'])})", ""]
        lines += md.table_lines(["vector", "status", "max abs diff", "detail", "count", "top-1 / reference"],
                           [[str(r["index"]), r["status"].upper(), r["max_abs_diff"], md.cell(r["detail"]), r["count"],
                             r["top1"]] for r in rows], "lllllr")
        lines += more
    if ctx["operators"]:
        lines += ["", f"<details><summary>Per operator (median {ctx['count_kind']} per invoke)</summary>", ""]
        estimated = any(o.get("cycles") for o in ctx["operators"])
        cycles_column = [f"cycles (estimate, {ctx['cycles_band']})"] if estimated else []
        lines += md.table_lines(["#", "operator", ctx["count_kind"], "share"] + cycles_column,
                           [[str(o["index"]), md.code(o["op"]), md.fmt_value(o["count"], "count"),
                             "-" if o["share"] is None else f"{o['share']:.1%}"]
                            + ([o.get("cycles") or "-"] if estimated else []) for o in ctx["operators"]],
                           "rlrr" + ("r" if estimated else ""))
        lines += ["", "</details>"]
    if ctx["memory"]:
        lines += ["", "Memory: " + "; ".join(f"{k} {v}" for k, v, _ in ctx["memory"] if not k.startswith("region"))]
    lines += md.link_lines(links)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).rstrip() + "\n"
