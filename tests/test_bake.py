"""--bake: the model built into the firmware image (flash) and run in place,
in real QEMU; a model that does not fit the platform's flash is named with
the numbers."""

from __future__ import annotations

import json

import pytest

from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]


def test_baked_model_runs_bit_exact_from_flash(tmp_path):
    out = tmp_path / "r.json"
    proc = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--vectors", "20", "--bake",
               "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["summary"]["passed"] == 20
    assert result["device"]["model_transfer"] == "baked" and result["device"]["has_baked_model"]
    mem = result["memory"]
    model_bytes = result["model"]["bytes"]
    assert mem["regions"]["code"]["sections"][".text"] > model_bytes  # the model lives in the image
    assert mem["ram_bytes"] == mem["regions"]["ram"]["used"] + mem["device"]["arena_high_water"]


def test_a_model_too_big_for_flash_is_named_with_numbers(tmp_path):
    big = tmp_path / "padded.tflite"  # a valid model: a flatbuffer ignores bytes after its tables
    big.write_bytes((MODELS / "test" / "mlp_per_tensor.tflite").read_bytes() + bytes(300 * 1024))
    proc = hil("run", "--model", big, "--platform", "lm3s6965evb", "--vectors", "1", "--bake",
               "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    text = proc.stdout + proc.stderr
    # refused on the host before building (issue 11), naming the region, its size and where it fits
    assert "code region (flash) of lm3s6965evb (262,144 bytes" in text and "building firmware" not in text
    assert "mps2-an386" in text


def test_firmware_and_baked_model_over_flash_names_what_helps(tmp_path):
    """The model (204 KiB) fits lm3s6965evb's 256 KiB flash alone but not with
    the firmware: the linker finds it (real build), and the fix names
    platforms with more flash, not "change memory.code in the platform file"
    (a part's flash cannot be edited)."""
    big = tmp_path / "padded.tflite"
    big.write_bytes((MODELS / "test" / "mlp_per_tensor.tflite").read_bytes() + bytes(200 * 1024))
    proc = hil("run", "--model", big, "--platform", "lm3s6965evb", "--vectors", "1", "--bake",
               "--workdir", tmp_path / "run", cwd=tmp_path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "baked in" in text and "more flash than 262,144 bytes" in text and "mps2-an386" in text, text
    assert "change memory.code" not in text, text
