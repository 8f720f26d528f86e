"""`hil <command> --help` is as cheap as `hil --help`: a command module
declares its options with click alone and imports the heavy parts (numpy,
the reference interpreter, the runner, the build, the serial link) in its
body, when it runs. benchmarks/cli_startup.py measures the time; this test
checks what is imported, which does not depend on the machine's load."""

from __future__ import annotations

import subprocess
import sys

from harness.commands import COMMANDS

#: modules `--help` has no use for (each costs tens to hundreds of milliseconds, numpy and tflite_micro most;
#: the platform files' schema, harness.platforms, is not among them: `hil compare` and `hil report` keep it)
HEAVY = ("numpy", "tflite_micro", "serial", "harness.runner", "harness.model", "harness.build", "harness.checks",
         "harness.suite", "harness.targets", "harness.link", "harness.results.result", "harness.config")

#: commands whose module belongs to another part of the work (their imports are theirs to move)
NOT_YET = {"cache": "harness/commands/cache.py is the reference cache's (REFCACHE)"}


def test_no_commands_help_imports_anything_heavy():
    """One interpreter asks every command for its --help in turn and notes
    the heavy modules each brings in (one process, not one per command: CI's
    time; a command after an offender is only checked for what it adds)."""
    names = [n for n in sorted(COMMANDS) if n not in NOT_YET]
    probe = ("import contextlib, io, sys\n"
             "from harness.cli import main\n"
             f"for name in {names!r}:\n"
             "    shown = io.StringIO()\n"
             "    with contextlib.redirect_stdout(shown):\n"
             "        main([name, '--help'], standalone_mode=False)\n"
             f"    heavy = sorted(m for m in sys.modules if m.startswith({HEAVY!r}))\n"
             "    print(name, '--help' in shown.getvalue(), heavy[:5])\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(names), done.stdout
    assert [line for line in lines if not line.endswith(" True []")] == [], "\n".join(lines)
