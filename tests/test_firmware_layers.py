"""The firmware's layers include downward only (reads the sources; no build).

engine/: each step of the engine (loader, graph, resource variables,
planner, invoke) includes its own header and the kernels' view of the
engine (engine_internal.h), never another step's; eng_load (engine.c) is the
only file above them. arch/ and boards/ know nothing of the protocol or the
C API: the protocol layer installs a fault hook (arch_fault_set_hook) and
names the counter kind (api/hil_board.c).
"""

from __future__ import annotations

import re
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
ENGINE = FIRMWARE / "engine"
STEPS = {"loader", "graph", "resource_vars", "planner"}


def includes(path: Path) -> set[str]:
    return {Path(name).name for name in re.findall(r'^\s*#\s*include\s+"([^"]+)"', path.read_text(), re.M)}


def test_engine_includes_form_no_circle():
    graph = {p.name: includes(p) & {q.name for q in ENGINE.glob("*.h")} for p in ENGINE.glob("*.[ch]")}
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert state.get(name) != 1, f"include circle: {' -> '.join((*trail, name))}"
        if state.get(name) == 2:
            return
        state[name] = 1
        for dep in graph.get(name, ()):
            visit(dep, (*trail, name))
        state[name] = 2

    for name in graph:
        visit(name, ())


def test_engine_steps_include_only_their_own_header_and_the_layers_below():
    for step in STEPS:
        assert includes(ENGINE / f"{step}.c") == {f"{step}.h"}, step
        assert includes(ENGINE / f"{step}.h") == {"engine_internal.h"}, step
    assert includes(ENGINE / "invoke.c") == {"graph.h"}
    assert includes(ENGINE / "engine.c") == {f"{s}.h" for s in STEPS}
    for kernel in (ENGINE / "kernels").glob("*.c"):
        assert not {f"{s}.h" for s in STEPS} & includes(kernel), f"{kernel.name} includes an engine step's header"


def test_arch_and_boards_know_nothing_of_the_protocol_or_the_api():
    for path in [*(FIRMWARE / "arch").rglob("*.[chS]"), *(FIRMWARE / "boards").rglob("*.[ch]")]:
        text = path.read_text()
        found = re.findall(r'#\s*include\s+"([^"]*(?:protocol|api)/[^"]*|proto\.h|hil\.h)"', text)
        assert not found, f"{path.relative_to(FIRMWARE)} includes {found}"


def test_kernels_write_per_op_data_only_into_the_room_they_are_given():
    """Prepare runs once, with `data` holding *bytes bytes: a kernel that copies its data whenever `data`
    is not NULL (the old two-call idiom) would write past a nearly full arena."""
    old_idiom = re.compile(r"if\s*\(\s*data\s*!=\s*NULL\s*\)\s*memcpy\s*\(\s*data")
    for kernel in (ENGINE / "kernels").glob("*.c"):
        assert not old_idiom.search(kernel.read_text()), (
            f"{kernel.name}: per-op data copied without checking its room: use eng_keep_op_data() or "
            "eng_op_data_fits() (engine_internal.h)")
