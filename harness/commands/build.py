"""`hil build`: build firmware for a platform, cached: hil's own runner
(built-in engine or TFLM), a CMake project, or a Zephyr application."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from ..errors import HilError, UsageError
from ..paths import click_absolute
from ..results.terminal import make_console

log = logging.getLogger(__name__)

out = make_console()
err = make_console(stderr=True)


def _defines(values: tuple[str, ...]) -> dict[str, str]:
    found = {}
    for d in values:
        name, _, value = d.partition("=")
        if not name:
            raise click.BadParameter(f"{d!r} is not NAME=VALUE", param_hint="--define")
        found[name] = value or "1"
    return found


def _spec(source, kind, target, artifact, toolchain_file, build_dir, board, conf, overlay, pristine, zephyr_base,
          engine, tflm_dir, models, cmsis_nn, defines, cmake_args, config_path):
    """The BuildSpec from the flags, on top of hil.toml's [firmware] when
    no application directory is given."""
    from ..build.project import BuildSpec, detect_kind

    base: BuildSpec | None = None
    config = None
    path = Path(config_path) if config_path else Path("hil.toml")
    if source is None and (config_path or path.exists()):
        from ..config import load_config

        config = load_config(path)
        base = config.build
        defines = {**config.defines, **defines}

    def resolve(p):
        return Path(p).resolve() if p is not None else None

    if source is not None:
        source = resolve(source)
        if not source.is_dir():
            raise UsageError(f"{source}: not a directory", hint="pass your application's directory")
        kind = kind or detect_kind(source)
    if base is None:
        base = BuildSpec(kind=kind or ("builtin" if source is None else detect_kind(source)), source=source)
    elif kind and kind != base.kind:
        base = BuildSpec(**{**vars(base), "kind": kind})
    values = dict(vars(base))
    values["defines"] = {**base.defines, **defines}
    if source is not None:
        values["source"] = source
    overrides = {"target": target, "artifact": artifact, "toolchain_file": resolve(toolchain_file),
                 "build_dir": resolve(build_dir), "board": board, "zephyr_base": resolve(zephyr_base),
                 "tflm_dir": resolve(tflm_dir), "engine": engine}
    values.update({k: v for k, v in overrides.items() if v is not None})
    if conf:
        values["conf_files"] = tuple(resolve(c) for c in conf)
    if overlay:
        values["overlays"] = tuple(resolve(o) for o in overlay)
    if models:
        values["models"] = tuple(resolve(m) for m in models)
    elif config is not None and values["engine"] == "tflm" and not values["models"]:
        values["models"] = tuple(m.path for m in config.models)
    if cmsis_nn:
        values["cmsis_nn"] = True
    if pristine:
        values["pristine"] = True
    values["cmake_args"] = tuple(base.cmake_args) + tuple(cmake_args)
    spec = BuildSpec(**values)
    if spec.kind != "builtin" and spec.source is None:
        raise UsageError(f"a {spec.kind} build needs the application's directory",
                         hint="hil build APP_DIR --platform NAME (or firmware.app in hil.toml)")
    if spec.kind == "builtin" and (target or artifact or toolchain_file):
        raise UsageError("--target, --artifact and --toolchain-file are for CMake projects",
                         hint="pass the project's directory: hil build APP_DIR --target NAME")
    if spec.kind != "zephyr" and (board or conf or overlay or zephyr_base):
        raise UsageError("--board, --conf, --overlay and --zephyr-base are for Zephyr applications",
                         hint="pass a Zephyr application's directory (one with prj.conf)")
    if spec.engine == "tflm" and spec.kind != "builtin":
        raise UsageError("--engine tflm builds hil's runner on TFLM; your own application links TFLM itself",
                         hint="drop APP_DIR to build the runner, or use firmware/tflm/hil_tflm.h in your app")
    if spec.engine == "tflm" and spec.tflm_dir is None:
        from ..build.tflm import tree_from

        if tree_from(None) is None:  # else $TFLM_DIR, read (and named in errors) by prepare_tflm
            raise UsageError("--engine tflm needs --tflm-dir (a TFLM source tree) or $TFLM_DIR",
                             hint="see docs/build.md (\"The TFLM engine\") for how to make one")
    platforms = tuple(config.platforms) if config is not None and config.build is not None else ()
    return spec, platforms


def _print(record, quiet: bool) -> None:
    if quiet:
        out.print(str(record.elf.path), highlight=False, soft_wrap=True, markup=False)
        return
    e = record.elf
    what = {"builtin": f"hil runner, {record.engine} engine", "cmake": f"CMake {record.source}"
            + (f" target {record.target}" if record.target else ""),
            "zephyr": f"Zephyr {record.source} on board {record.board}"}[record.kind]
    out.print(f"{e.path}", highlight=False, soft_wrap=True, markup=False)
    out.print(f"  {what} for {record.platform} ({'cached' if record.cached else 'built'})", highlight=False,
              markup=False)
    out.print(f"  build id {e.build_id or '(none: the device cannot be checked against this ELF)'}")
    out.print(f"  text {e.text:,} B  data {e.data:,} B  bss {e.bss:,} B")
    if record.memory:
        from rich.table import Table

        table = Table(box=None, padding=(0, 2), show_edge=False)
        for col in ("region", "used", "size", "%"):
            table.add_column(col, justify="left" if col == "region" else "right")
        for region, m in record.memory.items():
            pct = f"{100 * m['used'] / m['size']:.1f}" if m["size"] else ""
            table.add_row(region, f"{m['used']:,}", f"{m['size']:,}", pct)
        out.print(table)
    for name, path in record.artifacts.items():
        if name != "elf":
            out.print(f"  {name}: {path}", highlight=False, soft_wrap=True, markup=False)
    if record.kind == "zephyr" and record.config:
        out.print("  " + "  ".join(f"{k}={v}" for k, v in record.config.items()), highlight=False, markup=False)


@click.command("build", context_settings={"ignore_unknown_options": False})
@click.argument("source", required=False, type=click.Path(path_type=Path), callback=click_absolute)
@click.argument("cmake_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--platform", "-p", "platforms", multiple=True, metavar="NAME",
              help="Platform (repeatable) [default: hil.toml's project.platforms for its [firmware], "
                   "else mps2-an386].")
@click.option("--kind", type=click.Choice(["builtin", "cmake", "zephyr"]),
              help="What SOURCE is [default: detected: prj.conf or find_package(Zephyr) -> zephyr, "
                   "else cmake; no SOURCE -> hil's runner].")
@click.option("--define", "-D", "defines", multiple=True, metavar="NAME=VALUE",
              help="Preprocessor definition (repeatable): for hil's runner, and for CMake apps that use "
                   "hil_platform_firmware() (HIL_EXTRA_DEFINES).")
@click.option("--target", help="CMake: the executable target to build [default: the only one].")
@click.option("--artifact", metavar="PATH", help="CMake: the ELF, relative to the build directory.")
@click.option("--toolchain-file", type=click.Path(exists=True, dir_okay=False), callback=click_absolute,
              help="CMake: a toolchain file instead of the platform's (firmware/cmake/<toolchain>.cmake).")
@click.option("--build-dir", type=click.Path(file_okay=False), callback=click_absolute,
              help="Build here instead of the cache's directory per (platform, configuration).")
@click.option("--board", help="Zephyr: the board [default: the platform file's zephyr_board].")
@click.option("--conf", multiple=True, type=click.Path(exists=True, dir_okay=False), callback=click_absolute,
              help="Zephyr: extra Kconfig fragment (EXTRA_CONF_FILE), repeatable.")
@click.option("--overlay", multiple=True, type=click.Path(exists=True, dir_okay=False), callback=click_absolute,
              help="Zephyr: extra devicetree overlay (EXTRA_DTC_OVERLAY_FILE), repeatable.")
@click.option("--pristine", "--rebuild", "pristine", is_flag=True,
              help="Rebuild from scratch (Zephyr: west build -p always); --engine tflm: retry a TFLM library build "
                   "remembered as failed.")
@click.option("--zephyr-base", type=click.Path(exists=True, file_okay=False), callback=click_absolute,
              help="Zephyr: the zephyr/ tree [default: $ZEPHYR_BASE, else the west workspace's].")
@click.option("--engine", type=click.Choice(["builtin", "tflm"]),
              help="hil's runner: the inference engine [default: builtin].")
@click.option("--tflm-dir", type=click.Path(exists=True, file_okay=False), callback=click_absolute,
              help="--engine tflm: a TFLM source tree (docs/build.md).")
@click.option("--model", "models", multiple=True, type=click.Path(exists=True, dir_okay=False), callback=click_absolute,
              help="--engine tflm: register only the operators of these models (repeatable) "
                   "[default: every operator TFLM has].")
@click.option("--cmsis-nn", is_flag=True, help="--engine tflm: TFLM's CMSIS-NN kernels (Arm Cortex-M).")
@click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False), callback=click_absolute,
              help="Project file with a [firmware] build [default: ./hil.toml when no SOURCE is given].")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              help="Write the build record(s) here (hil.build/1).")
@click.option("--quiet", "-q", is_flag=True,
              help="Print only the ELF path(s): hil run --firmware \"$(hil build -q ...)\".")
@click.option("--verbose", "-v", is_flag=True, help="Show the build tools' output as it happens (Zephyr).")
def command(source, cmake_args, platforms, kind, defines, target, artifact, toolchain_file, build_dir, board,
            conf, overlay, pristine, zephyr_base, engine, tflm_dir, models, cmsis_nn, config_path, json_out,
            quiet, verbose) -> None:
    """Build firmware for a platform (cached), and print the ELF to test.

    \b
    SOURCE is your application's directory; without it, hil's own runner
    is built (or the [firmware] of ./hil.toml). Arguments after `--` go to
    CMake (for Zephyr: `west build ... -- ARGS`).

    \b
    Examples:
      hil build --platform mps2-an386                      hil's runner (built-in engine)
      hil build -p mps2-an386 --engine tflm --tflm-dir ~/tflm-tree --model m.tflite
      hil build fw/ -p mps2-an386 --target app -- -DMY_OPTION=ON
      hil build zephyr-app/ -p mps2-an385 --conf boards/qemu.conf
      hil run -m m.tflite -p mps2-an386 --firmware "$(hil build -q fw/ -p mps2-an386)"

    Exit status: 0 built; 1 the firmware does not build (the first error
    with its file and line); 2 bad usage; 3 a tool is missing.
    """
    from .. import platforms as platform_files
    from ..build.project import build

    if source is not None and str(source).startswith("-"):
        raise UsageError(f"{source}: expected the application's directory before the CMake arguments",
                         hint="hil build APP_DIR [options] -- -DNAME=VALUE")
    spec, config_platforms = _spec(source, kind, target, artifact, toolchain_file, build_dir, board, conf, overlay,
                                   pristine, zephyr_base, engine, tflm_dir, models, cmsis_nn, _defines(defines),
                                   cmake_args, config_path)
    names = platforms or config_platforms or ("mps2-an386",)
    if spec.build_dir and len(names) > 1:
        raise UsageError("--build-dir with several platforms would build them over each other",
                         hint="one --platform per --build-dir, or leave the cache's directories")
    records = []
    for name in names:
        platform = platform_files.load_platform(name)
        try:
            record = build(spec, platform, log=None if quiet else (lambda t: err.print(f"- {t}", highlight=False,
                                                                                       markup=False)),
                           echo=(lambda line: err.print(line, highlight=False, markup=False)) if verbose else None)
        except HilError as exc:
            # printed here, not by the CLI's handler: compiler messages are
            # full of brackets that must not be read as markup
            from rich.text import Text

            err.print(Text("error: ", style="bold red") + Text(str(exc)))
            sys.exit(exc.exit_code)
        records.append(record)
        _print(record, quiet)
    if json_out:
        doc = {"schema": "hil.build/1", "builds": [r.as_dict() for r in records]}
        json_out.write_text(json.dumps(doc, indent=1, default=str))


# -- the engine options of `hil run`, `hil demo` and `hil test` ------------------------------

def engine_options(fn):
    """--engine/--tflm-dir/--cmsis-nn/--rebuild: hil's runner on TFLM built
    and run in one step (as `hil build --engine tflm` and then --firmware)."""
    options = [
        click.option("--engine", type=click.Choice(["builtin", "tflm"]),
                     help="The runner's inference engine [default: builtin; hil test: hil.toml's firmware.engine]."),
        click.option("--tflm-dir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
                     help="--engine tflm: a TFLM source tree made by create_tflm_tree.py [default: $TFLM_DIR] "
                          "(docs/build.md)."),
        click.option("--cmsis-nn", is_flag=True, help="--engine tflm: insist on TFLM's CMSIS-NN kernels."),
        click.option("--rebuild", is_flag=True,
                     help="--engine tflm: retry a TFLM library build remembered as failed."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def engine_spec(options: dict, models, *, firmware=None, bake: bool = False, base=None):
    """The BuildSpec of the runner on TFLM from the engine options (popped
    from `options`), or `base` (hil.toml's [firmware]) when none is given.
    Refuses combinations that cannot mean anything before anything builds."""
    from ..build.project import BuildSpec
    from ..build.tflm import tree_from

    engine, tflm_dir = options.pop("engine", None), options.pop("tflm_dir", None)
    cmsis_nn, rebuild = options.pop("cmsis_nn", False), options.pop("rebuild", False)
    if engine is None and (tflm_dir or cmsis_nn):
        if base is not None and base.kind != "builtin":
            raise UsageError(f"--tflm-dir and --cmsis-nn are for hil's runner on TFLM; hil.toml's [firmware] builds "
                             f"a {base.kind} app", hint="drop them, or add --engine tflm to run hil's runner on TFLM")
        engine = "tflm"
    if base is not None and base.kind == "builtin" and base.engine == "tflm" and engine == "tflm":
        # hil.toml's [firmware] engine = "tflm": its tree and CMSIS-NN choice stand unless the options change them
        tflm_dir, cmsis_nn = tflm_dir or base.tflm_dir, cmsis_nn or base.cmsis_nn
    if rebuild and (engine == "builtin" or (engine is None and base is None)):
        raise UsageError("--rebuild is for --engine tflm (it retries a TFLM library build remembered as failed)",
                         hint="drop --rebuild, or add --engine tflm")
    if engine is None:
        if base is not None and rebuild:
            return BuildSpec(**{**vars(base), "pristine": True})
        return base
    if engine == "builtin":
        if tflm_dir or cmsis_nn:
            raise UsageError("--tflm-dir and --cmsis-nn are for --engine tflm", hint="drop them, or --engine tflm")
        return None if base is None or base.kind == "builtin" else base
    if firmware:
        raise UsageError("--engine tflm builds hil's runner on TFLM; --firmware runs an ELF already built",
                         hint="drop --firmware (hil builds and caches the runner), or drop --engine")
    if bake:
        raise UsageError("--bake builds the model into the built-in engine's runner; not with --engine tflm",
                         hint="drop --bake: the TFLM runner loads the model at run time")
    tree = tree_from(tflm_dir)
    if tree is None:
        raise UsageError("--engine tflm needs a TFLM tree: --tflm-dir DIR or $TFLM_DIR",
                         hint="make one with TFLM's create_tflm_tree.py (docs/build.md, \"The TFLM engine\")")
    defines = dict(base.defines) if base is not None else {}
    return BuildSpec(kind="builtin", engine="tflm", tflm_dir=tflm_dir, cmsis_nn=cmsis_nn,  # None: $TFLM_DIR
                     models=tuple(Path(m).resolve() for m in models), defines=defines, pristine=rebuild)
