"""The `hil` command line: the root group, its logging options, and the
exit status of whatever command ran.

Exit status: 0 every check passed; 1 the firmware failed (a mismatch, a
fault, a hang); 2 bad usage or input; 3 infrastructure failure that the
firmware did not cause; 130 interrupted (results so far are kept).

The sub-commands live in harness/commands/ and are imported only when one
runs (`hil --help` imports none of them: harness/commands/__init__.py).
"""

from __future__ import annotations

import gc
import logging
import sys
from pathlib import Path

import click

from . import logs
from .commands import LazyGroup
from .errors import EXIT_USAGE, HilError
from .paths import click_absolute

log = logging.getLogger(__name__)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="hil")
@click.option("--verbose", "-v", "verbosity", count=True,
              help="Show hil's log on stderr: -v what it does (builds, boots, the reference), -vv debug detail.")
@click.option("--log-file", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              help="Also write hil's whole log (debug records) to this file.")
@click.pass_context
def main(ctx: click.Context, verbosity: int, log_file: Path | None) -> None:
    """hil: hardware-in-the-loop tests for embedded ML firmware.

    Builds the firmware, boots it in an emulator (or a board), streams test
    vectors through it and checks every output bit for bit against the
    TensorFlow Lite Micro reference interpreter.

    \b
    Start here:
      hil demo                                   the bundled gesture model on a Cortex-M4F
      hil run --model m.tflite --platform mps2-an386 --vectors 100 --seed 1
      hil platforms                              what you can run on
      hil -v run ...                             the same, saying what it does on stderr

    Exit status: 0 passed, 1 firmware failed (mismatch, fault, hang),
    2 bad usage or input, 3 infrastructure failure, 130 interrupted.
    """
    logs.configure(verbosity, log_file)
    ctx.call_on_close(logs.reset)


def _print_error(message: str) -> None:
    from rich.markup import escape

    from .results.console import make_console

    make_console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)


def entry() -> None:
    try:
        _run_main()
    finally:
        # Leaving, the interpreter collects every object once more (numpy, SQLAlchemy, rich and the
        # TFLM schema make 10^5 of them: 0.5-1 s on a busy machine, after the work is done). Frozen,
        # they are freed without that walk; atexit handlers still run.
        gc.freeze()
        # A KeyboardInterrupt that passed through code compiled from a string (a dataclass's or
        # namedtuple's generated methods, while a module imports) marks the interpreter as "ended
        # by Ctrl-C" even when hil caught it; under `python -m harness` CPython then kills itself
        # with SIGINT on the way out instead of exiting 130. Evaluating any string clears the mark.
        exec("pass")


def _run_main() -> None:
    try:
        main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        # no import here: the interrupt may have landed inside a sub-command's
        # import, and importing the half-imported modules again fails
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except HilError as exc:
        _print_error(str(exc))
        sys.exit(exc.exit_code)
