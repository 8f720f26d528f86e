"""`hil calibrate`: fit the cycle estimate and the active current to one real board.

Runs the calibration set (calibration/set.toml) on the board, reading its
DWT cycle counts per operator, and the same vectors on the board's emulated
counterpart with the cycle plugin; fits per-operator-type factors and the
calibrated error band (harness/timing/calibration.py); with a power analyser,
the mean current during invokes. `--record DIR` keeps everything measured,
`--replay DIR` fits again from it with nothing attached.
"""

from __future__ import annotations

import contextlib
import logging
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from .. import resources
from ..errors import InfraError, UsageError
from ..paths import click_absolute
from ..results.terminal import make_console

if TYPE_CHECKING:
    from ..timing.calibration import Calibration, Recording

log = logging.getLogger(__name__)

REPO = resources.data_root()  # the set's model paths are relative to it (a checkout's root, or the installed trees)
SET_FILE = resources.calibration_set()


def emulated_for(board, given: str | None) -> str:
    """The emulated counterpart: --emulated, else the board file's [timing] emulated_by."""
    if given:
        return given
    name = board.timing.emulated_by if board.timing else ""
    if not name:
        raise UsageError(f"platform {board.name} names no emulated counterpart",
                         hint=f'pass --emulated <platform>, or add emulated_by = "<platform>" to the [timing] '
                              f'table of {board.path}')
    return str(name)


def _timing(platform) -> tuple[str, int]:
    """(timing model id, clock_hz) of an emulated platform's cycle estimate."""
    from ..timing import TimingModel

    model = TimingModel.for_platform(platform)
    if model is None:
        raise UsageError(f"platform {platform.name} has no [timing] table: nothing to calibrate against",
                         hint="choose an emulated platform with a timing model (--emulated)")
    return model.id, int(model.clock_hz)


def _check(result, where: str) -> None:
    if result.exit_code == 130:
        raise KeyboardInterrupt  # the run was interrupted: so is the calibration (exit 130)
    if result.exit_code not in (0, 1) or not result.vectors:
        message = (result.error or {}).get("message", result.status)
        message, _, hint = message.partition("\n  fix: ")
        exc = InfraError if result.exit_code == 3 else UsageError
        raise exc(f"calibration run of {where} did not complete: {message}",
                  hint=hint or "fix what it names and run hil calibrate again")


def _board_model(cfg_kwargs: dict, model_file: Path, n: int, seed: int, windows: list, name: str) -> list[dict]:
    """One model on the board: per vector its DWT cycles and per-operator cycles, and its invoke windows."""
    from ..runner import RunConfig
    from .timed_run import TimedRun

    run_ = TimedRun(RunConfig(model=model_file, vectors=n, seed=seed, localize="never", **cfg_kwargs))
    result = run_.execute()
    _check(result, f"{name} on the board")
    out = []
    for i, v in enumerate(result.vectors):
        if v.status not in ("passed", "mismatch"):
            raise UsageError(f"{name} on the board: vector {i} ended {v.status}: {v.error}",
                             hint="the calibration set must run on the board: `hil run` with this model shows the "
                                  "same failure; fix it first")
        if not v.count or v.count.get("kind") != "cycles":
            kind = (v.count or {}).get("kind", "nothing")
            raise UsageError(f"the board's counter gives {kind}, not cycles: nothing to calibrate against",
                             hint="a board platform with [counter] kind = \"cycles\" (DWT CYCCNT) is needed")
        out.append({"cycles": v.count["value"],
                    "operators": [{"index": op["index"], "op": op["op"], "count": op["count"]}
                                  for op in (v.operators or [])]})
        if i < len(run_.spans):
            t0, t1 = run_.spans[i]
            windows.append({"kind": "invoke", "model": name, "vector": i, "t0": t0, "t1": t1})
    return out


def _emulated_model(platform: str, model_file: Path, n: int, seed: int, workdir: Path, name: str) -> list[dict]:
    """The same vectors on the emulated platform, with the cycle plugin's estimate per operator."""
    from ..runner import run, RunConfig

    result = run(RunConfig(model=model_file, platform=platform, vectors=n, seed=seed, localize="never",
                           workdir=workdir))
    _check(result, f"{name} on {platform}")
    out = []
    for v in result.vectors:
        cycles = getattr(v, "cycles", None)
        if not cycles or any("cycles" not in op for op in (v.operators or [])):
            raise InfraError(f"{name} on {platform} gave no cycle estimate"
                             + (f" ({result.cycles_basis})" if getattr(result, "cycles_basis", None) else ""),
                             hint="the cycle plugin must run (hil run --cycles): see the run's log in "
                                  f"{workdir}")
        out.append({"cycles": cycles["value"], "operators": [{"index": op["index"], "op": op["op"],
                                                              "cycles": op["cycles"]} for op in v.operators or []]})
    return out


def record_live(board_name: str, *, ports, probes, baud, flasher, emulated: str | None, analyser: str | None,
                analyser_port: str | None, ppk2_mv: int | None, ppk2_source: bool, vectors: int | None, guard_ms: float,
                idle_s: float, idle_is_sleep: bool, allow_clock_mismatch: bool, workdir: Path,
                reporter, set_file: Path = SET_FILE) -> Recording:
    """Run the calibration set on the board and on its emulated counterpart."""
    from ..platforms import load_platform
    from ..timing.calibration import ModelRecord, Recording
    from ..power.analysers import make_analyser
    from ..targets import capabilities_of

    board = load_platform(board_name)
    if not capabilities_of(board).flash:
        raise UsageError(f"platform {board.name} is not a board ({board.target_kind})",
                         hint="give the board platform (`hil platforms`, target serial-board) as --platform")
    emu_name = emulated_for(board, emulated)
    emu = load_platform(emu_name)
    model_id, clock_hz = _timing(emu)
    board_clock = board.firmware.clock_hz
    if board_clock != clock_hz and not allow_clock_mismatch:
        raise UsageError(f"{board.name}'s firmware runs at {board_clock / 1e6:g} MHz but {emu.name}'s estimates are "
                         f"for {clock_hz / 1e6:g} MHz: flash wait states differ, and the factors would carry that",
                         hint="calibrate against an emulated platform modelling the board's clock, or pass "
                              "--allow-clock-mismatch (the file then says so)")
    cal_set = load_set(set_file)
    n, seed = vectors or int(cal_set["vectors"]), int(cal_set["seed"])
    mv = ppk2_mv or round((board.power.voltage_v if board.power else 3.3) * 1000)
    meter = make_analyser(analyser, analyser_port, mv, ppk2_source) if analyser else None
    windows: list[dict] = []
    models: list[ModelRecord] = []
    cfg = {"platform": str(board.path), "ports": list(ports), "probes": list(probes), "baud": baud, "flasher": flasher}
    if meter is not None:
        meter.start()
    try:
        for m in cal_set["model"]:
            reporter(f"{m['name']}: {n} vectors on {board.name}")
            on_board = _board_model(dict(cfg, workdir=workdir / "board" / m["name"]), m["path"], n, seed,
                                    windows, m["name"])
            models.append(ModelRecord(m["name"], on_board, [], file=str(m["path"])))
        if meter is not None and idle_s > 0:
            reporter(f"measuring {'sleep' if idle_is_sleep else 'idle'} current for {idle_s:g} s")
            t0 = time.monotonic()
            time.sleep(idle_s)
            windows.append({"kind": "sleep" if idle_is_sleep else "idle", "t0": t0, "t1": time.monotonic()})
    except BaseException:
        if meter is not None:  # the board's error is the news, not what the analyser says while stopping
            with contextlib.suppress(Exception):
                meter.stop()
        raise
    samples = meter.stop() if meter is not None else None
    for rec in models:
        reporter(f"{rec.name}: {n} vectors on {emu.name} (cycle plugin)")
        rec.emulated = _emulated_model(str(emu.path), Path(rec.file), n, seed, workdir / "emulated" / rec.name, rec.name)
    note = f"{n} vectors per model, seed {seed}"
    if board_clock != clock_hz:
        note += f"; CLOCK MISMATCH: board at {board_clock / 1e6:g} MHz, estimates at {clock_hz / 1e6:g} MHz"
    analyser_info = None
    if meter is not None:
        analyser_info = dict(meter.describe(), guard_s=guard_ms / 1e3,
                             window="link timing: host time from the INVOKE request written to its reply read, "
                                    f"less {guard_ms:g} ms at each end")
    return Recording(board=board.name, emulated=emu.name, timing_model=model_id, clock_hz=clock_hz,
                     board_clock_hz=board_clock, models=models, windows=windows, analyser=analyser_info,
                     samples=samples, note=note)


def load_set(path: Path) -> dict:
    """The calibration set: vectors, seed and [[model]] name/file (relative to the repository or the set's
    directory); a missing or damaged one is exit 2."""
    try:
        data = tomllib.loads(Path(path).read_text())
        models = data["model"]
        data["vectors"], data["seed"] = int(data["vectors"]), int(data["seed"])
        for m in models:
            rel = Path(m["file"])
            found = [b / rel for b in (Path(path).resolve().parent, REPO) if (b / rel).is_file()]
            if not found:
                raise UsageError(f"{path}: model {m['name']}: {m['file']} does not exist",
                                 hint="give each [[model]] file relative to the set or the hil repository")
            m["path"] = found[0]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"calibration set {path} is missing or damaged ({type(exc).__name__}: {exc})",
                         hint="see calibration/set.toml: vectors, seed and [[model]] tables with name and file") from None
    if len(models) < 2:
        raise UsageError(f"calibration set {path} has {len(models)} model(s)",
                         hint="the error band needs at least 2 (each is checked against the others' factors)")
    return data


def print_calibration(cal: Calibration, out) -> None:
    from rich.table import Table

    table = Table(title=escape(f"calibration {cal.board} vs {cal.emulated} ({cal.timing_model})"), title_justify="left")
    for col in ("operator", "factor", "spread", "ratio range", "operators", "samples"):
        table.add_column(col, justify="left" if col == "operator" else "right")
    for op in sorted(cal.factors):
        f = cal.factors[op]
        table.add_row(escape(op), f"{f.factor:.3f}", f"{f.spread * 100:.1f}%", f"{f.ratio_min:.3f}-{f.ratio_max:.3f}",
                      str(f.operators), str(f.samples))
    out.print(table)
    out.print(f"  other cycles (and operator types not listed): x{cal.default_factor:.3f}")
    if cal.residuals:
        models = Table(title="invoke cycles per model (medians)", title_justify="left")
        for col in ("model", "board", "estimate", "calibrated", "error", "without this model", "error"):
            models.add_column(col, justify="left" if col == "model" else "right")
        for name, (board, estimate, calibrated, held_out) in cal.residuals.items():
            models.add_row(escape(name), f"{board:,.0f}", f"{estimate:,.0f}", f"{calibrated:,.0f}",
                           f"{(calibrated / board - 1) * 100:+.1f}%", f"{held_out:,.0f}",
                           f"{(held_out / board - 1) * 100:+.1f}%")
        out.print(models)
    out.print(f"  error band: {cal.band}", markup=False)
    out.print(f"  in sample: +-{cal.in_sample * 100:.1f}% (fitted on the same models: flatters)")
    if cal.current:
        c = cal.current
        line = f"  active current: {c.active_ma:.3g} mA (sd {c.active_sd_ma:.2g} mA over {c.invokes} invokes"
        line += f", {c.voltage_v:.3g} V)" if c.voltage_v else ")"
        out.print(line + f", {c.analyser}; {c.window}", markup=False)
        if c.idle_ma is not None:
            out.print(f"  idle current between requests: {c.idle_ma:.3g} mA (the runner firmware polls its UART: "
                      f"not a sleep current)")
        if c.sleep_ua is not None:
            out.print(f"  sleep current: {c.sleep_ua:.3g} uA")
    if cal.synthetic:
        out.print("  [bold]SYNTHETIC data: no hardware was run[/]")
    if cal.note:
        out.print(f"  note: {cal.note}", markup=False)


@click.command("calibrate")
@click.option("--platform", "-p", "platform", metavar="BOARD",
              help="The board platform (target serial-board), e.g. nucleo-l4r5zi [with --replay: checked "
                   "against the recording].")
@click.option("--port", "ports", multiple=True, metavar="URL", help="The board's serial port (any pyserial URL).")
@click.option("--probe", "probes", multiple=True, metavar="ID", help="The board's debug probe serial number.")
@click.option("--baud", type=click.IntRange(min=1), help="Baud rate [default: the platform file's].")
@click.option("--flasher", type=click.Choice(["pyocd", "openocd", "west", "jlink", "command", "none"]),
              help="Override the platform file's board.flasher.")
@click.option("--emulated", metavar="PLATFORM",
              help="The emulated counterpart [default: the board file's [timing] emulated_by].")
@click.option("--analyser", type=click.Choice(["joulescope", "ppk2"]),
              help="Measure the current during invokes with this analyser (pip install joulescope / ppk2-api).")
@click.option("--analyser-port", metavar="PORT", help="ppk2: its serial port [default: the only PPK2 attached].")
@click.option("--ppk2-mv", type=click.IntRange(800, 5000), metavar="MV",
              help="ppk2: the board's supply voltage in mV [default: the platform's [power] voltage_v].")
@click.option("--ppk2-source", is_flag=True,
              help="ppk2: the PPK2 powers the board at --ppk2-mv [default: ampere meter in series with its supply].")
@click.option("--set", "set_file", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              default=None, help="The calibration set [default: calibration/set.toml].")
@click.option("--vectors", "-n", type=click.IntRange(min=1), help="Vectors per model [default: calibration/set.toml].")
@click.option("--guard-ms", type=click.FloatRange(min=0), default=2.0, show_default=True,
              help="Left out at each end of an invoke window (UART bytes, USB latency).")
@click.option("--idle-seconds", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="With an analyser: seconds of idle current measured after the invokes.")
@click.option("--idle-is-sleep", is_flag=True,
              help="The firmware sleeps while it waits (a low-power --flasher none image): record the idle "
                   "window as the sleep current.")
@click.option("--allow-clock-mismatch", is_flag=True,
              help="Calibrate although the board's clock differs from the emulated platform's timing clock.")
@click.option("--record", "record_dir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
              metavar="DIR",
              help="Keep the board's counts, the estimates and the analyser's samples in DIR.")
@click.option("--replay", "replay_dir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
              metavar="DIR",
              help="Fit again from a recording in DIR; no board or analyser needed.")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              help="The calibration file to write [default: calibration/<board>.toml in the current directory].")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
              help="Run directories of the board and emulator runs [default: .hil/calibrate/<time>].")
def command(platform, ports, probes, baud, flasher, emulated, analyser, analyser_port, ppk2_mv, ppk2_source, set_file,
            vectors, guard_ms, idle_seconds, idle_is_sleep, allow_clock_mismatch, record_dir, replay_dir, out_file,
            workdir) -> None:
    """Fit the cycle estimate's per-operator factors (and the active current) to a real board.

    \b
    Example:
      hil calibrate --platform nucleo-l4r5zi --port /dev/ttyACM0 --analyser ppk2 --record cal-rec/
      hil calibrate --replay cal-rec/ --out calibration/nucleo-l4r5zi.toml
      hil run --model m.tflite --platform stm32l4r5-qemu --calibration calibration/nucleo-l4r5zi.toml
    """
    from importlib.metadata import version

    from ..timing.calibration import fit, load_recording, save_recording, write_calibration

    out = make_console()
    err = make_console(stderr=True)
    if replay_dir:
        if ports or probes or analyser:
            raise UsageError("--replay fits a recording: --port, --probe and --analyser are not used with it",
                             hint="drop them, or drop --replay to calibrate on the board")
        rec = load_recording(replay_dir)
        if platform and platform != rec.board:
            raise UsageError(f"{replay_dir} is a recording of {rec.board}, not {platform}",
                             hint=f"pass --platform {rec.board} or the recording of {platform}")
        if emulated and emulated != rec.emulated:
            raise UsageError(f"{replay_dir} was estimated on {rec.emulated}, not {emulated}",
                             hint="a recording's estimates are for its own emulated platform: record again")
    else:
        if not platform:
            raise UsageError("hil calibrate needs --platform BOARD (or --replay DIR)",
                             hint="hil calibrate --platform nucleo-l4r5zi --port /dev/ttyACM0")
        workdir = workdir or Path(".hil") / "calibrate" / time.strftime("%Y%m%d-%H%M%S")
        rec = record_live(platform, ports=ports, probes=probes, baud=baud, flasher=flasher, emulated=emulated,
                          analyser=analyser, analyser_port=analyser_port, ppk2_mv=ppk2_mv, ppk2_source=ppk2_source,
                          vectors=vectors, guard_ms=guard_ms, idle_s=idle_seconds, idle_is_sleep=idle_is_sleep,
                          allow_clock_mismatch=allow_clock_mismatch, workdir=Path(workdir).resolve(),
                          reporter=lambda text: err.print(f"[dim]{escape(text)}[/]", highlight=False),
                          set_file=set_file or SET_FILE)
        if record_dir:
            save_recording(rec, record_dir)
            err.print(f"recording: {record_dir}", highlight=False, markup=False)
    cal = fit(rec, date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), hil_version=version("hil"))
    cal = write_calibration(cal, out_file or Path.cwd() / "calibration" / f"{rec.board}.toml")
    print_calibration(cal, out)
    out.print(f"  calibration: {cal.path}", markup=False)
