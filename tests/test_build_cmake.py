"""`hil build` for CMake firmware: hil's own runner and a team's external
project (tests/fixtures/ext_cmake_fw) that serves the protocol through the
C API, built with the real arm-none-eabi-gcc and run in QEMU by `hil run
--firmware` and `hil test`; the build log's first error with file and line;
build directories per (platform, configuration); the build-log readers."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from harness.build.diagnostics import first_error, memory_usage

from helpers import MODELS, REPO, hil, requires_qemu

FIXTURE = REPO / "tests" / "fixtures" / "ext_cmake_fw"
RELU_MODEL = FIXTURE / "model" / "relu_int8.tflite"
DEMO = MODELS / "demo" / "gesture.tflite"

needs_cross = pytest.mark.skipif(not shutil.which("arm-none-eabi-gcc") or not shutil.which("cmake"),
                                 reason="needs arm-none-eabi-gcc and cmake (the README's set-up command)")


def _record(path: Path) -> dict:
    doc = json.loads(path.read_text())
    assert doc["schema"] == "hil.build/1"
    return doc["builds"][0]


@pytest.fixture(scope="module")
def ext_builds(tmp_path_factory):
    """Both firmware images of the external project, built once by `hil build`."""
    out = tmp_path_factory.mktemp("ext")
    records = {}
    for target in ("ext_builtin", "ext_relu"):
        proc = hil("build", FIXTURE, "-p", "mps2-an386", "--target", target, "--json", out / f"{target}.json")
        assert proc.returncode == 0, proc.stderr
        records[target] = _record(out / f"{target}.json")
    return records


# -- hil's own runner ----------------------------------------------------------

@needs_cross
def test_builtin_runner_builds_then_comes_from_the_cache(tmp_path):
    first = hil("build", "--platform", "mps2-an385", "--json", tmp_path / "a.json")
    assert first.returncode == 0, first.stderr
    again = hil("build", "--platform", "mps2-an385", "--json", tmp_path / "b.json")
    assert again.returncode == 0, again.stderr
    a, b = _record(tmp_path / "a.json"), _record(tmp_path / "b.json")
    assert (a["kind"], a["engine"], b["cached"]) == ("builtin", "builtin", True)
    assert a["path"] == b["path"] and Path(a["path"]).is_file()
    assert len(a["build_id"]) == 40 and "(cached)" in again.stdout
    assert set(a["memory"]) == {"CODE", "RAM", "BULK"} and a["memory"]["CODE"]["used"] > 10_000
    # -D still makes another image, in another cache directory
    defined = hil("build", "-p", "mps2-an385", "-D", "HIL_FAULT_ON_INVOKE=3", "-q")
    assert defined.returncode == 0, defined.stderr
    assert defined.stdout.strip() != a["path"] and defined.stdout.strip().endswith("firmware.elf")


# -- the external project -------------------------------------------------------

@needs_cross
def test_external_project_with_two_executables_asks_which(tmp_path):
    proc = hil("build", FIXTURE, "-p", "mps2-an386")
    assert proc.returncode == 2
    assert "2 executables (ext_builtin, ext_relu)" in proc.stderr and "--target" in proc.stderr
    wrong = hil("build", FIXTURE, "-p", "mps2-an386", "--target", "nope")
    assert wrong.returncode == 2 and "no executable target 'nope'" in wrong.stderr


@needs_cross
def test_external_build_record(ext_builds):
    rec = ext_builds["ext_builtin"]
    assert (rec["kind"], rec["target"], rec["platform"]) == ("cmake", "ext_builtin", "mps2-an386")
    assert rec["path"].endswith("ext_builtin.elf") and len(rec["build_id"]) == 40
    assert Path(rec["artifacts"]["map"]).is_file()
    assert rec["memory"]["BULK"]["used"] == 768 * 1024  # the app's own model buffer + arena
    # the platform's toolchain file and hil's package were passed to the user's CMake
    configure = " ".join(rec["command"][0])
    assert "-DCMAKE_TOOLCHAIN_FILE=" in configure and "arm-none-eabi.cmake" in configure
    assert f"-Dhil_DIR={REPO / 'firmware' / 'api'}" in configure and "-DHIL_BOARD=mps2" in configure
    # both targets share one configured build directory (same platform and configuration)
    assert rec["build_dir"] == ext_builds["ext_relu"]["build_dir"]


@requires_qemu
def test_external_firmware_with_the_builtin_engine_runs_bit_exact(ext_builds, tmp_path):
    elf = ext_builds["ext_builtin"]["path"]
    proc = hil("run", "--model", DEMO, "-p", "mps2-an386", "--firmware", elf, "--vectors", "3",
               "--json", tmp_path / "r.json", "--workdir", tmp_path / "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["summary"]["passed"] == 3
    assert result["device"]["engine"] == "ext-builtin" and result["device"]["build_id"] == ext_builds["ext_builtin"]["build_id"]
    assert result["device"]["bulk_transfer"] == "host-file"  # the board hooks' semihosting
    first = result["vectors"][0]
    assert first["count"]["kind"] == "instructions" and first["operators"]  # counter and profile through the API


@requires_qemu
def test_external_firmware_with_its_own_engine_and_compiled_in_model(ext_builds, tmp_path):
    elf = ext_builds["ext_relu"]["path"]
    proc = hil("run", "--model", RELU_MODEL, "-p", "mps2-an386", "--firmware", elf, "--vectors", "4",
               "--seed", "3", "--json", tmp_path / "r.json", "--workdir", tmp_path / "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["summary"]["passed"] == 4 and result["device"]["engine"] == "ext-relu"
    assert result["vectors"][0]["operators"] == []  # its engine does not profile
    other = hil("run", "--model", DEMO, "-p", "mps2-an386", "--firmware", elf, "--vectors", "1",
                "--workdir", tmp_path / "other")
    assert other.returncode == 2  # refused as the wrong model (MODEL_TOO_LARGE here: 1 KiB buffer)
    small = tmp_path / "relu_copy.tflite"
    data = bytearray(RELU_MODEL.read_bytes())
    data[-1] ^= 0x01  # the same size, another model
    small.write_bytes(bytes(data))
    wrong = hil("run", "--model", small, "-p", "mps2-an386", "--firmware", elf, "--vectors", "1",
                "--workdir", tmp_path / "wrong")
    assert wrong.returncode == 2
    assert "compiled-in model" in wrong.stdout + wrong.stderr


@requires_qemu
def test_hil_test_builds_the_firmware_named_in_hil_toml(tmp_path):
    (tmp_path / "hil.toml").write_text(textwrap.dedent(f"""
        [project]
        name = "ext"
        platforms = ["mps2-an386"]
        store = "results.db"

        [firmware]
        app = "{FIXTURE}"
        target = "ext_relu"

        [[models]]
        name = "relu"
        path = "{RELU_MODEL}"
        vectors = {{ random = 3, seed = 1 }}
    """))
    built = hil("build", "-q", cwd=tmp_path)  # no APP_DIR: hil.toml's [firmware]
    assert built.returncode == 0, built.stderr
    assert built.stdout.strip().endswith("ext_relu.elf")
    proc = hil("test", "--json", tmp_path / "suite.json", "--no-store", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert suite["cases"] and all(c["status"] == "passed" for c in suite["cases"])
    (result_file,) = tmp_path.glob(f".hil/suites-unstored/*/{suite['jobs'][0]['result']}")  # --no-store: not in .hil/suites
    result = json.loads(result_file.read_text())
    assert result["device"]["engine"] == "ext-relu"  # the app's firmware, not hil's runner
    assert result["firmware"]["path"] == built.stdout.strip()


# -- errors, directories, caching ----------------------------------------------------

@needs_cross
def test_compile_error_is_summarised_with_file_and_line(tmp_path):
    app = tmp_path / "broken_fw"
    shutil.copytree(FIXTURE, app)
    engine = app / "src" / "relu_engine.c"
    engine.write_text(engine.read_text().replace("out[i] = in[i] > ZERO_POINT", "out[i] = inn[i] > ZERO_POINT"))
    proc = hil("build", app, "-p", "mps2-an386", "--target", "ext_relu")
    assert proc.returncode == 1, proc.stderr
    line = next(n for n, text in enumerate(engine.read_text().splitlines(), 1) if "inn[i]" in text)
    assert f"src/relu_engine.c:{line}:" in proc.stderr
    assert "'inn' undeclared" in proc.stderr
    assert "out[i] = inn[i] > ZERO_POINT" in proc.stderr  # the quoted line, brackets intact
    assert "full log:" in proc.stderr


@needs_cross
def test_cmake_error_names_the_cmakelists_line(tmp_path):
    app = tmp_path / "bad_cmake"
    app.mkdir()
    (app / "CMakeLists.txt").write_text("cmake_minimum_required(VERSION 3.20)\nproject(bad C)\n"
                                        "message(FATAL_ERROR \"this board needs FOO_SDK\")\n")
    proc = hil("build", app, "-p", "mps2-an386")
    assert proc.returncode == 1
    assert "CMakeLists.txt:3: this board needs FOO_SDK" in proc.stderr


@needs_cross
def test_build_directories_per_platform_and_configuration(tmp_path):
    app = tmp_path / "fw"
    shutil.copytree(FIXTURE, app)

    def build(*args):
        out = tmp_path / f"r{len(list(tmp_path.glob('r*.json')))}.json"
        proc = hil("build", app, "--target", "ext_relu", "--json", out, *args)
        assert proc.returncode == 0, proc.stderr
        return _record(out)

    a = build("-p", "mps2-an386")
    b = build("-p", "mps2-an385")
    c = build("-p", "mps2-an386", "--", "-DEXT_UNUSED_OPTION=1")
    again = build("-p", "mps2-an386")
    assert len({a["build_dir"], b["build_dir"], c["build_dir"]}) == 3
    assert again["build_dir"] == a["build_dir"] and again["cached"] and again["build_id"] == a["build_id"]
    # a source change rebuilds in the same directory
    main = app / "src" / "main_relu.c"
    main.write_text(main.read_text().replace("returns only on bad arguments", "returns only on bad arguments!"))
    (app / "src" / "relu_engine.c").write_text((app / "src" / "relu_engine.c").read_text() + "\nint ext_edit;\n")
    changed = build("-p", "mps2-an386")
    assert changed["build_dir"] == a["build_dir"] and not changed["cached"]
    assert changed["build_id"] != a["build_id"]


def test_usage_errors(tmp_path):
    assert hil("build", tmp_path / "missing").returncode == 2
    (tmp_path / "empty").mkdir()
    proc = hil("build", tmp_path / "empty")
    assert proc.returncode == 2 and "no CMakeLists.txt" in proc.stderr
    proc = hil("build", "--target", "x")
    assert proc.returncode == 2 and "for CMake projects" in proc.stderr
    proc = hil("build", "--engine", "tflm")
    assert proc.returncode == 2 and "--tflm-dir" in proc.stderr


def test_hil_toml_firmware_keys_are_validated(tmp_path):
    model = tmp_path / "m.tflite"
    shutil.copy(RELU_MODEL, model)
    base = '[project]\nname = "x"\n[[models]]\npath = "m.tflite"\n'
    (tmp_path / "hil.toml").write_text(base + '[firmware]\napp = "fw"\n')
    proc = hil("test", "--list", cwd=tmp_path)
    assert proc.returncode == 2 and "firmware.app" in proc.stderr and "does not exist" in proc.stderr
    (tmp_path / "hil.toml").write_text(base + '[firmware]\ntraget = "app"\n')
    proc = hil("test", "--list", cwd=tmp_path)
    assert proc.returncode == 2 and "did you mean `target`" in proc.stderr
    (tmp_path / "hil.toml").write_text(base + '[firmware]\nengine = "tflm"\n')
    proc = hil("test", "--list", cwd=tmp_path)
    assert proc.returncode == 2 and "firmware.tflm_dir" in proc.stderr
    (tmp_path / "hil.toml").write_text(base + '[firmware]\ndefines = { A = 1 }\n')  # the old key alone still works
    assert hil("test", "--list", cwd=tmp_path).returncode == 0


# -- the build log readers ----------------------------------------------------------

def test_first_error_of_gcc_ld_and_cmake_logs(tmp_path):
    gcc = textwrap.dedent(f"""\
        [3/9] Building C object CMakeFiles/app.dir/src/main.c.obj
        {tmp_path}/src/main.c: In function 'main':
        {tmp_path}/src/main.c:12:5: warning: unused variable 'x' [-Wunused-variable]
        {tmp_path}/src/main.c:14:9: error: 'foo' undeclared (first use in this function)
           14 |         foo[1] = 2;
              |         ^~~
        {tmp_path}/src/other.c:3:1: fatal error: missing.h: No such file or directory
        """)
    d = first_error(gcc, [tmp_path])
    assert (d.file, d.line, d.column, d.more) == ("src/main.c", 14, 9, 1)
    assert d.summary() == "src/main.c:14:9: 'foo' undeclared (first use in this function) (and 1 more error)"
    assert d.source_line == "foo[1] = 2;"
    ld = ("/usr/lib/gcc/arm-none-eabi/12.2.1/../../../arm-none-eabi/bin/ld: CMakeFiles/x.dir/a.c.obj: in function "
          "`run(hil_error*)':\n/src/a.c:20: undefined reference to `hil_set_error'\n"
          "collect2: error: ld returned 1 exit status\n")
    d = first_error(ld)
    assert (d.file, d.line, d.message) == ("/src/a.c", 20, "undefined reference to `hil_set_error'")
    assert first_error("/usr/bin/ld: cannot find -lfoo\ncollect2: error: ld returned 1 exit status\n").message \
        == "linker: cannot find -lfoo"
    cmake = "CMake Error at cmake/board.cmake:7 (message):\n  no such board: foo\n\n\n-- Configuring incomplete\n"
    d = first_error(cmake)
    assert (d.file, d.line, d.message) == ("cmake/board.cmake", 7, "no such board: foo")


def test_memory_usage_table():
    log = ("Memory region         Used Size  Region Size  %age Used\n"
           "           FLASH:       23456 B         4 MB      0.56%\n"
           "             RAM:        8.5 KB       512 KB      1.66%\n"
           "        IDT_LIST:          0 GB        32 KB      0.00%\n"
           "[12/12] Linking C executable zephyr/zephyr.elf\n")
    assert memory_usage(log) == {"FLASH": {"used": 23456, "size": 4 << 20}, "RAM": {"used": 8704, "size": 512 << 10},
                                 "IDT_LIST": {"used": 0, "size": 32 << 10}}
    assert memory_usage("no table here") == {}
