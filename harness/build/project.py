"""Build a user's firmware: what to build (`BuildSpec`, from `hil build`
flags or hil.toml's [firmware] table), for a platform, into an ELF that
`hil run --firmware`, `hil console` and `hil test` take unchanged.

Three kinds:

- ``builtin``: hil's own runner firmware (harness/build/cmake.py), with the
  built-in engine or TFLM (harness/build/tflm.py);
- ``cmake``: any CMake project, configured with the platform's toolchain
  file and hil's platform variables (HIL_BOARD, HIL_CPU_FLAGS, memory map,
  ... and ``hil_DIR`` so ``find_package(hil)`` finds the C API);
- ``zephyr``: a Zephyr application through ``west build`` (zephyr.py).

Build directories are per (project, platform, configuration hash) under
the cache (``$HIL_CACHE_DIR``, default ~/.cache/hil), so switching
platforms or options never reconfigures in place, and rebuilding an
unchanged project is Ninja's no-op.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import resources
from ..errors import EXIT_FAILED, HilError, UsageError
from ..platforms import Platform
from .artifact import ElfInfo, read_elf
from .cmake import (FIRMWARE_DIR, TOOLCHAIN_FILES, TOOLCHAIN_PACKAGES, cmake_defines, compiler_version,
                    region_overflow, require_tool, cache_root)
from .diagnostics import Diagnostic, first_error, memory_usage

logger = logging.getLogger(__name__)  # `log` is the stage callback of build()
KINDS = ("builtin", "cmake", "zephyr")
ENGINES = ("builtin", "tflm")


class BuildError(HilError):
    """The firmware under test does not build (exit 1): its first error,
    with file and line, is in the message; the full log is named."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None, diagnostic: Diagnostic | None = None,
                 log: Path | None = None) -> None:
        super().__init__(message, hint=hint)
        self.diagnostic = diagnostic
        self.log = log


@dataclass(frozen=True)
class BuildSpec:
    """What to build. Paths are absolute (resolved by the caller)."""
    kind: str = "builtin"
    source: Path | None = None             # cmake / zephyr: the application's directory
    target: str | None = None              # cmake: the executable target
    artifact: str | None = None            # cmake: the ELF, relative to the build directory
    cmake_args: tuple[str, ...] = ()       # extra CMake arguments (-DNAME=VALUE, ...)
    defines: dict[str, str] = field(default_factory=dict)  # preprocessor definitions (HIL_EXTRA_DEFINES)
    toolchain_file: Path | None = None     # cmake: instead of the platform's
    build_dir: Path | None = None          # instead of the cache's per-(platform, config) directory
    # zephyr
    board: str | None = None               # instead of the platform file's zephyr_board
    boards: dict[str, str] = field(default_factory=dict)  # per platform name, instead of zephyr_board
    conf_files: tuple[Path, ...] = ()      # EXTRA_CONF_FILE (added to prj.conf)
    overlays: tuple[Path, ...] = ()        # EXTRA_DTC_OVERLAY_FILE
    kconfig: dict[str, str] = field(default_factory=dict)  # CONFIG_X=value on the command line
    pristine: bool = False                 # always rebuild from scratch
    zephyr_base: Path | None = None
    # builtin
    engine: str = "builtin"
    tflm_dir: Path | None = None
    models: tuple[Path, ...] = ()          # engine tflm: register only these models' operators
    cmsis_nn: bool = False

    def describe(self) -> str:
        if self.kind == "builtin":
            return f"hil runner ({self.engine} engine)"
        return f"{self.kind} app {self.source}"


@dataclass
class ProjectBuild:
    """The outcome of a build: the ELF and what is known about it."""
    kind: str
    platform: str
    elf: ElfInfo
    build_dir: Path
    config_hash: str
    cached: bool
    compiler: str = ""
    source: Path | None = None
    target: str | None = None
    board: str | None = None               # zephyr
    engine: str | None = None              # builtin
    memory: dict[str, dict[str, int]] = field(default_factory=dict)  # the linker's region table
    artifacts: dict[str, str] = field(default_factory=dict)           # name -> path (elf, map, .config, ...)
    config: dict[str, str] = field(default_factory=dict)              # zephyr: selected Kconfig values
    command: list[list[str]] = field(default_factory=list)
    log: Path | None = None
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "platform": self.platform, "inputs_hash": self.config_hash,
                "cached": self.cached, "compiler": self.compiler,
                "source": str(self.source) if self.source else None, "target": self.target,
                "board": self.board, "engine": self.engine, "build_dir": str(self.build_dir),
                "memory": self.memory, "artifacts": self.artifacts, "config": self.config,
                "command": self.command, "log": str(self.log) if self.log else None,
                **self.extra, **self.elf.as_dict()}


# -- shared helpers --------------------------------------------------------------

def hash_of(*parts) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def project_dir(kind: str, source: Path) -> Path:
    """The cache directory of one application (its builds are below it)."""
    return cache_root() / kind / f"{source.name}-{hash_of(str(source.resolve()))[:8]}"


class BuildLock:
    """One build at a time per build directory (parallel `hil test` jobs)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / ".hil-lock"

    def __enter__(self):
        self.fh = open(self.path, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        self.fh.close()


def run_logged(cmd: list[str], log_path: Path, *, cwd: Path | None = None, env: dict | None = None,
               echo=None) -> subprocess.CompletedProcess:
    """Run a build step, appending its command line and output to the log."""
    with open(log_path, "a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        logger.debug("running %s (output in %s)", " ".join(cmd), log_path)
        log.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, errors="replace", check=False)
        log.write(proc.stdout)
        log.write(f"[exit {proc.returncode}]\n")
    if echo and proc.stdout:
        for line in proc.stdout.splitlines():
            echo(line)
    return proc


def fail_build(what: str, output: str, log_path: Path, roots: list[Path], platform: Platform | None = None):
    """Raise the error for a failed build step: memory overflow (a usage
    error naming the platform keys) or the first compiler error."""
    if platform is not None:
        overflow = region_overflow(platform, output)
        if overflow:
            raise overflow
    diag = first_error(output, roots)
    message = f"{what} failed: {diag.summary()}"
    if diag.source_line:
        message += f"\n    {diag.source_line}"
    raise BuildError(message, hint=f"full log: {log_path}", diagnostic=diag, log=log_path)


# -- CMake projects ----------------------------------------------------------------

def _file_api_query(build_dir: Path) -> None:
    query = build_dir / ".cmake" / "api" / "v1" / "query" / "client-hil"
    query.mkdir(parents=True, exist_ok=True)
    (query / "query.json").write_text(json.dumps({"requests": [{"kind": "codemodel", "version": 2}]}))


def executables(build_dir: Path) -> dict[str, list[Path]]:
    """Executable targets of a configured build (CMake file API): name -> artifacts."""
    reply = build_dir / ".cmake" / "api" / "v1" / "reply"
    indexes = sorted(reply.glob("index-*.json"))
    if not indexes:
        return {}
    index = json.loads(indexes[-1].read_text())
    found: dict[str, list[Path]] = {}
    for response in index.get("reply", {}).get("client-hil", {}).get("query.json", {}).get("responses", []):
        if response.get("kind") != "codemodel":
            continue
        model = json.loads((reply / response["jsonFile"]).read_text())
        for config in model.get("configurations", [])[:1]:
            for ref in config.get("targets", []):
                target = json.loads((reply / ref["jsonFile"]).read_text())
                if target.get("type") == "EXECUTABLE":
                    found[target["name"]] = [build_dir / a["path"] for a in target.get("artifacts", [])]
    return found


def toolchain_for(platform: Platform) -> tuple[str, Path, str, str]:
    """(toolchain name, toolchain file, compiler, Debian package) of a platform."""
    name = platform.firmware.toolchain
    if name not in TOOLCHAIN_FILES:
        raise UsageError(f"{platform.path}: firmware.toolchain = {name!r} is not one hil knows",
                         hint=f"use one of {', '.join(TOOLCHAIN_FILES)}, or pass --toolchain-file")
    tool, package = TOOLCHAIN_PACKAGES[name]
    return name, TOOLCHAIN_FILES[name], tool, package


def platform_cmake_vars(platform: Platform, defines: dict[str, str]) -> dict[str, str]:
    """What a CMake project is configured with for a platform."""
    return {**cmake_defines(platform, defines), "HIL_ROOT": str(FIRMWARE_DIR.parent),
            "hil_DIR": str(FIRMWARE_DIR / "api")}


def build_cmake(spec: BuildSpec, platform: Platform, log=None) -> ProjectBuild:
    source = spec.source
    if source is None or not (source / "CMakeLists.txt").is_file():
        raise UsageError(f"{source}: no CMakeLists.txt there", hint="pass the directory of your CMake project")
    _, default_toolchain, tool, package = toolchain_for(platform)
    toolchain = spec.toolchain_file or default_toolchain
    if not toolchain.is_file():
        raise UsageError(f"toolchain file {toolchain} does not exist", hint="fix --toolchain-file / firmware.toolchain_file")
    compiler = require_tool(tool, package) if toolchain == default_toolchain else tool
    cmake = require_tool("cmake", "cmake")
    version = compiler_version(compiler) if shutil.which(compiler) else compiler
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    variables = platform_cmake_vars(platform, spec.defines)
    config_hash = hash_of(variables, str(toolchain), toolchain.read_text(), list(spec.cmake_args), generator,
                          version)
    build_dir = spec.build_dir or project_dir("cmake", source) / f"{platform.name}-{config_hash}"
    build_log = build_dir / "build.log"
    roots = [source, FIRMWARE_DIR.parent]
    with BuildLock(build_dir):
        stamp_path = build_dir / "hil-build.json"
        previous = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
        build_log.write_text("")
        configure = [cmake, "-S", str(source), "-B", str(build_dir), *generator,
                     f"-DCMAKE_TOOLCHAIN_FILE={toolchain}", "-DCMAKE_BUILD_TYPE=Release",
                     "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
                     *(f"-D{k}={v}" for k, v in variables.items()), *spec.cmake_args]
        if (previous.get("config_hash") != config_hash or not (build_dir / "CMakeCache.txt").exists()
                or not executables(build_dir)):
            if previous and previous.get("config_hash") != config_hash and spec.build_dir:
                # an explicit --build-dir with another configuration: start clean
                shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)
                (build_dir / "CMakeCache.txt").unlink(missing_ok=True)
            _file_api_query(build_dir)
            if log:
                log(f"configuring {source.name} for {platform.name} ({config_hash})")
            stamp_path.unlink(missing_ok=True)
            proc = run_logged(configure, build_log)
            if proc.returncode != 0:
                fail_build(f"configuring {source.name} for {platform.name}", proc.stdout, build_log, roots)
            previous = {"config_hash": config_hash, "command": [configure]}
            stamp_path.write_text(json.dumps(previous, indent=1))
        targets = executables(build_dir)
        target = _choose_target(spec, targets, source)
        elf_path = _artifact(spec, build_dir, targets, target)
        before = _mtime(elf_path)
        build = [cmake, "--build", str(build_dir)] + (["--target", target] if target else [])
        if log:
            log(f"building {source.name}" + (f" target {target}" if target else "") + f" for {platform.name}")
        proc = run_logged(build, build_log)
        if proc.returncode != 0:
            fail_build(f"building {source.name} for {platform.name}", proc.stdout, build_log, roots, platform)
        if not elf_path.is_file():
            raise BuildError(f"the build of {source.name} succeeded but made no {elf_path}",
                             hint="name the ELF with --artifact (relative to the build directory) or "
                                  "firmware.artifact in hil.toml")
        cached = before is not None and before == _mtime(elf_path)
        logger.info("%s: %s %s", source.name, "up to date (the build changed nothing)" if cached else "built", elf_path)
        memory = memory_usage(proc.stdout) or (previous.get("memory") if cached else {}) or {}
        artifacts = {"elf": str(elf_path)}
        for extra in (elf_path.with_name(elf_path.name + ".map"), elf_path.with_suffix(".map"),
                      build_dir / "compile_commands.json"):
            if extra.exists():
                artifacts["map" if extra.suffix == ".map" else extra.stem] = str(extra)
        record = ProjectBuild("cmake", platform.name, read_elf(elf_path), build_dir, config_hash, cached,
                              compiler=version, source=source, target=target, memory=memory,
                              artifacts=artifacts, command=[configure, build],
                              log=build_log)
        stamp_path.write_text(json.dumps({"config_hash": config_hash, "memory": memory,
                                          "command": [configure], "time": time.time()}, indent=1))
        return record


def _mtime(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


def _choose_target(spec: BuildSpec, targets: dict[str, list[Path]], source: Path) -> str | None:
    if spec.artifact and not spec.target:
        return None  # build everything, take the named file
    if spec.target:
        if targets and spec.target not in targets:
            raise UsageError(f"{source}: no executable target {spec.target!r}",
                             hint=f"executables: {', '.join(sorted(targets)) or 'none'}")
        return spec.target
    if len(targets) == 1:
        return next(iter(targets))
    if not targets:
        raise UsageError(f"{source}: the project defines no executable target",
                         hint="add_executable(...) in its CMakeLists.txt, or name the ELF with --artifact")
    raise UsageError(f"{source}: {len(targets)} executables ({', '.join(sorted(targets))}); which is the firmware?",
                     hint="choose one with --target NAME (firmware.target in hil.toml)")


def _artifact(spec: BuildSpec, build_dir: Path, targets: dict[str, list[Path]], target: str | None) -> Path:
    if spec.artifact:
        return (build_dir / spec.artifact).resolve()
    paths = targets.get(target or "", [])
    if not paths:
        raise BuildError(f"CMake reports no artifact for target {target}",
                         hint="name the ELF with --artifact (relative to the build directory)")
    return paths[0]


# -- the entry point -------------------------------------------------------------------

def detect_kind(source: Path) -> str:
    """`zephyr` for a Zephyr application (prj.conf, or a CMakeLists.txt that
    finds the Zephyr package), `cmake` for another CMake project."""
    cmakelists = source / "CMakeLists.txt"
    if not cmakelists.is_file():
        raise UsageError(f"{source}: no CMakeLists.txt, so not a CMake project or Zephyr application",
                         hint="pass the application's directory (the one with CMakeLists.txt)")
    text = cmakelists.read_text(errors="replace")
    if (source / "prj.conf").is_file() or "find_package(Zephyr" in text.replace(" ", ""):
        return "zephyr"
    return "cmake"


def build(spec: BuildSpec, platform: Platform, log=None, echo=None) -> ProjectBuild:
    """Build `spec` for `platform` (or reuse the cached build)."""
    if spec.kind == "cmake":
        return build_cmake(spec, platform, log)
    if spec.kind == "zephyr":
        from .zephyr import build_zephyr

        return build_zephyr(spec, platform, log=log, echo=echo)
    if spec.kind == "builtin":
        return build_builtin(spec, platform, log)
    raise UsageError(f"unknown firmware kind {spec.kind!r}", hint=f"use one of {', '.join(KINDS)}")


def build_builtin(spec: BuildSpec, platform: Platform, log=None) -> ProjectBuild:
    from .cmake import build_firmware

    resources.require_board_layer(platform.name, platform.firmware.board,
                                  hint="build your own firmware for this board (hil build APP_DIR), or add the board "
                                       "layer")
    cmake_vars: dict[str, str] = {}
    extra_inputs = ""
    require: tuple = ()
    extra: dict = {}
    engine = spec.engine
    if spec.engine == "tflm":
        from .tflm import prepare_tflm

        tflm = prepare_tflm(spec, platform, log)
        cmake_vars, extra_inputs, require = tflm.cmake_vars, tflm.digest, tflm.require
        extra = {"tflm": tflm.describe()}
        engine = tflm.engine  # as the device names itself: tflm-reference / tflm-cmsis-nn
    elif spec.engine != "builtin":
        raise UsageError(f"unknown engine {spec.engine!r}", hint=f"use one of {', '.join(ENGINES)}")
    record = build_firmware(platform, spec.defines, log=log, cmake_vars=cmake_vars, extra_inputs=extra_inputs,
                            require=require)
    build_log = record.build_dir / "build.log"
    text = build_log.read_text(errors="replace") if build_log.exists() else ""
    map_file = record.build_dir / "cmake" / "firmware.map"
    artifacts = {"elf": str(record.elf.path)}
    if map_file.exists():
        artifacts["map"] = str(map_file)
    return ProjectBuild("builtin", platform.name, record.elf, record.build_dir, record.inputs_hash, record.cached,
                        compiler=record.compiler, engine=engine, memory=memory_usage(text),
                        artifacts=artifacts, log=build_log if build_log.exists() else None, extra=extra)


def env_with(**values: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({k: v for k, v in values.items() if v is not None})
    return env


_suite_lock = threading.Lock()
_suite_builds: dict[tuple, Path] = {}


def build_for_suite(config, platform_name: str, log=None) -> Path:
    """The ELF of hil.toml's [firmware] build for one platform, built once
    per `hil test` run (jobs on the same platform share it)."""
    from ..platforms import load_platform

    spec: BuildSpec = config.build
    if spec.engine == "tflm" and not spec.models:
        spec = BuildSpec(**{**vars(spec), "models": tuple(m.path for m in config.models)})
    key = (str(config.path), platform_name)
    with _suite_lock:
        if key not in _suite_builds:
            _suite_builds[key] = build(spec, load_platform(platform_name), log=log).elf.path
        return _suite_builds[key]
