"""`hil <command> --help` is as cheap as `hil --help`: a command module
declares its options with click alone and imports the heavy parts (numpy,
the reference interpreter, the runner, the build, the serial link) in its
body, when it runs. benchmarks/cli_startup.py measures the time; this test
checks what is imported, which does not depend on the machine's load."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.commands import COMMANDS

#: modules `--help` has no use for (each costs tens to hundreds of milliseconds, numpy and tflite_micro most;
#: the platform files' schema, harness.platforms, is not among them: `hil compare` and `hil report` keep it)
HEAVY = ("numpy", "tflite_micro", "serial", "harness.runner", "harness.model", "harness.build", "harness.checks",
         "harness.suite", "harness.targets", "harness.link", "harness.results.result", "harness.config")

#: commands whose module belongs to another part of the work (their imports are theirs to move)
NOT_YET = {"cache": "harness/commands/cache.py is the reference cache's (REFCACHE)"}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_commands_help_imports_nothing_heavy(name):
    if name in NOT_YET:
        pytest.skip(NOT_YET[name])
    probe = ("import sys\n"
             "from harness.cli import main\n"
             "try:\n"
             f"    main([{name!r}, '--help'], standalone_mode=False)\n"
             "finally:\n"
             f"    heavy = sorted({{m.split('.')[0] if not m.startswith('harness') else '.'.join(m.split('.')[:2])\n"
             f"                    for m in sys.modules if m.startswith({HEAVY!r})}})\n"
             "    print('HEAVY', heavy)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout, done.stdout.splitlines()[-1]
    assert "--help" in done.stdout  # the options are still declared and shown
