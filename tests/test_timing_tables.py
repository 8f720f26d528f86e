"""The timing data (#13): per-core cycle tables in timing/, the [timing]
table of every QEMU platform, the CoreMark validation file and the
published figures it compares with. Fast: files only, no QEMU."""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from pathlib import Path

import pytest

from harness.platforms import available, load_platform
from harness.timing import validation
from harness.timing.model import CLASSES, TIMING_DIR, TimingModel, read_core_table
from harness.timing.model import available as timing_models

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = ROOT / "benchmarks" / "coremark_port" / "published.toml"
CORES = timing_models()
QEMU_PLATFORMS = sorted(n for n in available() if load_platform(n).target_kind == "qemu")


def test_every_core_of_the_issue_has_a_table():
    assert {"cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55",
            "rv32imac"} <= set(CORES)


@pytest.mark.parametrize("core", CORES)
def test_core_table_parses_cites_and_uses_only_contract_classes(core):
    path = TIMING_DIR / f"{core}.toml"
    table = read_core_table(path)  # the loader the runs use: unknown classes, bad numbers, id mismatch raise
    raw = tomllib.loads(path.read_text())
    classes = set(CLASSES[table.isa])
    assert set(raw["cycles"]) <= classes
    assert set(raw.get("notes", {})) <= classes | {"taken_branch"}, "notes are per class (or the penalty)"
    assert set(raw.get("dual_issue", {}).get("classes", [])) <= classes
    # a citation names a document and a section or table, and says so when a figure is assumed
    source = raw["source"]
    assert len(source) > 40 and any(w in source for w in ("Table", "Manual", "section", "Features")), source
    assert raw.get("revision"), "the revision of the manual the figures are from"
    for name, note in raw.get("notes", {}).items():
        assert isinstance(note, str) and note.strip(), f"{core} notes.{name} is empty"
    assert all(v >= 0 for v in table.cycles.values())
    assert table.penalty.taken_branch >= 0


@pytest.mark.parametrize("core", CORES)
def test_averaged_or_assumed_figures_say_so(core):
    """A class whose TRM figure is a range (divide, long multiply) or that
    the manual does not give carries a note naming the choice."""
    raw = tomllib.loads((TIMING_DIR / f"{core}.toml").read_text())
    notes = raw.get("notes", {})
    if "div" in raw["cycles"]:
        assert "div" in notes and any(w in notes["div"] for w in ("assumed", "middle")), notes.get("div")
    if raw["penalty"]["taken_branch"] and raw["isa"] == "thumb" and core != "cortex-m0plus":
        assert "taken_branch" in notes


def test_m55_models_mve_beats():
    raw = tomllib.loads((TIMING_DIR / "cortex-m55.toml").read_text())
    mve = {k: v for k, v in raw["cycles"].items() if k.startswith("mve_")}
    assert set(mve) == {"mve_alu", "mve_mul", "mve_mac", "mve_load", "mve_store", "mve_other"}
    assert all(v == 2 for v in mve.values()), "dual-beat: 4 beats of a 128-bit instruction at 2 per cycle"


@pytest.mark.parametrize("name", QEMU_PLATFORMS)
def test_every_qemu_platform_has_a_timing_table_naming_a_model(name):
    platform = load_platform(name)
    model = TimingModel.for_platform(platform)
    assert model is not None, f"platforms/{name}.toml has no [timing] table"
    assert model.id in CORES
    assert model.memory_source, "the [timing] table cites where its clock and memory costs come from"
    assert model.clock_hz >= 1_000_000
    isa = "rv32" if platform.firmware.toolchain.startswith("riscv") else "thumb"
    assert model.isa == isa


def test_stm32l4r5_qemu_is_an386_with_the_l4r5_flash():
    emulated, an386 = load_platform("stm32l4r5-qemu"), load_platform("mps2-an386")
    assert emulated.target.machine == "mps2-an386"
    assert emulated.memory == an386.memory, "the [memory] QEMU's mps2-an386 provides"
    assert emulated.counter_per_tick == an386.counter_per_tick
    model = TimingModel.for_platform(emulated)
    assert model is not None
    assert (model.id, model.clock_hz) == ("cortex-m4", 120_000_000)
    [flash] = model.memory
    assert (flash.region, flash.wait_states, flash.prefetch) == ("code", 5, True)  # RM0432: 5 WS at 120 MHz
    assert flash.cache is not None and flash.cache.lines * flash.cache.line_bytes == 1024  # ART I-cache: 1 KiB
    power = tomllib.loads(emulated.path.read_text())["power"]
    assert power["clock_hz"] == 120_000_000


def test_coremark_validation_file_is_consistent():
    data = tomllib.loads((TIMING_DIR / "validation.toml").read_text())
    published = tomllib.loads(PUBLISHED.read_text())
    assert data["coremark"], "benchmarks/coremark.py writes one table per core"
    for core, row in data["coremark"].items():
        assert row["model"] == core and core in CORES
        assert row["command"].startswith(".venv/bin/python benchmarks/coremark.py")
        assert row["estimated"] == pytest.approx(row["iterations"] / (row["cycles_per_iteration"] * row["iterations"] / 1e6),
                                                 rel=1e-3)
        if "error_pct" in row:
            assert row["published"] == published[core]["published"]
            assert row["error_pct"] == pytest.approx((row["estimated"] - row["published"]) / row["published"] * 100,
                                                     abs=0.1)
    # the error band every estimate of a validated model carries
    band = validation.error_band("cortex-m4")
    assert band.startswith("+-") and "timing/validation.toml" in band


def test_published_figures_name_a_core_table_and_a_platform():
    for core, entry in tomllib.loads(PUBLISHED.read_text()).items():
        assert core in CORES
        platform = load_platform(entry["platform"])
        assert platform.target_kind == "qemu"
        assert int(entry["iterations"]) > 0
        if "published" in entry:
            # every figure says how far it was checked: quoted from Arm's table, or as recalled
            assert 1 < entry["published"] < 10 and ("as recalled" in entry["source"] or "quoted" in entry["source"])


def _coremark_module():
    spec = importlib.util.spec_from_file_location("coremark_bench", ROOT / "benchmarks" / "coremark.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def test_coremark_writes_what_the_error_band_reads(tmp_path):
    cm = _coremark_module()
    outcome = cm.Outcome(core="cortex-m4", published=3.42, source="s", iterations=10, instructions=2_950_000,
                         cycles=4_000_000, histogram={}, flags=["-O2"], compiler="gcc")
    assert outcome.estimated == pytest.approx(2.5)
    path = tmp_path / "validation.toml"
    cm.write_validation([outcome], "abc", path)
    row = tomllib.loads(path.read_text())["coremark"]["cortex-m4"]
    assert row["error_pct"] == pytest.approx(-26.9, abs=0.05)
    [found] = validation.comparisons("cortex-m4", tmp_path)
    assert found.reported_pct == row["error_pct"]
    assert found.error_pct == pytest.approx(36.8, abs=0.1)  # CoreMark/MHz 26.9% low = cycles 36.8% high
    script = cm.linker_script(load_platform("mps3-an547"), "thumb")
    assert "ORIGIN = 0x10000000" in script and "ORIGIN = 0x30000000" in script  # ITCM code, DTCM data


def test_a_figure_that_is_not_a_finite_number_is_a_usage_error(tmp_path):
    from harness.errors import UsageError

    for bad in ("nan", "inf", "-1"):  # nan/inf are TOML floats: the plugin config could not be written
        table = tmp_path / "odd.toml"
        table.write_text(f'id = "odd"\ncore = "x"\nisa = "thumb"\nsource = "test"\n[cycles]\ndefault = 1\nload = {bad}\n')
        with pytest.raises(UsageError, match=r"`cycles(\.load)?` (must be a finite number|has load = -1)"):
            read_core_table(table)
