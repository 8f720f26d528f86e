"""Board farms through labgrid, with the real parts: a real
labgrid-coordinator and labgrid-exporter on localhost (tests/labfarm.py),
exporting network serial ports (RFC 2217) in front of QEMU standing in for
boards (tests/boardsim.py) and a power port whose switch (labgrid's
`simplerest` HTTP model, served by the test) powers the stand-ins. hil runs
as a subprocess, as a user would run it. The "flasher" is the platform
file's command (tests/boardsim.py flash, with the probe id from the place's
`probe` tag); nothing is mocked.

One lab (coordinator, exporter, three boards and a place whose board does
not answer) serves the whole module."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from helpers import MODELS, hil, requires_qemu
from labfarm import Lab, labgrid_missing

pytestmark = [requires_qemu, pytest.mark.qemu,
              pytest.mark.skipif(labgrid_missing() is not None, reason=str(labgrid_missing()))]

DEMO = MODELS / "demo" / "gesture.tflite"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with Lab(tmp_path_factory.mktemp("lab"), boards=3, dead_place=True) as lab_:
        yield lab_


@pytest.fixture(scope="module")
def platform(lab, tmp_path_factory):
    """The stand-ins' platform file: flashed by boardsim's command through
    the place's probe, reset by the place's power switch."""
    path = tmp_path_factory.mktemp("platform") / "qemu-board.toml"
    return lab.boards[0].platform_file(path, reset="power")


@pytest.fixture(scope="module")
def firmware(platform):
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    return build_firmware(load_platform(str(platform)), {}).elf.path


def _run_args(tmp_path, platform, firmware, *args, vectors=3, name="run"):
    return ["run", "--model", DEMO, "--platform", platform, "--vectors", str(vectors), "--seed", "2",
            "--firmware", firmware, "--workdir", tmp_path / name, "--json", tmp_path / f"{name}.json", *args]


def _env(lab):
    return {"LG_COORDINATOR": lab.address}


def _result(tmp_path, name="run"):
    path = tmp_path / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


_spawned: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_hil_left_running():
    """A test that fails while its hil runs (an assertion, a timeout) stops
    it: SIGTERM (it releases its place), then SIGKILL; the next test would
    otherwise find the place held."""
    yield
    while _spawned:
        proc = _spawned.pop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _spawn(lab, tmp_path, args):
    import os

    proc = subprocess.Popen([sys.executable, "-m", "harness", *map(str, args)], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, **_env(lab)})
    _spawned.append(proc)
    return proc


def _wait_until(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_run_through_a_place(lab, platform, firmware, tmp_path):
    before = len(lab.boards[0].flashes)
    proc = hil(*_run_args(tmp_path, platform, firmware, "--place", "board-0"), cwd=tmp_path, env=_env(lab),
               timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = _result(tmp_path)
    assert result["status"] == "passed" and result["summary"]["passed"] == 3
    place = result["target"]["place"]
    assert place["name"] == "board-0" and place["probe"] == "HILLAB0000"
    assert place["coordinator"] == lab.address and place["acquired_as"]
    # the link is the place's exported serial port; the flasher got the place's probe id
    assert result["target"]["port"] == lab.boards[0].rfc2217_url
    assert result["target"]["probe_id"] == "HILLAB0000"
    assert lab.boards[0].flashes[before:] == [str(firmware)]
    assert "acquired place board-0" in proc.stderr and "released place board-0" in proc.stderr
    assert lab.holder("board-0") is None


def test_two_runs_on_one_place_take_turns(lab, platform, firmware, tmp_path):
    """Two hil runs started together on one place: one acquires it, the
    other waits (a progress line names the holder), then runs; both pass.
    The board already runs the firmware (--flasher none) and is
    power-cycled through the place for the reset."""
    lab.boards[1].flash(firmware)
    procs = [_spawn(lab, tmp_path, _run_args(tmp_path, platform, firmware, "--place", "board-1", "--flasher", "none",
                                             vectors=6, name=name)) for name in ("first", "second")]
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, out + err
    results = [_result(tmp_path, name) for name in ("first", "second")]
    assert all(r["summary"]["passed"] == 6 for r in results)
    waited = [i for i, r in enumerate(results) if r["target"]["place"]["waited_s"] > 0.5]
    assert len(waited) == 1, [r["target"]["place"] for r in results]
    assert "waiting for place board-1: board-1 held by" in outputs[waited[0]][1]
    assert all(r["target"]["place"]["power"][0]["action"] == "cycle" for r in results)  # reset = "power"
    assert lab.holder("board-1") is None


def test_a_place_held_by_another_user_is_never_touched(lab, platform, firmware, tmp_path):
    board = lab.boards[2]
    held = lab.client("-p", "board-2", "acquire", user="alice")
    assert held.returncode == 0, held.stderr
    try:
        flashes, power = len(board.flashes), list(lab.power.events)
        proc = hil(*_run_args(tmp_path, platform, firmware, "--place", "board-2", "--place-wait", "1.5"),
                   cwd=tmp_path, env=_env(lab), timeout=60)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        message = _result(tmp_path)["error"]["message"]
        assert "no free place board-2 within 1.5 s" in message and "held by" in message and "/alice" in message
        assert len(board.flashes) == flashes and lab.power.events == power
        assert lab.holder("board-2").endswith("/alice")
    finally:
        lab.client("-p", "board-2", "release", user="alice")


def test_sigterm_releases_the_place(lab, platform, firmware, tmp_path):
    flashed = len(lab.boards[2].flashes)
    proc = _spawn(lab, tmp_path, _run_args(tmp_path, platform, firmware, "--place", "board-2", vectors=2000))
    _wait_until(lambda: len(lab.boards[2].flashes) > flashed, timeout=90, what="board-2 to be flashed")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "released place board-2" in err
    assert lab.holder("board-2") is None
    assert _result(tmp_path)["status"] == "interrupted"


def test_suite_over_the_farm(lab, platform, tmp_path):
    """Three jobs over the places tagged board=qemu-board, three at a time.
    The first place taken (a-dead, first by name) fails for infrastructure
    reasons: it is released, not used again, and its job runs again on
    another place; both attempts are recorded, and the failed place is
    free again (released after an infrastructure error)."""
    (tmp_path / "qemu-board.toml").write_text(platform.read_text())
    models = "".join(f'[[models]]\nname = "m{i}"\npath = "{DEMO}"\nplatforms = ["qemu-board.toml"]\n'
                     f"vectors = {{ random = 3, seed = {i} }}\n\n" for i in range(3))
    (tmp_path / "hil.toml").write_text(f'[project]\nname = "farm"\n\n[labgrid]\ncoordinator = "{lab.address}"\n'
                                       f"wait_s = 60\n\n{models}")
    proc = hil("test", "-j", "3", "--no-store", "--json", tmp_path / "suite.json", "--out", tmp_path / "out",
               cwd=tmp_path, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "suite.json").read_text())
    jobs = doc["jobs"]
    assert [j["status"] for j in jobs] == ["passed"] * 3
    places = {j["place"] for j in jobs}
    assert "a-dead" not in places and len(places) >= 2
    assert all(j["probe_id"] == "HILLAB" + j["place"][-1].rjust(4, "0") for j in jobs)
    retried = [j for j in jobs if len(j["attempts"]) > 1]
    assert len(retried) == 1 and retried[0]["attempts"][0]["place"] == "a-dead"
    assert retried[0]["attempts"][0]["exit_code"] == 3 and retried[0]["attempts"][1]["place"] in places
    assert [p["name"] for p in doc["farm"]["failed_places"]] == ["a-dead"]
    # each attempt keeps its own run directory: the first one's result (the evidence of why the job ran
    # again) is not overwritten by the second; the job's verdict and result are the last attempt's
    first, second = retried[0]["attempts"]
    assert first["result"] != second["result"] and retried[0]["result"] == second["result"]
    kept = [json.loads((tmp_path / "out" / a["result"]).read_text()) for a in (first, second)]
    assert kept[0]["exit_code"] == 3 and kept[0]["target"]["place"]["name"] == "a-dead" and first["error"]
    assert kept[1]["status"] == "passed" and kept[1]["target"]["place"]["name"] == second["place"]
    assert all(len(j["attempts"]) == 1 and j["result"] == j["attempts"][0]["result"] for j in jobs if j not in retried)
    from harness.results.junit import junit_xml
    from harness.results.markdown import suite_markdown

    said = [line for line in suite_markdown(doc).splitlines() if "a-dead" in line]
    assert said and "ran again" in said[0] and retried[0]["id"] in said[0], suite_markdown(doc)
    assert "ran again" in junit_xml(doc, tmp_path / "out" / "suite.json")
    from harness.results.html import job_rows

    assert [bool(row["attempts"]) for row in job_rows(doc)] == [j in retried for j in jobs]
    assert all(lab.holder(p) is None for p in ("a-dead", "board-0", "board-1", "board-2"))


class _Events:
    """hil test's per-job reporters (`reporter_for`), writing every stage to
    one list in order: which job built, which place the farm acquired."""

    def __init__(self):
        self.lines: list[tuple[str, str]] = []
        self.streaming = __import__("threading").Event()

    def reporter_for(self, job_id):
        events = self

        class Reporter:
            def stage(self, text):
                events.lines.append((job_id, text))

            def start_vectors(self, total):
                events.lines.append((job_id, f"streaming {total}"))
                events.streaming.set()

            def vector_done(self, result):
                pass

        return Reporter()

    def index(self, job_id, start):
        return next(i for i, (who, text) in enumerate(self.lines) if who == job_id and text.startswith(start))


def test_farm_jobs_build_before_their_place_and_a_lost_place_keeps_its_result(lab, platform, tmp_path):
    """In-process hil test over the lab (the real farm code, coordinator and
    stand-in), two board jobs, one place at a time:
    - `broken`: its firmware does not compile (a platform define breaks
      <stdint.h>). Built before any place is taken, it fails as a build
      failure of that job (exit 3 naming the build), takes no place and
      blames none (it took the first free place, a-dead, and built there).
    - `good`: built before its place (board-1) is acquired; while its
      vectors stream another user kicks hil off board-1 and takes it. The
      run stops as infrastructure (exit 3, the place taken away), never a
      firmware verdict on a board hil no longer holds (it went on and
      passed); no other place may run it, and the attempt's own result,
      with the vectors it had checked, stays the job's result (it was
      replaced by 'no place')."""
    from harness.config import load_config
    from harness.suite import run_suite

    good_platform, broken_platform = tmp_path / "qemu-board.toml", tmp_path / "qemu-board-broken.toml"
    good_platform.write_text(platform.read_text())
    broken_platform.write_text(
        platform.read_text().replace('name = "qemu-board"', 'name = "qemu-board-broken"')
        .replace('kernels = "dsp"\n', 'kernels = "dsp"\ndefines = { uint32_t = "int" }\n'))
    (tmp_path / "hil.toml").write_text(
        f'[project]\nname = "farm"\n\n[labgrid]\ncoordinator = "{lab.address}"\nwait_s = 30\n\n'
        f'[[models]]\nname = "broken"\npath = "{DEMO}"\nplatforms = ["{broken_platform}"]\n'
        f'tags = {{ board = "qemu-board" }}\nvectors = {{ random = 3, seed = 1 }}\n\n'
        f'[[models]]\nname = "good"\npath = "{DEMO}"\nplatforms = ["{good_platform}"]\nplace = "board-1"\n'
        f'vectors = {{ random = 2000, seed = 2 }}\n')
    events = _Events()

    def kick():
        if events.streaming.wait(180):
            time.sleep(0.5)
            lab.client("-p", "board-1", "release", "--kick", user="alice")
            lab.client("-p", "board-1", "acquire", user="alice")

    import threading

    kicker = threading.Thread(target=kick, daemon=True)
    kicker.start()
    try:
        doc, path = run_suite(load_config(tmp_path / "hil.toml"), out_dir=tmp_path / "out", recorded=False,
                              reporter_for=events.reporter_for)
    finally:
        events.streaming.set()
        kicker.join(60)
        lab.client("-p", "board-1", "release", "--kick", user="alice")
    jobs = {j["model"]: j for j in doc["jobs"]}
    broken, good = jobs["broken"], jobs["good"]
    assert broken["status"] == "error" and broken["exit_code"] == 3, broken
    assert "firmware build for qemu-board-broken failed" in broken["error"] and "place" not in broken, broken
    assert (tmp_path / "out" / broken["result"]).is_file()
    assert [p["name"] for p in doc["farm"]["places"]] == ["board-1"]
    assert [(p["name"], p["job"]) for p in doc["farm"]["failed_places"]] == [("board-1", good["id"])]
    acquired = events.index("farm", "acquired place board-1")
    assert events.index(f"{good_platform}/good", "building firmware") < acquired, events.lines
    assert good["status"] == "error" and good["exit_code"] == 3, good
    assert "board-1 was taken away during the run" in good["error"], good["error"]
    assert not doc["farm"]["release_errors"]  # not ours to release any more: no 'labgrid-client release' advice
    assert good["place"] == "board-1" and [a["place"] for a in good["attempts"]] == ["board-1"], good
    kept = json.loads((tmp_path / "out" / good["result"]).read_text())
    assert kept["exit_code"] == 3 and 0 < kept["summary"]["passed"] < 2000 and good["metrics"]["count"]
    assert "not run again" in good["error"], good["error"]


def test_a_stopped_suite_keeps_its_farm_record_and_the_run_under_way(lab, platform, tmp_path):
    """SIGTERM (as a CI job's cancel sends; Ctrl-C is the same) while a farm
    job streams and another waits for the same place: exit 130, the run
    under way is recorded as interrupted on its place, the waiting job is
    left out (the suite is partial), the place is released, and the
    document keeps the farm's record (it was lost: no `farm`)."""
    (tmp_path / "qemu-board.toml").write_text(platform.read_text())
    models = "".join(f'[[models]]\nname = "m{i}"\npath = "{DEMO}"\nplatforms = ["qemu-board.toml"]\n'
                     f'place = "board-0"\nvectors = {{ random = 2000, seed = {i} }}\n\n' for i in range(2))
    (tmp_path / "hil.toml").write_text(f'[project]\nname = "farm"\n\n[labgrid]\ncoordinator = "{lab.address}"\n'
                                       f"wait_s = 60\n\n{models}")
    flashed = len(lab.boards[0].flashes)
    proc = _spawn(lab, tmp_path, ["test", "--no-store", "--json", tmp_path / "suite.json"])
    _wait_until(lambda: len(lab.boards[0].flashes) > flashed, timeout=120, what="board-0 to be flashed")
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, out + err
    doc = json.loads((tmp_path / "suite.json").read_text())
    assert doc["status"] == "interrupted" and not doc["identity"]["complete"]
    assert [(j["model"], j["status"], j["place"]) for j in doc["jobs"]] == [("m0", "interrupted", "board-0")]
    assert [p["name"] for p in doc["farm"]["places"]] == ["board-0"] and not doc["farm"]["release_errors"]
    assert lab.holder("board-0") is None


def test_boards_lists_the_places(lab, monkeypatch):
    """In-process (click's runner): the same command, without a second interpreter's start-up."""
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.setenv("LG_COORDINATOR", lab.address)
    done = CliRunner().invoke(main, ["boards", "--json"])
    assert done.exit_code == 0, done.output
    places = {p["name"]: p for p in json.loads(done.output)["places"]}
    assert set(places) == {"a-dead", "board-0", "board-1", "board-2"}
    p = places["board-1"]
    assert p["tags"]["board"] == "qemu-board" and p["probe"] == "HILLAB0001" and p["acquired_by"] is None
    assert p["serial"] == lab.boards[1].rfc2217_url and any(c.startswith("power") for c in p["capabilities"])


def test_the_coordinator_going_away_mid_run(lab, platform, firmware, tmp_path):
    """Last in the module: it kills the coordinator. The run stops (exit 3)
    and says what became of the place."""
    flashed = len(lab.boards[0].flashes)
    proc = _spawn(lab, tmp_path, _run_args(tmp_path, platform, firmware, "--place", "board-0", vectors=2000))
    _wait_until(lambda: len(lab.boards[0].flashes) > flashed, timeout=90, what="board-0 to be flashed")
    lab.stop_coordinator()
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 3, out + err
    message = _result(tmp_path)["error"]["message"]
    assert f"the labgrid coordinator at {lab.address} went away" in message and "board-0" in message
    assert "could not be released" in err and "-p board-0 release" in err


# -- refused before anything connects (no lab needed) -------------------------------------------------

def test_place_options_are_checked_first(tmp_path):
    from harness.errors import UsageError
    from harness.farm import place_request
    from harness.targets.labgrid import PlaceWanted, parse_tags

    assert parse_tags(["board=nucleo-l4r5zi", "rev=c"]) == {"board": "nucleo-l4r5zi", "rev": "c"}
    for bad in (["board"], ["Board=x"], ["b=x"], ["board="]):
        with pytest.raises(UsageError, match="is not KEY=VALUE"):
            parse_tags(bad)
    with pytest.raises(UsageError, match="both choose the place"):
        place_request({"place": "p", "place_tags": ("board=x",), "place_wait": None})
    assert place_request({"place": None, "place_tags": (), "place_wait": None}) is None
    request = place_request({"place": None, "place_tags": ("board=x",), "place_wait": 5.0})
    assert request is not None
    wanted, wait = request
    assert wanted == PlaceWanted(tags=(("board", "x"),)) and wait == 5.0
    # an emulated platform has no place: exit 2 before any coordinator is asked
    proc = hil("run", "--model", DEMO, "--platform", "mps2-an386", "--place", "p", cwd=tmp_path,
               env={"LG_COORDINATOR": "127.0.0.1:9"}, timeout=60)
    assert proc.returncode == 2 and "--place is for boards" in proc.stderr, proc.stderr


def test_labgrid_table_in_hil_toml_is_validated(tmp_path):
    from harness.config import load_config
    from harness.errors import UsageError

    base = f'[[models]]\npath = "{DEMO}"\n'
    (tmp_path / "hil.toml").write_text('[labgrid]\ncoordinater = "lab:20408"\n\n' + base)
    with pytest.raises(UsageError, match="(?s)labgrid.coordinater.*did you mean `coordinator`"):
        load_config(tmp_path / "hil.toml")
    (tmp_path / "hil.toml").write_text('[labgrid]\ncoordinator = "lab:20408"\nwait_s = 30\n\n'
                                       + base + 'tags = { board = "nucleo-l4r5zi" }\n')
    config = load_config(tmp_path / "hil.toml")
    assert config.labgrid == {"coordinator": "lab:20408", "wait_s": 30}
    assert config.models[0].tags == {"board": "nucleo-l4r5zi"} and config.models[0].place is None


def test_a_build_failure_does_not_burn_a_place(monkeypatch):
    """A farm job that fails before its firmware exists (a build or host
    failure, exit 3) is the same on every place: not retried, and its place
    is not given up as failed; a board's own infra failure still is."""
    import harness.farm as farm
    from harness.targets.labgrid import PlaceWanted

    class FakeLease:
        def __init__(self, name):
            self.name, self.place, self.waited_s, self.acquire_s = name, name, 0.0, 0.0
            self.taken_away = False

        def release(self):
            return None

    class FakeCoordinator:
        identity = "host/user"

        def close(self):
            pass

    acquired = []

    def fake_acquire(coordinator, wanted, wait_s, progress, exclude=(), **kw):
        name = next(p for p in ("p0", "p1", "p2") if p not in exclude)
        acquired.append(name)
        return FakeLease(name)

    monkeypatch.setattr(farm, "connect", lambda address: FakeCoordinator())
    monkeypatch.setattr(farm, "acquire", fake_acquire)
    monkeypatch.setattr(PlaceWanted, "matches", lambda self, place: True)
    built = {"build": {}, "board": {"elf": "x"}}

    def run_job(job, lease, attempt):
        return {"status": "error", "exit_code": 3, "firmware": built[job.key], "vectors": []}, "boom"

    finished: dict[object, Any] = {}
    jobs = [farm.FarmJob(key, PlaceWanted(tags=(("board", "b"),))) for key in ("build", "board")]
    record = farm.run_jobs(jobs, "lab:1", 1, run_job, lambda j, result, error: finished.update({j.key: result}))
    assert [a["place"] for a in finished["build"]["attempts"]] == ["p0"]  # failed before the board: once, no place blamed
    assert [a["place"] for a in finished["board"]["attempts"]] == ["p0", "p1"]
    assert [p["name"] for p in record["failed_places"]] == ["p0"]


def test_merged_shards_keep_where_each_farm_attempt_is(tmp_path):
    """hil merge makes a shard's paths absolute: each attempt's result of a
    board-farm job too, not only the job's last one."""
    from harness.suite import merge

    attempts = [{"attempt": n, "place": p, "status": s, "exit_code": c, "error": None,
                 "result": f"runs/b/m/attempt-{n}/result.json"} for n, p, s, c in ((1, "a", "error", 3), (2, "b", "passed", 0))]
    doc = {"schema": "hil.suite/1", "suite": "s", "git": {"commit": "c"}, "status": "passed", "exit_code": 0,
           "cases": [], "jobs": [{"id": "b/m", "platform": "b", "model": "m", "status": "passed", "exit_code": 0,
                                  "result": attempts[1]["result"], "place": "b", "attempts": attempts}]}
    (tmp_path / "shard").mkdir()
    (tmp_path / "shard" / "suite.json").write_text(json.dumps(doc))
    merged = merge([tmp_path / "shard" / "suite.json"])
    kept = [a["result"] for a in merged["jobs"][0]["attempts"]]
    assert kept == [str(tmp_path / "shard" / "runs/b/m" / f"attempt-{n}" / "result.json") for n in (1, 2)]
    assert merged["jobs"][0]["result"] == kept[1]


def test_a_lab_that_fails_to_start_stops_its_processes(tmp_path, monkeypatch):
    """tests/labfarm.py: a Lab whose start fails (here: the exporter's
    resources never appear) stops the coordinator and exporter it started."""
    from labfarm import Lab as LabClass

    started = []
    spawn = LabClass._spawn

    def spawn_noted(self, name, cmd):
        started.append(spawn(self, name, cmd))
        return started[-1]

    monkeypatch.setattr(LabClass, "_spawn", spawn_noted)

    def never(self, count):
        raise RuntimeError("no resources")

    monkeypatch.setattr(LabClass, "wait_for_resources", never)
    try:
        with pytest.raises(RuntimeError, match="no resources"):
            LabClass(tmp_path / "lab", boards=1)
        assert len(started) == 2 and all(p.poll() is not None for p in started)
    finally:
        for p in started:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_bad_labgrid_settings_are_usage_errors(tmp_path, monkeypatch):
    """hil run --place and hil boards read hil.toml's [labgrid] on their
    own: a wrong type there is exit 2 naming the key, not a traceback; hil
    test's validation refuses a negative wait and a model with both place
    and tags (as --place with --place-tag)."""
    from harness.config import load_config
    from harness.errors import UsageError
    from harness.targets.labgrid import coordinator_address, labgrid_settings

    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    for table, key in (('coordinator = 5', "labgrid.coordinator"), ('coordinator = ""', "labgrid.coordinator"),
                       ('coordinator = "lab"\nwait_s = "ten"', "labgrid.wait_s"),
                       ('coordinator = "lab"\nwait_s = -1', "labgrid.wait_s")):
        (tmp_path / "hil.toml").write_text(f"[labgrid]\n{table}\n")
        with pytest.raises(UsageError, match=key):
            coordinator_address(tmp_path)
    (tmp_path / "hil.toml").write_text('[labgrid]\ncoordinator = "lab"\nwait_s = 30\n')
    assert labgrid_settings(tmp_path)["wait_s"] == 30 and coordinator_address(tmp_path)[0] == "lab:20408"
    base = f'[[models]]\npath = "{DEMO}"\n'
    for wait in ("-1", "nan"):
        (tmp_path / "hil.toml").write_text(f'[labgrid]\nwait_s = {wait}\n\n' + base)
        with pytest.raises(UsageError, match=f"labgrid.wait_s` is {wait}, not 0 or more"):
            load_config(tmp_path / "hil.toml")
    (tmp_path / "hil.toml").write_text(base + 'place = "p"\ntags = { board = "b" }\n')
    with pytest.raises(UsageError, match="and `tags` both choose the place"):
        load_config(tmp_path / "hil.toml")


def test_boards_says_a_wrong_labgrid_table(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from harness.cli import main

    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hil.toml").write_text("[labgrid]\ncoordinator = 5\n")
    from harness.errors import UsageError

    done = CliRunner().invoke(main, ["boards", "--json"])  # exit 2 through the entry point (harness/cli.py run)
    assert isinstance(done.exception, UsageError) and "labgrid.coordinator" in str(done.exception), done.output
    (tmp_path / "hil.toml").write_text("[project]\n")  # no lab: this machine's ports only
    assert CliRunner().invoke(main, ["boards", "--json"]).exit_code == 0


def test_an_unreachable_coordinator_fails_the_board_jobs_not_the_suite(monkeypatch):
    """hil test: board jobs whose coordinator cannot be reached end as
    errors (exit 3, the reason), each recorded; the farm's progress lines
    (acquired, waiting for, held by) are shown in hil test's log."""
    import harness.farm as farm
    from harness.commands.test import _job_progress
    from harness.errors import InfraError
    from harness.targets.labgrid import PlaceWanted

    def unreachable(address):
        raise InfraError(f"cannot reach the labgrid coordinator at {address}")

    monkeypatch.setattr(farm, "connect", unreachable)
    finished: dict[object, Any] = {}
    jobs = [farm.FarmJob(key, PlaceWanted(name="p")) for key in ("a", "b")]
    never_runs: Any = None  # the coordinator is unreachable: no job starts
    record = farm.run_jobs(jobs, "lab:1", 2, never_runs, lambda j, result, error: finished.update({j.key: (result, error)}))
    assert set(finished) == {"a", "b"} and all(r["exit_code"] == 3 and "lab:1" in e for r, e in finished.values())
    assert "cannot reach" in record["error"]
    assert _job_progress("farm").stages and not _job_progress("mps2-an386/m").stages


def test_a_bad_model_is_refused_before_a_place_is_asked_for(tmp_path):
    """A usage error in the run (here a missing model) is exit 2 before hil
    connects to the coordinator: it must not wait for, or hold, a board."""
    proc = hil("run", "--model", tmp_path / "nope.tflite", "--platform", "nucleo-l4r5zi", "--place", "p",
               "--workdir", tmp_path / "run", cwd=tmp_path, env={"LG_COORDINATOR": "127.0.0.1:9"}, timeout=60)
    assert proc.returncode == 2 and "nope.tflite" in proc.stderr and "coordinator" not in proc.stderr, proc.stderr


def test_a_coordinator_that_does_not_answer_is_an_infra_error():
    """A request the coordinator leaves unanswered is exit 3 naming it (it
    was a bare TimeoutError: a traceback in hil run, an 'internal error' in
    a farm)."""
    import asyncio
    import threading

    from harness.errors import InfraError
    from harness.targets.labgrid import Coordinator

    coordinator = Coordinator.__new__(Coordinator)
    coordinator.address = "lab:20408"
    coordinator._loop = asyncio.new_event_loop()
    thread = threading.Thread(target=coordinator._loop.run_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(InfraError, match="coordinator at lab:20408 did not answer within 0.2 s"):
            coordinator._call(asyncio.sleep(30), 0.2)
    finally:
        coordinator._loop.call_soon_threadsafe(coordinator._loop.stop)
        thread.join(5)
        coordinator._loop.close()


def test_firmware_that_cannot_be_built_is_refused_before_a_place_is_asked_for(tmp_path):
    """The runner is built (and cached for the run) before the place is
    asked for: a build or usage error there never holds a shared board.
    nucleo-l4r5zi names a board layer the built-in firmware does not have."""
    proc = hil("run", "--model", DEMO, "--platform", "nucleo-l4r5zi", "--place", "p", "--workdir", tmp_path / "run",
               "--json", tmp_path / "r.json", cwd=tmp_path, env={"LG_COORDINATOR": "127.0.0.1:9"}, timeout=60)
    assert proc.returncode == 2 and "board layer" in proc.stderr and "coordinator" not in proc.stderr, proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "error" and result["exit_code"] == 2


FORKS_AFTER_GRPC = """
import subprocess
import harness  # noqa: F401  (sets gRPC's fork support off before grpc loads)
import grpc
channel = grpc.insecure_channel("127.0.0.1:1")
channel.subscribe(lambda state: None, try_to_connect=True)  # gRPC's threads stay busy, as a session's do
failed = sum(subprocess.run(["true"], preexec_fn=lambda: None).returncode != 0 for _ in range(100))
print(failed)
"""


def test_children_forked_after_a_grpc_channel_opens_all_start():
    """hil forks QEMU and the reference child with a preexec_fn (fork +
    exec). With gRPC's fork handlers on, some of those children died before
    exec once a labgrid session had opened a channel in the same process
    (seen in CI: "QEMU did not start", the reference interpreter killed by
    SIGABRT); without the fix 2 and 5 of these 100 forks failed in two runs.
    harness turns the handlers off before grpc is imported."""
    proc = subprocess.run([sys.executable, "-c", FORKS_AFTER_GRPC], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-1] == "0", proc.stdout + proc.stderr
