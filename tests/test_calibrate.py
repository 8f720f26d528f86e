"""`hil calibrate`: the fit, the calibration file, applying it, and bad input.

No board and no power analyser were run for these tests: there is none on
this machine. The recording in tests/fixtures/calibration/synthetic is
SYNTHETIC, made by scripts/make_calibration_fixture.py from real QEMU
figures of the calibration set x known per-operator factors x seeded noise,
and a known current + seeded noise for the analyser (truth.json holds the
known values). The tests check that the fit recovers them within the noise.
"""

from __future__ import annotations

import json
import shutil

import pytest

from harness.errors import UsageError
from harness.timing.calibration import fit, load_calibration, load_recording, write_calibration
from helpers import REPO, hil, requires_qemu

FIXTURE = REPO / "tests" / "fixtures" / "calibration" / "synthetic"
TRUTH = json.loads((FIXTURE / "truth.json").read_text())


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    rec = load_recording(FIXTURE)
    cal = fit(rec, date="2026-12-03T00:00:00Z", hil_version="test")
    return write_calibration(cal, tmp_path_factory.mktemp("cal") / "board.toml")


def test_replay_recovers_the_known_factors_and_current(calibration):
    """Board counts were made as estimate x factor x log-normal noise (sigma 1%): the median
    per type is within 3% of the factor; the current within 2% of the known one."""
    cal = calibration
    assert cal.synthetic and "SYNTHETIC" in cal.cite()
    assert set(cal.factors) == set(TRUTH["factors"]) & set(cal.factors)
    for op, f in cal.factors.items():
        assert f.factor == pytest.approx(TRUTH["factors"][op], rel=0.03), op
        assert f.ratio_min <= f.factor <= f.ratio_max
    assert cal.factor("NOT_CALIBRATED") == cal.default_factor
    assert cal.active_ma == pytest.approx(TRUTH["active_ma"], rel=0.02)
    assert cal.current.idle_ma == pytest.approx(TRUTH["idle_ma"], rel=0.05)
    assert cal.sleep_ua is None  # the recording has no sleep window
    # the held-out band is never better than the in-sample fit, and it is what the file says
    assert cal.in_sample <= cal.band_fraction < 0.5
    assert cal.band.startswith("+-") and "leave-one-model-out" in cal.band
    # the band is the worst model predicted without itself
    assert set(cal.residuals) == set(cal.models)
    assert cal.band_fraction == pytest.approx(max(abs(r[3] / r[0] - 1) for r in cal.residuals.values()))


def test_the_file_round_trips(calibration):
    again = load_calibration(calibration.path)
    assert again.factors.keys() == calibration.factors.keys()
    for op in again.factors:
        assert again.factor(op) == pytest.approx(calibration.factor(op), rel=1e-5)
    assert again.band_fraction == pytest.approx(calibration.band_fraction, rel=1e-5)
    assert again.active_ma == pytest.approx(calibration.active_ma, rel=1e-5)
    assert again.timing_model == "cortex-m4" and again.emulated == "stm32l4r5-qemu"
    assert again.residuals.keys() == calibration.residuals.keys()
    assert again.residuals["conv_sweep"] == pytest.approx(calibration.residuals["conv_sweep"], rel=1e-6)


def test_applying_it_changes_the_estimates_and_the_band(calibration):
    cal = calibration
    ops = [{"index": 0, "op": "CONV_2D", "count": 900, "cycles": 1000},
           {"index": 1, "op": "SOFTMAX", "count": 90, "cycles": 100}]
    cycles = {"value": 1200, "kind": "cycles_estimate", "model": "cortex-m4", "source": "qemu-plugin",
              "latency_ms": 0.01, "clock_hz": 120_000_000}
    new, new_ops = cal.apply(cycles, ops)
    assert new_ops[0]["cycles"] == round(1000 * cal.factor("CONV_2D"))
    assert new_ops[1]["cycles"] == round(100 * cal.factor("SOFTMAX"))
    assert new_ops[0]["uncalibrated_cycles"] == 1000 and ops[0]["cycles"] == 1000  # the input is not changed
    assert new["value"] == round(new_ops[0]["cycles"] + new_ops[1]["cycles"] + 100 * cal.default_factor)
    assert new["uncalibrated"] == 1200
    assert new["latency_ms"] == pytest.approx(new["value"] / 120e6 * 1e3)
    assert cal.cite() in new["calibration"]
    assert "calibrated on nucleo-l4r5zi" in cal.band and calibration.path.name in cal.band
    assert "SYNTHETIC" in cal.band


def test_a_measured_current_replaces_the_datasheet_figure(calibration):
    from harness.platforms import load_platform
    from harness.power.energy import EnergyModel

    p = load_platform("stm32l4r5-qemu")
    model = EnergyModel.from_platform(p.power, p.counter, str(p.path))
    measured = calibration.energy_model(model)
    assert measured.active_ma == pytest.approx(calibration.active_ma)
    assert measured.clock_hz == calibration.board_clock_hz
    assert calibration.path.name in measured.source
    assert not measured.verified and measured.active.status == "assumed"  # synthetic data is never "verified"
    assert "SYNTHETIC" in measured.active.basis


def test_a_calibration_for_another_platform_model_or_clock_is_refused(calibration):
    calibration.check_applies("stm32l4r5-qemu", "cortex-m4", 120_000_000)
    for args, words in [(("mps2-an386", "cortex-m4", 120_000_000), "not mps2-an386"),
                        (("stm32l4r5-qemu", "cortex-m7", 120_000_000), "timing model cortex-m4"),
                        (("stm32l4r5-qemu", "cortex-m4", 80_000_000), "at 80 MHz")]:
        with pytest.raises(UsageError, match=words) as info:
            calibration.check_applies(*args)
        assert info.value.exit_code == 2 and info.value.hint


@pytest.mark.parametrize("damage, words", [
    (lambda t: t.replace("[band]", "[band"), "not a valid calibration file"),
    (lambda t: t.replace('schema = "hil.calibration/1"', 'schema = "x"'), "not a calibration file"),
    (lambda t: t.replace("default_factor =", "default_factorX ="), "`default_factor` is missing"),
    (lambda t: t.replace("\nfactor = 1.", "\nfactor = -1.", 1), "positive"),
    (lambda t: t.replace("\nresidual =", "\nresidual = nan #", 1), r"band.residual = nan is out of range"),
    (lambda t: t.replace("\nboard_clock_hz =", "\nboard_clock_hz = 0 #", 1), r"board_clock_hz = 0 is out of range"),
    (lambda t: t.replace("\nactive_ma =", "\nactive_ma = -3 #", 1), r"current.active_ma = -3.0 is out of range"),
])
def test_a_damaged_calibration_file_is_exit_2(calibration, tmp_path, damage, words):
    bad = tmp_path / "bad.toml"
    bad.write_text(damage(calibration.path.read_text()))
    with pytest.raises(UsageError, match=words) as info:
        load_calibration(bad)
    assert info.value.hint is not None
    assert "hil calibrate" in info.value.hint


def test_a_calibration_path_that_is_a_directory_is_exit_2(tmp_path):
    with pytest.raises(UsageError, match="cannot be read") as info:
        load_calibration(tmp_path)
    assert info.value.exit_code == 2


def _copy(tmp_path, edit):
    dst = tmp_path / "rec"
    shutil.copytree(FIXTURE, dst)
    data = json.loads((dst / "recording.json").read_text())
    edit(data)
    (dst / "recording.json").write_text(json.dumps(data))
    return dst


def test_a_recording_missing_operators_is_exit_2_naming_them(tmp_path):
    def drop_last_board_op(data):
        for v in data["models"][1]["board"]:
            v["operators"].pop()
    rec = load_recording(_copy(tmp_path, drop_last_board_op))
    with pytest.raises(UsageError, match=r"model dwconv_pool: the board's counts lack operators 11 \(SOFTMAX\)"):
        fit(rec, date="d", hil_version="v")


def test_a_recording_without_profiles_is_exit_2(tmp_path):
    def no_profiles(data):
        for v in data["models"][0]["emulated"]:
            v["operators"] = []
    rec = load_recording(_copy(tmp_path, no_profiles))
    with pytest.raises(UsageError, match="operators missing"):
        fit(rec, date="d", hil_version="v")


def _cli(*args):
    """`hil calibrate` in this process (click's runner): the error it ends with, and its output."""
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, ["calibrate", *map(str, args)])
    return result.exception, result.output


def test_cli_replay_writes_the_file_and_refuses_bad_input(tmp_path):
    out = tmp_path / "cal.toml"
    proc = hil("calibrate", "--replay", FIXTURE, "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "SYNTHETIC" in proc.stdout and "error band: +-" in proc.stdout
    assert load_calibration(out).board == "nucleo-l4r5zi"
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "recording.json").write_text("{not json")
    for args, words in [(("--replay", damaged), "damaged"),
                        (("--replay", tmp_path / "none"), "not a calibration recording"),
                        (("--replay", FIXTURE, "--platform", "nrf52840dk"), "a recording of nucleo-l4r5zi"),
                        (("--platform", "mps2-an386"), "not a board"),
                        (("--platform", "nucleo-l4r5zi", "--analyser", "ppk2"), "MHz"),
                        (("--platform", "nucleo-l4r5zi", "--allow-clock-mismatch", "--analyser", "ppk2"),
                         "pip install ppk2-api")]:
        exc, output = _cli(*args, "--out", tmp_path / "x.toml")
        assert isinstance(exc, UsageError) and exc.exit_code == 2, (args, exc, output)
        assert words in str(exc) and exc.hint, str(exc)
    assert not (tmp_path / "x.toml").exists()


def _board_file(board, tmp_path):
    """The simulated board's platform file, its counter labelled cycles and its emulated counterpart named."""
    path = board.platform_file(tmp_path / "qemu-board.toml")
    text = path.read_text().replace('kind = "instructions"', 'kind = "cycles"')
    path.write_text(text + '\n[timing]\nemulated_by = "stm32l4r5-qemu"\n')
    return path


@requires_qemu
@pytest.mark.qemu
def test_calibrate_end_to_end_on_a_simulated_board(tmp_path):
    """The live path, with real parts except the board: tests/boardsim.py's QEMU stands in for it
    on a serial port (a mock: no board here), its SysTick instruction count labelled as the board's
    cycles. The emulated side is the real cycle plugin on stm32l4r5-qemu. Instructions never exceed
    the estimate's cycles (every class costs at least one), so every fitted factor is below 1."""
    from boardsim import QemuBoard

    cal_set = tmp_path / "set.toml"
    cal_set.write_text('vectors = 1\nseed = 0\n[[model]]\nname = "mlp"\nfile = "models/test/mlp_per_tensor.tflite"\n'
                       '[[model]]\nname = "gesture"\nfile = "models/test/gesture_mini_int8.tflite"\n')
    with QemuBoard(tmp_path / "board", board_id="HILSIM0001") as board:
        platform = _board_file(board, tmp_path)
        out, rec = tmp_path / "cal.toml", tmp_path / "rec"
        proc = hil("calibrate", "--platform", platform, "--port", board.socket_url, "--probe", "HILSIM0001",
                   "--set", cal_set, "--allow-clock-mismatch", "--record", rec, "--out", out,
                   "--workdir", tmp_path / "runs", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cal = load_calibration(out)
    assert cal.models == ("mlp", "gesture") and cal.emulated == "stm32l4r5-qemu" and "CLOCK MISMATCH" in cal.note
    assert {"FULLY_CONNECTED", "SOFTMAX", "CONV_2D", "RESHAPE"} <= set(cal.factors)
    assert all(0.2 < f.factor < 1.0 for f in cal.factors.values()), cal.factors
    recording = load_recording(rec)
    assert [w["model"] for w in recording.windows] == ["mlp", "gesture"]  # link timing of each invoke
    again = fit(recording, date=cal.date, hil_version=cal.hil_version)
    assert again.factor("CONV_2D") == pytest.approx(cal.factor("CONV_2D"), rel=1e-5)


@requires_qemu
@pytest.mark.qemu
def test_a_board_that_does_not_answer_is_exit_3(tmp_path):
    """Nothing is flashed (--flasher none) into the simulated board, so its port stays silent."""
    from boardsim import QemuBoard

    cal_set = tmp_path / "set.toml"
    cal_set.write_text('vectors = 1\nseed = 0\n[[model]]\nname = "a"\nfile = "models/test/mlp_per_tensor.tflite"\n'
                       '[[model]]\nname = "b"\nfile = "models/test/mlp_per_tensor.tflite"\n')
    with QemuBoard(tmp_path / "board", board_id="HILSIM0001") as board:
        platform = _board_file(board, tmp_path)
        proc = hil("calibrate", "--platform", platform, "--port", board.socket_url, "--probe", "HILSIM0001", "--flasher", "none",
                   "--set", cal_set, "--allow-clock-mismatch", "--out", tmp_path / "cal.toml",
                   "--workdir", tmp_path / "runs", cwd=tmp_path, timeout=120)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "did not complete" in proc.stderr and "fix:" in proc.stderr
    assert not (tmp_path / "cal.toml").exists()


@requires_qemu
@pytest.mark.qemu
def test_hil_run_applies_a_calibration_and_refuses_one_for_another_platform(calibration, tmp_path):
    """The real cycle plugin on stm32l4r5-qemu; the calibration is the synthetic fixture's."""
    model = REPO / "models" / "test" / "mlp_per_tensor.tflite"
    out = tmp_path / "r.json"
    proc = hil("run", "--model", model, "--platform", "stm32l4r5-qemu", "--vectors", "1", "--json", out,
               "--workdir", tmp_path / "run", "--calibration", calibration.path, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    v = result["vectors"][0]
    assert v["cycles"]["value"] != v["cycles"]["uncalibrated"]
    for op in v["operators"]:
        assert op["cycles"] == round(op["uncalibrated_cycles"] * calibration.factor(op["op"])), op
    basis = result["cycles_basis"]
    assert basis["calibration"] == calibration.cite() and basis["error_band"] == calibration.band
    assert result["energy_model"]["active_ma"] == pytest.approx(calibration.active_ma, rel=1e-3)
    assert result["energy_model"]["active"]["status"] == "assumed"  # synthetic: never verified
    # the same file for another platform: refused before anything is built or booted
    proc = hil("run", "--model", model, "--platform", "mps2-an386", "--vectors", "1", "--workdir", tmp_path / "r2",
               "--calibration", calibration.path, cwd=tmp_path)
    assert proc.returncode == 2 and "calibrated against platform stm32l4r5-qemu, not mps2-an386" in proc.stderr
    assert "booting" not in proc.stderr


def test_a_platform_can_name_its_calibration(calibration, tmp_path):
    """[timing] calibration = "file" in the platform file applies without --calibration; a missing file is exit 2."""
    from harness.platforms import load_platform
    from harness.timing import TimingModel
    from harness.timing.calibration import calibration_for

    text = (REPO / "platforms" / "stm32l4r5-qemu.toml").read_text()
    shutil.copy(calibration.path, tmp_path / "board.toml")
    named = tmp_path / "named.toml"
    named.write_text(text.replace("[timing]\n", '[timing]\ncalibration = "board.toml"\n', 1))
    platform = load_platform(str(named))
    model = TimingModel.for_platform(platform)
    applied = calibration_for(platform, model, None)
    assert applied is not None and applied.band_fraction == pytest.approx(calibration.band_fraction)
    assert calibration_for(platform, None, None) is None  # --no-cycles: nothing to apply it to
    with pytest.raises(UsageError, match="gives no cycle estimate"):
        calibration_for(platform, None, calibration.path)
    named.write_text(text.replace("[timing]\n", '[timing]\ncalibration = "gone.toml"\n', 1))
    with pytest.raises(UsageError, match="does not exist"):
        calibration_for(load_platform(str(named)), model, None)


def test_analyser_samples_are_placed_on_the_host_clock():
    """The capture loop shared by the Joulescope and PPK2 drivers, fed by a stand-in driver (a mock: no
    analyser here): each read's samples end at the read's host time, spaced at the sample rate."""
    import time

    from harness.power.analysers import Analyser

    class Fake(Analyser):
        kind = "fake"

        def _read(self):
            time.sleep(0.01)
            return [0.001] * 100, [3.3] * 100

    fake = Fake()
    fake.rate_hz = 10_000.0
    before = time.monotonic()
    fake.start()
    time.sleep(0.05)
    samples = fake.stop()
    t = samples["t"]
    assert len(t) >= 100 and len(t) == len(samples["current_a"]) == len(samples["voltage_v"])
    assert before - 0.02 < t[0] and t[-1] <= time.monotonic()
    assert abs((t[1] - t[0]) - 1e-4) < 1e-9  # within a read: the analyser's own spacing
