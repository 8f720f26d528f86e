"""The bundled gesture classifier tested with hil's pytest plugin, as a
firmware team would write it (the plugin comes with hil; without the entry
point, add `-p harness.pytest_plugin`):

    pytest examples/pytest --hil-platform mps2-an386 --hil-platform mps2-an385

Every test below runs once per platform; each vector of the parametrised
sets and each check is its own test in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.pytest_plugin import hil_vectors

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "demo" / "gesture.tflite"
TEST_SET = ROOT / "models" / "demo" / "gesture_test.npz"


@pytest.fixture(scope="module")
def dut(hil_dut):
    """The runner firmware, booted once per platform, with the model loaded."""
    hil_dut.load_model(MODEL)
    return hil_dut


# -- one test per vector ----------------------------------------------------------

@pytest.mark.parametrize("vector", hil_vectors(MODEL, file=TEST_SET, limit=4))
def test_labelled_vector_is_bit_exact(dut, vector):
    out = dut.run(vector)
    assert out.matches_reference(), out.describe()
    assert out.top1 == vector.label


@pytest.mark.parametrize("vector", hil_vectors(MODEL, count=3, seed=7))
def test_random_vector_is_bit_exact_and_counted(dut, vector):
    out = dut.run(vector)
    assert out.matches_reference()
    assert out.count_kind == "instructions" and 0 < out.count < 3_000_000
    assert [np.asarray(o).shape for o in out.outputs] == [np.asarray(r).shape for r in out.reference]


def test_an_array_of_zeros(dut):
    x = np.zeros(dut.model.inputs[0].shape, dtype=dut.model.inputs[0].dtype)
    assert dut.run(x).matches_reference()


# -- one test per check, on one streamed set ---------------------------------------------

@pytest.fixture(scope="module")
def labelled(dut):
    return dut.stream(file=TEST_SET, limit=30)


def test_test_set_is_bit_exact(labelled):
    assert labelled.matches_reference(), labelled.explain()


def test_accuracy(labelled):
    assert labelled.accuracy >= 0.9


def test_count_per_inference(labelled):
    assert labelled.count_kind == "instructions"
    assert labelled.max_count < 3_000_000


def test_energy_per_inference(dut, labelled):
    if labelled.max_energy_uj is None:
        pytest.skip(f"{dut.platform.name} has no [power] table: no energy estimate")
    assert labelled.max_energy_uj < 1_000  # an estimate, from the platform file's [power] table


def test_memory(dut):
    memory = dut.memory()
    assert 0 < memory["device"]["arena_high_water"] <= 8 * 1024
    assert not [c.message for c in dut.check_budgets(max_arena=8 * 1024, max_flash=256 * 1024) if not c.passed]


@pytest.mark.parametrize("seed", [1, 2])
def test_random_sets(dut, seed):
    batch = dut.stream(count=5, seed=seed)
    assert batch.matches_reference(), batch.explain()


# -- platforms, other firmware ---------------------------------------------------------------

@pytest.mark.hil_platforms("mps2-an385")
def test_runs_on_the_cortex_m3(dut):
    """Only on mps2-an385 (on the other platforms it is reported as skipped)."""
    assert dut.platform.core == "cortex-m3"
    assert dut.run(np.ones(dut.model.inputs[0].shape, dtype=np.int8)).matches_reference()


def test_fault_is_reported(hil_target):
    faulty = hil_target(defines={"HIL_FAULT_ON_INVOKE": "3"})
    faulty.load_model(MODEL)
    batch = faulty.stream(count=4, seed=1)
    assert not batch.matches_reference()
    assert [o.status for o in batch] == ["passed", "passed", "fault"] and batch.not_run == 1
    assert batch.fault["kind"] == "UsageFault" and batch.fault["symbol"].startswith("misbehave")


@pytest.mark.xfail(reason="a budget far too small: shows how a failed check reads", strict=True)
def test_budget_too_small(labelled):
    assert labelled.max_count < 1_000
