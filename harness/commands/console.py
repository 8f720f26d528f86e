"""`hil console`: boot (or flash) any firmware and check what it prints.

For firmware that does not speak the hil protocol: an upstream TFLM
example, a Zephyr sample, a ztest binary. Ordered `--expect` patterns must
appear on the console, `--fail` patterns must not, named groups become
metrics, and in an emulator the firmware's semihosting exit status can be
checked (`--expect-exit`). The result is a `hil.console/1` JSON document
next to the console log, with the exit codes of `hil run`.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.markup import escape

from ..errors import EXIT_INFRA
from ..paths import click_absolute
from ..results.terminal import make_console

log = logging.getLogger(__name__)

out = make_console()
err = make_console(stderr=True)


def _print(doc: dict, result_path: Path) -> None:
    status = doc.get("status")
    expects = doc.get("expect", [])
    matched = sum(1 for e in expects if e.get("status") == "matched")
    verdict = {"passed": "[bold green]PASSED[/]", "failed": "[bold red]FAILED[/]"}.get(
        str(status), f"[bold red]{str(status).upper()}[/]")
    where = escape(str(doc.get("target", {}).get("port") or doc.get("platform", {}).get("name")))
    if status in ("passed", "failed"):
        line = f"{verdict}  {matched}/{len(expects)} patterns matched on {where} ({doc.get('console')} console)"
        fx = doc.get("firmware_exit")
        if fx:
            line += f"; firmware exit status {fx['code']}"
            if fx.get("expected") is not None:
                line += f" (expected {fx['expected']})"
        out.print(line, highlight=False)
        for e in expects:
            mark = {"matched": "[green]ok[/]", "waiting": "[red]waiting[/]"}.get(e["status"], "[dim]not reached[/]")
            detail = f"  [dim]{escape(str(e.get('text')))}[/]" if e.get("text") else ""
            out.print(f"  {mark:>20}  {escape(e['pattern'])}{detail}", highlight=False, soft_wrap=True)
        if doc.get("metrics"):
            out.print("  metrics: " + ", ".join(f"{k}={v}" for k, v in doc["metrics"].items()), highlight=False,
                      markup=False)
        from ..link.console import estimate_lines

        for line in estimate_lines(doc.get("cycles")):
            out.print(line, highlight=False, soft_wrap=True, markup=False)
    error = doc.get("error")
    if error:
        err.print(f"[bold red]error:[/] {escape(error['message'])}", soft_wrap=True, highlight=False)
        tail = doc.get("log_tail") or []
        if tail and status == "failed":
            err.print("  last console lines:", highlight=False)
            for t in tail[-8:]:
                err.print(f"    | {t}", highlight=False, soft_wrap=True, markup=False)
    out.print(f"  console log: {doc.get('log')}\n  result: {result_path}", highlight=False, markup=False)


@click.command("console")
@click.option("--elf", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              callback=click_absolute,
              help="The firmware to boot or flash (any firmware: it need not speak the hil protocol).")
@click.option("--platform", "-p", default="mps2-an386", show_default=True,
              help="Platform name (`hil platforms`) or path to a platform .toml: an emulator or a board.")
@click.option("--expect", "expect", multiple=True, metavar="REGEX",
              help="A line that must appear, in order (repeatable). Named groups, e.g. "
                   "'took (?P<ms>\\d+) ms', are recorded as metrics.")
@click.option("--fail", "fail", multiple=True, metavar="REGEX",
              help="A line that fails the run at once (repeatable), e.g. 'ASSERT|FAILED|HardFault'; watched "
                   "on every line until the firmware exits or the timeout, also after the last --expect. "
                   "--fail alone is a smoke test: it passes when no such line came within --timeout.")
@click.option("--timeout", type=float, default=60.0, show_default=True,
              help="Seconds for the whole session; on timeout the pattern being waited for is named.")
@click.option("--console", "console", type=click.Choice(["uart", "semihosting"]), default="uart",
              show_default=True, help="Where the firmware prints: its UART, or (emulators) semihosting "
                                      "SYS_WRITE0/SYS_WRITEC.")
@click.option("--expect-exit", type=int, metavar="N",
              help="Emulators: wait for the firmware to exit (semihosting SYS_EXIT / SYS_EXIT_EXTENDED) and "
                   "require exit status N.")
@click.option("--port", "ports", multiple=True, metavar="URL",
              help="Boards: the serial port (pyserial URL) [default: the only debug probe attached].")
@click.option("--probe", "probes", multiple=True, metavar="ID", help="Boards: the probe's serial number.")
@click.option("--baud", type=click.IntRange(min=1), help="Boards: baud rate [default: the platform file's].")
@click.option("--flasher", type=click.Choice(["pyocd", "openocd", "west", "jlink", "command", "none"]),
              help="Boards: override board.flasher.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), callback=click_absolute,
              help="Also write the hil.console/1 JSON here (always written to the run directory).")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), callback=click_absolute,
              help="Run directory for the result and the console log [default: .hil/runs/<id>].")
@click.option("--echo", is_flag=True, help="Show the console on stderr as it arrives.")
@click.option("--mark", "marks", multiple=True, metavar="SYMBOL",
              help="QEMU: a function of the firmware; the cycles estimate between consecutive hits of the "
                   "marks is reported (repeatable; keep the function from being inlined).")
@click.option("--cycles/--no-cycles", "cycles", default=True,
              help="QEMU: the whole run's cycles estimate from the cycle plugin and the platform's [timing] "
                   "model [default: on where the platform has one].")
def command(elf, platform, expect, fail, timeout, console, expect_exit, ports, probes, baud, flasher,
            json_out, workdir, echo, marks, cycles) -> None:
    """Boot or flash any firmware and check its console output.

    \b
    Examples:
      hil console --elf test.elf --console semihosting --expect 'PASS' --fail 'FAIL' --expect-exit 0
      hil console --elf zephyr.elf -p nucleo-l4r5zi --port /dev/ttyACM0 \\
          --expect 'Booting Zephyr' --expect 'inference took (?P<ms>\\d+) ms' --fail 'ASSERTION FAIL'

    Exit status: 0 every pattern matched (and the exit status, if asked),
    1 a fail pattern, a timeout or a wrong exit status, 2 bad usage,
    3 infrastructure (emulator missing, device not detected), 130 interrupted.
    """
    from ..console_run import ConsoleRun

    echo_fn = (lambda text: (sys.stderr.write(text), sys.stderr.flush())) if echo else None
    run = ConsoleRun(elf, platform, list(expect), list(fail), timeout, console, expect_exit, list(ports),
                     list(probes), baud, flasher, json_out, workdir, echo_fn, list(marks), cycles)
    doc = run.execute()
    _print(doc, Path(json_out) if json_out else run.result_path)
    sys.exit(doc.get("exit_code") if doc.get("exit_code") is not None else EXIT_INFRA)
