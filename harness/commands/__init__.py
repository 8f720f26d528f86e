"""The `hil` sub-commands, imported only when one is run.

Each module here defines a click command named `command`. COMMANDS names
them with their one-line help, so `hil --help` lists every command without
importing any (importing them all pulls in numpy, rich, the runner and the
build: most of a second, several on a busy machine). tests/test_packaging.py
checks that each line matches its command's own help.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from ..errors import EXIT_INTERRUPTED

#: command name -> (module under harness.commands, its one-line help as `hil --help` shows it)
COMMANDS: dict[str, tuple[str, str]] = {
    "boards": ("boards", "List serial ports with their USB identity and debug probe, and the places of a labgrid lab."),
    "build": ("build", "Build firmware for a platform (cached), and print the ELF to test."),
    "cache": ("cache", "Show what the build cache holds; clear or prune it."),
    "calibrate": ("calibrate", "Fit the cycle estimate's per-operator factors (and the active current) to a real board."),
    "compare": ("compare", "Compare two suite runs and exit 1 if anything regressed."),
    "console": ("console", "Boot or flash any firmware and check its console output."),
    "demo": ("demo", "Build, boot, stream and check the bundled int8 gesture classifier."),
    "history": ("history", "List stored suite runs, newest first: commit, branch, verdict."),
    "init": ("init", "Write a commented starter hil.toml for your model in this directory."),
    "merge": ("merge", "Merge the suite.json of every shard of one `hil test --shard i/N` run."),
    "platforms": ("platforms", "List the platforms you can run on (the bundled platform files)."),
    "report": ("report", "Write reports of a suite run (hil.suite/1: JUnit XML, Markdown, HTML) or of a single run "
                         "(hil.result/1: HTML, Markdown)."),
    "run": ("run", "Run a model on a platform and check it against the TFLM reference."),
    "test": ("test", "Run every (platform, model) job of hil.toml and judge its checks."),
}


def first_sentence(help_text: str) -> str:
    """A command's docstring up to its first full stop, on one line (what
    `hil --help` lists)."""
    words = " ".join(help_text.split("\n\n")[0].split())
    end = words.find(". ")
    return words if end < 0 else words[:end + 1]


def shortened(text: str, limit: int) -> str:
    """`text` cut at a word to fit `limit` characters, with "..." (as click does)."""
    if len(text) <= limit:
        return text
    cut = text[:max(limit - 3, 0)].rsplit(" ", 1)[0]
    return cut + "..."


def load(name: str) -> click.Command:
    """The command `name`, importing its module now.

    Ctrl-C or SIGTERM during that import ends the process as one before the
    run started (harness/__main__.py): exit 130 straight away, because an
    interrupted import leaves half-imported modules behind and can leave the
    interpreter marked as ended by SIGINT (it would then kill itself with
    SIGINT on the way out instead of exiting 130)."""
    try:
        module = importlib.import_module(f"{__name__}.{COMMANDS[name][0]}")
    except KeyboardInterrupt:
        sys.stderr.write("interrupted before the run started\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    command = module.command
    if not isinstance(command, click.Command):
        raise TypeError(f"{module.__name__}.command is not a click command")
    return command


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported when invoked (or when
    their own help is asked for), not when the group is built or listed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        return load(cmd_name) if cmd_name in COMMANDS else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from COMMANDS' help lines, as click would print it."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(n, shortened(COMMANDS[n][1], limit)) if n in COMMANDS
                else (n, self.commands[n].get_short_help_str(limit)) for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
