"""hil's runner on TensorFlow Lite Micro (`hil build --engine tflm`).

The runner compiles against the user's TFLM source tree (TFLM_DIR: a tree
made by TFLM's create_tflm_tree.py, the way TFLM exports itself to other
build systems; see docs/build.md) with an op resolver generated here from
the models' operators: a `tflite::MicroMutableOpResolver<N>` registering
exactly those operators, checked against the Add* methods the tree's
micro_mutable_op_resolver.h really has.

TFLM itself is compiled once per (tree, core flags, compiler) into the
cache (`build_library`); a build that fails is remembered beside it (the
same key, its message and log), so the next model fails at once with the
same error instead of recompiling for minutes; `--rebuild` or a changed
tree tries again. Trees exported with TARGET=cortex_m_generic get the
PROJECT_GENERATION define their own Makefile passes (its micro_time.cc
then needs no CMSIS device header: hil times operators with its own
counter), and MVE cores get -fno-if-conversion2 (binutils 2.40 rejects
the conditional vcvt that if-conversion makes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import HilError, InfraError, UsageError
from ..platforms import Platform
from .cmake import FIRMWARE_DIR, compiler_version, require_tool, cache_root

log = logging.getLogger(__name__)

_ADD_METHOD = re.compile(r"TfLiteStatus\s+(Add\w+)\s*\(")


@dataclass(frozen=True)
class TflmPrep:
    tree: Path
    resolver: Path
    operators: tuple[str, ...]        # the Add* methods registered
    cmsis_nn: bool
    digest: str
    cmake_vars: dict
    require: tuple

    @property
    def engine(self) -> str:
        """What the device calls itself in HELLO (hil_tflm.cc)."""
        return engine_name(self.cmsis_nn)

    def describe(self) -> dict:
        return {"tree": str(self.tree), "resolver": str(self.resolver), "operators": list(self.operators),
                "cmsis_nn": self.cmsis_nn}


def engine_name(cmsis_nn: bool) -> str:
    return "tflm-cmsis-nn" if cmsis_nn else "tflm-reference"


#: C++ library packages per toolchain (TFLM needs <vector>, <new>, <cstdint>)
CXX_LIBRARY_PACKAGES = {"arm-none-eabi": "libstdc++-arm-none-eabi-newlib"}
_MISSING_STD_HEADER = re.compile(r"fatal error: ([a-z_]+): No such file or directory")


def add_method(op_name: str) -> str:
    """The MicroMutableOpResolver method that registers an operator, by
    TFLM's own naming rule (gen_micro_mutable_op_resolver): CONV_2D ->
    AddConv2D, TFLite_Detection_PostProcess -> AddDetectionPostprocess."""
    word = op_name.replace("TFLite", "")
    out = ""
    for part in re.split(r"[_-]", word):
        if len(part) > 1 and part[0].isalpha():
            out += part[0].upper() + part[1:].lower()
        else:
            out += part.upper()
    out = out.replace("Lstm", "LSTM").replace("BatchMatmul", "BatchMatMul")
    return "Add" + out


def available_methods(tree: Path) -> set[str]:
    """Add* methods of the tree's MicroMutableOpResolver callable without
    arguments (a registration with a default, or none)."""
    header = tree / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h"
    try:
        text = header.read_text(errors="replace")
    except OSError as exc:
        raise UsageError(f"{tree}: no {header.relative_to(tree)} ({exc.strerror})",
                         hint="--tflm-dir must be a TFLM source tree (docs/build.md, \"The TFLM engine\")") from exc
    found = set()
    for m in _ADD_METHOD.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        params = text[m.end():i - 1].strip()
        # every parameter has a default (or there are none)
        if not params or all("=" in p for p in _split_params(params)):
            found.add(m[1])
    return found


def _split_params(params: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in params:
        if ch in "(<":
            depth += 1
        elif ch in ")>":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current]


def model_operators(path: Path) -> list[str]:
    """Every operator a model uses, in all its subgraphs: builtin names
    (CONV_2D) and custom codes."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    from ..model.tflite import op_name

    try:
        model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    except Exception as exc:  # noqa: BLE001 - flatbuffers raises anything on bad input
        raise UsageError(f"{path}: not a readable .tflite model ({exc})", hint="pass a .tflite file") from exc
    names = []
    for code in model.operatorCodes or []:
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if code.customCode:
            custom = code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode)
            names.append(custom)
        else:
            names.append(op_name(builtin))
    return sorted(set(names))


def all_builtin_operators() -> list[str]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    return sorted(k for k in vars(schema.BuiltinOperator) if not k.startswith("_") and k not in ("CUSTOM", "DELEGATE"))


def resolver_source(methods: list[str], note: str) -> str:
    lines = "\n".join(f"    resolver->{m}();" for m in methods)
    resolver_type = f"tflite::MicroMutableOpResolver<{max(len(methods), 1)}>"
    return f"""// Generated by `hil build --engine tflm` ({note}). Do not edit.
#include <new>

#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

#include "hil_tflm.h"

const tflite::MicroOpResolver &hil_tflm_op_resolver()
{{
  // constructed in place and never destroyed: no exit-time destructor
  // (bare-metal images link without crtbegin's __dso_handle)
  alignas({resolver_type}) static unsigned char storage[sizeof({resolver_type})];
  static {resolver_type} *resolver = nullptr;
  if (resolver == nullptr) {{
    resolver = new (storage) {resolver_type}();
{lines}
  }}
  return *resolver;
}}
"""


def _tree_digest(tree: Path) -> str:
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(tree):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.endswith((".cc", ".c", ".h", ".hpp", ".inc")):
                p = Path(root) / name
                st = p.stat()
                digest.update(f"{p.relative_to(tree)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def tree_from(option: Path | str | None) -> Path | None:
    """The TFLM tree: the option, else $TFLM_DIR (as TFLM's own examples
    name it), else None."""
    if option is not None:
        return Path(option)
    env = os.environ.get("TFLM_DIR")
    return Path(env).expanduser() if env else None


def prepare_tflm(spec, platform: Platform, log=None) -> TflmPrep:
    tree = tree_from(spec.tflm_dir)
    if tree is None:
        raise UsageError("--engine tflm needs a TFLM tree: --tflm-dir DIR (or $TFLM_DIR)",
                         hint="docs/build.md, \"The TFLM engine\"")
    if not tree.is_dir():
        where = "--tflm-dir" if spec.tflm_dir is not None else "$TFLM_DIR"
        raise UsageError(f"{where} {tree}: no such directory",
                         hint="point it at a tree made by TFLM's create_tflm_tree.py (docs/build.md, \"The TFLM engine\")")
    tree = tree.resolve()
    if not (tree / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
        raise UsageError(f"{tree} is not a TFLM source tree (no tensorflow/lite/micro/micro_interpreter.h)",
                         hint="make one with TFLM's tensorflow/lite/micro/tools/project_generation/"
                              "create_tflm_tree.py (docs/build.md, \"The TFLM engine\")")
    if not (tree / "third_party" / "flatbuffers" / "include").is_dir():
        raise UsageError(f"{tree} has no third_party/flatbuffers/include: not a tree made by create_tflm_tree.py",
                         hint="a raw tflite-micro checkout does not build outside its Makefile; generate a tree "
                              "(docs/build.md, \"The TFLM engine\")")
    available = available_methods(tree)
    by_lower = {m.lower(): m for m in available}

    def method(op: str) -> str | None:
        # TFLM's naming rule, then the tree's own spelling where the rule
        # misses it (PADV2 -> AddPadV2, CUMSUM -> AddCumSum)
        name = add_method(op)
        return name if name in available else by_lower.get(name.lower())

    if spec.models:
        wanted: dict[str, list[str]] = {}
        for model in spec.models:
            for op in model_operators(Path(model)):
                wanted.setdefault(op, []).append(Path(model).name)
        missing = {op: users for op, users in wanted.items() if method(op) is None}
        if missing:
            listed = "; ".join(f"{op} ({add_method(op)}, used by {', '.join(users)})" for op, users in missing.items())
            raise UsageError(f"the TFLM tree at {tree} cannot register: {listed}",
                             hint="update TFLM, or register the operator yourself in an application (firmware/tflm/)")
        methods = sorted({m for m in (method(op) for op in wanted) if m})  # every one has one (missing is empty)
        note = "operators of " + ", ".join(sorted({Path(m).name for m in spec.models}))
    else:
        methods = sorted({m for m in (method(op) for op in all_builtin_operators()) if m})
        note = "every builtin operator this TFLM tree registers"
    has_cmsis = (tree / "tensorflow" / "lite" / "micro" / "kernels" / "cmsis_nn").is_dir()
    if spec.cmsis_nn and not has_cmsis:
        raise UsageError(f"--cmsis-nn: the TFLM tree at {tree} has no CMSIS-NN kernels "
                         "(tensorflow/lite/micro/kernels/cmsis_nn)",
                         hint="generate the tree with --makefile_options=\"OPTIMIZED_KERNEL_DIR=cmsis_nn "
                              "TARGET=cortex_m_generic TARGET_ARCH=<core>\" (docs/build.md)")
    cmsis = bool(spec.cmsis_nn or has_cmsis)
    source = resolver_source(methods, note)
    resolver_hash = hashlib.sha256(source.encode()).hexdigest()[:16]
    resolver = cache_root() / "tflm" / f"resolver-{resolver_hash}.cc"
    resolver.parent.mkdir(parents=True, exist_ok=True)
    if not resolver.exists():
        tmp = resolver.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        tmp.replace(resolver)
    toolchain = platform.firmware.toolchain
    require = ((f"{toolchain}-g++", "gcc-arm-none-eabi libstdc++-arm-none-eabi-newlib"
                if toolchain == "arm-none-eabi" else "gcc-riscv64-unknown-elf"),)
    tree_digest = _tree_digest(tree)
    library = build_library(tree, tree_digest, platform, cmsis, require, log, retry=spec.pristine)
    digest = hashlib.sha256((tree_digest + source + str(cmsis) + str(library)).encode()).hexdigest()
    cmake_vars = {"HIL_ENGINE": "tflm", "TFLM_DIR": str(tree), "HIL_TFLM_RESOLVER": str(resolver),
                  "HIL_TFLM_CMSIS_NN": "ON" if cmsis else "OFF", "HIL_TFLM_LIBRARY": str(library)}
    return TflmPrep(tree, resolver, tuple(methods), cmsis, digest, cmake_vars, require)


LIBRARY_PROJECT = FIRMWARE_DIR / "tflm" / "lib"


def extra_flags(tree: Path, platform: Platform) -> str:
    """Compiler flags a tree or core needs beyond TFLM's own (see the module
    docstring), as one CMAKE_<LANG>_FLAGS string; empty for a reference tree
    on a core without MVE, so those libraries keep their cache key."""
    flags = []
    if (tree / "tensorflow" / "lite" / "micro" / "cortex_m_generic" / "micro_time.cc").is_file():
        flags.append("-DPROJECT_GENERATION")
    if has_mve(list(platform.firmware.cpu_flags)):
        flags.append("-fno-if-conversion2")
    return " ".join(flags)


def has_mve(cpu_flags) -> bool:
    """Armv8.1-M cores with MVE (Helium): the M55 and M85 unless +nomve."""
    text = " ".join(cpu_flags)
    return bool(re.search(r"-mcpu=cortex-m(55|85)\b", text) or "+mve" in text) and "+nomve" not in text


def check_cxx_library(compiler: str, cpu_flags, toolchain: str) -> None:
    """Refuse before building when the cross compiler has no C++ library
    (Debian ships it apart: without it TFLM fails on `#include <vector>`)."""
    probe = "#include <new>\n#include <vector>\n#include <cstdint>\n"
    proc = subprocess.run([compiler, *cpu_flags, "-x", "c++", "-E", "-o", os.devnull, "-"], input=probe,
                          capture_output=True, text=True, check=False)
    m = _MISSING_STD_HEADER.search(proc.stderr) if proc.returncode != 0 else None
    if m:  # any other failure (a flag the compiler refuses) is the build's to report, not a missing library
        raise cxx_library_error(compiler, toolchain, m[1])


def cxx_library_error(compiler: str, toolchain: str, header: str) -> InfraError:
    package = CXX_LIBRARY_PACKAGES.get(toolchain)
    what = f"<{header}>"
    if package:
        return InfraError(f"{Path(compiler).name} has no C++ standard library ({what} not found): TFLM needs it",
                          hint=f"install it: apt-get install -y {package}")
    return InfraError(f"{Path(compiler).name} has no C++ standard library ({what} not found): TFLM needs it, "
                      f"and Debian packages none for {toolchain}",
                      hint="use a toolchain with a C++ library (its bin/ first on PATH), or the built-in engine")


def missing_std_header(output: str) -> str | None:
    """`vector` when a build failed on a standard C++ header (not a TFLM one)."""
    m = _MISSING_STD_HEADER.search(output)
    return m[1] if m else None


FAILED_MARKER = "hil-failed.json"


def _remembered_failure(build_dir: Path) -> HilError | None:
    marker = build_dir / FAILED_MARKER
    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(data.get("time", 0)))
    from .project import BuildError

    return BuildError(f"{data['message']}\n  (remembered: this TFLM library build failed at {when}; it is not "
                      "repeated for every model)",
                      hint=f"full log: {data['log']}; fix the tree (a changed tree builds again) or retry with "
                           "--rebuild")


def build_library(tree: Path, tree_digest: str, platform: Platform, cmsis: bool, require, log=None,
                  retry: bool = False) -> Path:
    """TFLM as a static library for the platform's core, built once per
    (tree, core flags, compiler, CMSIS-NN) and kept in the cache: the
    runner links it, so changing the runner does not recompile TFLM. A
    failed build is remembered under the same key (FAILED_MARKER)."""
    from .project import BuildError, BuildLock, fail_build, hash_of, run_logged, toolchain_for

    toolchain, toolchain_file, tool, package = toolchain_for(platform)
    compiler = require_tool(tool, package)
    for extra_tool, extra_package in require:
        require_tool(extra_tool, extra_package)
    cmake = require_tool("cmake", "cmake")
    variables = {"TFLM_DIR": str(tree), "HIL_CPU_FLAGS": ";".join(platform.firmware.cpu_flags),
                 "HIL_TFLM_CMSIS_NN": "ON" if cmsis else "OFF"}
    flags = extra_flags(tree, platform)
    if flags:
        variables.update({"CMAKE_C_FLAGS": flags, "CMAKE_CXX_FLAGS": flags})
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    project_files = [(p.name, p.read_text()) for p in
                     (LIBRARY_PROJECT / "CMakeLists.txt", FIRMWARE_DIR / "tflm" / "tflm_library.cmake", toolchain_file)]
    key = hash_of(variables, tree_digest, project_files, compiler_version(compiler), generator)
    build_dir = cache_root() / "tflm-lib" / f"{tree.name}-{key}"
    library = build_dir / "libtflm.a"
    with BuildLock(build_dir):
        if library.exists() and (build_dir / "tflm-usage.cmake").exists():
            return library
        marker = build_dir / FAILED_MARKER
        if retry:
            marker.unlink(missing_ok=True)
        remembered = _remembered_failure(build_dir)
        if remembered is not None:
            raise remembered
        cxx = require_tool(f"{toolchain}-g++", package)
        check_cxx_library(cxx, list(platform.firmware.cpu_flags), toolchain)
        build_log = build_dir / "build.log"
        build_log.write_text("")
        if log:
            log(f"building TFLM from {tree} for {platform.core or platform.name} (once; cached as {build_dir.name})")
        configure = [cmake, "-S", str(LIBRARY_PROJECT), "-B", str(build_dir), *generator,
                     f"-DCMAKE_TOOLCHAIN_FILE={toolchain_file}", "-DCMAKE_BUILD_TYPE=Release",
                     *(f"-D{k}={v}" for k, v in variables.items())]
        for step, what in ((configure, "configuring TFLM"), ([cmake, "--build", str(build_dir)], "building TFLM")):
            proc = run_logged(step, build_log)
            if proc.returncode == 0:
                continue
            header = missing_std_header(proc.stdout)
            if header:  # the C++ library vanished after the check: still the host's problem, not remembered
                raise cxx_library_error(cxx, toolchain, header)
            try:
                fail_build(f"{what} from {tree}", proc.stdout, build_log, [tree])
            except BuildError as exc:
                _remember(marker, exc, build_log)
                raise
        return library


def _remember(marker: Path, exc: HilError, build_log: Path) -> None:
    message = str(exc).split("\n  fix: ")[0]
    tmp = marker.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"message": message, "log": str(build_log), "time": time.time()}, indent=1))
        tmp.replace(marker)
    except OSError:  # only a shortcut for the next model: the build's own error is what matters now
        tmp.unlink(missing_ok=True)
