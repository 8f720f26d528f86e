"""Vector files and models that cannot be run are refused before anything
is built or booted: exit 2, the file, the key and the problem named, and a
fix. Each case here ended as "internal error in hil", a silent wrap or a
pass of nothing before (issue 11). The CLI cases run the real `hil run`;
none of them may get as far as building or booting."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from helpers import MODELS, hil

DEMO = MODELS / "demo" / "gesture.tflite"
SHAPE = (128, 1, 3)          # the demo model's input, without the batch dimension
CLASSES = 5


def _run(tmp_path, *args):
    return hil("run", "--workdir", tmp_path / "run", "--json", tmp_path / "r.json", *args, cwd=tmp_path,
               timeout=120)


def _vectors(n=4, value=1):
    return np.full((n, *SHAPE), value, dtype=np.int8)


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def _damaged_zip(tmp_path):
    good = _npz(tmp_path / "good.npz", input_0=_vectors(50), labels=np.arange(50) % CLASSES)
    data = bytearray(good.read_bytes())
    path = tmp_path / "damaged.npz"
    path.write_bytes(bytes(data[: len(data) // 2]))
    return path, "damaged.npz"


def _corrupt_member(tmp_path):
    """A zip whose directory is intact but whose member data is not (CRC)."""
    path = tmp_path / "crc.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        with z.open("input_0.npy", "w") as fh:
            np.save(fh, _vectors(8))
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF
    path.write_bytes(bytes(data))
    return path, "input_0"


def _truncated_npy(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, _vectors(8))
    path.write_bytes(path.read_bytes()[:-100])
    return path, "cut.npy"


def _garbage_npy(tmp_path):
    path = tmp_path / "noise.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00garbage" + bytes(200))
    return path, "noise.npy"


def _object_npy(tmp_path):
    path = tmp_path / "objects.npy"
    np.save(path, np.array([[1, 2], None], dtype=object), allow_pickle=True)
    return path, "Python objects"


def _object_npz(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, input_0=np.array([_vectors(1)[0], None], dtype=object))
    return path, "input_0"


def _string_inputs(tmp_path):
    return _npz(tmp_path / "strings.npz", input_0=np.full((2, *SHAPE), "x")), "strings"


def _fewer_labels(tmp_path):
    return _npz(tmp_path / "few.npz", input_0=_vectors(6), labels=np.arange(3)), "3 labels for 6 vectors"


def _more_labels(tmp_path):
    return _npz(tmp_path / "many.npz", input_0=_vectors(3), labels=np.arange(6) % CLASSES), "6 labels for 3 vectors"


def _string_labels(tmp_path):
    return _npz(tmp_path / "slabels.npz", input_0=_vectors(2), labels=np.array(["wave", "tap"])), "class indices"


def _nan_labels(tmp_path):
    return _npz(tmp_path / "nan.npz", input_0=_vectors(2), labels=np.array([1.0, np.nan])), "NaN"


def _label_out_of_range(tmp_path):
    return _npz(tmp_path / "range.npz", input_0=_vectors(2), labels=np.array([1, 7])), "label 7 of vector 1"


def _one_hot_wrong_width(tmp_path):
    return _npz(tmp_path / "hot3.npz", input_0=_vectors(2), labels=np.eye(3)[[0, 2]]), "3 classes"


def _zero_vectors_npy(tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, *SHAPE), dtype=np.int8))
    return path, "0 vectors"


def _zero_vectors_npz(tmp_path):
    return _npz(tmp_path / "empty.npz", input_0=np.zeros((0, *SHAPE), dtype=np.int8)), "0 vectors"


def _uint8_pixels(tmp_path):
    path = tmp_path / "pixels.npy"
    np.save(path, np.full((3, *SHAPE), 200, dtype=np.uint8))
    return path, "subtract 128"


def _fractional_floats(tmp_path):
    path = tmp_path / "real.npy"
    np.save(path, np.full((2, *SHAPE), 0.25, dtype=np.float32))
    return path, "not whole numbers"


def _unused_inputs(tmp_path):
    extra = {f"input_{i}": _vectors(2) for i in range(5)}
    return _npz(tmp_path / "extra.npz", **extra), "'input_1', 'input_2', 'input_3', 'input_4'"


def _unused_outputs(tmp_path):
    return _npz(tmp_path / "out.npz", input_0=_vectors(2), output_3=np.zeros((2, 1, 5))), "'output_3'"


def _wrong_output_shape(tmp_path):
    return _npz(tmp_path / "oshape.npz", input_0=_vectors(2), output_0=np.zeros((2, 7))), "output_0"


def _complex_inputs(tmp_path):
    path = tmp_path / "complex.npy"
    np.save(path, np.ones((2, *SHAPE), dtype=np.complex64))
    return path, "complex"


def _directory(tmp_path):
    (tmp_path / "adir.npz").mkdir()
    return tmp_path / "adir.npz", "directory"


CASES = [_damaged_zip, _corrupt_member, _truncated_npy, _garbage_npy, _object_npy, _object_npz, _string_inputs,
         _fewer_labels, _more_labels, _string_labels, _nan_labels, _label_out_of_range, _one_hot_wrong_width,
         _zero_vectors_npy, _zero_vectors_npz, _uint8_pixels, _fractional_floats, _unused_inputs, _unused_outputs,
         _wrong_output_shape, _complex_inputs, _directory]


@pytest.mark.parametrize("make", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_bad_vector_file_is_exit_2_before_anything_builds(tmp_path, make):
    path, words = make(tmp_path)
    proc = _run(tmp_path, "--model", DEMO, "--inputs", path)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert path.name in text and words in text, text
    assert "fix:" in text and "internal error" not in text, text
    assert "building firmware" not in text and "booting" not in text, text
    assert not (tmp_path / "run" / "qemu.log").exists()
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["status"] == "error" and result["exit_code"] == 2


def test_uint8_pixels_name_key_count_and_ranges(tmp_path):
    path, _ = _uint8_pixels(tmp_path)
    text = _run(tmp_path, "--model", DEMO, "--inputs", path).stderr
    n = 3 * int(np.prod(SHAPE))
    assert f"{n} of {n} values do not fit input" in text and "int8: -128 to 127" in text, text
    assert "range from 200 to 200" in text, text


def test_nan_in_float_inputs_is_refused(tmp_path):
    from harness.errors import UsageError
    from harness.model.tflite import load_model
    from harness.model.vectors import load_vectors

    model = load_model(MODELS / "test" / "float_io.tflite")
    spec = model.inputs[0]
    assert spec.dtype == np.float32
    values = np.zeros((3, *spec.shape), dtype=np.float32)
    values[1].flat[0] = np.nan
    np.save(tmp_path / "nan.npy", values)
    with pytest.raises(UsageError, match="1 value\\(s\\) are NaN or infinite \\(first in vector 1\\)"):
        load_vectors(tmp_path / "nan.npy", model)
    np.save(tmp_path / "f64.npy", np.full((2, *spec.shape), 0.1, dtype=np.float64))
    assert load_vectors(tmp_path / "f64.npy", model).vectors[0][0].dtype == np.float32  # rounded, as documented
    np.save(tmp_path / "big.npy", np.full((2, *spec.shape), 1e300, dtype=np.float64))
    with pytest.raises(UsageError, match="overflow"):
        load_vectors(tmp_path / "big.npy", model)


def test_bool_vectors_are_refused_for_a_numeric_input(tmp_path):
    """A bool array (a mask saved by mistake) was taken as int8 0/1 and
    ran; now exit 2 before the build, naming the dtype and the fix."""
    from harness.model.tflite import load_model

    spec = load_model(DEMO).inputs[0]
    np.save(tmp_path / "mask.npy", np.ones((2, *spec.shape[1:]), dtype=bool))
    result = _run(tmp_path, "--model", DEMO, "--inputs", tmp_path / "mask.npy")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "holds bool values" in result.stderr and "astype(int8)" in result.stderr, result.stderr


def test_one_hot_and_column_labels_are_accepted(tmp_path):
    """Keras' one-hot labels become class indices (argmax), recorded so; [N, 1]
    labels are indices; expected outputs are recorded for later use."""
    from harness.model.tflite import load_model
    from harness.model.vectors import load_vectors

    model = load_model(DEMO)
    idx = np.array([0, 3, 4, 1])
    _npz(tmp_path / "hot.npz", input_0=_vectors(4), labels=np.eye(CLASSES, dtype=np.float32)[idx],
         output_0=np.zeros((4, 1, CLASSES), dtype=np.int8), classes=np.array(list("abcde")))
    vs = load_vectors(tmp_path / "hot.npz", model, limit=3)
    assert vs.labels is not None and vs.expected_outputs is not None and vs.expected_outputs[0] is not None
    assert vs.labels.tolist() == [0, 3, 4] and vs.labels.dtype == np.int64
    assert vs.source["labels"] == "one-hot (argmax)" and vs.source["expected_outputs"] == ["output_0"]
    assert vs.expected_outputs[0].shape == (3, 1, CLASSES) and vs.classes == list("abcde")

    _npz(tmp_path / "col.npz", input_0=_vectors(4), labels=idx[:, None].astype(np.float64))
    vs = load_vectors(tmp_path / "col.npz", model)
    assert vs.labels is not None
    assert vs.labels.tolist() == idx.tolist() and vs.source["labels"] == "index"

    # uint8 values that fit int8 and whole floats are converted without change
    np.save(tmp_path / "fits.npy", np.full((2, *SHAPE), 100.0))
    assert load_vectors(tmp_path / "fits.npy", model).vectors[0][0].dtype == np.int8


def test_demo_set_still_loads():
    from harness.model.tflite import load_model
    from harness.model.vectors import load_vectors

    vs = load_vectors(MODELS / "demo" / "gesture_test.npz", load_model(DEMO))
    assert len(vs) == 200 and vs.source["labels"] == "index" and len(vs.classes) == CLASSES


# -- models that cannot fit: refused before vectors are made, anything built or booted ------------------


def _patched(tmp_path, name, tensor, shape, pad=0):
    """The demo model with one tensor's shape vector overwritten in place
    (same rank), and `pad` bytes appended (flatbuffers ignore trailing data)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    data = bytearray(DEMO.read_bytes())
    t = schema.Model.GetRootAs(data, 0).Subgraphs(0).Tensors(tensor)
    field = t._tab.Offset(4)  # Tensor.shape
    start, rank = t._tab.Vector(field), t._tab.VectorLen(field)
    assert rank == len(shape)
    np.frombuffer(data, dtype="<i4", count=rank, offset=start)[:] = shape
    path = tmp_path / name
    path.write_bytes(bytes(data) + bytes(pad))
    return path


def _run_limited(tmp_path, *args, address_space=3 << 30):
    """`hil run` with its address space capped, so that a host that tries to
    allocate gigabytes fails fast instead of swapping the machine."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    return subprocess.run([sys.executable, "-m", "harness", "run", "--workdir", str(tmp_path / "run"), *map(str, args)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=limit)


def _refused_before_anything(proc, tmp_path):
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "internal error" not in text and "building firmware" not in text and "booting" not in text, text
    assert not (tmp_path / "run" / "qemu.log").exists()
    return text


def test_huge_declared_input_is_refused_naming_tensor_and_bytes(tmp_path):
    model = _patched(tmp_path, "huge.tflite", 0, [1, 1 << 30, 1, 1])
    assert model.stat().st_size < 20_000
    text = _refused_before_anything(_run_limited(tmp_path, "--model", model, "--vectors", "10"), tmp_path)
    assert "input 'serving_default_keras_tensor_25:0'" in text and "1,073,741,824 bytes" in text, text
    assert "tensor arena of mps2-an386" in text and "fix:" in text, text


def test_huge_intermediate_tensor_is_refused_naming_the_operator(tmp_path):
    model = _patched(tmp_path, "wide.tflite", 17, [1, 1 << 21, 1, 1])
    text = _refused_before_anything(_run_limited(tmp_path, "--model", model), tmp_path)
    assert "operator" in text and "needs at least" in text and "2,097,152 bytes" in text, text
    assert "no platform hil knows has a tensor arena of at least" in text, text


def test_zero_input_dimension_is_refused(tmp_path):
    model = _patched(tmp_path, "zero.tflite", 0, [1, 0, 1, 3])
    text = _refused_before_anything(_run_limited(tmp_path, "--model", model), tmp_path)
    assert "a zero or negative dimension" in text and "[1, 0, 1, 3]" in text, text


def test_model_larger_than_the_ram_buffer_suggests_bake_and_platforms(tmp_path):
    """lm3s6965evb has a 20 KiB model buffer and 256 KiB of flash."""
    model = _patched(tmp_path, "padded.tflite", 0, [1, 128, 1, 3], pad=8192)
    text = _refused_before_anything(_run_limited(tmp_path, "--model", model, "--platform", "lm3s6965evb"), tmp_path)
    assert "larger than the RAM model buffer of lm3s6965evb (20,480 bytes =" in text, text
    assert "use --bake" in text and "mps2-an386" in text and "enlarge" not in text, text


def test_model_larger_than_flash_cannot_be_baked(tmp_path):
    """mps3-an547's code region (ITCM) is 512 KiB."""
    model = _patched(tmp_path, "big.tflite", 0, [1, 128, 1, 3], pad=600_000)
    text = _refused_before_anything(_run_limited(tmp_path, "--model", model, "--platform", "mps3-an547", "--bake"),
                                    tmp_path)
    assert "larger than the code region (flash) of mps3-an547" in text and "mps2-an386" in text, text


def test_a_model_beyond_the_engines_tables_is_refused_before_the_build(tmp_path):
    """streaming_kws_int8 loads 37 operators (31 in subgraph 0, 6 in the subgraph its CALL_ONCE calls);
    lm3s6965evb's platform file builds the engine with ENG_MAX_OPS = 32. Before, the device refused it
    after a build and a boot, with the fix line 'use operators the built-in engine supports'."""
    text = _refused_before_anything(_run_limited(tmp_path, "--model", MODELS / "test" / "streaming_kws_int8.tflite",
                                                 "--platform", "lm3s6965evb"), tmp_path)
    assert "the model has 37 operators (subgraph 0 and the 1 subgraph its CALL_ONCE operators call), more than " \
           "the built-in engine on lm3s6965evb holds (ENG_MAX_OPS = 32)" in text, text
    assert "run it on a platform whose engine holds 37: mps2-an385" in text, text
    assert "use operators" not in text, text


def test_engine_limits_are_counted_as_the_engines_loader_counts():
    """Host only: the limits come from engine.h, the platform file and the project's defines, in that
    order; each is the loader's (a model at a limit loads, one past it does not)."""
    from harness.errors import UsageError
    from harness.model.capacity import check_engine_limits, engine_limits
    from harness.model.tflite import load_model
    from harness.platforms import load_platform

    lm3s, an386 = load_platform("lm3s6965evb"), load_platform("mps2-an386")
    assert engine_limits(an386)["ENG_MAX_OPS"] == 256 and engine_limits(lm3s)["ENG_MAX_OPS"] == 32
    kws = load_model(MODELS / "test" / "streaming_kws_int8.tflite")  # 2 subgraphs, 37 operators, 53 tensors
    assert kws.loaded_subgraphs() == [0, 1] and sum(kws.subgraph_tensors) == 53
    check_engine_limits(kws, lm3s, {"ENG_MAX_OPS": "37"})
    for defines, named in (({"ENG_MAX_OPS": "36u"}, "37 operators"), ({"ENG_MAX_SUBGRAPHS": 1}, "2 subgraphs"),
                           ({"ENG_MAX_TENSORS": 52}, "53 tensors"), ({"ENG_MAX_IO": 0}, "1 inputs")):
        with pytest.raises(UsageError, match=named):
            check_engine_limits(kws, an386, defines)
    check_engine_limits(kws, an386, {"ENG_MAX_OPS": "(200 + 56)"})  # not a number: left to the device


def test_a_table_limit_the_device_reports_names_no_operator_fix():
    from harness.link.protocol import ErrorCode
    from harness.runner import load_refused_hint

    assert "raise that limit in firmware.defines" in load_refused_hint(ErrorCode.LIMIT, prebuilt=False)
    assert "this firmware" in load_refused_hint(ErrorCode.LIMIT, prebuilt=True)
    assert load_refused_hint(ErrorCode.UNSUPPORTED_OP, prebuilt=False) == "use operators the built-in engine supports"


def test_too_many_vectors_for_the_host(tmp_path):
    text = _refused_before_anything(_run_limited(tmp_path, "--model", DEMO, "--vectors", str(1 << 26)), tmp_path)
    assert "of host memory" in text and "use at most" in text, text


@pytest.mark.qemu
def test_arena_the_device_finds_too_small_names_platforms_not_a_file_edit(tmp_path):
    """The host's lower bound passes (2.5 KiB for the demo) but the device's
    memory plan needs more than a 4 KiB arena: the firmware refuses the model
    at LOAD_MODEL (real build, real QEMU), and the hint names platforms where
    it fits instead of "enlarge arena_bytes in the platform file"."""
    from helpers import REPO, requires_qemu

    if requires_qemu.args[0]:
        pytest.skip(requires_qemu.kwargs["reason"])
    text = (REPO / "platforms" / "mps2-an386.toml").read_text()
    small = tmp_path / "small-arena.toml"
    small.write_text(text.replace('name = "mps2-an386"', 'name = "small-arena"')
                     .replace("arena_bytes = 0x100000", "arena_bytes = 0x1000"))
    proc = _run(tmp_path, "--model", DEMO, "--platform", small, "--vectors", "1")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out
    assert "the firmware rejected the model" in out and "the arena needs" in out, out
    assert "run it on a platform with a tensor arena of at least" in out and "mps2-an386" in out, out
    assert "enlarge" not in out, out


@pytest.mark.qemu
def test_one_hot_labels_run_end_to_end(tmp_path):
    """The usual Keras format, on the real device: labels become indices,
    the run passes and reports accuracy (before: an internal error after the
    device had run the first vector)."""
    from helpers import requires_qemu

    if requires_qemu.args[0]:
        pytest.skip(requires_qemu.kwargs["reason"])
    demo = np.load(MODELS / "demo" / "gesture_test.npz")
    hot = _npz(tmp_path / "hot.npz", input_0=demo["input_0"][:12],
               labels=np.eye(CLASSES, dtype=np.float32)[demo["labels"][:12]], classes=demo["classes"])
    proc = _run(tmp_path, "--model", DEMO, "--inputs", hot)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["vector_source"]["labels"] == "one-hot (argmax)"
    assert [v["label"] for v in doc["vectors"]] == demo["labels"][:12].tolist()
    assert doc["summary"]["accuracy"] is not None


@pytest.mark.qemu
def test_session_refuses_a_model_that_cannot_fit_before_sending_it(tmp_path):
    """Robot's Load Model and pytest's hil_dut go through Session.load_model."""
    from helpers import requires_qemu

    if requires_qemu.args[0]:
        pytest.skip(requires_qemu.kwargs["reason"])
    from harness.errors import UsageError
    from harness.session import Session

    huge = _patched(tmp_path, "huge.tflite", 0, [1, 1 << 30, 1, 1])
    with Session("mps2-an386", workdir=tmp_path / "s") as dut:
        with pytest.raises(UsageError, match="1,073,741,824 bytes"):
            dut.load_model(huge)
        assert dut.result is not None
        assert "bulk_transfer" not in dut.result.device and dut.model is None  # nothing was sent
        dut.load_model(DEMO)
        with pytest.raises(UsageError, match="of host memory"):
            dut.vectors(count=1 << 26)
        assert dut.stream(count=2).matches_reference()


def test_other_firmware_is_bounded_by_the_platforms_ram(tmp_path):
    """With --firmware (its own engine and buffers) the arena size is not
    known, but no engine holds an operator's 32 MiB output in the 20 MiB of
    RAM mps2-an386 has; the reference on the host would try to."""
    built = hil("build", "-q", "-p", "mps2-an386")
    assert built.returncode == 0, built.stderr
    model = _patched(tmp_path, "wider.tflite", 17, [1, 1 << 25, 1, 1])
    text = _refused_before_anything(_run_limited(tmp_path, "--model", model, "--firmware",
                                                 built.stdout.strip().splitlines()[-1]), tmp_path)
    assert "needs at least" in text and "more than the RAM of mps2-an386" in text, text


def test_platforms_a_hint_names_can_run_the_built_in_firmware():
    """The hints for a model too large for a platform's built-in firmware
    (arena, model buffer, flash, engine tables) named every platform file
    with room, nucleo-l4r5zi and nucleo-h743zi included, whose board layers
    the built-in firmware does not have: following the hint ended in "names
    board layer 'stm32l4', which the built-in firmware does not have"."""
    from harness.model.capacity import arena_hint, model_buffer_hint
    from harness.platforms import load_platform

    small = load_platform("lm3s6965evb")
    for hint in (arena_hint(16_000, small), model_buffer_hint(100_000, small)):
        assert "mps2-an386" in hint and "riscv32-virt" in hint, hint
        assert "nucleo" not in hint, hint
