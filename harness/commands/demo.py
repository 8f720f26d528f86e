"""`hil demo`: the bundled gesture classifier on its labelled test set."""

from __future__ import annotations

import logging

import click

from .. import resources
from .build import engine_options, engine_spec
from .run import battery_settings, board_options, check_estimate_budgets, common_run_options, localize_mode, run_and_report

log = logging.getLogger(__name__)


@click.command("demo")
@common_run_options
@board_options
@engine_options
def command(platform, json_out, workdir, firmware, invoke_timeout, force_inline, show_all, no_count,
            bake, localize, ports, probes, baud, flasher, **budgets) -> None:
    """Build, boot, stream and check the bundled int8 gesture classifier.

    Runs models/demo/gesture.tflite on its labelled test set: every output
    must be bit-exact with TFLM, and the table shows the device's top-1
    accuracy and the instruction count per inference.
    """
    from ..runner import RunConfig  # here, not above: `hil demo --help` needs click alone

    model, vectors = resources.demo_model(), resources.demo_vectors()
    cycles = budgets.pop("cycles", True)  # --cycles/--no-cycles (not a budget)
    check_estimate_budgets(budgets, cycles, not no_count)
    build = engine_spec(budgets, [model], firmware=firmware, bake=bake)  # --engine tflm ... (not budgets)
    battery = battery_settings(platform, budgets)
    config = RunConfig(model=model, platform=platform, inputs=vectors, json_out=json_out,
                       workdir=workdir, firmware=firmware, build=build, invoke_timeout=invoke_timeout,
                       force_inline=force_inline, count=not no_count, budgets=budgets,
                       ports=list(ports), probes=list(probes), baud=baud, flasher=flasher,
                       localize=localize_mode(localize), bake=bake, battery=battery,
                       cycles=cycles)
    run_and_report(config, show_all)
