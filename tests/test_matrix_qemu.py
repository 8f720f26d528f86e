"""Every bundled model on more than one core.

The default run covers every model on a second core of a different
architecture profile (Cortex-M3, soft float: no FPU, no DSP instructions),
besides mps2-an386 in tests/test_qemu_run.py. The full matrix, every model
on every QEMU platform where it fits, is marked `slow`: `pytest -m slow`
runs it, and `./run.sh test` (what CI runs) includes it.
"""

from __future__ import annotations

import json

import pytest

from helpers import MODELS, hil, requires_qemu

pytestmark = [requires_qemu, pytest.mark.qemu]

MODELS_ALL = sorted([MODELS / "demo" / "gesture.tflite",
                     *(p for p in (MODELS / "test").glob("*.tflite") if not p.name.startswith("unsupported_"))])
# A pair's float original (MANIFEST.json `float_original`, e.g. gesture_mini_float.tflite) is the host
# reference for --float-model; every operator it has is covered in float by float_conv on every platform,
# so it runs on the device in the default test only, not in the slow matrix (its `device_matrix` says so).
FLOAT_ORIGINALS = {entry["float_original"]["file"]
                   for entry in json.loads((MODELS / "test" / "MANIFEST.json").read_text())["models"].values()
                   if "float_original" in entry}
MODELS_MATRIX = [p for p in MODELS_ALL if p.name not in FLOAT_ORIGINALS]
QEMU_PLATFORMS = ["mps2-an385", "mps2-an500", "mps2-an505", "mps3-an547", "lm3s6965evb", "riscv32-virt"]


#: what a job that cannot fit the platform says (those jobs are expected, not failures): its memory, or the
#: built-in engine's tables as the platform file sizes them (harness/model/capacity.py, refused before boot)
DOES_NOT_FIT = ("model larger than", "arena too small", "than the RAM model buffer", "than the tensor arena",
                "more than the built-in engine on")


def _suite_is_bit_exact(tmp_path, platform: str, models: list, vectors: int, all_fit: bool = False) -> None:
    """Every model on `platform`, bit-exact on `vectors` vectors, as one
    `hil test -j 2` suite: pytest runs one test at a time, so a suite keeps
    both cores busy and pays Python's and the CLI's start-up once instead of
    once per model. A model that does not fit the platform must say so;
    every other job must pass."""
    entries = "".join(f'[[models]]\nname = "{m.stem}"\npath = "{m}"\nvectors = {{ random = {vectors}, seed = 4 }}\n\n'
                      for m in models)
    (tmp_path / "hil.toml").write_text(f'[project]\nname = "matrix"\nplatforms = ["{platform}"]\n\n{entries}')
    out = tmp_path / "suite.json"
    proc = hil("test", "-j", "2", "--json", out, "--no-store", cwd=tmp_path, timeout=900)
    doc = json.loads(out.read_text())
    assert len(doc["jobs"]) == len(models), proc.stdout + proc.stderr
    unfit = [j["model"] for j in doc["jobs"] if j["exit_code"] == 2 and any(m in (j["error"] or "") for m in DOES_NOT_FIT)]
    failed = {j["model"]: j["error"] or j["status"] for j in doc["jobs"] if j["model"] not in unfit and j["status"] != "passed"}
    assert not failed, f"{platform}: {failed}\n{proc.stdout[-3000:]}"
    checked = [c for c in doc["cases"] if c["model"] not in unfit]
    assert checked and all(c["check"] == "bit_exact" and c["status"] == "passed" for c in checked), checked
    assert not (all_fit and unfit) and len(unfit) < len(models) // 2, f"models that do not fit {platform}: {unfit}"


def test_every_model_is_bit_exact_on_cortex_m3(tmp_path):
    _suite_is_bit_exact(tmp_path, "mps2-an385", MODELS_ALL, 20, all_fit=True)


@pytest.mark.slow
@pytest.mark.parametrize("platform", QEMU_PLATFORMS)
def test_full_matrix(tmp_path, platform):
    _suite_is_bit_exact(tmp_path, platform, MODELS_MATRIX, 10)
