"""`hil build --engine tflm`: the op resolver generated from the models'
operators (TFLM's naming rule, checked against the Add* methods of the
tree's micro_mutable_op_resolver.h), the tree checks and usage errors.

TFLM's sources cannot be installed from the package registries this
project reaches (the `tflite-micro` wheel has the interpreter, not the C++
sources), so building the runner on TFLM runs only where
$HIL_TEST_TFLM_DIR names a TFLM tree made by create_tflm_tree.py
(docs/build.md); everything else here uses a skeleton tree with just the
files the generator reads."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from harness.build.project import BuildSpec
from harness.build.diagnostics import first_error
from harness.build.tflm import (add_method, available_methods, extra_flags, has_mve, model_operators, prepare_tflm,
                                resolver_source)
from harness.errors import UsageError
from harness.platforms import load_platform

from helpers import MODELS, REPO, hil, requires_qemu

DEMO = MODELS / "demo" / "gesture.tflite"
RELU = REPO / "tests" / "fixtures" / "ext_cmake_fw" / "model" / "relu_int8.tflite"
FAKE_TREE = REPO / "tests" / "fixtures" / "fake_tflm"


@pytest.fixture
def fake_tree(tmp_path) -> Path:
    """tests/fixtures/fake_tflm, copied (its file times are part of the
    library's cache key), with a cache of its own."""
    tree = tmp_path / "tflm-tree"
    shutil.copytree(FAKE_TREE, tree)
    return tree


@pytest.fixture
def skeleton(tmp_path) -> Path:
    """The files prepare_tflm reads from a TFLM tree, nothing else."""
    tree = tmp_path / "tflm"
    micro = tree / "tensorflow" / "lite" / "micro"
    micro.mkdir(parents=True)
    (tree / "third_party" / "flatbuffers" / "include").mkdir(parents=True)
    (micro / "micro_interpreter.h").write_text("// skeleton\n")
    (micro / "micro_mutable_op_resolver.h").write_text(textwrap.dedent("""\
        template <unsigned int tOpCount>
        class MicroMutableOpResolver : public MicroOpResolver {
         public:
          TfLiteStatus AddCustom(const char* name, TFLMRegistration* registration) { return kTfLiteOk; }
          TfLiteStatus AddConv2D(
              const TFLMRegistration& registration = Register_CONV_2D()) { return kTfLiteOk; }
          TfLiteStatus AddDepthwiseConv2D(
              const TFLMRegistration& registration = Register_DEPTHWISE_CONV_2D()) { return kTfLiteOk; }
          TfLiteStatus AddFullyConnected(const TFLMRegistration& registration = Register_FULLY_CONNECTED()) {
            return kTfLiteOk;
          }
          TfLiteStatus AddMaxPool2D(const TFLMRegistration& registration = Register_MAX_POOL_2D()) { return kTfLiteOk; }
          TfLiteStatus AddAveragePool2D(const TFLMRegistration& registration = Register_AVERAGE_POOL_2D()) {
            return kTfLiteOk;
          }
          TfLiteStatus AddReshape() { return kTfLiteOk; }
          TfLiteStatus AddSoftmax(const TFLMRegistration& registration = Register_SOFTMAX()) { return kTfLiteOk; }
          TfLiteStatus AddRelu() { return kTfLiteOk; }
          TfLiteStatus AddPadV2(const TFLMRegistration& registration = Register_PADV2()) { return kTfLiteOk; }
          TfLiteStatus AddEthosU(const TFLMRegistration& registration) { return kTfLiteOk; }
        };
        """))
    return tree


def test_operator_names_map_to_tflm_add_methods():
    assert add_method("CONV_2D") == "AddConv2D"
    assert add_method("DEPTHWISE_CONV_2D") == "AddDepthwiseConv2D"
    assert add_method("FULLY_CONNECTED") == "AddFullyConnected"
    assert add_method("BATCH_MATMUL") == "AddBatchMatMul"
    assert add_method("UNIDIRECTIONAL_SEQUENCE_LSTM") == "AddUnidirectionalSequenceLSTM"
    assert add_method("L2_NORMALIZATION") == "AddL2Normalization"
    assert add_method("TFLite_Detection_PostProcess") == "AddDetectionPostprocess"


def test_callable_add_methods_are_read_from_the_header(skeleton):
    methods = available_methods(skeleton)
    assert {"AddConv2D", "AddReshape", "AddRelu", "AddFullyConnected"} <= methods
    assert "AddCustom" not in methods and "AddEthosU" not in methods  # need arguments


def test_model_operators_cover_every_subgraph():
    from harness.model.tflite import load_model

    assert model_operators(DEMO) == sorted({op.name for op in load_model(DEMO).operators})
    assert model_operators(RELU) == ["RELU"]
    stateful = MODELS / "test" / "stateful_int8.tflite"
    if stateful.exists():  # its CALL_ONCE init subgraph's operators count too
        assert {"CALL_ONCE", "VAR_HANDLE", "ASSIGN_VARIABLE"} <= set(model_operators(stateful))


def test_resolver_is_generated_from_the_models(skeleton, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.build.tflm.build_library", lambda *a, **k: tmp_path / "libtflm.a")
    spec = BuildSpec(engine="tflm", tflm_dir=skeleton, models=(DEMO, RELU))
    prep = prepare_tflm(spec, load_platform("mps2-an386"))
    expected = tuple(sorted({add_method(op) for op in model_operators(DEMO) + ["RELU"]}))
    assert prep.operators == expected and "AddConv2D" in expected and "AddRelu" in expected
    text = prep.resolver.read_text()
    assert f"tflite::MicroMutableOpResolver<{len(expected)}>" in text and "resolver->AddRelu();" in text
    assert "operators of gesture.tflite, relu_int8.tflite" in text
    assert prep.cmake_vars["HIL_ENGINE"] == "tflm" and prep.cmake_vars["TFLM_DIR"] == str(skeleton)
    assert prep.cmake_vars["HIL_TFLM_CMSIS_NN"] == "OFF"
    # without models: every builtin operator the tree registers
    every = prepare_tflm(BuildSpec(engine="tflm", tflm_dir=skeleton), load_platform("mps2-an386"))
    assert set(every.operators) == available_methods(skeleton)  # AddCustom, AddEthosU need arguments: not there


def test_the_trees_own_spelling_wins_where_the_naming_rule_misses(skeleton, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.build.tflm.build_library", lambda *a, **k: tmp_path / "libtflm.a")
    assert add_method("PADV2") == "AddPadv2"  # TFLM's rule; its header says AddPadV2
    layout = MODELS / "test" / "float_layout.tflite"
    if "PADV2" not in model_operators(layout):
        pytest.skip("float_layout.tflite no longer uses PADV2")
    header = skeleton / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h"
    extra = "".join(f"  TfLiteStatus {add_method(op)}() {{ return kTfLiteOk; }}\n" for op in model_operators(layout)
                    if op != "PADV2")
    header.write_text(header.read_text().replace(" public:\n", " public:\n" + extra))
    prep = prepare_tflm(BuildSpec(engine="tflm", tflm_dir=skeleton, models=(layout,)), load_platform("mps2-an386"))
    assert "AddPadV2" in prep.operators


def test_an_operator_the_tree_lacks_is_named_with_its_model(skeleton, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.build.tflm.build_library", lambda *a, **k: tmp_path / "libtflm.a")
    header = skeleton / "tensorflow" / "lite" / "micro" / "micro_mutable_op_resolver.h"
    header.write_text(header.read_text().replace("AddRelu()", "AddReluX()"))
    with pytest.raises(UsageError) as refused:
        prepare_tflm(BuildSpec(engine="tflm", tflm_dir=skeleton, models=(RELU,)), load_platform("mps2-an386"))
    assert "RELU (AddRelu, used by relu_int8.tflite)" in str(refused.value)


def test_cmsis_nn_needs_a_tree_generated_with_it(skeleton, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.build.tflm.build_library", lambda *a, **k: tmp_path / "libtflm.a")
    with pytest.raises(UsageError) as refused:
        prepare_tflm(BuildSpec(engine="tflm", tflm_dir=skeleton, cmsis_nn=True), load_platform("mps2-an386"))
    assert "OPTIMIZED_KERNEL_DIR=cmsis_nn" in str(refused.value)
    (skeleton / "tensorflow" / "lite" / "micro" / "kernels" / "cmsis_nn").mkdir(parents=True)
    prep = prepare_tflm(BuildSpec(engine="tflm", tflm_dir=skeleton), load_platform("mps2-an386"))
    assert prep.cmsis_nn and prep.cmake_vars["HIL_TFLM_CMSIS_NN"] == "ON"  # the tree's kernels need it


def test_not_a_tree(tmp_path):
    proc = hil("build", "--engine", "tflm", "--tflm-dir", tmp_path)
    assert proc.returncode == 2 and "is not a TFLM source tree" in proc.stderr and "create_tflm_tree.py" in proc.stderr
    proc = hil("build", REPO / "tests" / "fixtures" / "ext_cmake_fw", "--engine", "tflm", "--tflm-dir", tmp_path)
    assert proc.returncode == 2 and "links TFLM itself" in proc.stderr


def test_resolver_source_shape():
    text = resolver_source(["AddAdd", "AddMul"], "test")
    assert "MicroMutableOpResolver<2>" in text and "new (storage)" in text  # never destroyed: no __dso_handle


TFLM_DIR = os.environ.get("HIL_TEST_TFLM_DIR")


@pytest.mark.skipif(not TFLM_DIR, reason="TFLM's C++ sources cannot be installed from the package registries this "
                                         "project reaches; set HIL_TEST_TFLM_DIR to a tree made by TFLM's "
                                         "create_tflm_tree.py (docs/build.md)")
@requires_qemu
def test_runner_on_real_tflm_is_bit_exact_with_profiles(tmp_path):
    assert TFLM_DIR is not None  # skipped without it
    proc = hil("build", "-p", "mps2-an386", "--engine", "tflm", "--tflm-dir", TFLM_DIR, "--model", DEMO, "-q",
               timeout=3600)
    assert proc.returncode == 0, proc.stderr
    run = hil("run", "--model", DEMO, "-p", "mps2-an386", "--firmware", proc.stdout.strip(), "--vectors", "3",
              "--json", tmp_path / "r.json", "--workdir", tmp_path / "run")
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["device"]["engine"] in ("tflm-reference", "tflm-cmsis-nn") and result["summary"]["passed"] == 3
    ops = result["vectors"][0]["operators"]
    assert [o["op"] for o in ops][:2] == ["CONV_2D", "DEPTHWISE_CONV_2D"] or len(ops) == 11


# -- the TFLM library build: errors classified, failures remembered (real CMake and arm-none-eabi-gcc) --------

def test_a_failed_library_build_names_the_source_and_is_remembered(fake_tree, tmp_path):
    """The fake tree's broken_kernel.cc passes the compiler and fails in the
    assembler, whose error names gcc's temporary .s file: the message names
    the source instead. The second build (another model, the same tree and
    flags) fails at once with the same message; --rebuild tries again."""
    env = {"HIL_CACHE_DIR": str(tmp_path / "cache")}
    first = hil("build", "-p", "mps2-an386", "--engine", "tflm", "--tflm-dir", fake_tree, env=env)
    said = " ".join(first.stderr.split())  # the console wraps long lines
    assert first.returncode == 1, said
    assert "tensorflow/lite/micro/kernels/broken_kernel.cc: assembler:" in said, said
    assert "IT block" in said and "building TFLM" in said and ".s:" not in said
    log = next((tmp_path / "cache" / "tflm-lib").glob("*/build.log"))
    built = log.stat().st_mtime_ns
    again = hil("run", "--engine", "tflm", "--tflm-dir", fake_tree, "-m", RELU, "-p", "mps2-an386",
                "--workdir", tmp_path / "run", env=env)
    assert again.returncode == 1, again.stdout + again.stderr
    text = " ".join((again.stdout + again.stderr).split())
    assert "broken_kernel.cc: assembler:" in text and "remembered" in text and "--rebuild" in text
    assert log.stat().st_mtime_ns == built  # not rebuilt
    retried = hil("build", "-p", "mps2-an386", "--engine", "tflm", "--tflm-dir", fake_tree, "--rebuild", env=env)
    assert retried.returncode == 1 and "broken_kernel.cc" in retried.stderr and "remembered" not in retried.stderr
    assert log.stat().st_mtime_ns != built


def test_a_cross_compiler_without_its_cxx_library_is_infrastructure(fake_tree, tmp_path):
    """Debian's arm-none-eabi-g++ without libstdc++-arm-none-eabi-newlib: the
    real g++ with -nostdinc++ stands in for the missing package (it is
    installed here). Exit 3 naming the package, before anything builds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "arm-none-eabi-g++"
    wrapper.write_text(f"#!/bin/sh\nexec {shutil.which('arm-none-eabi-g++')} -nostdinc++ \"$@\"\n")
    wrapper.chmod(0o755)
    env = {"HIL_CACHE_DIR": str(tmp_path / "cache"), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    proc = hil("build", "-p", "mps2-an386", "--engine", "tflm", "--tflm-dir", fake_tree, env=env)
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 3, said
    assert "no C++ standard library" in said and "apt-get install -y libstdc++-arm-none-eabi-newlib" in said
    assert not list((tmp_path / "cache").glob("tflm-lib/*/build.log"))  # refused before building
    # RISC-V: Debian packages no C++ library for riscv64-unknown-elf at all
    proc = hil("build", "-p", "riscv32-virt", "--engine", "tflm", "--tflm-dir", fake_tree, env=env)
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 3 and "Debian packages none for riscv64-unknown-elf" in said, said


def test_tflm_dir_from_the_environment_and_bad_trees(fake_tree, tmp_path):
    env = {"HIL_CACHE_DIR": str(tmp_path / "cache"), "TFLM_DIR": str(tmp_path / "nowhere")}
    proc = hil("build", "-p", "mps2-an386", "--engine", "tflm", env=env)
    assert proc.returncode == 2 and "$TFLM_DIR" in proc.stderr and "no such directory" in proc.stderr, proc.stderr
    proc = hil("run", "--engine", "tflm", "-m", DEMO, "--workdir", tmp_path / "run", env={"TFLM_DIR": ""})
    assert proc.returncode == 2 and "--tflm-dir DIR or $TFLM_DIR" in proc.stderr, proc.stderr
    proc = hil("run", "--engine", "tflm", "--tflm-dir", fake_tree, "-m", DEMO, "--firmware", DEMO)
    assert proc.returncode == 2 and "--firmware runs an ELF already built" in proc.stderr, proc.stderr


def test_hil_toml_engine_tflm_takes_tflm_dir_from_the_environment(tmp_path, monkeypatch):
    from harness.config import load_config

    (tmp_path / "hil.toml").write_text(f'[project]\nplatforms = ["mps2-an386"]\n[[models]]\npath = "{DEMO}"\n'
                                       '[firmware]\nengine = "tflm"\n')
    monkeypatch.delenv("TFLM_DIR", raising=False)
    with pytest.raises(UsageError) as refused:
        load_config(tmp_path / "hil.toml")
    assert "firmware.tflm_dir" in str(refused.value) and "$TFLM_DIR" in str(refused.value)
    monkeypatch.setenv("TFLM_DIR", str(tmp_path))
    build = load_config(tmp_path / "hil.toml").build
    assert build is not None and build.engine == "tflm"


def test_only_a_missing_standard_header_is_a_missing_cxx_library(tmp_path):
    """The C++ library probe names the package only when a standard header
    is missing; a compiler that fails for another reason (a flag it refuses)
    leaves the error to the build, not an exit 3 about libstdc++."""
    from harness.build.tflm import check_cxx_library
    from harness.errors import InfraError

    fake = tmp_path / "g++"
    fake.write_text("#!/bin/sh\necho \"cc1plus: error: unrecognized -mcpu target: cortex-m99\" >&2\nexit 1\n")
    fake.chmod(0o755)
    check_cxx_library(str(fake), ["-mcpu=cortex-m99"], "arm-none-eabi")  # returns: no InfraError
    fake.write_text("#!/bin/sh\necho \"<stdin>:2:10: fatal error: vector: No such file or directory\" >&2\nexit 1\n")
    with pytest.raises(InfraError, match="<vector> not found"):
        check_cxx_library(str(fake), ["-mcpu=cortex-m4"], "arm-none-eabi")


def test_flags_a_tree_or_core_needs():
    assert has_mve(["-mcpu=cortex-m55", "-mfloat-abi=hard"]) and not has_mve(["-mcpu=cortex-m55+nomve"])
    assert not has_mve(["-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"]) and not has_mve(["-mcpu=cortex-m33"])
    assert extra_flags(FAKE_TREE, load_platform("mps2-an386")) == ""  # reference tree, M4: the cache key as before
    assert extra_flags(FAKE_TREE, load_platform("mps3-an547")) == "-fno-if-conversion2"


def test_cortex_m_generic_export_gets_project_generation(fake_tree):
    generic = fake_tree / "tensorflow" / "lite" / "micro" / "cortex_m_generic"
    generic.mkdir()
    (generic / "micro_time.cc").write_text("// uses DCB unless PROJECT_GENERATION\n")
    assert extra_flags(fake_tree, load_platform("mps2-an386")) == "-DPROJECT_GENERATION"


def test_assembler_errors_name_the_source_with_make_too():
    log = ("[ 50%] Building CXX object CMakeFiles/tflm.dir/tensorflow/lite/micro/kernels/resize_nearest_neighbor.cc.obj\n"
           "/tmp/ccVdTJp1.s: Assembler messages:\n"
           "/tmp/ccVdTJp1.s:446: Error: syntax error -- `vcvtne.f32.s32 s15,s17'\n"
           "make[2]: *** [CMakeFiles/tflm.dir/build.make:76: x.obj] Error 1\n")
    diag = first_error(log)
    assert diag.file == "tensorflow/lite/micro/kernels/resize_nearest_neighbor.cc", diag
    assert "vcvtne.f32.s32" in diag.message and "/tmp/ccVdTJp1.s line 446" in diag.message


def test_engine_names_keep_tflm_provenance():
    from harness.provenance import _engine

    for name in ("tflm", "tflm-reference", "tflm-cmsis-nn"):
        assert _engine({"engine": name})["detail"].startswith("TFLM tree supplied by the user")


def test_engine_options_over_hil_toml_firmware(tmp_path, monkeypatch):
    """hil test's --engine/--cmsis-nn over hil.toml's [firmware]: engine =
    "tflm" keeps its tflm_dir (not only $TFLM_DIR); --tflm-dir over a cmake
    app and --rebuild without TFLM are refused, not silently ignored."""
    from harness.commands.build import engine_spec

    monkeypatch.delenv("TFLM_DIR", raising=False)
    toml_tflm = BuildSpec(engine="tflm", tflm_dir=tmp_path / "tree", defines={"X": "1"})
    spec = engine_spec({"cmsis_nn": True}, [DEMO], base=toml_tflm)
    assert spec.tflm_dir == tmp_path / "tree" and spec.cmsis_nn and spec.defines == {"X": "1"}
    assert engine_spec({"engine": "tflm"}, [DEMO], base=toml_tflm).tflm_dir == tmp_path / "tree"
    assert engine_spec({"engine": "tflm", "tflm_dir": tmp_path}, [DEMO], base=toml_tflm).tflm_dir == tmp_path
    with pytest.raises(UsageError, match="builds a cmake app"):
        engine_spec({"tflm_dir": tmp_path}, [DEMO], base=BuildSpec(kind="cmake", source=tmp_path))
    for options in ({"rebuild": True}, {"engine": "builtin", "rebuild": True}):
        with pytest.raises(UsageError, match="--rebuild is for --engine tflm"):
            engine_spec(options, [DEMO])
