"""A platform must not produce verdicts through instructions its emulator
gets wrong (issue 11): Renode 1.15.3 executes FPv5 rounding, conversion and
min/max instructions wrongly on its Cortex-M7, so the firmware for
renode-stm32f746 is built without them. Renode is not needed here: the
built image is disassembled, and the same CPU flags are run on QEMU's
Cortex-M7 (mps2-an500) against the TFLM reference.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.platforms import available, load_platform, load_platform_file

from helpers import MODELS, REPO, hil, requires_qemu

DEFECT_PLATFORMS = [name for name in available() if load_platform(name).known_defects]


def _mnemonics(elf: Path) -> set[str]:
    """Upper-case mnemonics in the image, without their .type suffixes."""
    objdump = shutil.which("arm-none-eabi-objdump")
    if objdump is None:
        pytest.skip("needs arm-none-eabi-objdump (binutils-arm-none-eabi)")
    listing = subprocess.run([objdump, "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    found = set()
    for line in listing.splitlines():
        columns = line.split("\t")
        if len(columns) >= 3 and re.match(r"\s*[0-9a-f]+:$", columns[0]):
            found.add(columns[2].split(".")[0].strip().upper())
    return found


def _build(platform: str | Path, cwd: Path) -> Path:
    done = hil("build", "-q", "-p", str(platform), cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


def test_renode_cortex_m7_records_its_fpv5_defects():
    platform = load_platform("renode-stm32f746")
    assert {"VRINTA", "VRINTN", "VRINTZ", "VRINTP", "VMAXNM", "VCVTA"} <= platform.avoided_instructions
    assert all(d.version == "Renode 1.15.3" and d.seen for d in platform.known_defects)


@pytest.mark.parametrize("defects, problem", [
    ("known_defects = 3", "must be a list of tables"),
    ('known_defects = [{ seen = "x", instructions = ["VRINTA"] }]', "known_defects[0].version"),
    ('known_defects = [{ version = "1", seen = "x", instructions = "VRINTA" }]', "instructions` must be a list of strings"),
])
def test_malformed_known_defects_are_refused_naming_the_key(tmp_path, defects, problem):
    text = (REPO / "platforms" / "mps2-an500.toml").read_text() + f"\n[emulator]\n{defects}\n"
    path = tmp_path / "broken.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_platform_file(path)
    assert problem in str(info.value)


@requires_qemu
@pytest.mark.parametrize("name", DEFECT_PLATFORMS)
def test_firmware_has_none_of_the_instructions_its_emulator_gets_wrong(name, tmp_path):
    """With -mfpu=fpv5-sp-d16 gcc put VRINTA (roundf), VRINTP (ceilf) and
    VSEL in the renode-stm32f746 image."""
    platform = load_platform(name)
    used = _mnemonics(_build(name, tmp_path)) & platform.avoided_instructions
    assert not used, f"{name}'s firmware contains {sorted(used)}, which its emulator executes wrongly"


@requires_qemu
@pytest.mark.parametrize("model", ["float_io", "float_layout"])
def test_the_same_cpu_flags_are_bit_exact_on_qemu_cortex_m7(model, tmp_path):
    """renode-stm32f746's CPU flags (software roundf/ceilf) on QEMU's
    Cortex-M7: a float-input model with QUANTIZE (roundf) or STRIDED_SLICE
    (ceilf) still matches the TFLM reference exactly."""
    renode = tomllib.loads((REPO / "platforms" / "renode-stm32f746.toml").read_text())
    text = (REPO / "platforms" / "mps2-an500.toml").read_text()
    flags = "cpu_flags = [" + ", ".join(f'"{f}"' for f in renode["firmware"]["cpu_flags"]) + "]"
    text, n = re.subn(r"^cpu_flags = \[.*\]$", flags, text, flags=re.M)
    assert n == 1
    text = re.sub(r'^name = ".*"$', 'name = "mps2-an500-fpv4"', text, flags=re.M)
    platform = tmp_path / "mps2-an500-fpv4.toml"
    platform.write_text(text)
    assert not _mnemonics(_build(platform, tmp_path)) & load_platform("renode-stm32f746").avoided_instructions
    done = hil("run", "-m", MODELS / "test" / f"{model}.tflite", "-p", platform, "-n", "5",
               "--json", tmp_path / "result.json", cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
