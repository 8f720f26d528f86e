"""Targets by capability and the checks every front end shares (issue 15):
what each kind of target declares, the one validator of board-only
options, the one default run directory. Pure host code: no emulator, no
build, milliseconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.platforms import load_platform
from harness.runner import Run, RunConfig, default_workdir
from harness.targets import KINDS, capabilities_of, check_board_options
from harness.targets.base import Capabilities


def test_every_kind_declares_its_capabilities():
    for kind, cls in KINDS.items():
        assert isinstance(cls.capabilities, Capabilities), kind
    assert capabilities_of(load_platform("nucleo-l4r5zi")) == Capabilities(flash=True, serial_link=True,
                                                                           readiness=True, reset=True)
    qemu = capabilities_of(load_platform("mps2-an386"))
    assert (qemu.flash, qemu.cycle_plugin, qemu.semihosting, qemu.exit_status) == (False, True, True, True)
    renode = capabilities_of(load_platform("renode-stm32f4-discovery"))
    assert renode.instruction_counter and not (renode.flash or renode.cycle_plugin or renode.semihosting)


@pytest.mark.parametrize("options, named", [
    ({"ports": ["/dev/ttyACM0"]}, "--port"),
    ({"probes": ["0669FF"], "baud": 921600}, "--probe and --baud"),
    ({"flasher": "pyocd"}, "--flasher"),
])
def test_board_options_are_refused_on_an_emulator_naming_them(options, named):
    with pytest.raises(UsageError) as exc:
        check_board_options(load_platform("mps2-an386"), **options)
    assert "are for boards" in str(exc.value) and f"{named} was given" in str(exc.value)
    assert exc.value.hint is not None
    assert "choose a board platform" in exc.value.hint


def test_board_options_pass_on_a_board_and_nothing_given_passes_anywhere():
    assert check_board_options(load_platform("nucleo-l4r5zi"), ["/dev/ttyACM0"], ["0669FF"], 115200, "pyocd")
    assert check_board_options(load_platform("mps2-an386")) is False


def test_one_default_run_directory_for_every_front_end():
    run = default_workdir("mps2-an386")
    session = default_workdir("/somewhere/my-board.toml", "session")  # a platform file's path: its stem
    assert run.parent == session.parent == Path(".hil") / "runs"
    assert run.name.split("-")[2:4] == ["mps2", "an386"] and "-session-my-board-" in session.name


def test_a_run_refuses_board_options_before_anything_is_built(tmp_path):
    """The run's first step (prepare_target) applies the same validator."""
    run = Run(RunConfig(model=tmp_path / "absent.tflite", platform="mps2-an386", ports=["/dev/ttyACM0"],
                        workdir=tmp_path / "run"))
    run.begin()
    with pytest.raises(UsageError, match="are for boards"):
        run.prepare_target()
    assert run.target is None and not (tmp_path / "run").exists()


def test_renode_does_not_claim_the_firmware_exit_status_and_console_mode_does_not_trust_one(tmp_path):
    """Renode's process exits with Renode's own status (0 after `quit`, -15
    when stopped), never the firmware's: its target must not declare
    `exit_status`, `--expect-exit` (and ConsoleDevice.wait_for_exit) must be
    refused before anything boots, and an exited Renode process must not be
    read as the firmware's status. Renode is not installed here, so this is
    a unit test: the 'target' below is a stand-in with Renode's declared
    capabilities and a real process that exited with status 0."""
    import subprocess

    from harness.console_run import ConsoleRun
    from harness.targets.renode import RenodeTarget

    assert not RenodeTarget.capabilities.exit_status
    console = ConsoleRun(tmp_path / "fw.elf", "renode-stm32f4-discovery", ["ready"], [], 5.0, expect_exit=0,
                         workdir=tmp_path / "console")
    with pytest.raises(UsageError) as exc:
        console.check_platform(expect_exit=0)
    assert "renode" in str(exc.value) and "board" not in str(exc.value)
    assert exc.value.hint is not None
    assert "--expect" in exc.value.hint

    class RenodeStandIn:  # what ConsoleRun.exit_status reads of a target: its capabilities and process
        capabilities = RenodeTarget.capabilities
        process = subprocess.Popen(["true"])

    RenodeStandIn.process.wait()
    console.target = RenodeStandIn()
    assert console.exit_status(0.1) is None
