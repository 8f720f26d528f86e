"""Build the built-in runner firmware for a platform with CMake.

Builds are cached by a hash of everything that affects the image (firmware
sources, the platform file, extra definitions, the compiler's version), so
`hil run` can build on demand and costs nothing when nothing changed.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .. import resources
from ..errors import DiskError, InfraError, UsageError, disk_error
from ..platforms import Platform
from .artifact import ElfInfo, read_elf
from .diagnostics import first_error

logger = logging.getLogger(__name__)  # `log` is build_firmware's stage callback
FIRMWARE_DIR = resources.firmware_dir()
TOOLCHAIN_FILES = {
    "arm-none-eabi": FIRMWARE_DIR / "cmake" / "arm-none-eabi.cmake",
    "riscv64-unknown-elf": FIRMWARE_DIR / "cmake" / "riscv64-unknown-elf.cmake",
}
TOOLCHAIN_PACKAGES = {
    "arm-none-eabi": ("arm-none-eabi-gcc", "gcc-arm-none-eabi libnewlib-arm-none-eabi"),
    "riscv64-unknown-elf": ("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"),
}


def cache_root() -> Path:
    """Where builds are kept: $HIL_CACHE_DIR, else ~/.cache/hil. It must be a
    directory hil can write; when it is not (a $HOME that is a file, full or
    read-only) that is said plainly, with the way out, before any build."""
    configured = os.environ.get("HIL_CACHE_DIR")
    try:
        root = Path(configured) if configured else Path.home() / ".cache" / "hil"
    except RuntimeError as exc:  # no $HOME and no password entry
        raise DiskError(f"cannot use the build cache: {exc}", None,
                        hint="set HIL_CACHE_DIR to a writable directory") from exc
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        raise _cache_error(root, exc) from exc
    return root


def _cache_error(root: Path, exc: OSError) -> DiskError:
    where = "HIL_CACHE_DIR" if os.environ.get("HIL_CACHE_DIR") else "$HOME"
    return DiskError(f"cannot use the build cache at {root} ({where}): {exc.strerror or exc}", root,
                     hint="set HIL_CACHE_DIR to a writable directory with some free space")


def _cache_disk_errors(build):
    """A cache disk that fills up or turns read-only during a build is the
    cache's problem, said as such (exit 3), not a stray OSError."""
    @functools.wraps(build)
    def guarded(*args, **kwargs):
        try:
            return build(*args, **kwargs)
        except OSError as exc:
            if disk_error(exc) is None:
                raise
            raise _cache_error(cache_root_path(), exc) from exc
    return guarded


def cache_root_path() -> Path:
    """The cache directory's path, without checking it (for messages)."""
    configured = os.environ.get("HIL_CACHE_DIR")
    return Path(configured) if configured else Path(os.path.expanduser("~")) / ".cache" / "hil"


@dataclass(frozen=True)
class BuildRecord:
    platform: str
    elf: ElfInfo
    build_dir: Path
    inputs_hash: str
    compiler: str
    cached: bool

    def as_dict(self) -> dict:
        return {"platform": self.platform, "inputs_hash": self.inputs_hash,
                "compiler": self.compiler, "cached": self.cached, **self.elf.as_dict()}


def require_tool(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise InfraError(f"`{tool}` was not found on PATH",
                         hint=f"install it: apt-get install -y {package}")
    return found


def compiler_version(compiler: str) -> str:
    out = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=False)
    return out.stdout.splitlines()[0] if out.stdout else compiler


def _source_files() -> list[Path]:
    skip = {"host"}
    return sorted(p for p in FIRMWARE_DIR.rglob("*")
                  if p.is_file() and not skip & set(p.relative_to(FIRMWARE_DIR).parts)
                  and p.suffix in {".c", ".cc", ".h", ".cmake", ".in", ".txt", ".S", ".ld"})


def cmake_defines(platform: Platform, extra_defines: dict[str, str]) -> dict[str, str]:
    fw, mem = platform.firmware, platform.memory.regions()
    defines = {
        "HIL_BOARD": fw.board,
        "HIL_PLATFORM": platform.name,
        "HIL_CPU_FLAGS": ";".join(fw.cpu_flags),
        "HIL_UART_BASE": hex(fw.uart_base),
        "HIL_CLOCK_HZ": str(fw.clock_hz),
        "HIL_SEMIHOSTING": "ON" if platform.target.semihosting else "OFF",
        "HIL_STACK_SIZE": hex(fw.stack_bytes),
        "HIL_ARENA_SIZE": str(fw.arena_bytes),
        "HIL_MODEL_CAPACITY": str(fw.model_capacity_bytes),
        # the platform's own definitions (firmware.defines), then the caller's
        "HIL_EXTRA_DEFINES": ";".join(f"{k}={v}" for k, v in
                                      sorted({**(fw.defines or {}), **extra_defines}.items())),
    }
    defines["HIL_KERNELS"] = _kernel_set(platform)
    for region in ("code", "ram", "bulk"):
        defines[f"HIL_{region.upper()}_ORIGIN"] = hex(mem[region].origin)
        defines[f"HIL_{region.upper()}_LENGTH"] = hex(mem[region].length)
    return defines


KERNEL_SETS = ("reference", "dsp", "mve")
#: the instruction-set extension each optimised kernel set needs, and the -mcpu values that have it
#: (a "+nodsp" / "+nomve" suffix takes it away; an -mcpu not listed here is left to the compiler)
_KERNEL_CORES = {
    "dsp": ("DSP extension", ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85")),
    "mve": ("MVE (Helium)", ("cortex-m55", "cortex-m85")),
}
_KNOWN_CPUS = ("cortex-m0", "cortex-m0plus", "cortex-m1", "cortex-m3", "cortex-m23", *_KERNEL_CORES["dsp"][1])


def _kernel_set(platform: Platform) -> str:
    """The engine's int8 kernels: $HIL_KERNELS, else the platform's
    [firmware] kernels, else the portable reference (firmware/engine/engine.cmake).
    A set the platform's core cannot run is refused here, before any build."""
    forced = os.environ.get("HIL_KERNELS")
    chosen = forced or platform.firmware.kernels
    where = "the environment variable HIL_KERNELS" if forced else f"{platform.path}: firmware.kernels"
    if chosen not in KERNEL_SETS:
        raise UsageError(f"{where} is {chosen!r}, not a kernel set",
                         hint=f"use one of: {', '.join(KERNEL_SETS)} (dsp needs a Cortex-M4/M7/M33/M55, mve an M55)")
    if chosen in _KERNEL_CORES:
        feature, cores = _KERNEL_CORES[chosen]
        cpu = next((f.split("=", 1)[1] for f in platform.firmware.cpu_flags if f.startswith("-mcpu=")), "")
        base, _, extensions = cpu.partition("+")
        # GCC: +nodsp also takes MVE away (MVE needs the DSP extension)
        missing = bool(({"nodsp"} | ({"nomve"} if chosen == "mve" else set())) & set(extensions.split("+")))
        known = base in _KNOWN_CPUS or platform.firmware.toolchain != "arm-none-eabi"
        if missing or (known and base not in cores):
            raise UsageError(f"{where} is {chosen!r}, but {platform.name}'s core ({cpu or 'no -mcpu'}) has no {feature}",
                             hint="use kernels = \"reference\" for this platform (or unset HIL_KERNELS)")
    return chosen


#: linker region (link.ld.in) -> (platform memory key, the platform file keys that size what goes in it)
_REGION_KEYS = {
    "CODE": ("code", "memory.code (or make the firmware smaller)"),
    "RAM": ("ram", "memory.ram, firmware.stack_bytes or the engine limits in firmware.defines"),
    "BULK": ("bulk", "memory.bulk, firmware.arena_bytes or firmware.model_capacity_bytes"),
}


def region_overflow(platform: Platform, log: str) -> UsageError | None:
    """The linker's "region `X' overflowed by N bytes" as an error with numbers."""
    found = {m[0]: int(m[1]) for m in re.findall(r"region `(\w+)' overflowed by (\d+) bytes", log)}
    if not found:
        return None
    parts, keys = [], []
    for region, over in found.items():
        key, fix = _REGION_KEYS.get(region, (region.lower(), f"memory.{region.lower()}"))
        regions = platform.memory.regions()
        available = regions[key].length if key in regions else None
        if available is None:
            parts.append(f"region {region} overflowed by {over} bytes")
        else:
            parts.append(f"memory.{key} ({region}) needs {available + over} bytes but has {available} "
                         f"(over by {over})")
        keys.append(fix)
    return UsageError(f"{platform.path}: the firmware does not fit: {'; '.join(parts)}",
                      hint=f"change {'; '.join(keys)} in {platform.path.name}")


@_cache_disk_errors
def build_firmware(platform: Platform, extra_defines: dict[str, str] | None = None,
                   log=None, cmake_vars: dict[str, str] | None = None, extra_inputs: str = "",
                   require: tuple[tuple[str, str], ...] = ()) -> BuildRecord:
    """Configure and build (or reuse) the runner firmware for `platform`.

    `cmake_vars` are further CMake cache variables (the engine: HIL_ENGINE,
    TFLM_DIR, ...), `extra_inputs` a digest of inputs outside firmware/ (a
    TFLM tree) and `require` more (tool, package) pairs that must be on PATH."""
    extra_defines = dict(extra_defines or {})
    for extra_tool, extra_package in require:
        require_tool(extra_tool, extra_package)
    toolchain = platform.firmware.toolchain
    tool, package = TOOLCHAIN_PACKAGES[toolchain]
    compiler = require_tool(tool, package)
    cmake = require_tool("cmake", "cmake")
    version = compiler_version(compiler)
    defines = {**cmake_defines(platform, extra_defines), **(cmake_vars or {})}

    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(str(path.relative_to(FIRMWARE_DIR)).encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps(defines, sort_keys=True).encode())
    digest.update(version.encode())
    digest.update(extra_inputs.encode())
    inputs_hash = digest.hexdigest()[:16]

    build_dir = cache_root() / "firmware" / f"{platform.name}-{inputs_hash}"
    build_dir.mkdir(parents=True, exist_ok=True)
    elf_path = build_dir / "firmware.elf"
    stamp = build_dir / "build.json"
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel runs share one build
        if stamp.exists() and elf_path.exists():
            logger.info("build cache hit: %s for %s (%s)", elf_path, platform.name, inputs_hash)
            return BuildRecord(platform.name, read_elf(elf_path), build_dir, inputs_hash, version, True)
        logger.info("build cache miss: building %s for %s (%s)", elf_path, platform.name, inputs_hash)
        if log:
            log(f"building firmware for {platform.name} ({inputs_hash})")
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        configure = [cmake, "-S", str(FIRMWARE_DIR), "-B", str(build_dir / "cmake"), *generator,
                     f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILES[toolchain]}",
                     "-DCMAKE_BUILD_TYPE=Release",
                     *(f"-D{k}={v}" for k, v in defines.items())]
        for step in (configure, [cmake, "--build", str(build_dir / "cmake")]):
            logger.debug("running %s", " ".join(step))
            proc = subprocess.run(step, capture_output=True, text=True, check=False)
            (build_dir / "build.log").open("a").write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                overflow = region_overflow(platform, proc.stdout + proc.stderr)
                if overflow:
                    raise overflow
                free = shutil.disk_usage(build_dir).free
                if free < (1 << 20):  # CMake and the compiler failed to write, whatever they say
                    raise _cache_error(cache_root_path(), OSError(0, f"No space left on device ({free} bytes "
                                                                     f"free; a build needs a few MB)"))
                raise InfraError(
                    f"firmware build for {platform.name} failed: "
                    f"{first_error(proc.stdout + proc.stderr, [FIRMWARE_DIR.parent]).summary()}",
                    hint=f"full log: {build_dir / 'build.log'}")
        shutil.copy2(build_dir / "cmake" / "firmware.elf", elf_path)
        stamp.write_text(json.dumps({"defines": defines, "compiler": version}, indent=1))
        return BuildRecord(platform.name, read_elf(elf_path), build_dir, inputs_hash, version, False)
