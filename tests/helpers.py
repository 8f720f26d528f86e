"""Helpers shared by the tests: compiling host C, tool availability."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIRMWARE = REPO / "firmware"
MODELS = REPO / "models"


def compile_host(tmp_dir: Path, name: str, sources: list[Path], sanitize: bool = True) -> Path:
    """Compile C sources for the host with warnings as errors (and ASan/UBSan)."""
    exe = tmp_dir / name
    flags = ["-std=c99", "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-Werror", "-g", "-O1"]
    if sanitize:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all"]
    subprocess.run(["gcc", *flags, "-o", str(exe), *map(str, sources)], check=True)
    return exe


def have_emulator_toolchain() -> str | None:
    """None when QEMU and the cross compiler are present, else what is missing."""
    missing = [t for t in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake") if not shutil.which(t)]
    return ", ".join(missing) or None


requires_qemu = pytest.mark.skipif(
    have_emulator_toolchain() is not None,
    reason=f"needs {have_emulator_toolchain()} (install with the README's set-up command)")




def hil(*args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 600,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real `hil` CLI in a subprocess; returns CompletedProcess."""
    import sys

    merged = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "harness", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, env=merged)


def processes_in(directory: Path) -> list[int]:
    """PIDs whose working directory is `directory` (QEMU runs in the run dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == Path(directory).resolve():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found
