"""Localisation in real QEMU: firmware that computes one operator wrongly
(built with HIL_CORRUPT_OP=N, which flips one bit of that operator's
output) must be caught, and the first diverging operator named."""

from __future__ import annotations

import json

import pytest

from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]


def _elf(**defines):
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    return build_firmware(load_platform("mps2-an386"), {k: str(v) for k, v in defines.items()}).elf.path


@pytest.mark.parametrize("model, op, name", [("conv_sweep", 2, "CONV_2D"), ("mlp_per_tensor", 2, "FULLY_CONNECTED")])
def test_a_wrong_operator_is_named(tmp_path, model, op, name):
    from harness.model.tflite import load_model

    info = load_model(MODELS / "test" / f"{model}.tflite")
    assert info.operators[op].name == name
    out = tmp_path / "r.json"
    proc = hil("run", "--model", MODELS / "test" / f"{model}.tflite", "--vectors", "3",
               "--firmware", _elf(HIL_CORRUPT_OP=op), "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    found = result["localization"]["first_divergence"]
    assert (found["op_index"], found["op"]) == (op, name)
    assert found["tensor"] in info.operators[op].outputs and found["mismatches"] >= 1
    assert f"first divergence at operator {op} ({name})" in proc.stdout


def test_localize_on_a_correct_run_checks_every_operator(tmp_path):
    out = tmp_path / "r.json"
    proc = hil("run", "--model", MODELS / "test" / "float_conv.tflite", "--vectors", "2", "--localize",
               "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    loc = json.loads(out.read_text())["localization"]
    assert loc["first_divergence"] is None and loc["tensors_checked"] >= 10


def test_stateful_models_are_not_localised(tmp_path):
    out = tmp_path / "r.json"
    proc = hil("run", "--model", MODELS / "test" / "stateful_int8.tflite", "--vectors", "2", "--localize",
               "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "keeps state" in json.loads(out.read_text())["localization"]["skipped"]
