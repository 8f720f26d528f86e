"""Fast host-only tests of the harness's data handling: platform files,
vector generation and loading, the result document, output comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness.checks.metrics import bit_exact
from harness.errors import UsageError
from harness.model.tflite import TensorSpec
from harness.model.vectors import _fit
from harness.platforms import CounterSpec, available, load_platform, load_platform_file, power_spec
from harness.results.result import FAULT, PASSED, RunResult, VectorResult, write_json_atomic


def test_every_bundled_platform_file_loads():
    names = available()
    assert "mps2-an386" in names
    for name in names:
        p = load_platform(name)
        assert p.name == name and p.memory.region("code").length > 0


def test_platform_sizes_must_fit_the_bulk_region(tmp_path):
    text = (load_platform("mps2-an386").path.read_text()
            .replace("arena_bytes = 0x100000", "arena_bytes = 0x2000000"))
    bad = tmp_path / "mps2-an386.toml"
    bad.write_text(text)
    with pytest.raises(UsageError, match="memory.bulk holds"):
        load_platform_file(bad)


def test_platform_toml_syntax_error_is_reported(tmp_path):
    bad = tmp_path / "x.toml"
    bad.write_text("name = \n")
    with pytest.raises(UsageError, match="not valid TOML"):
        load_platform_file(bad)


SPEC = TensorSpec(0, "in", (1, 4), np.dtype(np.int8), 0.5, 0)


def test_vectors_accept_single_and_batched_shapes():
    assert _fit(np.zeros((1, 4), np.int8), SPEC, "x").shape == (1, 1, 4)
    assert _fit(np.zeros((5, 1, 4), np.int8), SPEC, "x").shape == (5, 1, 4)
    assert _fit(np.zeros((5, 4), np.int8), SPEC, "x").shape == (5, 1, 4)  # batch dim of 1 omitted


def test_vectors_convert_dtype_only_without_loss():
    assert _fit(np.array([[[1, -2, 3, 127]]], np.int64), SPEC, "x").dtype == np.int8
    with pytest.raises(UsageError, match="do not fit"):
        _fit(np.array([[[1, 2, 3, 128]]], np.int64), SPEC, "x")


def test_bit_exact_counts_differences_and_signed_zero():
    same = bit_exact([np.array([1, 2], np.int8)], [np.array([1, 2], np.int8)])
    assert same.passed and same.max_abs_diff == 0
    off = bit_exact([np.array([1, 5, -3], np.int8)], [np.array([1, 2, -3], np.int8)])
    assert not off.passed and off.mismatches == 1 and off.max_abs_diff == 3
    zero = bit_exact([np.array([-0.0], np.float32)], [np.array([0.0], np.float32)])
    assert not zero.passed  # bit-exact means bits


def test_result_document_summary_and_atomic_write(tmp_path):
    r = RunResult(platform={"name": "p"}, model={"path": "m"}, planned=4)
    r.vectors += [VectorResult(0, PASSED, 0, 0, {"value": 400, "kind": "instructions"}, top1=1, label=1),
                  VectorResult(1, PASSED, 0, 0, {"value": 440, "kind": "instructions"}, top1=0, label=1),
                  VectorResult(2, FAULT, error="boom")]
    doc = r.as_dict()
    assert doc["schema"] == "hil.result/1"
    s = doc["summary"]
    assert (s["total"], s["run"], s["passed"], s["failed"], s["not_run"]) == (4, 3, 2, 1, 1)
    assert s["count"] == {"kind": "instructions", "min": 400, "median": 420, "max": 440, "mean": 420}
    assert s["accuracy"]["top1"] == 0.5
    path = tmp_path / "deep" / "r.json"
    write_json_atomic(path, doc)
    assert json.loads(path.read_text())["summary"] == s
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]  # no temporary left


def test_energy_model_arithmetic_and_kinds():
    from harness.power.energy import EnergyModel

    model = EnergyModel.from_platform(
        power_spec({"part": "X", "datasheet": "DS", "voltage_v": 3.0, "clock_hz": 80e6, "active_ua_per_mhz": 100}),
        CounterSpec(cycles_per_instruction=1.5), "p.toml")
    assert model is not None
    assert model.active_ma == pytest.approx(8.0)
    assert model.cycles(1000, "instructions") == (1500, "instructions_x_cpi")
    assert model.cycles(1000, "cycles") == (1000, "cycles_estimate")  # counted cycles x a datasheet current
    assert model.cycles(1000, "ticks") is None
    # 80e6 cycles = 1 s at 80 MHz, x 3 V x 8 mA = 24 mJ
    assert model.energy_uj(80e6) == pytest.approx(24_000)
    assert EnergyModel.from_platform(power_spec({"part": "X", "voltage_v": 3.3, "clock_hz": 1}), CounterSpec(), "p") is None


def test_energy_model_names_a_missing_key():
    with pytest.raises(UsageError, match="power.datasheet"):
        power_spec({"part": "X", "voltage_v": 3, "clock_hz": 1, "active_ma": 1}, "p.toml")


def test_budget_evaluation_names_limit_measurement_and_unmeasurable():
    from harness.checks.budgets import evaluate

    checks = {c.name: c for c in evaluate({"max_count": 100, "max_ram": 5000, "max_energy_uj": 1.0},
                                          {"max_count": (120, "instructions"), "max_ram": (4000, "bytes"),
                                           "max_energy_uj": None})}
    assert not checks["max_count"].passed
    assert checks["max_count"].message == ("budget --max-count EXCEEDED: limit 100 instructions, "
                                           "measured 120 instructions")
    assert checks["max_ram"].passed
    assert not checks["max_energy_uj"].passed and "cannot be checked" in checks["max_energy_uj"].message


def test_count_kinds_follow_the_counter_source():
    from harness.checks.counts import unit_for
    from harness.link.protocol import CounterSource

    qemu = load_platform("mps2-an386")
    dwt = unit_for(CounterSource.DWT.name, qemu, True)
    assert dwt is not None and dwt.kind == "cycles"
    systick = unit_for(CounterSource.SYSTICK.name, qemu, True)
    assert systick is not None
    assert (systick.kind, systick.per_tick) == ("instructions", 40)
    assert unit_for(CounterSource.SYSTICK.name, qemu, False) is None  # wall-time SysTick is no measurement
    assert unit_for(CounterSource.NONE.name, qemu, True) is None


def test_board_platforms_are_serial_board_targets():
    from harness.targets import check_target_kind, is_board
    from harness.targets.flash import make_flasher

    for name in ("nucleo-l4r5zi", "nrf52840dk", "nucleo-h743zi"):
        p = load_platform(name)
        assert p.counter.kind == "cycles" and p.board.serial.baud == 115200
        check_target_kind(p)  # supported now (tests/test_board_*.py)
        assert is_board(p) and make_flasher(p.board, p.name).name in ("openocd", "jlink", "pyocd")
