"""`hil run`: one model on one platform (or several boards), checked against the
TFLM reference; the run options it shares with `hil demo`.

`hil run --help` imports this module: the options need click alone, and
what a run needs (the runner, numpy, the reference) is imported when it
runs (tests/test_command_help.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import InfraError, UsageError
from ..paths import click_absolute, refuse_overwriting_inputs
from ..results.terminal import make_console
from .build import engine_options, engine_spec

if TYPE_CHECKING:
    from ..results.console import RunProgress
    from ..results.result import RunResult
    from ..runner import RunConfig

log = logging.getLogger(__name__)

out = make_console()
err = make_console(stderr=True)


class BoardsReporter:
    """Several boards at once: stage lines prefixed with the board; one
    progress bar per board on a terminal, plain lines naming the board
    otherwise (results/console.py)."""

    def __init__(self) -> None:
        from ..results.console import progress_bar

        self.bar = progress_bar(err) if err.is_terminal else None

    def child(self, label: str) -> RunProgress:
        from ..results.console import RunProgress

        return RunProgress(err, label, self.bar)

    def close(self) -> None:
        if self.bar is not None and self.bar.live.is_started:
            self.bar.stop()


def _run_on_boards(config: RunConfig, show_all: bool) -> None:
    """`--port` given more than once: every board in parallel, a result each."""
    from rich.markup import escape
    from rich.table import Table

    from ..results.console import print_result
    from ..runner import run_boards

    reporter = BoardsReporter()
    try:
        outcome = run_boards(config, reporter.child)
    finally:
        reporter.close()
    if outcome.document is None:  # it never got as far as several boards
        run_ = outcome.runs[0]
        print_result(finished(run_), config.json_out or run_.result_path, show_all, out, err)
        sys.exit(outcome.exit_code)
    table = Table(title=escape(f"{len(outcome.runs)} boards, {config.platform}"), title_justify="left")
    for col in ("board", "port", "status", "vectors passed", "detail"):
        table.add_column(col)
    for r in outcome.runs:
        result, board = finished(r), r.config.board
        label, port = (board.label, board.port) if board is not None else (config.platform, "-")
        out.rule(escape(f"{label} on {port}"))
        print_result(result, r.result_path, show_all, out, err)
        s = result.summary()
        table.add_row(*(escape(cell) for cell in (label, port, result.status, f"{s['passed']}/{s['total']}",
                                                  (result.error or {}).get("message", "").split("\n")[0])))
    out.print(table)
    if outcome.document.get("error"):  # the boards document itself could not be written everywhere
        err.print(f"[bold red]error:[/] {escape(outcome.document['error']['message'])}", highlight=False)
    out.print(f"  boards: {config.json_out or outcome.path}", markup=False, highlight=False)
    sys.exit(outcome.exit_code)


def finished(run) -> RunResult:
    """A run's result, which every run has once it has been run (execute(),
    run_boards, run_on_place); None here would be a bug in the runner."""
    if run.result is None:
        raise InfraError("internal error: a run ended without a result", hint="report this with the command line")
    return run.result


def _written_copy(config: RunConfig, runner) -> Path:
    """The result copy to point the user at: --json, unless that is the
    copy a failing disk kept from being written (then the run directory's)."""
    failed = runner.write_error.path if runner.write_error is not None else None
    if config.json_out and (failed is None or Path(failed).resolve() != Path(config.json_out).resolve()):
        return config.json_out
    return runner.result_path


def run_and_report(config: RunConfig, show_all: bool, place=None) -> None:
    from ..results.console import RunProgress, print_result
    from ..runner import Run

    if place is not None:  # --place/--place-tag: a board of a labgrid farm (harness/farm.py)
        from ..farm import run_on_place

        reporter = RunProgress(err)
        try:
            runner = run_on_place(config, place[0], reporter, wait_s=place[1])
        finally:
            reporter.close()
        result = finished(runner)
        print_result(result, _written_copy(config, runner), show_all, out, err)
        sys.exit(result.exit_code if result.exit_code is not None else 3)
    if len(config.ports) > 1 or len(config.probes) > 1:
        _run_on_boards(config, show_all)
    reporter = RunProgress(err)
    runner = Run(config, reporter)
    try:
        result = runner.execute()
    finally:
        reporter.close()
    print_result(result, _written_copy(config, runner), show_all, out, err)
    sys.exit(result.exit_code if result.exit_code is not None else 3)


class Range(click.FloatRange):
    """click's FloatRange, refusing nan (which compares false with both bounds)."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:
            self.fail(f"{value!r} is not a number", param, ctx)
        return number


POSITIVE = Range(min=0, min_open=True)  # a budget of 0 or less could never be met
POSITIVE_INT = click.IntRange(min=1)


def common_run_options(fn):
    options = [
        click.option("--platform", "-p", default="mps2-an386", show_default=True,
                     help="Platform name (see `hil platforms`) or path to a platform .toml."),
        click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
                     help="Also write the hil.result/1 JSON here (always written to the run directory)."),
        click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
                     help="Run directory for result, logs and input batches [default: .hil/runs/<id>]."),
        click.option("--firmware", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     callback=click_absolute, help="Use this prebuilt runner ELF instead of building one."),
        click.option("--invoke-timeout", type=Range(min=0, min_open=True), default=30.0, show_default=True,
                     help="Seconds to wait for one invoke before declaring a hang."),
        click.option("--inline", "force_inline", is_flag=True,
                     help="Stream the model and inputs through the UART even where host-file "
                          "transfer exists (what a board does; slow on QEMU)."),
        click.option("--all", "show_all", is_flag=True,
                     help="List every vector [default: only failing vectors, the first 20]."),
        click.option("--bake", is_flag=True,
                     help="Build the model into the firmware image (flash), as a product ships it, instead of "
                          "loading it into RAM at run time; needs a rebuild per model."),
        click.option("--localize/--no-localize", "localize", default=None,
                     help="Compare every intermediate tensor with the reference and name the first operator "
                          "whose output differs [default: only when a vector mismatches]."),
        click.option("--no-count", "no_count", is_flag=True,
                     help="Skip instruction/cycle counting and per-operator profiles (QEMU runs without "
                          "-icount: faster, but no counts, energy or count budgets)."),
        click.option("--cycles/--no-cycles", "cycles", default=True,
                     help="Cycle and latency estimates from the QEMU cycle plugin and the platform's [timing] "
                          "model, beside the instruction counts [default: on where the platform has one]."),
        click.option("--max-count", type=POSITIVE, metavar="N",
                     help="Budget: largest count per invoke, in the platform's count kind (instructions on QEMU)."),
        click.option("--max-energy-uj", type=POSITIVE, metavar="E",
                     help="Budget: largest estimated energy per inference, in uJ."),
        click.option("--max-cycles", type=POSITIVE, metavar="N",
                     help="Budget: largest cycles estimate per invoke (the platform's timing model; QEMU)."),
        click.option("--max-latency-ms", type=POSITIVE, metavar="MS",
                     help="Budget: largest latency estimate per invoke, in ms at the timing model's clock."),
        click.option("--rate", metavar="N/UNIT",
                     help="Battery-life estimate: inferences per time (1/s, 10/min, 2/h); with --battery-mah."),
        click.option("--battery-mah", metavar="MAH", help="Battery-life estimate: the battery's capacity in mAh."),
        click.option("--battery-v", metavar="V", help="Battery-life estimate: its nominal voltage [default: 3.0]."),
        click.option("--max-arena", type=POSITIVE_INT, metavar="BYTES",
                     help="Budget: tensor arena high-water mark measured on the device."),
        click.option("--max-flash", type=POSITIVE_INT, metavar="BYTES", help="Budget: flash bytes of the firmware image."),
        click.option("--max-ram", type=POSITIVE_INT, metavar="BYTES",
                     help="Budget: RAM needed (static data + stack + arena high-water + model)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def board_options(fn):
    options = [
        click.option("--port", "ports", multiple=True, metavar="URL",
                     help="Board platforms: the board's serial port, any pyserial URL (/dev/ttyACM0, "
                          "/dev/serial/by-id/..., rfc2217://host:port, socket://host:port). Repeat it to run on "
                          "several boards in parallel. [default: the only debug probe attached]"),
        click.option("--probe", "probes", multiple=True, metavar="ID",
                     help="Board platforms: the probe's serial number, to flash exactly that board (one per "
                          "--port, in the same order). `hil boards` lists them."),
        click.option("--baud", type=click.IntRange(min=1), help="Board platforms: baud rate [default: the platform file's]."),
        click.option("--flasher", type=click.Choice(["pyocd", "openocd", "west", "jlink", "command", "none"]),
                     help="Board platforms: override board.flasher (`none`: the board already runs the firmware)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@click.command("run")
@click.option("--model", "-m", required=True, type=click.Path(path_type=Path), callback=click_absolute,
              help="The .tflite model to test.")
@click.option("--vectors", "-n", default=10, show_default=True, type=int,
              help="Number of seeded random vectors (ignored with --inputs).")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0), help="Seed for random vectors.")
@click.option("--inputs", type=click.Path(path_type=Path), callback=click_absolute,
              help=".npy (one input) or .npz (input_0, input_1, ...; optional labels: class indices or "
                   "one-hot rows; classes; output_0.. expected outputs) with vectors of shape [N, *input_shape], "
                   "values in the input dtype's range.")
@click.option("--expected", "expected", is_flag=False, flag_value="", default=None, metavar="[FILE]",
              help="Also check the device's outputs against your expected outputs: the output_0, output_1, ... "
                   "arrays of --inputs, or of FILE (.npz with output_<k>, or .npy for one output), "
                   "[N, *output_shape] in the output's dtype (int8 codes for an int8 output).")
@click.option("--expected-tolerance", type=float, default=0.0, show_default=True, metavar="D",
              help="Largest allowed |device - expected| per element, in output units (0: exact).")
@click.option("--float-model", type=click.Path(path_type=Path), callback=click_absolute, metavar="FILE.tflite",
              help="The float model the tested one was quantized from: run on the host on the same (dequantized) "
                   "inputs, it gives top-1 agreement, cosine, relative L2 and accuracy of the device's outputs "
                   "against float.")
@click.option("--calibration", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              metavar="FILE.toml", help="Correct the cycle estimate with a board's calibration (`hil calibrate`): "
                                        "per-operator factors, its error band, its measured current.")
@common_run_options
@board_options
@engine_options
@click.option("--place", metavar="NAME", help="Board platforms: acquire this labgrid place (serial port, probe, power "
                                              "switch) from the coordinator in hil.toml [labgrid] or LG_COORDINATOR; "
                                              "waits while someone else holds it.")
@click.option("--place-tag", "place_tags", multiple=True, metavar="KEY=VALUE",
              help="Board platforms: any free labgrid place with this tag (repeatable), e.g. board=nucleo-l4r5zi.")
@click.option("--place-wait", type=Range(min=0), metavar="SECONDS",
              help="How long to wait for a busy place [default: hil.toml [labgrid] wait_s, else 600].")
def command(model, vectors, seed, inputs, expected, expected_tolerance, float_model, calibration, platform, json_out,
            workdir, firmware, invoke_timeout, force_inline, show_all, no_count, bake, localize, ports, probes,
            baud, flasher, **budgets) -> None:
    """Run a model on a platform and check it against the TFLM reference.

    \b
    Example:
      hil run --model my.tflite --platform mps2-an386 --vectors 100 --seed 1 --json result.json
      hil run --model my.tflite --platform nucleo-l4r5zi --port /dev/ttyACM0     (a board)
      hil run --model my.tflite --inputs test.npz --expected --float-model my_float.tflite
    """
    from ..farm import place_request
    from ..runner import RunConfig

    refuse_overwriting_inputs("--json", json_out, {"--model": model, "--inputs": inputs, "--float-model": float_model,
                                                   "--calibration": calibration, "--firmware": firmware,
                                                   "--expected": click_absolute(None, None, expected or None)})
    cycles = budgets.pop("cycles", True)  # --cycles/--no-cycles (not a budget)
    check_estimate_budgets(budgets, cycles, not no_count)

    place = place_request(budgets)  # --place/--place-tag/--place-wait (not budgets)
    build = engine_spec(budgets, [model], firmware=firmware, bake=bake)  # --engine tflm ... (not budgets)
    battery = battery_settings(platform, budgets)
    config = RunConfig(model=model, platform=platform, vectors=vectors, seed=seed, inputs=inputs,
                       json_out=json_out, workdir=workdir, firmware=firmware, build=build,
                       invoke_timeout=invoke_timeout, force_inline=force_inline, count=not no_count,
                       budgets=budgets, ports=list(ports), probes=list(probes), baud=baud, flasher=flasher,
                       localize=localize_mode(localize), bake=bake,
                       expected=expected is not None,
                       expected_file=Path(click_absolute(None, None, expected)) if expected else None,
                       expected_tolerance=expected_tolerance, float_model=float_model, battery=battery,
                       cycles=cycles, calibration=calibration)
    run_and_report(config, show_all, place)


def check_estimate_budgets(budgets: dict, cycles: bool, count: bool) -> None:
    """--max-cycles/--max-latency-ms judge the cycle estimate: refused before
    anything boots when --no-count or --no-cycles turns it off."""
    named = [k for k in ("max_cycles", "max_latency_ms") if budgets.get(k) is not None]
    if named and not (cycles and count):
        flags = " and ".join("--" + k.replace("_", "-") for k in named)
        raise UsageError(f"{flags} judge the cycle estimate, which {'--no-count' if not count else '--no-cycles'} "
                         f"turns off", hint=f"drop {flags}, or {'--no-count' if not count else '--no-cycles'}")


def battery_settings(platform: str, options: dict) -> dict | None:
    """--rate/--battery-mah/--battery-v, taken out of the budget options and
    checked (with the platform's power figures) before anything boots."""
    from .. import platforms as platform_files
    from ..power.battery import check_inputs, check_platform
    from ..power.energy import EnergyModel

    settings = check_inputs(options.pop("rate", None), options.pop("battery_mah", None), options.pop("battery_v", None))
    if settings is not None:
        p = platform_files.load_platform(platform)
        check_platform(EnergyModel.from_platform(p.power, p.counter, str(p.path)), p.name)
    return settings


def localize_mode(flag: bool | None) -> str:
    return "auto" if flag is None else ("always" if flag else "never")
