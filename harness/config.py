"""The project file `hil.toml`: which models run on which platforms, with
which vectors, checks and budgets, where results are stored, and how a
comparison decides what regressed.

Validated on load: an unknown key, a wrong type or a missing file is an
error (exit 2) that names the key and says how to fix it.
"""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .checks.budgets import BUDGETS
from .checks.truth import CHECKS as TRUTH_CHECKS
from .checks.truth import FLOAT_CHECKS
from .errors import HilError, UsageError
from .model.float_reference import check_float_model
from .model.tflite import load_model
from .schema import did_you_mean

if TYPE_CHECKING:  # config is read before anything builds: the type only
    from .build.project import BuildSpec

log = logging.getLogger(__name__)

CONFIG_NAME = "hil.toml"

#: check name -> (type, meaning); see checks/suite.py
CHECKS = {
    "bit_exact": (bool, "every output byte equals the TFLM reference's"),
    "tolerance_lsb": (int, "largest |device - reference| per element, in LSB"),
    "cosine_min": (float, "smallest cosine similarity to the reference over the vectors"),
    "l2_rel_max": (float, "largest relative L2 error against the reference"),
    "top1_agreement_min": (float, "fraction of vectors whose argmax equals the reference's"),
    "accuracy_min": (float, "top-1 accuracy on labelled vectors"),
    **TRUTH_CHECKS,  # expected, float_top1_agreement_min, float_cosine_min, float_accuracy_drop_max
}

#: check name -> (lowest, highest) limit its measure can reach: outside, no run could pass (or fail)
CHECK_RANGES = {"tolerance_lsb": (0, None), "cosine_min": (-1.0, 1.0), "l2_rel_max": (0.0, None),
                "top1_agreement_min": (0.0, 1.0), "accuracy_min": (0.0, 1.0), "float_top1_agreement_min": (0.0, 1.0),
                "float_cosine_min": (-1.0, 1.0), "float_accuracy_drop_max": (-1.0, 1.0)}

#: checks that judge labels: random vectors have none
LABEL_CHECKS = ("accuracy_min", "float_accuracy_drop_max")

#: comparison thresholds, in percent of the base value (accuracy: absolute drop)
COMPARE_DEFAULTS = {
    "count_pct": 1.0,
    "energy_pct": 1.0,
    "cycles_pct": 1.0,  # the timing model's cycles estimate (deterministic, as the count)
    "flash_pct": 1.0,
    "ram_pct": 1.0,
    "arena_pct": 1.0,
    "model_pct": 1.0,
    "accuracy_drop": 0.01,
    # the user's truth (checks/truth.py): absolute drops of fractions
    "float_top1_drop": 0.01,
    "float_cosine_drop": 0.01,
    "expected_match_drop": 0.01,
}

_TOP_KEYS = {"project", "defaults", "models", "firmware", "compare", "labgrid"}
_PROJECT_KEYS = {"name", "store", "results", "platforms"}
_MODEL_KEYS = {"name", "path", "vectors", "platforms", "checks", "budgets", "float_model", "battery", "place", "tags"}
_VECTOR_KEYS = {"random", "seed", "file", "limit", "expected", "expected_tolerance"}


@dataclass(frozen=True)
class VectorSpec:
    random: int | None = None
    seed: int = 0
    file: Path | None = None
    limit: int | None = None
    expected: bool = False               # check the file's output_<k> arrays (checks/truth.py)
    expected_file: Path | None = None    # ... or those of this file
    expected_tolerance: float = 0.0      # absolute, in output units

    def describe(self) -> str:
        if self.file:
            return f"{self.file}" + (f" (first {self.limit})" if self.limit else "") + \
                (" with expected outputs" if self.expected or self.expected_file else "")
        return f"{self.random} random (seed {self.seed})"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    vectors: VectorSpec
    platforms: tuple[str, ...]
    checks: dict
    budgets: dict
    float_model: Path | None = None      # the float original, run on the host (checks/truth.py)
    battery: dict | None = None          # rate, battery_mah, battery_v, checked (power/battery.py)
    place: str | None = None             # board jobs: this labgrid place (harness/farm.py) ...
    tags: dict | None = None             # ... or any place with these tags [default: board=<platform>]


@dataclass(frozen=True)
class ProjectConfig:
    path: Path
    name: str
    store: str
    results_dir: Path
    platforms: tuple[str, ...]
    models: tuple[ModelEntry, ...]
    defines: dict = field(default_factory=dict)
    compare: dict = field(default_factory=dict)
    #: [firmware] beyond `defines`: what `hil build` / `hil test` build instead
    #: of the built-in runner, else None
    build: BuildSpec | None = None
    #: [labgrid]: coordinator = "host:port", wait_s (board farms, harness/farm.py)
    labgrid: dict = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, fix: str) -> UsageError:
        return UsageError(f"{self.path}: `{key}` {problem}", hint=fix)

    def known(self, table: dict, allowed: set[str], where: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}{key}", "is not a known key", did_you_mean(key, allowed))

    def typed(self, value, kind, key: str, fix: str):
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not ok:
            name = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            raise self.fail(key, f"must be a {name} (got {value!r})", fix)
        return value

    def file(self, root: Path, value, key: str) -> Path:
        path = (root / self.typed(value, str, key, "give a path relative to hil.toml")).resolve()
        if not path.exists():
            raise self.fail(key, f"names {path}, which does not exist", "fix the path (relative to hil.toml)")
        return path

    def checks(self, table: dict, where: str) -> dict:
        self.known(table, set(CHECKS), where)
        checks = {k: self.typed(v, CHECKS[k][0], f"{where}{k}", f"{k}: {CHECKS[k][1]}") for k, v in table.items()}
        for k, value in checks.items():
            low, high = CHECK_RANGES.get(k, (None, None))
            if (low is not None and value < low) or (high is not None and value > high):
                span = f"from {low:g} to {high:g}" if high is not None else f"{low:g} or more"
                raise self.fail(f"{where}{k}", f"is {value:g}: what it measures is {span}, so no run could be judged "
                                               "by it", f"{k}: {CHECKS[k][1]}, {span}")
        return checks

    def budgets(self, table: dict, where: str) -> dict:
        self.known(table, set(BUDGETS), where)
        budgets = {k: self.typed(v, float, f"{where}{k}", f"{k}: {BUDGETS[k]}") for k, v in table.items()}
        for k, value in budgets.items():
            if not value > 0:  # as hil run's --max-* options: a budget of 0 or less could never be met
                raise self.fail(f"{where}{k}", f"is {value:g}, not a positive number", f"{k}: {BUDGETS[k]}")
        return budgets


def _battery(v: "_Validator", table: dict, where: str) -> dict | None:
    """battery = { rate = "1/s", battery_mah = 220, battery_v = 3.0 }: the
    same checks as `hil run --rate --battery-mah --battery-v`."""
    from .power.battery import check_inputs

    v.known(table, {"rate", "battery_mah", "battery_v"}, where + "battery.")
    try:
        return check_inputs(table.get("rate"), table.get("battery_mah"), table.get("battery_v"))
    except UsageError as exc:
        raise v.fail(where + "battery", f"is not valid: {str(exc).splitlines()[0]} (the keys are rate, battery_mah, "
                                        f"battery_v)",
                     'battery = { rate = "1/s", battery_mah = 220, battery_v = 3.0 }') from None


def load_config(path: Path | None = None) -> ProjectConfig:
    """Load hil.toml (default: ./hil.toml)."""
    path = Path(path or CONFIG_NAME).resolve()
    if not path.exists():
        raise UsageError(f"no project file at {path}", hint="create one with `hil init`, or pass --config PATH")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}", hint="fix the syntax at that line") from exc
    v = _Validator(path)
    root = path.parent
    v.known(data, _TOP_KEYS, "")

    project = v.typed(data.get("project", {}), dict, "[project]", "add a [project] table")
    v.known(project, _PROJECT_KEYS, "project.")
    name = v.typed(project.get("name", root.name), str, "project.name", 'set name = "my-model"')
    store = v.typed(project.get("store", ".hil/results.db"), str, "project.store",
                    "a SQLite file path, or postgresql://user:password@host/database")
    results_dir = root / v.typed(project.get("results", ".hil/suites"), str, "project.results", "a directory")

    platforms = tuple(v.typed(project.get("platforms", ["mps2-an386"]), list, "project.platforms",
                              'platforms = ["mps2-an386"]'))
    from .platforms import load_platform  # validates each platform now, not mid-suite

    for p in platforms:
        load_platform(v.typed(p, str, "platforms[]", "platform names, see `hil platforms`"))

    defaults = v.typed(data.get("defaults", {}), dict, "[defaults]", "a table")
    v.known(defaults, {"checks", "budgets", "battery"}, "defaults.")
    default_checks = v.checks(v.typed(defaults.get("checks", {"bit_exact": True}), dict, "defaults.checks",
                                      "a table"), "defaults.checks.")
    default_budgets = v.budgets(v.typed(defaults.get("budgets", {}), dict, "defaults.budgets", "a table"),
                                "defaults.budgets.")

    models = []
    entries = v.typed(data.get("models", []), list, "[[models]]", "add [[models]] tables")
    if not entries:
        raise v.fail("[[models]]", "is empty", 'add at least one [[models]] with name and path')
    seen = set()
    for i, entry in enumerate(entries):
        where = f"models[{i}]."
        entry = v.typed(entry, dict, f"models[{i}]", "each [[models]] is a table")
        v.known(entry, _MODEL_KEYS, where)
        model_path = v.file(root, entry.get("path"), where + "path")
        mname = v.typed(entry.get("name", model_path.stem), str, where + "name", "a short name")
        if mname in ("", ".", "..") or any(c in "/\\" or not c.isprintable() for c in mname):
            # it is the job's id (platform/model) and its run directory's name: a "/" made another job
            # id and a directory elsewhere ("../x" outside the suite's)
            raise v.fail(where + "name", f"{mname!r} cannot name a job and its run directory",
                         "a short name without '/', '\\' or control characters, and not '.' or '..'")
        if mname in seen:
            raise v.fail(where + "name", f"{mname!r} is used twice", "give every model its own name")
        seen.add(mname)
        vec = v.typed(entry.get("vectors", {"random": 10}), dict, where + "vectors",
                      'vectors = { random = 100, seed = 1 } or { file = "data.npz" }')
        v.known(vec, _VECTOR_KEYS, where + "vectors.")
        if ("random" in vec) == ("file" in vec):
            raise v.fail(where + "vectors", "needs exactly one of `random` or `file`",
                         'vectors = { random = 100, seed = 1 } or { file = "data.npz", limit = 200 }')
        spec = VectorSpec(
            random=v.typed(vec["random"], int, where + "vectors.random", "a count") if "random" in vec else None,
            seed=v.typed(vec.get("seed", 0), int, where + "vectors.seed", "an integer"),
            file=v.file(root, vec["file"], where + "vectors.file") if "file" in vec else None,
            limit=v.typed(vec["limit"], int, where + "vectors.limit", "a count") if "limit" in vec else None,
            **_expected_spec(v, root, vec, where),
        )
        for key, count in (("random", spec.random), ("limit", spec.limit)):
            if count is not None and count < 1:  # caught here, not by each job once the suite runs
                raise v.fail(f"{where}vectors.{key}", f"is {count}: no vector would run", "give 1 or more")
        if spec.seed < 0:  # numpy's generators take none
            raise v.fail(f"{where}vectors.seed", f"is {spec.seed}, less than 0", "give 0 or more")
        model_platforms = tuple(v.typed(entry.get("platforms", list(platforms)), list, where + "platforms",
                                        "a list of platform names"))
        for p in model_platforms:
            load_platform(p)
        checks = {**default_checks, **v.checks(v.typed(entry.get("checks", {}), dict, where + "checks", "a table"),
                                               where + "checks.")}
        budgets = {**default_budgets, **v.budgets(v.typed(entry.get("budgets", {}), dict, where + "budgets",
                                                          "a table"), where + "budgets.")}
        float_model = _float_model(v, root, entry, model_path, where)
        checks = _truth_checks(v, checks, spec, float_model, where)
        for label_check in LABEL_CHECKS:  # (`name` is the project's)
            if label_check in checks and spec.random is not None:  # else an error once every job has run
                raise v.fail(where + "checks." + label_check, "needs labelled vectors, and random vectors have no labels",
                             'vectors = { file = "data.npz" } with a `labels` array, or drop the check')
        battery = _battery(v, {**v.typed(defaults.get("battery", {}), dict, "defaults.battery", "a table"),
                               **v.typed(entry.get("battery", {}), dict, where + "battery", "a table")}, where)
        place = v.typed(entry.get("place"), str, where + "place", 'a labgrid place name') if "place" in entry else None
        if place is not None and "tags" in entry:  # as hil run's --place and --place-tag
            raise v.fail(where + "place", "and `tags` both choose the place", "give the place's name or its tags")
        tags = {str(k): v.typed(val, str, f"{where}tags.{k}", 'tags = { board = "nucleo-l4r5zi" }') for k, val in
                v.typed(entry.get("tags", {}), dict, where + "tags", 'tags = { board = "nucleo-l4r5zi" }').items()}
        models.append(ModelEntry(mname, model_path, spec, model_platforms, checks, budgets, float_model, battery,
                                 place, tags or None))

    firmware = v.typed(data.get("firmware", {}), dict, "[firmware]", "a table")
    v.known(firmware, {"defines"} | set(_FIRMWARE_BUILD_KEYS), "firmware.")
    defines = {k: str(val) for k, val in v.typed(firmware.get("defines", {}), dict, "firmware.defines",
                                                  "a table of NAME = value").items()}
    build = _firmware_build(v, root, firmware, defines)
    compare = v.typed(data.get("compare", {}), dict, "[compare]", "a table")
    v.known(compare, set(COMPARE_DEFAULTS), "compare.")
    thresholds = {**COMPARE_DEFAULTS,
                  **{k: v.typed(val, float, f"compare.{k}", "a number") for k, val in compare.items()}}
    for k, value in thresholds.items():
        if value < 0:  # a negative threshold makes every unchanged metric a regression
            raise v.fail(f"compare.{k}", f"is {value:g}, less than 0", "0 (any change) or more")
    labgrid = v.typed(data.get("labgrid", {}), dict, "[labgrid]", 'a table: coordinator = "host:20408"')
    v.known(labgrid, {"coordinator", "wait_s"}, "labgrid.")
    v.typed(labgrid.get("coordinator", ""), str, "labgrid.coordinator", 'coordinator = "labhost:20408"')
    if not v.typed(labgrid.get("wait_s", 0.0), float, "labgrid.wait_s", "seconds to wait for a busy place") >= 0:
        raise v.fail("labgrid.wait_s", f"is {labgrid['wait_s']!r}, not 0 or more", "seconds to wait for a busy place")
    return ProjectConfig(path, name, store, results_dir, platforms, tuple(models), defines, thresholds, build, labgrid)


def _expected_spec(v: _Validator, root: Path, vec: dict, where: str) -> dict:
    """`expected = true` (the file's output_<k> arrays) or `expected =
    "outputs.npz"`, and `expected_tolerance`, of a vectors table."""
    key = where + "vectors.expected"
    fix = 'expected = true (the output_<k> arrays of `file`) or expected = "expected.npz"'
    value = v.typed(vec.get("expected", False), (bool, str), key, fix)
    tolerance = v.typed(vec.get("expected_tolerance", 0.0), float, key + "_tolerance",
                        "an absolute difference in output units: 0 (exact), 1 (one int8 step), ...")
    if tolerance < 0:
        raise v.fail(key + "_tolerance", f"is {tolerance:g}", "give 0 (exact) or a positive difference")
    if value is False:
        if "expected_tolerance" in vec:
            raise v.fail(key + "_tolerance", "is set but `expected` is not", fix)
        return {}
    if "file" not in vec:
        raise v.fail(key, "needs `file`: expected outputs belong to given vectors, not to random ones",
                     'vectors = { file = "data.npz", expected = true }')
    expected_file = v.file(root, value, key) if isinstance(value, str) else None
    return {"expected": value is True, "expected_file": expected_file, "expected_tolerance": tolerance}


def _float_model(v: _Validator, root: Path, entry: dict, model_path: Path, where: str) -> Path | None:
    """`float_model`: the float original, checked against the model now."""
    if "float_model" not in entry:
        return None
    path = v.file(root, entry["float_model"], where + "float_model")
    try:
        check_float_model(load_model(path), load_model(model_path))
    except HilError as exc:
        raise v.fail(where + "float_model", f"does not fit: {exc.args[0]}", exc.hint or "") from exc
    return path


def _truth_checks(v: _Validator, checks: dict, spec: VectorSpec, float_model: Path | None, where: str) -> dict:
    """Vectors with expected outputs get the `expected` check unless it is
    turned off; a check whose data the job lacks is an error now."""
    has_expected = spec.expected or spec.expected_file is not None
    if has_expected:
        checks = {"expected": True, **checks}
    elif checks.get("expected"):
        raise v.fail(where + "checks.expected", "needs expected outputs",
                     'vectors = { file = "data.npz", expected = true } (output_0.. in the file)')
    if float_model is None:
        for name in FLOAT_CHECKS:
            if name in checks:
                raise v.fail(where + "checks." + name, "needs a float model",
                             f'float_model = "model_float.tflite" in this [[models]] entry, or drop `{name}`')
    return checks


#: [firmware] keys that describe a build (docs/build.md); `defines` alone
#: keeps the built-in runner
_FIRMWARE_BUILD_KEYS = {
    "kind": (str, 'kind = "cmake" (or "zephyr", "builtin"; default: detected from `app`)'),
    "app": (str, 'app = "firmware/my_app": the application directory, relative to hil.toml'),
    "target": (str, 'target = "app": the CMake executable target'),
    "artifact": (str, 'artifact = "app.elf": the ELF, relative to the build directory'),
    "cmake_args": (list, 'cmake_args = ["-DMY_OPTION=ON"]'),
    "toolchain_file": (str, 'toolchain_file = "cmake/my-toolchain.cmake"'),
    "board": ((str, dict), 'board = "mps2/an386", or board = { mps2-an386 = "mps2/an386" } per platform'),
    "conf_files": (list, 'conf_files = ["boards/qemu.conf"] (Zephyr EXTRA_CONF_FILE)'),
    "overlays": (list, 'overlays = ["app.overlay"] (Zephyr EXTRA_DTC_OVERLAY_FILE)'),
    "kconfig": (dict, 'kconfig = { CONFIG_HIL = "y" }'),
    "zephyr_base": (str, 'zephyr_base = "../zephyrproject/zephyr"'),
    "engine": (str, 'engine = "tflm" (or "builtin")'),
    "tflm_dir": (str, 'tflm_dir = "third_party/tflm": a TFLM source tree'),
    "cmsis_nn": (bool, "cmsis_nn = true: TFLM's CMSIS-NN kernels"),
}


def _firmware_build(v: _Validator, root: Path, table: dict, defines: dict):
    """The [firmware] build description as a BuildSpec, or None for the
    built-in runner with the built-in engine (the default)."""
    given = {k: table[k] for k in _FIRMWARE_BUILD_KEYS if k in table}
    if not given:
        return None
    from .build.project import ENGINES, KINDS, BuildSpec, detect_kind

    for key, value in given.items():
        kind, fix = _FIRMWARE_BUILD_KEYS[key]
        v.typed(value, kind, f"firmware.{key}", fix)
    def path(key: str) -> Path:
        return v.file(root, given[key], f"firmware.{key}")

    def paths(key: str) -> tuple[Path, ...]:
        return tuple(v.file(root, item, f"firmware.{key}[]") for item in given.get(key, []))

    source = path("app") if "app" in given else None
    kind = given.get("kind") or (detect_kind(source) if source else "builtin")
    if kind not in KINDS:
        raise v.fail("firmware.kind", f"is {kind!r}", f"one of: {', '.join(KINDS)}")
    if kind != "builtin" and source is None:
        raise v.fail("firmware.app", f"is needed for kind = {kind!r}", _FIRMWARE_BUILD_KEYS["app"][1])
    engine = given.get("engine", "builtin")
    if engine not in ENGINES:
        raise v.fail("firmware.engine", f"is {engine!r}", f"one of: {', '.join(ENGINES)}")
    if engine == "tflm" and "tflm_dir" not in given and not os.environ.get("TFLM_DIR"):
        raise v.fail("firmware.tflm_dir", "is needed for engine = \"tflm\" (or $TFLM_DIR)",
                     _FIRMWARE_BUILD_KEYS["tflm_dir"][1])
    board = given.get("board")
    boards = {}
    if isinstance(board, dict):
        boards = {str(k): v.typed(b, str, f"firmware.board.{k}", "a Zephyr board name") for k, b in board.items()}
        board = None
    return BuildSpec(
        kind=kind, source=source, target=given.get("target"), artifact=given.get("artifact"),
        cmake_args=tuple(str(a) for a in given.get("cmake_args", [])), defines=defines,
        toolchain_file=path("toolchain_file") if "toolchain_file" in given else None,
        board=board, boards=boards, conf_files=paths("conf_files"), overlays=paths("overlays"),
        kconfig={str(k): str(val) for k, val in given.get("kconfig", {}).items()},
        zephyr_base=path("zephyr_base") if "zephyr_base" in given else None,
        engine=engine, tflm_dir=path("tflm_dir") if "tflm_dir" in given else None,
        cmsis_nn=bool(given.get("cmsis_nn", False)))


STARTER = '''# hil project file: what `hil test` runs, checks and stores.
# Reference: README.md ("Suites in hil.toml"); `hil test --help`.

[project]
name = "{name}"
# Where results are kept, keyed by git commit: a SQLite file (default), or
# a PostgreSQL URL shared by the team, e.g. "postgresql://hil@db/hil".
store = ".hil/results.db"
# Platforms every model runs on (`hil platforms` lists them).
platforms = ["mps2-an386"]

[defaults.checks]
bit_exact = true            # every output byte equals the TFLM reference
# tolerance_lsb = 1         # or: allow this many LSB per element
# cosine_min = 0.999
# top1_agreement_min = 0.99
# accuracy_min = 0.9        # needs labelled vectors (an .npz with `labels`)

[defaults.budgets]
# max_count = 5_000_000     # per invoke, in the platform's count kind (instructions on QEMU)
# max_energy_uj = 500       # estimated energy per inference
# max_arena = 65536         # tensor arena high-water, bytes
# max_flash = 262144
# max_ram = 131072

[[models]]
name = "{model_name}"
path = "{model_path}"
vectors = {{ random = 100, seed = 1 }}
# vectors = {{ file = "data/test.npz", limit = 200 }}   # input_0.., optional labels
# platforms = ["mps2-an386", "mps2-an385"]            # overrides the list above
# checks = {{ accuracy_min = 0.85 }}
# vectors = {{ file = "data/test.npz", expected = true }}   # also check output_0.. (expected_tolerance = 1)
# float_model = "models/model_float.tflite"           # the float original: float_top1_agreement_min = 0.95
# budgets = {{ max_count = 3_000_000 }}
# budgets = {{ max_latency_ms = 50, max_cycles = 6_000_000 }}   # the timing model's estimates (QEMU)
# battery = {{ rate = "1/s", battery_mah = 220, battery_v = 3.0 }}  # battery-life estimate

[compare]
# `hil compare BASE HEAD` flags a regression when a metric grows by more
# than this many percent (accuracy: drops by more than this, absolute).
count_pct = 1.0
energy_pct = 1.0
cycles_pct = 1.0
flash_pct = 1.0
ram_pct = 1.0
arena_pct = 1.0
accuracy_drop = 0.01
# float_top1_drop = 0.01     # agreement with the float model, expected-output match: absolute drops
# float_cosine_drop = 0.01
# expected_match_drop = 0.01
'''
