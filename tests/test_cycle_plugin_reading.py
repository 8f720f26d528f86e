"""How the host reads the cycle plugin's output file while QEMU runs
(harness/timing/plugin.py): kept open and read from where it left off, a
line split across reads, reads that stop at a cut.

The test writes the records itself, in the plugin's format and its way
(appending to the file the host has open): QEMU cannot be made to stop a
write mid-line on demand. tests/test_cycle_plugin.py reads what the real
plugin writes.
"""

from __future__ import annotations

import os

import pytest

from harness.timing import CyclePlugin, Record
from harness.timing import plugin as plugin_module
from test_cycle_plugin import _model, loop_elf  # noqa: F401  (a fixture, used by name)


@pytest.fixture
def plugin(loop_elf, tmp_path):  # noqa: F811
    found = CyclePlugin(_model(), tmp_path, loop_elf)
    found.qemu_args()  # writes the config and an empty output file, as before QEMU starts
    yield found
    found.close()


def _append(plugin: CyclePlugin, text: str) -> None:
    with open(plugin.output_path, "a") as out:
        out.write(text)


def test_a_record_split_across_reads_is_returned_once_whole(plugin):
    _append(plugin, "M 0 10 12\nM 0 2")
    assert plugin.records() == [Record(0, 10, 12)]
    _append(plugin, "0 25\n")
    assert plugin.records() == [Record(0, 20, 25)]
    assert plugin.records() == []


def test_records_stop_at_the_cut_and_the_rest_comes_later(plugin):
    _append(plugin, "M 0 1 1\nM 0 2 2\n")
    cut = plugin.cut()
    _append(plugin, "M 0 3 3\n")  # written after the cut: the next request's
    assert plugin.records(upto=cut) == [Record(0, 1, 1), Record(0, 2, 2)]
    assert plugin.records() == [Record(0, 3, 3)]


def test_the_file_is_opened_once_for_many_reads_and_again_after_close(plugin, monkeypatch):
    opened = []
    real_open = os.open

    def counting_open(*a, **k):
        opened.append(a[0])
        return real_open(*a, **k)
    monkeypatch.setattr(plugin_module.os, "open", counting_open)
    for i in range(50):
        _append(plugin, f"M 0 {i} {i}\n")
        assert plugin.records(upto=plugin.cut()) == [Record(0, i, i)]
    assert len(opened) == 1
    plugin.close()
    _append(plugin, "X 100 120\nU 3\n")
    assert plugin.totals() == {"instructions": 100, "cycles": 120, "histogram": {}, "unclassified": 3}
    assert len(opened) == 2


def test_a_new_run_starts_reading_its_own_file_from_the_start(plugin):
    _append(plugin, "M 0 5 5\n")
    assert plugin.records() == [Record(0, 5, 5)]
    plugin.qemu_args()  # the next QEMU session: the file starts over
    _append(plugin, "M 0 7 7\n")
    assert plugin.records() == [Record(0, 7, 7)]
