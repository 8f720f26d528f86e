"""The reference outputs of a job are computed once per (model, vectors,
arena, tflite-micro version) and then read from the cache, with no child
process; a damaged cache file or HIL_REFERENCE_CACHE=0 means computing them
as before. Real TFLM (the tflite-micro package), no emulator."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import MODELS

from harness.model.reference import ReferenceRunner
from harness.model.tflite import load_model
from harness.model.vectors import random_vectors


def _outputs(model, vectors) -> tuple[list, bool]:
    """Every vector's outputs, and whether a child computed them."""
    runner = ReferenceRunner(model.data, len(model.outputs))
    try:
        runner.submit(vectors)
        computed = not runner.cached
        return [runner.output(i) for i in range(len(vectors))], computed
    finally:
        runner.close()


def _same(a: list, b: list) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) and x.dtype == y.dtype and x.shape == y.shape
                                    for u, v in zip(a, b) for x, y in zip(u, v))


def test_second_run_reads_the_cache_and_a_damaged_file_is_computed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path))
    model = load_model(MODELS / "test" / "stateful_int8.tflite")  # state: the outputs depend on the order
    vectors = random_vectors(model, 12, seed=21).vectors
    first, computed = _outputs(model, vectors)
    assert computed
    kept = list((tmp_path / "reference").glob("*.npz"))
    assert len(kept) == 1
    again, computed = _outputs(model, vectors)
    assert not computed and _same(first, again)

    assert _outputs(model, vectors[:11])[1], "other vectors (here one fewer) are another job"
    assert _outputs(model, vectors[::-1])[1], "the same vectors in another order are another job"

    kept[0].write_bytes(b"not an npz")
    repaired, computed = _outputs(model, vectors)
    assert computed and _same(first, repaired)
    assert not _outputs(model, vectors)[1], "the damaged file was replaced"

    monkeypatch.setenv("HIL_REFERENCE_CACHE", "0")
    assert _outputs(model, vectors)[1]


def test_an_unwritable_cache_only_costs_the_saving(tmp_path, monkeypatch):
    home = tmp_path / "file"
    home.write_text("a file where the cache directory should be")
    monkeypatch.setenv("HIL_CACHE_DIR", str(home))
    model = load_model(MODELS / "demo" / "gesture.tflite")
    vectors = random_vectors(model, 3, seed=2).vectors
    outputs, computed = _outputs(model, vectors)
    assert computed and len(outputs) == 3


def test_a_kept_file_for_another_count_is_computed_again(tmp_path, monkeypatch):
    """A file under the job's name that holds other than the job's vectors
    (a foreign or half-replaced file) is no hit: before, the run failed with
    "the cached reference outputs have no vector 5" (an error, not a miss)."""
    from harness.model.reference import ReferenceCache

    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path))
    model = load_model(MODELS / "demo" / "gesture.tflite")
    vectors = random_vectors(model, 8, seed=5).vectors
    first, _ = _outputs(model, vectors)
    cache = ReferenceCache.for_job(model.data, vectors, max(16 << 20, 20 * len(model.data)), len(model.outputs))
    assert cache is not None and cache.path.is_file()
    ReferenceCache(cache.path).store(first[:5])
    again, computed = _outputs(model, vectors)
    assert computed and _same(first, again)
    assert not _outputs(model, vectors)[1], "the short file was replaced"


def test_the_key_names_the_reference_as_built_not_only_its_version(monkeypatch):
    """A tflite-micro rebuilt under the same version, or a change to how this
    harness feeds the interpreter, is another job (host only)."""
    import harness.model.reference as reference

    model = load_model(MODELS / "demo" / "gesture.tflite")
    vectors = random_vectors(model, 2, seed=1).vectors
    name = reference._implementation()
    assert "tflite-micro" in name and "reference.py" in name and "numpy" in name
    before = reference.ReferenceCache.for_job(model.data, vectors, 1 << 20, 1)
    monkeypatch.setattr(reference, "_implementation", lambda: name.replace("tflite-micro", "tflite-micro rebuilt"))
    after = reference.ReferenceCache.for_job(model.data, vectors, 1 << 20, 1)
    assert before is not None and after is not None and before.path != after.path


def test_a_reference_killed_from_outside_is_not_blamed_on_the_model(monkeypatch):
    """A reference child SIGKILLed (the out-of-memory killer, kill -9) was
    reported with the hint "the model may need a larger arena": sending
    the user to their model for a machine problem. Now the hint names the
    killer and the fix; a crash of its own still points at the model."""
    import signal as signals

    from harness.errors import InfraError

    monkeypatch.setenv("HIL_REFERENCE_CACHE", "0")
    model = load_model(MODELS / "test" / "conv_sweep.tflite")
    vectors = random_vectors(model, 20000, seed=3).vectors
    runner = ReferenceRunner(model.data, len(model.outputs))
    try:
        runner.submit(vectors)
        runner.output(0)
        assert runner._proc is not None
        runner._proc.send_signal(signals.SIGKILL)
        with pytest.raises(InfraError) as failure:
            runner.output(len(vectors) - 1)
    finally:
        runner.close()
    assert "died with signal SIGKILL" in str(failure.value) and "of 20000 vectors done" in str(failure.value)
    assert "out-of-memory" in (failure.value.hint or "") and "arena" not in (failure.value.hint or "")
