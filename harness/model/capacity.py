"""Will the model fit? Decided on the host, before vectors are made, firmware
is built or a target boots, wherever the host can know.

A damaged or odd model can declare tensors of any size (a 3 KB file can
declare a 2^30-element input); without these checks the host would try to
make gigabytes of random vectors, and the device would refuse the model only
after a build and a boot. What is checked, each against what the platform
file says hil's runner firmware has:

- every input and output has a shape with positive dimensions;
- each input or output tensor, and all inputs (or all outputs) together, fit
  the tensor arena (they are alive at once);
- the largest operator's non-constant inputs and outputs fit the arena: a
  lower bound of what the memory plan needs, so it never refuses a model
  that would fit;
- the model fits the RAM model buffer (streamed) or the code region
  (`--bake`);
- on the built-in engine, what it loads (subgraph 0 and the subgraphs its
  CALL_ONCE operators call) fits the engine's fixed tables (ENG_MAX_OPS,
  ENG_MAX_TENSORS, ENG_MAX_IO, ENG_MAX_OP_IO, ENG_MAX_SUBGRAPHS: engine.h's
  values unless the platform's or the project's `firmware.defines` set
  them), counted as the engine's loader counts;
- the vectors and their reference outputs fit in host memory.

With `--firmware` (someone else's engine and buffers) only the platform's
memory regions bound the device side. Fix hints name what would help: `--bake`
for a model that fits flash but not the RAM buffer, and the platforms where
it fits; not a platform-file edit, which cannot add memory the part lacks.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from .. import resources
from ..errors import UsageError
from ..platforms import Platform, available, load_platform
from .tflite import ModelInfo

log = logging.getLogger(__name__)

#: host memory the vectors and reference outputs of one run may take, at most
HOST_VECTOR_BYTES_MAX = 4 << 30


def _kib(n: int) -> str:
    return f"{n:,} bytes = {n / 1024:,.1f} KiB" if n < 1 << 20 else f"{n:,} bytes = {n / (1 << 20):,.1f} MiB"


def host_memory_budget() -> int:
    """Half the memory the host has available, at most HOST_VECTOR_BYTES_MAX."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return min(HOST_VECTOR_BYTES_MAX, int(line.split()[1]) * 1024 // 2)
    except (OSError, ValueError, IndexError):
        pass
    return HOST_VECTOR_BYTES_MAX // 4


def platforms_where(fits, exclude: str = "") -> list[str]:
    """Names of the platforms whose file satisfies `fits(platform)` and whose
    board layer the built-in firmware has (the sizes a hint compares are
    the built-in firmware's; a platform without its layer cannot build it)."""
    names = []
    for name in available():
        try:
            p = load_platform(name)
        except UsageError:
            continue
        if p.name != exclude and resources.board_layer(p.firmware.board) and fits(p):
            names.append(p.name)
    return names


def _elsewhere(names: list[str], what: str) -> str:
    if not names:
        return f"no platform hil knows has {what}; make the model smaller (fewer or smaller tensors)"
    return f"run it on a platform with {what}: {', '.join(names)}"


def arena_hint(need: int, platform: Platform) -> str:
    return _elsewhere(platforms_where(lambda p: p.firmware.arena_bytes >= need, platform.name),
                      f"a tensor arena of at least {_kib(need)}")


def model_buffer_hint(size: int, platform: Platform) -> str:
    """What helps a model larger than the RAM model buffer: --bake when it fits
    the code region (flash), else a platform with a larger buffer."""
    others = _elsewhere(platforms_where(lambda p: p.firmware.model_capacity_bytes >= size, platform.name),
                        f"a model buffer of at least {_kib(size)}")
    code = platform.memory.region("code")
    if size < code.length:
        return (f"use --bake: the model is built into the image and read in place from the code region "
                f"(flash, {_kib(code.length)} on {platform.name}); or {others}")
    return others


def baked_flash_hint(size: int, platform: Platform) -> str:
    """What helps when the firmware with a baked-in model overflows the code
    region: streaming the model into RAM where it fits, or more flash."""
    code = platform.memory.region("code").length
    others = _elsewhere(platforms_where(lambda p: p.memory.region("code").length > code,
                                        platform.name), f"more flash than {_kib(code)}")
    if size <= platform.firmware.model_capacity_bytes:
        return f"run without --bake: the model streams into the RAM model buffer of {platform.name}; or {others}"
    return others


def _ram_bytes(platform: Platform) -> int:
    return sum(r.length for name, r in platform.memory.regions().items() if name != "code")


def check_model_fits(model: ModelInfo, platform: Platform, *, prebuilt_firmware: bool = False,
                     bake: bool = False) -> None:
    """Raise UsageError (exit 2) when the model cannot run on the platform."""
    where = f"{model.path}"
    for kind, specs in (("input", model.inputs), ("output", model.outputs)):
        for spec in specs:
            if not spec.shape or any(d <= 0 for d in spec.shape):
                raise UsageError(f"{where}: {kind} {spec.name!r} has shape {list(spec.shape)}: "
                                 + ("no dimensions" if not spec.shape else "a zero or negative dimension"),
                                 hint="export the model with a fixed shape of positive dimensions (batch 1)")
    if prebuilt_firmware:
        limit, what = _ram_bytes(platform), f"the RAM of {platform.name} ({_kib(_ram_bytes(platform))})"

        def hint(need: int) -> str:
            return _elsewhere(platforms_where(lambda p: _ram_bytes(p) >= need, platform.name),
                              f"at least {_kib(need)} of RAM")
    else:
        limit = platform.firmware.arena_bytes
        what = f"the tensor arena of {platform.name} ({_kib(limit)})"

        def hint(need: int) -> str:
            return arena_hint(need, platform)
    for kind, specs in (("input", model.inputs), ("output", model.outputs)):
        for spec in specs:
            if spec.nbytes > limit:
                raise UsageError(f"{where}: {kind} {spec.name!r} of shape {list(spec.shape)} needs "
                                 f"{_kib(spec.nbytes)}, more than {what}",
                                 hint=hint(spec.nbytes))
        total = sum(s.nbytes for s in specs)
        if len(specs) > 1 and total > limit:
            raise UsageError(f"{where}: the model's {len(specs)} {kind}s together need {_kib(total)} at once, "
                             f"more than {what}", hint=hint(total))
    need, at = 0, None  # any engine holds an operator's inputs and outputs at once
    for op in model.operators:
        live = {t for t in (*op.inputs, *op.outputs) if t >= 0 and t not in model.constant_tensors}
        size = sum(model.tensor_bytes.get(t, 0) for t in live)
        if size > need:
            need, at = size, (op, max(live, key=lambda t: model.tensor_bytes.get(t, 0)))
    if at is not None and need > limit:
        op, big = at
        raise UsageError(f"{where}: operator {op.index} ({op.name}) needs at least {_kib(need)} at once for "
                         f"its inputs and outputs (the largest, {model.tensor_names.get(big, big)!r}, "
                         f"{_kib(model.tensor_bytes[big])}), more than {what}", hint=hint(need))
    if prebuilt_firmware:
        return  # the firmware's own model buffer: it says so itself at LOAD_MODEL
    size = len(model.data)
    if bake:
        code = platform.memory.region("code")
        if size > code.length:
            raise UsageError(f"{where}: the model ({_kib(size)}) is larger than the code region (flash) of "
                             f"{platform.name} ({_kib(code.length)}), so it cannot be baked in",
                             hint=_elsewhere(platforms_where(lambda p: p.memory.region("code").length > size,
                                                             platform.name),
                                             f"a code region larger than {_kib(size)}"))
    elif size > platform.firmware.model_capacity_bytes:
        raise UsageError(f"{where}: the model ({_kib(size)}) is larger than the RAM model buffer of "
                         f"{platform.name} ({_kib(platform.firmware.model_capacity_bytes)})",
                         hint=model_buffer_hint(size, platform))


#: the built-in engine's table limits the host checks (engine.h; the loader refuses beyond them)
ENGINE_LIMITS = ("ENG_MAX_OPS", "ENG_MAX_TENSORS", "ENG_MAX_IO", "ENG_MAX_OP_IO", "ENG_MAX_SUBGRAPHS")
_DEFINE = re.compile(r"^#define\s+(ENG_MAX_\w+)\s+(\d+)\b", re.M)


@lru_cache(maxsize=None)
def engine_defaults() -> dict[str, int]:
    """engine.h's ENG_MAX_* values (what applies unless a define overrides them)."""
    text = (resources.firmware_dir() / "engine" / "engine.h").read_text()
    return {name: int(value) for name, value in _DEFINE.findall(text) if name in ENGINE_LIMITS}


def engine_limits(platform: Platform, defines: dict | None = None) -> dict[str, int]:
    """The built-in engine's table limits as the platform's firmware is built:
    engine.h's, then the platform file's `firmware.defines`, then the project's."""
    limits = dict(engine_defaults())
    for source in (platform.firmware.defines or {}, defines or {}):
        for name, value in source.items():
            if name in ENGINE_LIMITS:
                try:
                    limits[name] = int(str(value).rstrip("uUlL"), 0)
                except ValueError:
                    limits.pop(name, None)  # an expression the host cannot evaluate: the device says so itself
    return limits


def check_engine_limits(model: ModelInfo, platform: Platform, defines: dict | None = None) -> None:
    """Raise UsageError (exit 2) when the model's main subgraph alone is more
    than the built-in engine's tables on this platform hold (the loader's
    ENG_E_LIMIT, known before anything is built or booted)."""
    limits = engine_limits(platform, defines)
    loaded = model.loaded_subgraphs()
    ops = [op for op in model.operators + model.other_operators if op.subgraph in loaded]
    tensors = (sum(model.subgraph_tensors[g] for g in loaded) if model.subgraph_tensors
               else len(model.tensor_bytes))
    n = len(loaded) - 1
    called = f" (subgraph 0 and the {n} subgraph{'s' if n > 1 else ''} its CALL_ONCE operators call)" if n else ""
    counts = (("ENG_MAX_OPS", f"operators{called}", len(ops)),
              ("ENG_MAX_TENSORS", f"tensors{called}", tensors),
              ("ENG_MAX_IO", "inputs", len(model.inputs)),
              ("ENG_MAX_IO", "outputs", len(model.outputs)),
              ("ENG_MAX_OP_IO", f"operator inputs and outputs in all{called}",
               sum(len(op.inputs) + len(op.outputs) for op in ops)),
              ("ENG_MAX_SUBGRAPHS", "subgraphs to load (subgraph 0 and those its CALL_ONCE operators call)",
               len(loaded)))
    for name, what, count in counts:
        limit = limits.get(name)
        if limit is None or count <= limit:
            continue
        others = platforms_where(lambda p: count <= engine_limits(p, defines).get(name, count), platform.name)
        where = (f"run it on a platform whose engine holds {count}: {', '.join(others)}" if others
                 else f"no platform hil knows holds {count}")
        raise UsageError(f"{model.path}: the model has {count} {what}, more than the built-in engine on "
                         f"{platform.name} holds ({name} = {limit})",
                         hint=f"{where}; or raise {name} in firmware.defines, where the RAM allows (each entry "
                              "costs RAM)")


def check_vectors_fit_host(model: ModelInfo, count: int) -> None:
    """Raise UsageError when `count` vectors and their reference outputs
    would take more than the host's budget (host_memory_budget)."""
    per_vector = sum(s.nbytes for s in model.inputs) + 2 * sum(s.nbytes for s in model.outputs)
    need, budget = per_vector * max(count, 0), host_memory_budget()
    if need > budget:
        fit = max(budget // max(per_vector, 1), 0)
        raise UsageError(f"{model.path}: {count} vectors of {_kib(per_vector)} each (inputs, device and reference "
                         f"outputs) need {_kib(need)} of host memory; hil allows {_kib(budget)} "
                         f"(half of what is available, at most {_kib(HOST_VECTOR_BYTES_MAX)})",
                         hint=f"use at most {fit} vectors per run" if fit else "make the model's inputs smaller")
