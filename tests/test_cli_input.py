"""Bad input is rejected with exit 2 and a message naming the problem,
before any firmware is built or booted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import MODELS, hil

DEMO = MODELS / "demo" / "gesture.tflite"


def _run(tmp_path, *args):
    return hil("run", "--workdir", tmp_path / "run", "--json", tmp_path / "r.json", *args, cwd=tmp_path)


def test_missing_model_file(tmp_path):
    proc = _run(tmp_path, "--model", tmp_path / "nope.tflite")
    assert proc.returncode == 2
    assert "nope.tflite" in proc.stderr


@pytest.mark.parametrize("cut", [7, 100, 1000, -200, -1])
def test_truncated_model(tmp_path, cut):
    data = DEMO.read_bytes()
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(data[:cut])
    proc = _run(tmp_path, "--model", bad)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "cut.tflite" in proc.stdout + proc.stderr
    assert not (tmp_path / "run" / "qemu.log").exists(), "nothing may boot for a bad model"
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "error" and result["exit_code"] == 2


def test_random_bytes_model(tmp_path):
    bad = tmp_path / "noise.tflite"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    proc = _run(tmp_path, "--model", bad)
    assert proc.returncode == 2
    assert "not a TFLite flatbuffer" in proc.stdout + proc.stderr


def test_unsupported_operator_named_before_boot(tmp_path):
    model = MODELS / "test" / "unsupported_gather.tflite"
    proc = _run(tmp_path, "--model", model)
    assert proc.returncode == 2
    text = proc.stdout + proc.stderr
    assert "GATHER" in text and "unsupported_gather.tflite" in text
    assert not (tmp_path / "run" / "qemu.log").exists()


def test_unknown_platform_lists_known_ones(tmp_path):
    proc = _run(tmp_path, "--model", DEMO, "--platform", "mps9-nope")
    assert proc.returncode == 2
    assert "mps2-an386" in proc.stderr


def test_vectors_of_the_wrong_shape(tmp_path):
    inputs = tmp_path / "bad.npy"
    np.save(inputs, np.zeros((4, 7), dtype=np.int8))
    proc = _run(tmp_path, "--model", DEMO, "--inputs", inputs)
    assert proc.returncode == 2
    assert "does not fit input" in proc.stdout + proc.stderr


def test_vectors_that_do_not_fit_the_dtype(tmp_path):
    from harness.model.tflite import load_model

    spec = load_model(DEMO).inputs[0]
    inputs = tmp_path / "wide.npy"
    np.save(inputs, np.full((2, *spec.shape), 300, dtype=np.int32))
    proc = _run(tmp_path, "--model", DEMO, "--inputs", inputs)
    assert proc.returncode == 2
    assert "do not fit" in proc.stdout + proc.stderr


def test_bad_platform_file_names_the_key(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "broken"\ndescription = "x"\n[target]\nkind = "qemu"\nmachine = "mps2-an386"\n'
                   '[firmware]\nboard = "mps2"\n')
    proc = _run(tmp_path, "--model", DEMO, "--platform", bad)
    assert proc.returncode == 2
    assert "firmware.cpu_flags" in proc.stderr


def test_missing_toolchain_names_the_package(tmp_path):
    proc = hil("build", "--platform", "mps2-an386", env={"PATH": "/nonexistent"})
    assert proc.returncode == 3
    assert "apt-get install -y gcc-arm-none-eabi" in proc.stderr


@pytest.mark.parametrize("args, said", [
    (("--max-latency-ms", "-5"), "-5.0 is not in the range x>0"),
    (("--max-cycles", "0"), "0.0 is not in the range x>0"),
    (("--max-arena", "0"), "0 is not in the range x>=1"),
    (("--max-count", "nan"), "'nan' is not a number"),
    (("--place-wait", "nan"), "'nan' is not a number"),
    (("--no-count", "--max-latency-ms", "5"), "--max-latency-ms judge the cycle estimate, which --no-count"),
    (("--no-cycles", "--max-cycles", "5e6"), "--max-cycles judge the cycle estimate, which --no-cycles"),
])
def test_budgets_that_cannot_mean_anything_are_refused_before_boot(tmp_path, args, said):
    """A budget of 0 or less, or a cycles/latency budget with the estimate
    turned off, was judged after the run (exit 1): it is a usage error."""
    proc = _run(tmp_path, "--model", DEMO, *args)
    assert proc.returncode == 2 and said in " ".join(proc.stderr.split()), proc.stderr
    assert not (tmp_path / "run" / "qemu.log").exists()
