"""Cycle estimates from what the emulated core executes (issue #13).

    model = TimingModel.for_platform(platform)         # None: the platform has no [timing] table
    plugin = CyclePlugin(model, workdir, elf)          # marker 0 = the firmware's board_counter
    qemu_cmd += plugin.qemu_args()                     # builds the plugin (cached), writes its config
    alignment = align_invoke(plugin.records(), count, op_counts, tolerance)   # after each INVOKE reply
    plugin.totals()                                    # whole run, once QEMU has exited

model.py reads the tables, plugin.py drives firmware/qemu-plugin/hil_cycles.c,
align.py ties records to invokes and refuses to estimate when the plugin's
exact instruction count disagrees with the firmware's own.
"""

from .align import Alignment, RunCycles, align_invoke, between_marks
from .model import TimingModel
from .plugin import CyclePlugin, Record, build_plugin

__all__ = ["Alignment", "CyclePlugin", "RunCycles", "Record", "TimingModel", "align_invoke", "between_marks", "build_plugin"]
