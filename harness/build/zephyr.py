"""Build a Zephyr application with `west build` for a platform.

    west build -b <board> -d <build dir> -p auto|always <app> -- <CMake args>

- the board is the platform file's `zephyr_board` (or --board, or
  hil.toml's firmware.board);
- the toolchain comes through ZEPHYR_TOOLCHAIN_VARIANT: kept when set,
  else the Zephyr SDK when one is installed, else the Debian cross compiler
  the platform uses (`gnuarmemb` + GNUARMEMB_TOOLCHAIN_PATH for
  arm-none-eabi-gcc, `cross-compile` + CROSS_COMPILE for riscv64-unknown-elf);
- one build directory per (application, platform, configuration), and a
  pristine rebuild when the board or the configuration of a directory
  changes (an explicit --build-dir reused for another board);
- artifacts: zephyr/zephyr.elf, zephyr/.config, the map, and the linker's
  RAM/ROM table.

Zephyr itself is found in this order: --zephyr-base / firmware.zephyr_base,
$ZEPHYR_BASE, then the west workspace around the application or the
current directory (`west topdir`, its `zephyr.base` setting). When none
has Zephyr, the error lists what was looked at and how to make a
workspace.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InfraError, UsageError
from ..platforms import Platform
from .artifact import read_elf
from .diagnostics import memory_usage
from .project import BuildError, BuildLock, BuildSpec, ProjectBuild, fail_build, hash_of, project_dir, run_logged

#: Kconfig values recorded in the build record
logger = logging.getLogger(__name__)  # `log` is the stage callback of build_zephyr()
RECORDED_CONFIG = ("CONFIG_BOARD", "CONFIG_BOARD_TARGET", "CONFIG_SOC", "CONFIG_HIL", "CONFIG_HIL_ENGINE_BUILTIN",
                   "CONFIG_SYS_CLOCK_HW_CYCLES_PER_SEC", "CONFIG_SEMIHOST")

WORKSPACE_HOWTO = (
    "make a Zephyr workspace (https://docs.zephyrproject.org/latest/develop/getting_started/):\n"
    "      pip install west\n"
    "      west init ~/zephyrproject && cd ~/zephyrproject && west update\n"
    "      west zephyr-export && pip install -r zephyr/scripts/requirements.txt\n"
    "    then run hil build inside it, or export ZEPHYR_BASE=~/zephyrproject/zephyr, "
    "or pass --zephyr-base")


@dataclass(frozen=True)
class Workspace:
    zephyr_base: Path
    topdir: Path | None
    found_by: str
    version: str | None
    looked: tuple[str, ...] = ()


@dataclass(frozen=True)
class Toolchain:
    variant: str
    env: dict[str, str] = field(default_factory=dict)
    found_by: str = ""


def west_executable() -> str | None:
    """`west` on PATH, else the one installed beside this Python (a virtual
    environment's bin/ that is not on PATH)."""
    found = shutil.which("west")
    if found:
        return found
    beside = Path(sys.executable).parent / "west"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def find_west() -> str:
    west = west_executable()
    if not west:
        raise InfraError("`west` (Zephyr's meta-tool) was not found on PATH",
                         hint="pip install west (it comes with hil's test extra: pip install -e '.[test]')")
    return west


def zephyr_version(base: Path) -> str | None:
    try:
        values = dict(re.findall(r"^(\w+)\s*=\s*(\S*)", (base / "VERSION").read_text(), re.MULTILINE))
    except OSError:
        return None
    parts = [values.get(k, "") for k in ("VERSION_MAJOR", "VERSION_MINOR", "PATCHLEVEL")]
    version = ".".join(p for p in parts if p)
    if values.get("EXTRAVERSION"):
        version += f"-{values['EXTRAVERSION']}"
    return version or None


def _is_zephyr(path: Path) -> str | None:
    """None when `path` is a Zephyr tree west can build with, else why not."""
    if not path.is_dir():
        return "does not exist"
    if not (path / "VERSION").is_file():
        return "has no VERSION file: not a Zephyr tree"
    if not (path / "scripts" / "west-commands.yml").is_file():
        return "has no scripts/west-commands.yml (the `west build` command): not a Zephyr tree"
    return None


def _west_topdir(west: str, start: Path) -> Path | None:
    proc = subprocess.run([west, "topdir"], cwd=start, capture_output=True, text=True, check=False,
                          env={k: v for k, v in os.environ.items() if k != "ZEPHYR_BASE"})
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    return Path(proc.stdout.strip())


def _west_config(west: str, topdir: Path, key: str) -> str | None:
    proc = subprocess.run([west, "config", key], cwd=topdir, capture_output=True, text=True, check=False)
    value = proc.stdout.strip()
    return value if proc.returncode == 0 and value else None


def find_workspace(spec: BuildSpec, app: Path, west: str) -> Workspace:
    looked: list[str] = []

    def accept(path: Path, found_by: str, topdir: Path | None) -> Workspace | None:
        problem = _is_zephyr(path)
        looked.append(f"{found_by}: {path}" + (f" ({problem})" if problem else ""))
        if problem:
            return None
        return Workspace(path.resolve(), topdir, found_by, zephyr_version(path), tuple(looked))

    if spec.zephyr_base is not None:
        ws = accept(spec.zephyr_base, "--zephyr-base / firmware.zephyr_base", _west_topdir(west, spec.zephyr_base))
        if ws:
            return ws
        raise UsageError(f"{spec.zephyr_base} is not a Zephyr tree: {looked[-1]}",
                         hint="pass the zephyr/ directory of a west workspace")
    env_base = os.environ.get("ZEPHYR_BASE")
    if env_base:
        ws = accept(Path(env_base), "$ZEPHYR_BASE", _west_topdir(west, Path(env_base)))
        if ws:
            return ws
    else:
        looked.append("$ZEPHYR_BASE: not set")
    seen = set()
    for start, label in ((app, "the application's directory"), (Path.cwd(), "the current directory")):
        topdir = _west_topdir(west, start)
        if topdir is None:
            looked.append(f"west topdir from {label} ({start}): not inside a west workspace (no .west/ above it)")
            continue
        if topdir in seen:
            continue
        seen.add(topdir)
        configured = _west_config(west, topdir, "zephyr.base")
        base = (topdir / configured) if configured else topdir / "zephyr"
        ws = accept(base, f"west workspace {topdir} (from {label}), "
                          + ("zephyr.base = " + configured if configured else "its zephyr/ directory"), topdir)
        if ws:
            return ws
    raise InfraError(f"no Zephyr workspace found for {app}; looked at:\n    - " + "\n    - ".join(looked),
                     hint=WORKSPACE_HOWTO)


def _find_sdk() -> Path | None:
    candidates = []
    if os.environ.get("ZEPHYR_SDK_INSTALL_DIR"):
        candidates.append(os.environ["ZEPHYR_SDK_INSTALL_DIR"])
    for pattern in ("~/zephyr-sdk-*", "~/.local/zephyr-sdk-*", "~/.local/opt/zephyr-sdk-*", "~/bin/zephyr-sdk-*",
                    "/opt/zephyr-sdk-*", "/usr/zephyr-sdk-*", "/usr/local/zephyr-sdk-*", "/opt/toolchains/zephyr-sdk-*"):
        candidates += sorted(glob.glob(os.path.expanduser(pattern)), reverse=True)
    for c in candidates:
        if (Path(c) / "sdk_version").is_file():
            return Path(c)
    return None


def choose_toolchain(platform: Platform, env: dict[str, str] | None = None) -> Toolchain:
    """ZEPHYR_TOOLCHAIN_VARIANT and its variables for building `platform`."""
    env = dict(os.environ if env is None else env)
    arch_tool = platform.firmware.toolchain
    variant = env.get("ZEPHYR_TOOLCHAIN_VARIANT")
    if variant:
        extra: dict[str, str] = {}
        if variant == "gnuarmemb" and not env.get("GNUARMEMB_TOOLCHAIN_PATH"):
            gcc = shutil.which("arm-none-eabi-gcc")
            if not gcc:
                raise InfraError("ZEPHYR_TOOLCHAIN_VARIANT=gnuarmemb but arm-none-eabi-gcc is not on PATH",
                                 hint="apt-get install -y gcc-arm-none-eabi, or set GNUARMEMB_TOOLCHAIN_PATH")
            extra["GNUARMEMB_TOOLCHAIN_PATH"] = str(Path(gcc).resolve().parent.parent)
        return Toolchain(variant, extra, "$ZEPHYR_TOOLCHAIN_VARIANT")
    sdk = _find_sdk()
    if sdk:
        return Toolchain("zephyr", {"ZEPHYR_SDK_INSTALL_DIR": str(sdk)}, f"Zephyr SDK at {sdk}")
    gcc = shutil.which(f"{arch_tool}-gcc")
    if gcc and arch_tool == "arm-none-eabi":
        root = Path(gcc).resolve().parent.parent
        return Toolchain("gnuarmemb", {"GNUARMEMB_TOOLCHAIN_PATH": str(root)}, f"{gcc} (GNU Arm Embedded layout)")
    if gcc:
        prefix = str(Path(gcc).parent / f"{arch_tool}-")
        return Toolchain("cross-compile", {"CROSS_COMPILE": prefix}, f"{gcc} (CROSS_COMPILE)")
    package = {"arm-none-eabi": "gcc-arm-none-eabi libnewlib-arm-none-eabi",
               "riscv64-unknown-elf": "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf"}.get(arch_tool, arch_tool)
    raise InfraError(f"no toolchain for Zephyr on {platform.name}: ZEPHYR_TOOLCHAIN_VARIANT is not set, no "
                     f"Zephyr SDK was found (ZEPHYR_SDK_INSTALL_DIR, ~/zephyr-sdk-*, /opt/zephyr-sdk-*) and "
                     f"{arch_tool}-gcc is not on PATH",
                     hint=f"install the Zephyr SDK, or apt-get install -y {package}")


def zephyr_board(spec: BuildSpec, platform: Platform) -> str:
    board = (spec.board or spec.boards.get(platform.name) or platform.firmware.zephyr_board
             or platform.board.zephyr_board)
    if not board:
        raise UsageError(f"platform {platform.name} names no Zephyr board",
                         hint=f"pass --board, or set zephyr_board under [firmware] in {platform.path}")
    return str(board)


def read_kconfig(path: Path) -> dict[str, str]:
    values = {}
    try:
        for line in path.read_text(errors="replace").splitlines():
            m = re.match(r"^(CONFIG_\w+)=(.*)$", line)
            if m:
                values[m[1]] = m[2].strip('"')
    except OSError:
        pass
    return values


def west_command(west: str, board: str, build_dir: Path, app: Path, pristine: str, cmake_args: list[str]) -> list[str]:
    cmd = [west, "build", "-b", board, "-d", str(build_dir), "-p", pristine, str(app)]
    return cmd + (["--", *cmake_args] if cmake_args else [])


def cmake_args_for(spec: BuildSpec, platform: Platform) -> list[str]:
    """The CMake arguments after `--`: hil's platform name for the runner
    app (and the module), extra Kconfig fragments, overlays, CONFIG_ values,
    the caller's own."""
    args = [f"-DHIL_PLATFORM={platform.name}"]
    if spec.conf_files:
        args.append("-DEXTRA_CONF_FILE=" + ";".join(str(p) for p in spec.conf_files))
    if spec.overlays:
        args.append("-DEXTRA_DTC_OVERLAY_FILE=" + ";".join(str(p) for p in spec.overlays))
    args += [f"-D{k if k.startswith('CONFIG_') else 'CONFIG_' + k}={v}" for k, v in sorted(spec.kconfig.items())]
    if spec.defines:
        args.append("-DHIL_EXTRA_DEFINES=" + ";".join(f"{k}={v}" for k, v in sorted(spec.defines.items())))
    return args + list(spec.cmake_args)


def build_zephyr(spec: BuildSpec, platform: Platform, log=None, echo=None) -> ProjectBuild:
    app = spec.source
    if app is None or not (app / "CMakeLists.txt").is_file():
        raise UsageError(f"{app}: no CMakeLists.txt there: not a Zephyr application",
                         hint="pass the application's directory (CMakeLists.txt + prj.conf)")
    board = zephyr_board(spec, platform)
    west = find_west()
    ws = find_workspace(spec, app, west)
    toolchain = choose_toolchain(platform)
    cmake_args = cmake_args_for(spec, platform)
    config = {"board": board, "toolchain": toolchain.variant, "toolchain_env": toolchain.env,
              "zephyr_base": str(ws.zephyr_base), "cmake_args": cmake_args}
    config_hash = hash_of(config)
    build_dir = (spec.build_dir or project_dir("zephyr", app) / f"{platform.name}-{config_hash}").resolve()
    build_log = build_dir / "hil-build.log"
    stamp_path = build_dir / "hil-build.json"
    with BuildLock(build_dir):
        previous = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        changed = bool(previous) and previous.get("config") != config
        pristine = "always" if spec.pristine or changed else "auto"
        env = {**os.environ, "ZEPHYR_BASE": str(ws.zephyr_base), "ZEPHYR_TOOLCHAIN_VARIANT": toolchain.variant,
               **toolchain.env}
        cmd = west_command(west, board, build_dir, app, pristine, cmake_args)
        elf_path = build_dir / "zephyr" / "zephyr.elf"
        before = _mtime(elf_path)
        if log:
            why = " (pristine: the board or configuration changed)" if changed else ""
            log(f"west build {app.name} for {platform.name}: board {board}, toolchain {toolchain.variant}, "
                f"Zephyr {ws.version or '?'} at {ws.zephyr_base}{why}")
        build_log.write_text(f"# toolchain: ZEPHYR_TOOLCHAIN_VARIANT={toolchain.variant} ({toolchain.found_by}) "
                             f"{' '.join(f'{k}={v}' for k, v in toolchain.env.items())}\n"
                             f"# zephyr: {ws.zephyr_base} ({ws.found_by})\n")
        proc = run_logged(cmd, build_log, cwd=ws.topdir or app, env=env, echo=echo)
        if proc.returncode != 0:
            if re.search(r"unknown command \W?build", proc.stdout) or "no such command" in proc.stdout.lower():
                raise InfraError(f"`west build` is not available in the workspace at {ws.topdir or ws.zephyr_base}",
                                 hint="its manifest must import zephyr (west update), " + WORKSPACE_HOWTO)
            stamp_path.unlink(missing_ok=True)
            fail_build(f"west build of {app.name} for {platform.name} (board {board})", proc.stdout, build_log,
                       [app, ws.zephyr_base], platform)
        if not elf_path.is_file():
            raise BuildError(f"west build of {app.name} succeeded but made no {elf_path}",
                             hint=f"full log: {build_log}")
        cached = before is not None and before == _mtime(elf_path)
        logger.info("%s: %s %s", app.name, "up to date (west build changed nothing)" if cached else "built", elf_path)
        memory = memory_usage(proc.stdout) or (previous.get("memory") if cached else None) or {}
        kconfig = read_kconfig(build_dir / "zephyr" / ".config")
        artifacts = {"elf": str(elf_path)}
        for name, path in (("config", build_dir / "zephyr" / ".config"), ("map", build_dir / "zephyr" / "zephyr.map"),
                           ("hex", build_dir / "zephyr" / "zephyr.hex"), ("bin", build_dir / "zephyr" / "zephyr.bin")):
            if path.exists():
                artifacts[name] = str(path)
        rom = sum(m["used"] for r, m in memory.items() if r.upper() in ("FLASH", "ROM"))
        ram = sum(m["used"] for r, m in memory.items() if r.upper() in ("RAM", "SRAM"))
        stamp_path.write_text(json.dumps({"config": config, "memory": memory, "time": time.time()}, indent=1))
        return ProjectBuild(
            "zephyr", platform.name, read_elf(elf_path), build_dir, config_hash, cached,
            compiler=toolchain.variant, source=app, board=board, memory=memory, artifacts=artifacts,
            config={k: kconfig[k] for k in RECORDED_CONFIG if k in kconfig}, command=[cmd], log=build_log,
            extra={"zephyr": {"base": str(ws.zephyr_base), "version": ws.version, "found_by": ws.found_by,
                              "toolchain": toolchain.variant, "toolchain_found_by": toolchain.found_by,
                              "pristine": pristine, "rom_bytes": rom or None, "ram_bytes": ram or None}})


def _mtime(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None
