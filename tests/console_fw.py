"""Builds the console-mode test firmware (firmware/tests/console/console_app.c)
with arm-none-eabi-gcc for QEMU's mps2-an386, on the shared Cortex-M startup
and the mps2 linker script template."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers import FIRMWARE

SOURCES = [FIRMWARE / "tests" / "console" / "console_app.c",
           FIRMWARE / "arch" / "cortex-m" / "startup.c",
           FIRMWARE / "arch" / "cortex-m" / "counter.c"]
CPU = ["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb"]
LAYOUT = {"CODE": (0x00000000, 0x00400000), "RAM": (0x20000000, 0x00400000), "BULK": (0x21000000, 0x01000000)}


def linker_script(out_dir: Path) -> Path:
    text = (FIRMWARE / "boards" / "mps2" / "link.ld.in").read_text()
    for region, (origin, length) in LAYOUT.items():
        text = text.replace(f"@HIL_{region}_ORIGIN@", hex(origin)).replace(f"@HIL_{region}_LENGTH@", hex(length))
    path = out_dir / "console.ld"
    path.write_text(text.replace("@HIL_STACK_SIZE@", "0x2000"))
    return path


def build_console_elf(out_dir: Path, name: str, **defines) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    elf = out_dir / f"{name}.elf"
    flags = [f"-D{k}={v}" for k, v in defines.items()]
    subprocess.run(["arm-none-eabi-gcc", *CPU, "-O1", "-g", "-std=c99", "-Wall", "-Werror", "-ffunction-sections",
                    "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections",
                    "-Wl,--build-id=sha1", f"-T{linker_script(out_dir)}", *flags, "-o", str(elf),
                    *map(str, SOURCES)], check=True)
    return elf
