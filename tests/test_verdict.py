"""One failure taxonomy (harness/verdict.py): how exit statuses combine,
table-driven, and the same answer for the same jobs whether they ran as one
suite, as merged shards or on several boards."""

from __future__ import annotations

import json
import shutil
import textwrap

import pytest

from harness.checks.suite import evaluate
from harness.runner import combined_exit
from harness.suite import merge, suite_exit
from harness.verdict import case_code, code_of, combine, status_word
from helpers import MODELS, REPO, hil, requires_qemu

OK, FAILED, USAGE, INFRA, INTERRUPTED = 0, 1, 2, 3, 130

COMBINE = [
    # codes                         one exit status
    ([], OK),
    ([OK], OK),
    ([OK, OK, OK], OK),
    ([FAILED, OK], FAILED),
    ([FAILED, INFRA], FAILED),            # a firmware verdict is never hidden by infrastructure
    ([INFRA, FAILED], FAILED),
    ([FAILED, USAGE], FAILED),            # ... nor by bad input elsewhere
    ([USAGE, INFRA], USAGE),              # a retry cannot cure bad input
    ([INFRA, OK], INFRA),
    ([INTERRUPTED, FAILED, USAGE], INTERRUPTED),
    ([OK, INTERRUPTED], INTERRUPTED),
    ([None, OK], INFRA),                  # a job that never wrote its exit status judged nothing
    ([None, FAILED], FAILED),
    ([-9, OK], INFRA),                    # not a code of the taxonomy (a signal)
    ([7], INFRA),
]


@pytest.mark.parametrize("codes, expected", COMBINE, ids=[str(c) for c, _ in COMBINE])
def test_combine(codes, expected):
    assert combine(codes) == expected


@pytest.mark.parametrize("codes, _", COMBINE, ids=[str(c) for c, _ in COMBINE])
def test_combine_is_the_same_in_any_grouping(codes, _):
    """Shards combine their jobs, merge combines the shards: that must
    equal combining every job at once, for every split."""
    for cut in range(len(codes) + 1):
        assert combine([combine(codes[:cut]), combine(codes[cut:])]) == combine(codes)
        assert combine(reversed(codes)) == combine(codes)


@pytest.mark.parametrize("code, word", [(OK, "passed"), (FAILED, "failed"), (USAGE, "error"), (INFRA, "error"),
                                        (INTERRUPTED, "interrupted"), (None, "error")])
def test_status_word(code, word):
    assert status_word(code) == word


@pytest.mark.parametrize("doc, code", [({"exit_code": 1, "status": "failed"}, FAILED),
                                       ({"status": "passed"}, OK), ({"status": "failed"}, FAILED),
                                       ({"status": "error"}, INFRA), ({"status": "running"}, INFRA),
                                       ({"status": "interrupted"}, INTERRUPTED), ({}, INFRA)])
def test_code_of_a_document(doc, code):
    assert code_of(doc) == code


@pytest.mark.parametrize("case, job, code", [("passed", OK, OK), ("skipped", OK, OK), ("failed", OK, FAILED),
                                             ("failed", FAILED, FAILED), ("error", INFRA, INFRA),
                                             ("error", USAGE, USAGE), ("error", OK, USAGE),
                                             ("error", None, INFRA)])
def test_case_code(case, job, code):
    assert case_code(case, job) == code


def test_boards_combine_like_everything_else():
    """A firmware failure on one board and bad input on another: exit 1
    (the runner used to rank bad input first and said 2)."""
    assert combined_exit([FAILED, USAGE]) == FAILED
    assert combined_exit([OK, INFRA]) == INFRA
    assert combined_exit([]) == INFRA  # no board ran at all


# -- suites: whole and sharded -------------------------------------------------------------------

def _job(job_id: str, result: dict) -> tuple[dict, list[dict]]:
    """A suite job entry and its cases, made by the real case evaluation."""
    platform, model = job_id.split("/")
    cases = evaluate(platform, model, {"bit_exact": True}, {"max_count": 10}, result,
                     (result.get("error") or {}).get("message"))
    entry = {"id": job_id, "platform": platform, "model": model, "status": result["status"],
             "exit_code": result.get("exit_code"), "result": "r.json", "error": None, "metrics": {}}
    return entry, [c.as_dict() for c in cases]


FAILED_RUN = {"status": "failed", "exit_code": 1, "vectors": [{"index": 0, "status": "mismatch", "passed": False,
                                                               "max_abs_diff": 3}],
              "summary": {}, "budgets": [{"name": "max_count", "passed": True, "message": "", "measured": 1,
                                          "limit": 10}]}
INFRA_RUN = {"status": "error", "exit_code": 3, "vectors": [], "summary": {},
             "error": {"message": "qemu-system-arm was not found on PATH"}}
USAGE_RUN = {"status": "error", "exit_code": 2, "vectors": [], "summary": {},
             "error": {"message": "m.tflite: not a TFLite model"}}
PASSED_RUN = {"status": "passed", "exit_code": 0, "vectors": [{"index": 0, "status": "passed", "passed": True,
                                                               "max_abs_diff": 0}],
              "summary": {}, "budgets": [{"name": "max_count", "passed": True, "message": "", "measured": 1,
                                          "limit": 10}]}
OVER_BUDGET_RUN = {**PASSED_RUN, "budgets": [{"name": "max_count", "passed": False, "message": "",
                                              "measured": 11, "limit": 10}]}

SUITES = [
    # jobs (id -> run), expected exit status
    ({"p/a": FAILED_RUN, "p/b": INFRA_RUN}, FAILED),
    ({"p/a": USAGE_RUN, "p/b": INFRA_RUN}, USAGE),
    ({"p/a": PASSED_RUN, "p/b": INFRA_RUN}, INFRA),
    ({"p/a": PASSED_RUN, "p/b": OVER_BUDGET_RUN}, FAILED),
    ({"p/a": PASSED_RUN, "p/b": USAGE_RUN, "p/c": FAILED_RUN}, FAILED),
    ({"p/a": PASSED_RUN, "p/b": PASSED_RUN}, OK),
]


@pytest.mark.parametrize("runs, expected", SUITES, ids=lambda x: "+".join(r["status"] for r in x.values())
                         if isinstance(x, dict) else str(x))
def test_a_suite_and_its_merged_shards_agree(tmp_path, runs, expected):
    entries = [_job(job_id, run) for job_id, run in runs.items()]
    jobs = [e for e, _ in entries]
    cases = [c for _, cs in entries for c in cs]
    assert suite_exit(jobs, cases) == expected
    shards = []
    for i, (entry, job_cases) in enumerate(entries, 1):  # one shard per job
        code = suite_exit([entry], job_cases)
        doc = {"schema": "hil.suite/1", "suite": "s", "git": {"commit": "c"}, "status": status_word(code),
               "exit_code": code, "shards": [{"index": i, "count": len(entries)}], "started": "t",
               "duration_s": 1, "jobs": [entry], "cases": job_cases}
        path = tmp_path / f"shard{i}.json"
        path.write_text(json.dumps(doc))
        shards.append(path)
    merged = merge(shards)
    assert (merged["exit_code"], merged["status"]) == (expected, status_word(expected))


def test_an_interrupted_shard_makes_the_merge_interrupted(tmp_path):
    a, b = _job("p/a", FAILED_RUN), _job("p/b", PASSED_RUN)
    for name, (entry, cases), status in (("a", a, "interrupted"), ("b", b, "passed")):
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"schema": "hil.suite/1", "suite": "s", "git": {"commit": "c"}, "status": status, "exit_code": None,
             "shards": [], "jobs": [entry], "cases": cases}))
    assert merge([tmp_path / "a.json", tmp_path / "b.json"])["exit_code"] == INTERRUPTED


# -- end to end: real runs in QEMU, one failing job and one that cannot start ----------------------

@requires_qemu
@pytest.mark.qemu
def test_failed_job_and_infra_job_give_the_same_exit_whole_and_sharded(tmp_path):
    """The issue's case: a failed shard merged with an infra-error shard
    said 3, the same jobs unsharded said 1. Real `hil test` runs: one model
    over a count budget of 1 instruction (exit 1), one platform whose
    emulator does not exist (exit 3)."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(MODELS / "test" / "mlp_per_tensor.tflite", repo / "net.tflite")
    broken = (REPO / "platforms" / "mps2-an386.toml").read_text().replace(
        'executable = "qemu-system-arm"', 'executable = "qemu-system-arm-not-installed"')
    (repo / "noemu.toml").write_text(broken)
    (repo / "hil.toml").write_text(textwrap.dedent("""
        [project]
        name = "taxonomy"
        [[models]]
        name = "slow"
        path = "net.tflite"
        platforms = ["mps2-an386"]
        vectors = { random = 2, seed = 1 }
        budgets = { max_count = 1 }
        [[models]]
        name = "noemu"
        path = "net.tflite"
        platforms = ["noemu.toml"]
        vectors = { random = 2, seed = 1 }
    """))
    whole = hil("test", "--no-store", "--json", repo / "whole.json", cwd=repo)
    codes = {j["id"]: j["exit_code"] for j in json.loads((repo / "whole.json").read_text())["jobs"]}
    assert sorted(codes.values()) == [FAILED, INFRA], codes
    assert whole.returncode == FAILED, whole.stdout + whole.stderr
    for i in (1, 2):
        proc = hil("test", "--no-store", "--shard", f"{i}/2", "--json", repo / f"shard{i}.json", cwd=repo)
        assert proc.returncode in (FAILED, INFRA), proc.stdout + proc.stderr
    merged = hil("merge", repo / "shard1.json", repo / "shard2.json", "-o", repo / "merged.json", cwd=repo)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    doc = json.loads((repo / "merged.json").read_text())
    assert (doc["exit_code"], doc["status"]) == (whole.returncode, "failed")


@requires_qemu
@pytest.mark.qemu
def test_a_fault_outside_the_vectors_is_a_firmware_failure_not_an_internal_error(tmp_path):
    """The firmware faults in LOAD_MODEL (built with HIL_FAULT_ON_LOAD, as a
    bug in an operator's prepare step would): a firmware verdict (exit 1)
    with the fault recorded, not "internal error in hil: DeviceFault" with
    `"fault": null`."""
    from harness.build.cmake import build_firmware
    from harness.platforms import load_platform

    elf = build_firmware(load_platform("mps2-an386"), {"HIL_FAULT_ON_LOAD": "1"}).elf.path
    out = tmp_path / "r.json"
    proc = hil("run", "--model", MODELS / "demo" / "gesture.tflite", "--vectors", "2",
               "--firmware", elf, "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode == FAILED, output
    assert "internal error" not in output and "Traceback" not in output
    doc = json.loads(out.read_text())
    assert (doc["status"], doc["exit_code"]) == ("failed", FAILED)
    assert doc["fault"]["kind"] == "UsageFault" and doc["fault"]["symbol"].startswith("fault_on_load")


@requires_qemu
@pytest.mark.qemu
def test_a_session_that_could_not_start_is_not_recorded_as_passed(tmp_path):
    """The Session behind Robot and pytest: an emulator that is not there
    made its hil.result/1 say "passed", exit 0. Now the same taxonomy as
    `hil run`: error, exit 3, with the reason."""
    from harness.errors import InfraError
    from harness.session import Session

    platform = tmp_path / "noemu.toml"
    platform.write_text((REPO / "platforms" / "mps2-an386.toml").read_text().replace(
        'executable = "qemu-system-arm"', 'executable = "qemu-system-arm-not-installed"'))
    dut = Session(str(platform), workdir=tmp_path / "run")
    with pytest.raises(InfraError):
        dut.start()
    doc = json.loads((tmp_path / "run" / "result.json").read_text())
    assert (doc["status"], doc["exit_code"]) == ("error", INFRA)
    assert "qemu-system-arm-not-installed" in doc["error"]["message"]


@requires_qemu
@pytest.mark.qemu
def test_pytest_reports_each_hil_failure_with_its_kind(tmp_path):
    """pytest with the plugin: a firmware that faults (exit 1 in hil's terms)
    and an emulator that is not there (exit 3) fail differently: JUnit XML
    properties hil_verdict / hil_exit_code, and one combined line at the end."""
    from test_pytest_plugin import _pytest

    noemu = tmp_path / "noemu.toml"
    noemu.write_text((REPO / "platforms" / "mps2-an386.toml").read_text().replace(
        'executable = "qemu-system-arm"', 'executable = "qemu-system-arm-not-installed"'))
    (tmp_path / "test_kinds.py").write_text(textwrap.dedent(f"""
        MODEL = {str(MODELS / "demo" / "gesture.tflite")!r}

        def test_firmware_faults(hil_target):
            dut = hil_target(defines={{"HIL_FAULT_ON_INVOKE": "1"}})
            dut.load_model(MODEL)
            batch = dut.stream(count=2, seed=1)
            assert batch.matches_reference(), batch.explain()

        def test_emulator_missing(hil_target):
            hil_target(platform={str(noemu)!r})

        def test_passes(hil_platform):
            assert hil_platform
    """))
    proc, suite = _pytest(tmp_path, "test_kinds.py")
    props = {case.get("name", "").split("[")[0]: {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in suite.iter("testcase")}  # test_x[mps2-an386] -> test_x
    assert props["test_firmware_faults"] == {"hil_verdict": "firmware failure", "hil_exit_code": "1"}, proc.stdout
    assert props["test_emulator_missing"] == {"hil_verdict": "infrastructure", "hil_exit_code": "3"}, proc.stdout
    assert props["test_passes"] == {}
    assert "hil: failed tests by kind: 1 firmware failure, 1 infrastructure; as one hil verdict: firmware " \
           "failure (exit 1" in proc.stdout


@requires_qemu
@pytest.mark.qemu
def test_robot_tags_each_failed_test_with_its_kind(tmp_path):
    """Robot Framework: a firmware that faults, a budget far too small and an
    emulator that is not there all FAIL, as Robot has it, but each failed
    test is tagged with its kind in the one taxonomy (hil-verdict:...)."""
    from test_robot import _run_robot, _tests

    noemu = tmp_path / "noemu.toml"
    noemu.write_text((REPO / "platforms" / "mps2-an386.toml").read_text().replace(
        'executable = "qemu-system-arm"', 'executable = "qemu-system-arm-not-installed"'))
    suite = tmp_path / "kinds.robot"
    suite.write_text(textwrap.dedent(f"""
        *** Settings ***
        Library    harness.robot_library.HilLibrary    workdir={tmp_path / "runs"}

        *** Test Cases ***
        Firmware Faults
            Start Target    mps2-an386    defines=HIL_FAULT_ON_INVOKE=1
            Load Model    {MODELS / "demo" / "gesture.tflite"}
            Stream Vectors    count=2
            Outputs Should Match Reference

        Emulator Missing
            Start Target    {noemu}

        Passes
            Start Target    mps2-an386
            Load Model    {MODELS / "demo" / "gesture.tflite"}
            Stream Vectors    count=1
            Outputs Should Match Reference
    """))
    proc, result = _run_robot(tmp_path, suite)
    tests = _tests(result)["Kinds"]
    output = proc.stdout + proc.stderr
    assert tests["Firmware Faults"][0] == "FAIL" and "hil-verdict:firmware-failure" in tests["Firmware Faults"][2], output
    assert tests["Emulator Missing"][0] == "FAIL" and "hil-verdict:infrastructure" in tests["Emulator Missing"][2], output
    assert tests["Passes"][0] == "PASS" and not any(t.startswith("hil-verdict") for t in tests["Passes"][2]), output
