"""Counts, memory, energy and budgets, measured in real QEMU."""

from __future__ import annotations

import json

import pytest

from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

DEMO = MODELS / "demo" / "gesture.tflite"
TICK = 40  # instructions per SysTick tick on mps2 (platforms/mps2-an386.toml)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("counts")
    out = tmp / "r.json"
    proc = hil("run", "--model", DEMO, "--vectors", "5", "--seed", "2", "--json", out, "--workdir", tmp / "run",
               cwd=tmp)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def test_per_operator_counts_sum_to_the_invoke_within_the_documented_overhead(demo_run):
    """docs/counts.md: the invoke's count exceeds the operators' sum by the
    engine loop and the profiling hook, at most (2 x operators + 3) ticks,
    and never falls below it."""
    result, _ = demo_run
    for v in result["vectors"]:
        ops = v["operators"]
        assert [o["index"] for o in ops] == list(range(len(ops)))
        gap = v["count"]["value"] - sum(o["count"] for o in ops)
        assert 0 <= gap <= (2 * len(ops) + 3) * TICK, gap


def test_counting_overhead_is_measured_and_small(demo_run):
    result, stdout = demo_run
    overhead = result["count_overhead"]
    assert overhead["kind"] == "instructions" and 0 <= overhead["value"] <= 2 * TICK
    assert "counting overhead (empty invoke)" in stdout


def test_memory_is_measured_on_the_device_and_from_the_elf(demo_run):
    result, stdout = demo_run
    mem = result["memory"]
    device = mem["device"]
    assert 0 < device["arena_high_water"] <= device["arena_planned"] <= device["arena_size"]
    assert 0 < device["stack_high_water"] < device["stack_size"]
    assert device["model_bytes"] == result["model"]["bytes"]
    assert mem["flash_bytes"] == mem["regions"]["code"]["used"] >= result["firmware"]["text"]
    assert mem["ram_bytes"] == mem["regions"]["ram"]["used"] + device["arena_high_water"] + device["model_bytes"]
    assert "arena high-water" in stdout and "stack high-water" in stdout


def test_energy_is_an_estimate_from_the_platform_power_model(demo_run):
    result, stdout = demo_run
    model = result["energy_model"]
    assert model["estimate"] is True and model["datasheet"]
    basis = result["summary"]["energy_basis"]
    for v in result["vectors"]:
        e = v["energy"]
        # the timing model's cycles estimate where there is one, else instructions x CPI (a lower bound)
        assert e["basis"] == basis["kind"] == ("cycles_estimate" if v.get("cycles") else "instructions_x_cpi")
        assert e["estimate"] is True and e["cycles"] == round((v.get("cycles") or v["count"])["value"])
        # energy per cycle is the power figure's: a clock the power is scaled to changes time and power alike
        expected = e["cycles"] / model["clock_hz"] * model["active_power_mw"] * 1e3
        assert e["uj"] == pytest.approx(expected, rel=1e-6)
    s = result["summary"]["energy_uj"]
    assert s["min"] <= s["median"] <= s["max"]
    assert "energy per inference: " in stdout and f"uJ (estimate: {basis['basis_text']}, unverified" in stdout


def test_budgets_exceeded_fail_the_run_naming_limit_and_measurement(tmp_path):
    out = tmp_path / "r.json"
    proc = hil("run", "--model", DEMO, "--vectors", "2", "--max-count", "1000", "--max-arena", "1000000",
               "--max-flash", "100", "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["status"] == "failed"
    budgets = {b["name"]: b for b in result["budgets"]}
    assert not budgets["max_count"]["passed"] and budgets["max_count"]["unit"] == "instructions"
    assert budgets["max_arena"]["passed"]
    assert not budgets["max_flash"]["passed"]
    assert "budget --max-count EXCEEDED: limit 1,000 instructions, measured" in proc.stdout


def test_budgets_within_limits_pass(tmp_path):
    proc = hil("run", "--model", DEMO, "--vectors", "2", "--max-count", "1e9", "--max-energy-uj", "1e6",
               "--max-ram", "10000000", "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count(" within: ") == 3


def test_no_count_runs_without_counts_and_refuses_count_budgets(tmp_path):
    out = tmp_path / "r.json"
    proc = hil("run", "--model", DEMO, "--vectors", "2", "--no-count", "--max-count", "1e9", "--json", out,
               "--workdir", tmp_path / "run", cwd=tmp_path)
    result = json.loads(out.read_text())
    assert "-icount" not in " ".join(result["target"]["command"])
    assert all("count" not in v for v in result["vectors"])
    assert proc.returncode == 1, "a budget that cannot be measured must not pass"
    assert "cannot be checked" in proc.stdout
