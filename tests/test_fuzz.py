"""The firmware's libFuzzer targets (firmware/fuzz/), built with Debian's
clang and ASan/UBSan by scripts/fuzz.py: every file of the regression
corpus (seeds and every crash found, minimised) replays without a sanitizer
report, and each target fuzzes clean for a bounded time, as CI runs it.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from helpers import FIRMWARE, REPO

_spec = importlib.util.spec_from_file_location("hil_fuzz_script", REPO / "scripts" / "fuzz.py")
assert _spec is not None and _spec.loader is not None
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

TARGETS = sorted(fuzz.TARGETS)
# seconds per target in the bounded run (a smoke run: the campaigns are scripts/fuzz.py runs); CI may raise it
FUZZ_SECONDS = int(os.environ.get("HIL_FUZZ_SECONDS", "10"))

pytestmark = pytest.mark.skipif(fuzz.missing_runtime() is not None,
                                reason=f"no libFuzzer here: {fuzz.missing_runtime()}")


@pytest.mark.parametrize("target", TARGETS)
def test_corpus_replays_clean(target):
    files = fuzz.corpus_files(target)
    assert files, f"firmware/fuzz/corpus/{target} is empty"
    done = fuzz.replay(target, files)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Sanitizer" not in done.stderr and "runtime error" not in done.stderr, done.stderr[-4000:]


def test_corpus_stays_small():
    files = [p for p in (FIRMWARE / "fuzz" / "corpus").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 2 * 1024 * 1024


def test_corpus_holds_the_reproducers_of_issue_11():
    """The bugs found stay in the corpus: the LOAD_MODEL continuation whose
    smaller total made the device write past its model buffer (ASan), the
    zero input dimension that divided by zero in conv_prepare and the
    INT32_MIN stride STRIDED_SLICE negated (UBSan)."""
    corpus = FIRMWARE / "fuzz" / "corpus"
    assert (corpus / "proto" / "crash-load-model-total-shrinks").stat().st_size > 65536
    assert (corpus / "engine" / "crash-conv-zero-input-channels").is_file()
    assert (corpus / "engine" / "crash-strided-slice-int32-min-stride").is_file()


@pytest.mark.parametrize("target", TARGETS)
def test_bounded_fuzz_run_finds_nothing(target, tmp_path):
    figures = fuzz.run(target, runs=None, seconds=FUZZ_SECONDS, work=tmp_path)
    assert figures["exit"] == 0 and not figures["crashes"], figures.get("log_tail", figures)
    assert figures["executions"] > 0
