"""Where a reference came from (the result's provenance.reference_outputs),
and the reference cache kept bounded: a size cap with least-recently-used
pruning, damaged files removed as misses, concurrent writers, `hil cache`.
Real TFLM (the tflite-micro package) and real `hil` processes; no emulator."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from helpers import MODELS, REPO

from harness.errors import UsageError
from harness.model.reference import ReferenceCache, ReferenceRunner
from harness.model.reference_cache import describe, parse_size, prune, size_limit
from harness.model.tflite import load_model
from harness.model.vectors import random_vectors
from harness.results.run_report import provenance_rows, render_run_markdown

HIL = [sys.executable, "-m", "harness"]


def _run(model, vectors) -> tuple[list, dict]:
    """Every vector's outputs and where they came from."""
    runner = ReferenceRunner(model.data, len(model.outputs))
    try:
        runner.submit(vectors)
        outputs = [runner.output(i) for i in range(len(vectors))]
    finally:
        runner.close()
    return outputs, runner.provenance()


def test_provenance_says_computed_then_cache_and_what_the_key_covers(tmp_path, monkeypatch):
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path))
    model = load_model(MODELS / "demo" / "gesture.tflite")
    vectors = random_vectors(model, 4, seed=3).vectors
    _, first = _run(model, vectors)
    assert first["source"] == "computed" and first["kept"] and first["note"] is None
    assert Path(first["file"]) == tmp_path / "reference" / f"{first['key']}.npz" and Path(first["file"]).is_file()
    covers = first["covers"]
    assert covers["model_sha256"] == hashlib.sha256(model.data).hexdigest()
    assert covers["vectors"] == 4 and covers["outputs"] == len(model.outputs) and covers["arena_bytes"] > 0
    assert "tflite-micro" in covers["implementation"] and "numpy" in covers["implementation"]
    # the key is the hash of what `covers` names: anyone can check it from the result alone
    digest = hashlib.sha256(f"hil-reference/3 {covers['implementation']} arena {covers['arena_bytes']} "
                            f"outputs {covers['outputs']} vectors {covers['vectors']}\n".encode())
    digest.update(bytes.fromhex(covers["model_sha256"]) + bytes.fromhex(covers["vectors_sha256"]))
    assert digest.hexdigest()[:32] == first["key"]

    _, again = _run(model, vectors)
    assert again == {**first, "source": "cache"}
    assert describe(again).startswith("from the cache; cache file ") and first["key"] in describe(again)
    assert describe(first).startswith("computed in this run; cache file ") and "(kept there)" in describe(first)

    monkeypatch.setenv("HIL_REFERENCE_CACHE", "0")
    _, off = _run(model, vectors)
    assert off["source"] == "computed" and off["file"] is None and "HIL_REFERENCE_CACHE=0" in off["note"]


def test_reports_show_the_reference_outputs_and_read_documents_without_them():
    """The Markdown and HTML run reports name where the reference came from;
    a document written before the field existed still renders (host only)."""
    prov = {"source": "cache", "file": "/c/reference/ab.npz", "key": "ab", "kept": True, "note": None,
            "covers": {"implementation": "tflite-micro 0.dev1 f00 numpy 1.26.4 reference.py 0a", "vectors": 3,
                       "model_sha256": "12" * 32, "vectors_sha256": "34" * 32, "arena_bytes": 16 << 20, "outputs": 1}}
    doc: dict[str, Any] = {"schema": "hil.result/1", "status": "passed", "provenance": {
        "reference": {"package": "tflite-micro", "version": "0.dev1"}, "reference_outputs": prov}}
    assert ("reference outputs", describe(prov)) in provenance_rows(doc)
    text = render_run_markdown(doc)
    assert "- reference outputs: from the cache; cache file /c/reference/ab.npz" in text
    assert "provenance: reference tflite-micro 0.dev1\n" in text
    old = {"schema": "hil.result/1", "status": "passed", "provenance": {"reference": doc["provenance"]["reference"]}}
    assert all(k != "reference outputs" for k, _ in provenance_rows(old)) and "reference outputs" not in \
        render_run_markdown(old)


def test_a_truncated_or_garbage_file_is_a_miss_that_is_logged_removed_and_replaced(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path))
    model = load_model(MODELS / "demo" / "gesture.tflite")
    vectors = random_vectors(model, 6, seed=8).vectors
    first, prov = _run(model, vectors)
    path = Path(prov["file"])
    good = path.read_bytes()
    at = zipfile.ZipFile(path).infolist()[1].header_offset - 2  # in vector 0's output values
    flipped = good[:at] + bytes([good[at] ^ 1]) + good[at + 1:]  # one bit: the zip's CRC catches it
    for damage in (good[:len(good) // 2], b"garbage" * 10, good[:-40] + bytes(40), flipped):
        path.write_bytes(damage)
        cache = ReferenceCache(path, len(vectors), len(model.outputs))
        with caplog.at_level(logging.WARNING, logger="harness.model.reference"):
            caplog.clear()
            assert cache.load() is None
        assert not path.exists(), "the damaged file is removed at once"
        assert any(str(path) in r.getMessage() and "removed" in r.getMessage() for r in caplog.records)
    path.symlink_to(path.name)  # a file whose status cannot even be read (a symlink loop): a miss, not a crash
    assert ReferenceCache(path, len(vectors), len(model.outputs)).load() is None and path.is_symlink()
    path.unlink()
    path.write_bytes(good[:len(good) // 2])
    again, prov = _run(model, vectors)  # through the runner: a miss, computed, not a failure
    assert prov["source"] == "computed" and prov["kept"]
    assert all(np.array_equal(a, b) for u, v in zip(first, again) for a, b in zip(u, v))
    assert path.read_bytes() == good and _run(model, vectors)[1]["source"] == "cache"


def _store(directory: Path, name: str, size: int, limit: int | None, used: float | None = None) -> Path:
    cache = ReferenceCache(directory / f"{name}.npz", limit=limit)
    cache.store([[np.zeros(size, np.int8)]])
    if used is not None and cache.path.exists():
        os.utime(cache.path, (used, used))
    return cache.path


def test_the_cap_removes_the_least_recently_used_files_first(tmp_path):
    d = tmp_path / "reference"
    now = time.time()
    paths = [_store(d, f"f{i}", 10_000, None, now - 100 + i) for i in range(4)]  # f0 oldest ... f3 newest
    one = paths[0].stat().st_size
    assert ReferenceCache(paths[0], 1, 1).load() is not None  # a hit marks f0 used now: it goes last
    stale = d / ".f9.npz.1.1"
    stale.write_bytes(b"x" * 100)
    os.utime(stale, (now - 7200, now - 7200))  # a killed writer's temporary file, two hours old
    fresh = d / ".f8.npz.2.2"
    fresh.write_bytes(b"y" * 10)              # a writer at work now

    newest = _store(d, "f4", 10_000, 3 * one + 50)
    left = sorted(p.name for p in d.iterdir())
    assert left == [fresh.name, "f0.npz", "f3.npz", "f4.npz"], left  # f1, f2 (least recently used) and the stale file
    assert newest.exists()
    assert prune(d, 0) and sorted(p.name for p in d.iterdir()) == [fresh.name], "cap 0 keeps only a writer's file"

    big = _store(d, "big", 10_000, 5_000)
    assert not big.exists(), "outputs larger than the whole cap are not kept"


def test_the_cap_is_read_from_the_environment_and_bad_values_are_refused_before_a_run(tmp_path, monkeypatch):
    monkeypatch.delenv("HIL_REFERENCE_CACHE_MAX", raising=False)
    assert size_limit() == (1 << 30, "default")
    assert parse_size("512M") == 512 << 20 and parse_size("1.5GiB") == 3 << 29 and parse_size("300k") == 300 << 10
    assert parse_size("4096") == 4096 and parse_size("0") == 0
    monkeypatch.setenv("HIL_REFERENCE_CACHE_MAX", "lots")
    with pytest.raises(UsageError, match="HIL_REFERENCE_CACHE_MAX='lots' is not a size") as err:
        size_limit()
    assert "512M" in str(err.value)

    env = {**os.environ, "HIL_CACHE_DIR": str(tmp_path), "HIL_REFERENCE_CACHE_MAX": "lots"}
    run = subprocess.run([*HIL, "run", "--model", str(MODELS / "demo" / "gesture.tflite"), "--platform", "mps2-an386",
                          "--vectors", "2", "--workdir", str(tmp_path / "run")], env=env, capture_output=True,
                         text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "HIL_REFERENCE_CACHE_MAX='lots' is not a size" in run.stdout + run.stderr
    assert not (tmp_path / "firmware").exists(), "refused before any build"


WRITER = """
import sys, numpy as np
from pathlib import Path
from harness.model.reference import ReferenceCache
d, tag = Path(sys.argv[1]), sys.argv[2]
for i in range(25):
    ReferenceCache(d / "shared.npz", limit=60_000).store([[np.full(3000, i % 100, np.int16)], [np.arange(i + 1)]])
    ReferenceCache(d / f"{tag}{i}.npz", limit=60_000).store([[np.zeros(2000, np.int32)]])  # pruning races
"""


def test_concurrent_writers_and_pruners_do_not_corrupt_the_cache(tmp_path):
    d = tmp_path / "reference"
    d.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(d), tag], env=env, stderr=subprocess.PIPE, text=True)
               for tag in ("a", "b")]
    seen = 0
    while any(w.poll() is None for w in writers):
        outputs = ReferenceCache(d / "shared.npz", 2, 1).load()  # all or nothing, never a mix
        if outputs is not None:
            seen += 1
            i = int(outputs[1][0][-1])
            assert np.array_equal(outputs[0][0], np.full(3000, i % 100, np.int16))
    assert [w.wait() for w in writers] == [0, 0], [w.stderr.read() for w in writers if w.stderr]
    assert seen, "the reader saw whole files while the writers wrote and pruned"
    assert not [p for p in d.iterdir() if p.name.startswith(".")], "no temporary file left behind"
    assert sum(p.stat().st_size for p in d.iterdir()) <= 60_000


@pytest.fixture
def hil_in_process(monkeypatch, capsys):
    """`hil ARGS` through the CLI's own entry point (exit status as the shell
    sees it) in this process: a second each saved against a new interpreter."""
    from harness.cli import entry

    def run(*args: str, env: dict) -> subprocess.CompletedProcess:
        with monkeypatch.context() as m:
            for name in ("HIL_CACHE_DIR", "HIL_REFERENCE_CACHE_MAX", "HIL_REFERENCE_CACHE"):
                m.delenv(name, raising=False)
            for name, value in env.items():
                m.setenv(name, value)
            m.setattr(sys, "argv", ["hil", *args])
            code = 0
            try:
                entry()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)
    return run


def test_hil_cache_info_clear_and_prune(tmp_path, hil_in_process):
    _hil = hil_in_process
    root = tmp_path / "cache"
    env = {"HIL_CACHE_DIR": str(root)}
    for i in range(3):
        _store(root / "reference", f"r{i}", 20_000, None, time.time() - 10 + i)
    for build in ("firmware/mps2-an386-1", "firmware/mps2-an386-2", "cmake/app-1/mps2-an386-3", "qemu-plugin/abc"):
        (root / build).mkdir(parents=True)
        (root / build / "app.elf").write_bytes(b"\0" * 1000)
    (root / "firmware/mps2-an386-1/.lock").touch()
    (root / "cmake/app-1/mps2-an386-3/.hil-lock").touch()
    (root / "mine").mkdir()  # not hil's: never touched

    info = _hil("cache", env=env)
    assert info.returncode == 0, info.stderr
    assert str(root) in info.stdout and "HIL_CACHE_DIR" in info.stdout
    lines = {line.split()[0]: line for line in info.stdout.splitlines()[1:]}
    assert "3 entries" in lines["reference"] and "cap 1.0 GiB (default; HIL_REFERENCE_CACHE_MAX)" in lines["reference"]
    assert "3 entries" in lines["firmware"] and "1 entries" in lines["plugin"]
    assert _hil("cache", "info", env=env).stdout == info.stdout

    help_text = _hil("cache", "--help", env=env).stdout
    assert all(w in help_text for w in ("HIL_REFERENCE_CACHE_MAX", "HIL_CACHE_DIR", "clear --reference", "prune --max"))

    bad = _hil("cache", "prune", "--max", "tiny", env=env)
    assert bad.returncode == 2 and "--max 'tiny' is not a size" in bad.stdout + bad.stderr
    assert _hil("cache", env={**env, "HIL_REFERENCE_CACHE_MAX": "x"}).returncode == 2

    one = (root / "reference" / "r0.npz").stat().st_size
    pruned = _hil("cache", "prune", "--max", str(2 * one), env=env)
    assert pruned.returncode == 0 and "reference: removed 1" in pruned.stdout, pruned.stdout + pruned.stderr
    assert sorted(p.name for p in (root / "reference").iterdir()) == ["r1.npz", "r2.npz"]

    with open(root / "firmware/mps2-an386-1/.lock", "a") as held:  # a build running now
        fcntl.flock(held, fcntl.LOCK_EX)
        cleared = _hil("cache", "clear", "--firmware", env=env)
    assert cleared.returncode == 0, cleared.stderr
    assert "firmware: removed 2" in cleared.stdout and "kept" in cleared.stdout and "mps2-an386-1" in cleared.stdout
    assert sorted(p.name for p in (root / "firmware").iterdir()) == ["mps2-an386-1"]
    assert not (root / "cmake" / "app-1").exists() and len(list((root / "reference").iterdir())) == 2

    everything = _hil("cache", "clear", env=env)
    assert everything.returncode == 0 and "reference: removed 2" in everything.stdout
    assert not list((root / "reference").iterdir()) and not list((root / "qemu-plugin").iterdir())
    assert (root / "mine").is_dir()

    afile = tmp_path / "afile"
    afile.write_text("")
    broken = _hil("cache", env={**env, "HIL_CACHE_DIR": str(afile)})
    assert broken.returncode == 3 and "is not a directory" in broken.stdout + broken.stderr
