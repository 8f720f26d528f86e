"""Platform files read into typed, checked objects (harness/platforms.py):
every bundled file loads, a misspelt key is refused with "did you mean", a
wrong type, a value out of range or an unknown kind is refused naming the
file, the key and the fix, and docs/platforms.md lists exactly the keys the
dataclasses declare. No emulator: these read files only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.platforms import PLATFORMS_DIR, Platform, available, load_platform, reference_markdown
from harness.schema import keys_of

REPO = Path(__file__).resolve().parent.parent
BASE = (PLATFORMS_DIR / "mps2-an386.toml").read_text()


def _load(tmp_path: Path, text: str) -> Platform:
    path = tmp_path / "custom.toml"
    path.write_text(text)
    return load_platform(str(path))  # a custom file by path: the same checks as a bundled one


def _refused(tmp_path: Path, text: str) -> UsageError:
    with pytest.raises(UsageError) as info:
        _load(tmp_path, text)
    assert str(tmp_path / "custom.toml") in str(info.value), "the error names the file"
    assert info.value.hint, "the error says how to fix it"
    return info.value


def _hint(err: UsageError) -> str:
    """The fix an error from _refused names (which checked it has one)."""
    assert err.hint is not None
    return err.hint


@pytest.mark.parametrize("name", available())
def test_every_bundled_platform_file_loads_typed(name):
    p = load_platform(name)
    assert p.name == name and p.firmware.clock_hz > 0 and p.firmware.cpu_flags
    assert p.memory.region("bulk").length >= p.firmware.arena_bytes + p.firmware.model_capacity_bytes
    assert p.target.kind in ("qemu", "renode", "serial-board")


def test_a_misspelt_key_is_refused_with_did_you_mean(tmp_path):
    err = _refused(tmp_path, BASE.replace("arena_bytes =", "arena_byte ="))
    assert "`firmware.arena_byte` is not a key" in str(err) and "did you mean `arena_bytes`" in _hint(err)
    err = _refused(tmp_path, BASE.replace("[counter]\n", "[counter]\nper_tik = 3\n"))
    assert "counter.per_tik" in str(err) and "per_tick" in _hint(err)
    err = _refused(tmp_path, BASE + "\n[boards]\nprobe = 'x'\n")
    assert "`boards` is not a key of the top level" in str(err) and "did you mean `board`" in _hint(err)


def test_hil_prints_a_platform_files_table_names_in_its_errors(tmp_path):
    """The console printed errors as Rich markup, so `[firmware]` vanished: 'is not a key of ' and nothing
    after (and a `[/...]` in a message would have crashed the print). Before the boot, and exit 2."""
    from helpers import MODELS, hil

    (tmp_path / "custom.toml").write_text(BASE.replace("arena_bytes =", "arena_byte ="))
    proc = hil("run", "--model", MODELS / "test" / "mlp_per_tensor.tflite", "--platform", tmp_path / "custom.toml",
               "--workdir", tmp_path / "run", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "`firmware.arena_byte` is not a key of [firmware]" in proc.stderr, proc.stderr
    assert "did you mean `arena_bytes`" in proc.stderr and "booting" not in proc.stdout + proc.stderr
    (tmp_path / "odd[").mkdir()  # a path with `[/x]` in it: a closing tag Rich refused to print
    (tmp_path / "odd[" / "x].toml").write_text(BASE.replace("arena_bytes =", "arena_byte ="))
    proc = hil("run", "--model", MODELS / "test" / "mlp_per_tensor.tflite", "--platform", tmp_path / "odd[/x].toml",
               "--workdir", tmp_path / "run2", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "odd[/x].toml" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("edit, key, problem", [
    (("clock_hz = 25_000_000\nstack", "clock_hz = -1\nstack"), "firmware.clock_hz", "must be more than 0"),
    (("clock_hz = 25_000_000\nstack", 'clock_hz = "25 MHz"\nstack'), "firmware.clock_hz", "must be an integer"),
    (('kind = "qemu"', 'kind = "qemux"'), "target.kind", "'qemux' is not one of qemu, renode, serial-board"),
    (('kernels = "dsp"', 'kernels = "neon"'), "firmware.kernels", "is not one of reference, dsp, mve"),
    (("arena_bytes = 0x100000", "arena_bytes = 0x100001"), "firmware.arena_bytes", "must be a multiple of 16"),
    (("semihosting = true", 'semihosting = "yes"'), "target.semihosting", "must be a boolean"),
    (('kind = "instructions"', 'kind = "instruction"'), "counter.kind", "is not one of instructions"),
    (("per_tick = 40", "per_tick = 0"), "counter.per_tick", "must be more than 0"),
    (("per_tick = 40", "per_tick = nan"), "counter.per_tick", "must be a finite number"),
    (("bulk = [0x21000000, 0x01000000]", "bulk = [0x21000000]"), "memory.bulk", "must have 2 items"),
    (('status = "derived"', 'status = "checked"'), "power.active.status", "'checked' is not one of"),
    (("mw = 40.67", "mw = -1"), "power.active.mw", "must be more than 0"),
    (("clock_hz = 25_000_000\nsource", "clock_hz = 0\nsource"), "timing.clock_hz", "must be more than 0"),
])
def test_a_wrong_type_or_value_names_the_key_and_the_problem(tmp_path, edit, key, problem):
    old, new = edit
    assert old in BASE, old
    err = _refused(tmp_path, BASE.replace(old, new, 1))
    assert f"`{key}`" in str(err) and problem in str(err), str(err)


def test_missing_keys_and_cross_key_rules_are_refused(tmp_path):
    err = _refused(tmp_path, BASE.replace('board = "mps2"\n', ""))
    assert "`firmware.board` is missing" in str(err) and "add board" in _hint(err)
    err = _refused(tmp_path, BASE.replace('machine = "mps2-an386"\n', ""))
    assert "target.machine" in str(err)
    err = _refused(tmp_path, BASE.replace("bulk = [0x21000000, 0x01000000]", "bulk = [0x21000000, 0x100000]"))
    assert "memory.bulk holds" in str(err)
    err = _refused(tmp_path, BASE.replace("ram = [0x20000000, 0x00400000]", "ram = [0x00100000, 0x00400000]"))
    assert "overlaps memory.ram" in str(err)
    err = _refused(tmp_path, BASE + "\n[timing.memory.flash]\nwait_states = 1\n")
    assert "'flash' is not a region" in str(err)


def test_the_platform_reference_in_the_docs_is_current():
    """docs/platforms.md carries the key table generated from the
    dataclasses (`python -m harness.platforms`), so it cannot drift."""
    doc = (REPO / "docs" / "platforms.md").read_text()
    assert reference_markdown() in doc, "regenerate it: python -m harness.platforms, and paste the table"


def test_every_key_a_bundled_file_uses_is_declared():
    """Loading already refuses an unknown key; this also checks the reverse
    direction stays honest: each top-level table is a declared field."""
    declared = set(keys_of(Platform))
    for name in available():
        text = (PLATFORMS_DIR / f"{name}.toml").read_text()
        for table in re.findall(r"^\[([a-z_]+)", text, flags=re.M):
            assert table in declared, (name, table)
