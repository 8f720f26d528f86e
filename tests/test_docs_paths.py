"""Documentation and code comments point only at files in the repository:
every repository path cited in README.md, docs/, platforms/ and harness/
exists (or is a file a command writes, or one in another project's tree,
listed below with why), what a comment cites as the source of a list says
the same, and docs/power-sources.md is a table of figures with their
source and status, not a research log. Reads files only."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOP = ("harness", "firmware", "platforms", "timing", "models", "docs", "tests", "benchmarks", "scripts",
       "calibration", "robot", "examples", "zephyr", ".ci")
CITED = re.compile(r"(?<![\w./$~-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w.+-]+(?:/[\w.+-]+)*"
                   r"|[\w-]+\.md\b)")

#: paths that are cited but are not this repository's files, and why
NOT_OURS = {
    "models/kws.tflite": "a user's model in usage examples",
    "models/model.tflite": "the model a user's `hil init` project names",
    "models/model_float.tflite": "a user's float model in a hil.toml example",
    "firmware/my_app": "a user's firmware in a hil.toml example",
    "zephyr/kernel.h": "Zephyr's header",
    "zephyr/scripts/requirements.txt": "in a Zephyr checkout",
    "zephyr/zephyr.elf": "in a Zephyr build directory",
    "zephyr/.config": "in a Zephyr build directory",
    "scripts/west-commands.yml": "in a Zephyr module",
    "summary.md": "written by `hil report --markdown`",
    "OUT.md": "written by `hil report --markdown`",
    "docs/robot-keywords.html": "written by `python -m robot.libdoc`",
    "calibration/nucleo-l4r5zi.toml": "written by `hil calibrate --out`",
    "energy_hookup.md": "in mlcommons/tiny_results_v0.5",
}
#: trees of other projects whose paths look like ours: Renode's platform descriptions
OTHER_TREES = ("platforms/cpus/", "platforms/boards/")


def _sources() -> list[Path]:
    found = [REPO / "README.md"]
    for top in ("docs", "platforms", "harness"):
        for path in sorted((REPO / top).rglob("*")):
            if path.is_file() and path.suffix in (".md", ".py", ".toml") and not {"_data", "__pycache__"} & set(path.parts):
                found.append(path)
    return found


def _missing(path: Path) -> list[str]:
    missing = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        for match in CITED.finditer(line):
            ref = match.group(1).rstrip(".")
            following = line[match.end():match.end() + 1]
            if following in ("*", "<", "{") or ref.rsplit("/", 1)[-1].split(".")[0] in ("NAME", "PATH", "FILE"):
                continue  # a pattern or a placeholder (platforms/NAME.toml), not a file
            if ref in NOT_OURS or ref.startswith(OTHER_TREES) or "..." in ref:
                continue
            if not any(p.exists() for p in (REPO / ref, path.parent / ref, REPO / "docs" / ref)):
                missing.append(f"{path.relative_to(REPO)}:{number}: {ref}")
    return missing


def test_every_cited_repository_path_exists():
    missing = [m for path in _sources() for m in _missing(path)]
    assert not missing, "cited but not in the repository:\n" + "\n".join(missing)


def test_the_exemptions_are_still_cited():
    """An exemption nobody cites any more is removed, so the list stays short."""
    text = "\n".join(p.read_text(errors="replace") for p in _sources())
    assert [ref for ref in NOT_OURS if ref not in text] == []


def test_power_sources_is_a_table_of_figures_with_source_and_status():
    doc = (REPO / "docs" / "power-sources.md").read_text()
    header = "| Platform | Figure | Value | Conditions | Source (revision, table/page) | Status |"
    assert header in doc
    rows = doc.split(header, 1)[1].split("\n\n", 1)[0].splitlines()[2:]  # after the header's end and |---|
    assert rows and all(r.startswith("|") and r.rstrip().endswith("|") for r in rows)
    statuses = {r.rstrip(" |").rsplit("|", 1)[1].strip().split(":")[0] for r in rows}
    assert statuses <= {"verified", "derived", "assumed", "not found"}, statuses
    for word in ("find_string", "search tool", "for the lead", "paste", "excerpt"):
        assert word not in doc, f"research-log wording in docs/power-sources.md: {word!r}"


def test_the_engine_operator_list_is_the_kernel_table():
    """harness/model/tflite.py's BUILTIN_ENGINE_OPS (what a model is checked
    against before anything boots) cites the engine's kernel table."""
    from harness.model.tflite import BUILTIN_ENGINE_OPS

    table = (REPO / "firmware" / "engine" / "kernel_table.c").read_text()
    assert set(re.findall(r"\{ENG_OP_(\w+),", table)) == BUILTIN_ENGINE_OPS
