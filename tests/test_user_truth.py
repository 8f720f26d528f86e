"""Checks against the user's own truth: expected outputs (`--expected`,
`vectors = { ..., expected = true }`) and the float original
(`--float-model`, `float_model`), on the bundled pair
models/test/gesture_mini_int8.tflite and its true float original
gesture_mini_float.tflite (one training run, see MANIFEST.json), in real
QEMU with the real TFLM reference.

Expected outputs are made by the TFLM reference itself (what the device
must produce), then one element is moved by one step: exact checking must
name that vector and element, a tolerance of 1 must accept it. Three
boots in all (one `hil run`, the two jobs of one `hil test`); the bad
inputs stop before anything is built or booted.
"""

from __future__ import annotations

import json
import sqlite3
import textwrap

import numpy as np
import pytest

from harness.config import load_config
from harness.errors import UsageError
from harness.model.reference import compute
from harness.results.compare import compare
from harness.runner import Run, RunConfig
from helpers import MODELS, hil, requires_qemu

# the true pair: an int8 model and the float model it was quantized from (one training run)
MODEL = MODELS / "test" / "gesture_mini_int8.tflite"
FLOAT_MODEL = MODELS / "test" / "gesture_mini_float.tflite"
TEST_SET = MODELS / "test" / "gesture_mini_test.npz"
MANIFEST = json.loads((MODELS / "test" / "MANIFEST.json").read_text())["models"]["gesture_mini"]
# the demo model and its float stand-in (weights dequantized), for the hil.toml checks
GESTURE = MODELS / "demo" / "gesture.tflite"
GESTURE_FLOAT = MODELS / "demo" / "gesture_float.tflite"
N = 100  # the whole labelled test set of the pair
MOVED = (3, 0, 2)  # vector, then the element of its [1, 5] output that the "bad" arrays move by one


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    """20 labelled vectors with the reference's outputs (good) and a copy
    with one element off by one (bad), as .npz and .npy files."""
    d = tmp_path_factory.mktemp("truth")
    data = np.load(TEST_SET)
    inputs, labels = data["input_0"][:N], data["labels"][:N]
    outputs = np.stack([o[0] for o in compute(MODEL.read_bytes(), [[x[None]] for x in inputs], 1 << 20, 1)])
    bad = outputs.copy()
    bad[MOVED] += 1 if bad[MOVED] < 127 else -1
    np.savez(d / "inputs.npz", input_0=inputs, labels=labels)
    np.savez(d / "good.npz", input_0=inputs, labels=labels, output_0=outputs)
    np.savez(d / "bad_out.npz", output_0=bad)
    np.save(d / "bad_out.npy", bad)
    return {"dir": d, "outputs": outputs, "bad": bad}


# -- bad input: exit 2, before anything is built or booted ----------------------------------------

def _prepared(tmp_path, **options) -> dict:
    """A run that must stop in its preparation: the result says why, and
    nothing was built or booted."""
    run = Run(RunConfig(model=MODEL, platform="mps2-an386", workdir=tmp_path / "run", **options))
    result = run.execute()
    assert result.exit_code == 2, result.as_dict()
    assert result.firmware == {} and result.target == {}, "it got past the preparation"
    assert not (tmp_path / "run" / "qemu.log").exists()
    assert result.error is not None
    return result.error["message"]


def test_bad_expected_outputs_are_refused_before_boot(tmp_path, truth):
    d, good = truth["dir"], truth["outputs"]
    inputs = d / "inputs.npz"
    cases = {
        "shape": (np.zeros((N, 1, 4), np.int8), f"shape ({N}, 1, 4) does not fit output"),
        "count": (good[:N - 1], f"{N - 1} expected outputs for {N} vectors"),
        "dtype": (good.astype(np.float32) + 0.5, "are not int8 codes"),
        "range": (good.astype(np.int16) * 4, "outside output"),
        "strings": (np.array([["a"] * 5] * N), "expected outputs must be numbers"),
    }
    for name, (array, words) in cases.items():
        path = tmp_path / f"{name}.npz"
        np.savez(path, output_0=array)
        message = _prepared(tmp_path, inputs=inputs, expected_file=path)
        assert words in message and str(path) in message, (name, message)
    np.savez(tmp_path / "stray.npz", output_0=good, output_1=good)
    assert "'output_1' are not expected outputs" in _prepared(tmp_path, inputs=inputs,
                                                               expected_file=tmp_path / "stray.npz")
    # --expected alone reads output_<k> of --inputs: this file has none
    message = _prepared(tmp_path, inputs=inputs, expected=True)
    assert "no output_0" in message and "--expected FILE" in message
    # expected outputs belong to given inputs, not to random vectors
    message = _prepared(tmp_path, vectors=3, expected_file=d / "bad_out.npz")
    assert "--expected needs --inputs" in message
    assert "no such file" in _prepared(tmp_path, inputs=inputs, expected_file=tmp_path / "missing.npz")
    assert "tolerance" in _prepared(tmp_path, inputs=inputs, expected=True, expected_tolerance=-1.0)


def test_a_float_model_that_does_not_fit_is_refused_before_boot(tmp_path, truth):
    inputs = truth["dir"] / "inputs.npz"
    # the int8 model itself is not a float model
    message = _prepared(tmp_path, inputs=inputs, float_model=MODEL)
    assert "is not a float model: input 0" in message and "int8, not float32" in message
    # a float model of another shape
    message = _prepared(tmp_path, inputs=inputs, float_model=MODELS / "test" / "float_conv.tflite")
    assert "input 0 has shape" in message and "[1, 128, 1, 3]" in message
    # an integer model with float inputs and outputs is not the float original
    message = _prepared(tmp_path, inputs=inputs, float_model=MODELS / "test" / "float_io.tflite")
    assert "quantized model with float inputs and outputs" in message and "QUANTIZE" in message
    assert "no such file" in _prepared(tmp_path, inputs=inputs, float_model=tmp_path / "none.tflite")
    # a SavedModel directory or a .keras file: TFLM takes .tflite, the message says how to convert
    (tmp_path / "saved_model").mkdir()
    for given in (tmp_path / "saved_model", tmp_path / "m.keras"):
        message = _prepared(tmp_path, inputs=inputs, float_model=given)
        assert "is a Keras model or SavedModel" in message and "TFLiteConverter" in message


def test_the_cli_says_what_is_wrong_with_exit_2(tmp_path, truth):
    proc = hil("run", "--model", MODEL, "--inputs", truth["dir"] / "inputs.npz", "--expected",
               "--workdir", tmp_path / "run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no output_0" in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    proc = hil("run", "--model", MODEL, "--float-model", MODEL, "--workdir", tmp_path / "run2")
    assert proc.returncode == 2 and "is not a float model" in proc.stderr, proc.stdout + proc.stderr


def test_hil_toml_keys_are_validated(tmp_path, truth):
    (tmp_path / "m.tflite").write_bytes(GESTURE.read_bytes())
    np.savez(tmp_path / "v.npz", **np.load(truth["dir"] / "good.npz"))
    cases = {
        'vectors = { random = 3, expected = true }': "needs `file`",
        'vectors = { file = "v.npz", expectd = true }': "did you mean `expected`",
        'vectors = { file = "v.npz", expected_tolerance = 1 }': "is set but `expected` is not",
        'vectors = { file = "v.npz", expected = 1 }': "must be a bool/str",
        'vectors = { file = "v.npz" }\nchecks = { expected = true }': "needs expected outputs",
        'vectors = { file = "v.npz" }\nchecks = { float_cosine_min = 0.99 }': "needs a float model",
        f'vectors = {{ file = "v.npz" }}\nfloat_model = "{GESTURE}"': "is not a float model",
        f'vectors = {{ file = "v.npz" }}\nfloat_model = "{GESTURE_FLOAT}"\nchecks = {{ float_top1_agreement = 1 }}':
            "did you mean `float_top1_agreement_min`",
    }
    for entry, words in cases.items():
        (tmp_path / "hil.toml").write_text(f'[[models]]\nname = "m"\npath = "m.tflite"\n{entry}\n')
        with pytest.raises(UsageError) as error:
            load_config(tmp_path / "hil.toml")
        assert error.value.exit_code == 2 and words in str(error.value), (entry, str(error.value))
    # the key that turns the check on also adds it
    (tmp_path / "hil.toml").write_text('[[models]]\nname = "m"\npath = "m.tflite"\n'
                                       'vectors = { file = "v.npz", expected = true, expected_tolerance = 2 }\n')
    configured = load_config(tmp_path / "hil.toml").models[0]
    assert configured.checks == {"expected": True, "bit_exact": True} and configured.vectors.expected_tolerance == 2.0


def test_fraction_metrics_regress_on_an_absolute_drop():
    """hil compare on two suite documents (no run needed: only the metrics matter)."""
    def suite(agreement, cosine, match):
        return {"jobs": [{"id": "p/m", "platform": "p", "model": "m", "metrics": {
            "float_top1_agreement": agreement, "float_cosine": cosine, "expected_match": match}}], "cases": []}

    thresholds = {"float_top1_drop": 0.01, "float_cosine_drop": 0.01, "expected_match_drop": 0.01}
    doc = compare(suite(0.99, 0.999, 1.0), suite(0.95, 0.995, 0.9), thresholds)
    status = {c["metric"]: c["status"] for c in doc["changes"]}
    assert status == {"float_top1_agreement": "regressed", "float_cosine": "unchanged", "expected_match": "regressed"}
    assert doc["verdict"] == "regressed"
    assert compare(suite(0.95, 0.99, 0.9), suite(0.99, 0.999, 1.0), thresholds)["verdict"] == "improved"


# -- in QEMU ------------------------------------------------------------------------------------

@requires_qemu
@pytest.mark.qemu
def test_hil_run_names_the_vector_and_element_that_differ_and_measures_the_float_model(tmp_path, truth):
    d = truth["dir"]
    out = tmp_path / "r.json"
    proc = hil("run", "--model", MODEL, "--inputs", d / "inputs.npz", "--expected", d / "bad_out.npy",
               "--float-model", FLOAT_MODEL, "--json", out, "--workdir", tmp_path / "run")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # bit-exact with TFLM, but not with the user's arrays: the console says which vector and element
    assert f"{N}/{N} vectors bit-exact" in proc.stdout and "1 differ from the expected outputs" in proc.stdout
    vector, _, element = MOVED
    got, want = int(truth["outputs"][MOVED]), int(truth["bad"][MOVED])
    assert (f"expected outputs: {N - 1}/{N} vectors match exactly; first differing: vector {vector}: 1/5 elements "
            f"differ; largest |diff| 1 at [0, {element}] (flat {element}): got {got}, expected {want}") in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["status"] == "failed" and doc["exit_code"] == 1
    mismatch = doc["vectors"][vector]["expected"]["mismatch"]
    assert {k: mismatch[k] for k in ("elements", "differ", "worst_index", "expected", "got", "max_abs_diff")} == \
        {"elements": 5, "differ": 1, "worst_index": element, "expected": want, "got": got, "max_abs_diff": 1}
    assert all(v["expected"]["passed"] for v in doc["vectors"] if v["index"] != vector)
    assert doc["summary"]["expected"] == {"checked": N, "matched": N - 1, "max_abs_diff": 1.0, "tolerance": 0.0,
                                          "first_mismatch": {"vector": vector, **mismatch}}
    # the true float original on the same (dequantized) inputs: measured 98% top-1 agreement, cosine
    # 0.9989, accuracy 92% on the device and for the float model (bounds keep a margin)
    f = doc["summary"]["float"]
    assert f["vectors"] == N and f["labelled"] == N
    assert 0.95 <= f["top1_agreement"] <= 1.0 and 0.99 < f["cosine_mean"] <= 1.0 and 0 < f["l2_rel_mean"] < 0.1
    assert f["accuracy"] == doc["summary"]["accuracy"]["top1"] and 0.85 <= f["accuracy"] <= 1.0
    assert 0.85 <= f["float_accuracy"] <= 1.0 and abs(f["accuracy"] - f["float_accuracy"]) <= 0.03
    # the device (bit-exact with TFLM) and TFLM's float interpreter reproduce what make_models.py recorded
    recorded = MANIFEST["test_set"]
    assert MANIFEST["float_original"]["true_original"] and recorded["n"] == N
    assert f["top1_agreement"] == recorded["top1_agreement_int8_vs_float"]
    assert f["accuracy"] == recorded["int8_tflm_accuracy"]
    assert f["float_accuracy"] == recorded["float_tflm_accuracy_dequantized_inputs"]
    assert {"top1", "float_top1", "cosine", "l2_rel"} <= set(doc["vectors"][0]["float"])
    assert doc["vector_source"]["float_model"]["path"] == str(FLOAT_MODEL)
    assert f"float model {FLOAT_MODEL.name} on the same inputs: top-1 agreement" in proc.stdout


@requires_qemu
@pytest.mark.qemu
def test_a_suite_checks_expected_outputs_and_the_float_model(tmp_path, truth):
    d = truth["dir"]
    (tmp_path / "hil.toml").write_text(textwrap.dedent(f"""
        [project]
        name = "truth"
        platforms = ["mps2-an386"]

        [[models]]
        name = "exact"
        path = "{MODEL}"
        vectors = {{ file = "{d / 'good.npz'}", expected = true }}

        [[models]]
        name = "tolerant"
        path = "{MODEL}"
        vectors = {{ file = "{d / 'inputs.npz'}", expected = "{d / 'bad_out.npz'}", expected_tolerance = 1 }}
        float_model = "{FLOAT_MODEL}"
        checks = {{ float_top1_agreement_min = 0.95, float_accuracy_drop_max = 0.05, float_cosine_min = 1.0 }}
        """))
    proc = hil("test", "--json", tmp_path / "suite.json", "--out", tmp_path / "out", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # only the cosine fails (int8 is never float's 1.0)
    doc = json.loads((tmp_path / "suite.json").read_text())
    cases = {c["id"].split("/", 1)[1]: c for c in doc["cases"]}
    assert {k: c["status"] for k, c in cases.items()} == {
        "exact/bit_exact": "passed", "exact/expected": "passed",
        "tolerant/bit_exact": "passed", "tolerant/expected": "passed",
        "tolerant/float_top1_agreement_min": "passed", "tolerant/float_accuracy_drop_max": "passed",
        "tolerant/float_cosine_min": "failed"}
    assert cases["exact/expected"]["message"] == f"{N}/{N} vectors match the expected outputs"
    assert cases["tolerant/expected"]["message"] == f"{N}/{N} vectors match the expected outputs within 1"
    assert "mean cosine similarity to the float model 0.9" in cases["tolerant/float_cosine_min"]["message"]
    assert "(min 1.0" in cases["tolerant/float_cosine_min"]["message"]
    assert "float_cosine_min" in proc.stdout
    metrics = {j["model"]: j["metrics"] for j in doc["jobs"]}
    assert metrics["exact"]["expected_match"] == 1.0 and metrics["exact"]["float_top1_agreement"] is None
    assert metrics["tolerant"]["expected_match"] == 1.0 and metrics["tolerant"]["float_top1_agreement"] >= 0.95
    assert 0.99 < metrics["tolerant"]["float_cosine"] <= 1.0
    tolerant = next(j for j in doc["jobs"] if j["model"] == "tolerant")
    result = json.loads((tmp_path / "out" / tolerant["result"]).read_text())
    assert result["summary"]["expected"]["max_abs_diff"] == 1.0 and result["summary"]["expected"]["tolerance"] == 1.0
    # the store keeps them as fractions, for queries and trends
    with sqlite3.connect(tmp_path / ".hil" / "results.db") as db:
        stored = dict(db.execute("SELECT metric, unit FROM hil_metrics WHERE model = 'tolerant'").fetchall())
    assert {k: stored.get(k) for k in ("float_top1_agreement", "float_cosine", "expected_match")} == \
        dict.fromkeys(("float_top1_agreement", "float_cosine", "expected_match"), "fraction")


def test_a_nan_output_never_matches_its_expected_value():
    """NaN compares false with everything, so `diff > tolerance` let a NaN
    element pass: a float model producing NaN passed the `expected` check."""
    from harness.checks.truth import compare_expected
    got = [np.array([[np.nan, 1.0, 2.0]], dtype=np.float32)]
    want = [np.array([[0.5, 1.0, 2.5]], dtype=np.float32)]
    record = compare_expected(got, want, tolerance=0.1)
    assert not record["passed"]
    m = record["mismatch"]
    assert m["differ"] == 2 and m["worst_index"] == 0 and m["max_abs_diff"] is None  # NaN ranks worst
    assert m["worst_position"] == [0, 0] and m["got"] == "nan"
    exact = compare_expected([np.array([1, 2], dtype=np.int8)], [np.array([1, 2], dtype=np.int8)], 0)
    assert exact == {"passed": True, "max_abs_diff": 0.0}
