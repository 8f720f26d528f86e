"""The QEMU cycle plugin (firmware/qemu-plugin/hil_cycles.c) and its host
side (harness/timing): real cc, real arm-none-eabi-gcc, real QEMU.

The known-loop tests use a hand-written assembly image and the test-only
core table tests/fixtures/timing/test-core.toml, whose round figures let
the expected estimate be written down by hand."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import MODELS, REPO, hil, requires_qemu

from harness.errors import InfraError, UsageError
from harness.platforms import Region, load_platform, timing_spec
from harness.timing import CyclePlugin, Record, RunCycles, TimingModel, align_invoke, build_plugin
from harness.timing.plugin import SOURCE

FIXTURES = REPO / "tests" / "fixtures" / "timing"
DEMO = MODELS / "demo" / "gesture.tflite"
N = 1000  # loop iterations

# reset: a pipelined load/store run, then N iterations of 3 ALU ops, a load from the UART + SUBS + BNE
# between two marker calls. The UART is I/O: under -icount QEMU leaves the block at that load and runs it
# again on its own, which the plugin must not count twice.
LOOP_S = f"""
    .syntax unified
    .cpu cortex-m3
    .thumb
    .section .vectors, "a"
    .word 0x20010000
    .word reset
    .text
    .thumb_func
    .global reset
reset:
    movs r6, #0x20
    lsls r6, r6, #24
    ldr r7, =0x40004004
    bl mark_start
    ldr r4, [r6]
    ldr r5, [r6, #4]
    str r4, [r6, #8]
    movw r0, #{N}
loop:
    adds r1, r1, #1
    ldr r4, [r7]
    adds r2, r2, #1
    adds r3, r3, #1
    subs r0, r0, #1
    bne loop
    bl mark_end
    movs r0, #0x18
    ldr r1, =0x20026
    bkpt 0xab
    .thumb_func
    .global mark_start
mark_start:
    bx lr
    .thumb_func
    .global mark_end
mark_end:
    bx lr
"""
# mark_start's BX (branch + taken) | LDR (load) LDR (load_pipelined) STR (store_pipelined) MOVW (alu)
# | N x (4 alu + load + branch), N-1 taken | BL mark_end (branch + taken), with test-core's figures:
LOOP_INSNS = 1 + 4 + 6 * N + 1
LOOP_CYCLES = (1 + 2) + (2 + 1 + 1 + 1) + N * (4 + 2 + 1) + (N - 1) * 2 + (1 + 2)


def _model(memory: dict | None = None, model: str = "test-core") -> TimingModel:
    regions = {"code": Region(0, 0x400000), "ram": Region(0x20000000, 0x400000)}
    timing = timing_spec({"model": model, "clock_hz": 10_000_000, "source": "test", "memory": memory or {}})
    return TimingModel.from_tables(timing, regions, Path("test-platform.toml"), timing_dir=FIXTURES)


@pytest.fixture(scope="module")
def loop_elf(tmp_path_factory) -> Path:
    if not shutil.which("arm-none-eabi-gcc"):
        pytest.skip("needs arm-none-eabi-gcc (install with the README's set-up command)")
    d = tmp_path_factory.mktemp("loop")
    (d / "loop.S").write_text(LOOP_S)
    subprocess.run(["arm-none-eabi-gcc", "-nostdlib", "-mcpu=cortex-m3", "-mthumb", "-Wl,-Ttext=0x100",
                    "-Wl,--section-start=.vectors=0", "-Wl,-e,reset", "-o", str(d / "loop.elf"), str(d / "loop.S")],
                   check=True, capture_output=True)
    return d / "loop.elf"


def _run_qemu(elf: Path, plugin_args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-system-arm", "-M", "mps2-an385", "-display", "none", "-monitor", "none",
                           "-serial", "null", "-kernel", str(elf), "-icount", "shift=0,align=off,sleep=off",
                           "-semihosting-config", "enable=on,target=native", *plugin_args],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def _loop(elf: Path, workdir: Path, model: TimingModel) -> tuple[list[Record], dict]:
    plugin = CyclePlugin(model, workdir, elf, marks=["mark_start", "mark_end"])
    proc = _run_qemu(elf, plugin.qemu_args(), workdir)
    assert proc.returncode == 0, proc.stderr
    totals = plugin.totals()
    assert totals is not None  # QEMU has exited
    return plugin.records(), totals


# -- the plugin itself ---------------------------------------------------------------------------------------


def test_plugin_builds_once_into_the_cache_and_exports_only_its_entry_points():
    so = build_plugin()
    assert so == build_plugin() and so.stat().st_mtime == build_plugin().stat().st_mtime  # cached by source hash
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(so)], capture_output=True, text=True).stdout
    assert {line.split()[-1] for line in symbols.splitlines()} == {"qemu_plugin_install", "qemu_plugin_version"}


def test_plugin_build_takes_cc_with_a_wrapper_says_which_package_and_leaves_no_temporary(tmp_path, monkeypatch):
    import harness.timing.plugin as plugin_mod

    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "no-such-cc")
    with pytest.raises(InfraError, match="no C compiler") as exc:
        build_plugin()
    assert exc.value.hint is not None
    assert exc.value.exit_code == 3 and "apt-get install -y gcc" in exc.value.hint

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setenv("CC", "env cc")  # a wrapper and its compiler, as in CC="ccache gcc"
    monkeypatch.setattr(plugin_mod.subprocess, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_plugin()
    assert not list((tmp_path / "cache").rglob(".hil_cycles.*"))  # no half-built file left in the cache
    monkeypatch.undo()
    monkeypatch.setenv("HIL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "env cc")
    assert build_plugin().is_file()


def test_a_relative_cache_dir_gives_qemu_an_absolute_plugin_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HIL_CACHE_DIR", "relcache")  # QEMU runs in the run directory, not here
    so = build_plugin()
    assert so.is_absolute() and so.is_relative_to(tmp_path / "relcache") and so.is_file()


@requires_qemu
@pytest.mark.qemu
def test_known_loop_gives_the_hand_computed_estimate_and_exact_instructions(loop_elf, tmp_path):
    records, totals = _loop(loop_elf, tmp_path, _model())
    start, end = records
    assert (start.marker, end.marker) == (1, 2)
    assert end.instructions - start.instructions == LOOP_INSNS
    assert end.cycles - start.cycles == LOOP_CYCLES
    assert totals["unclassified"] == 0 and totals["histogram"]["load_pipelined"] == 1
    assert totals["histogram"]["load"] == N + 3  # two literal loads, the first of the pair, N UART reads
    assert totals["histogram"]["branch"] == N + 4 and totals["instructions"] == sum(totals["histogram"].values())


@requires_qemu
@pytest.mark.qemu
def test_a_run_directory_with_a_space_in_its_path_gets_its_records(loop_elf, tmp_path):
    start, end = _loop(loop_elf, tmp_path / "my runs" / "a", _model())[0]  # e.g. a project under "My Projects"
    assert end.instructions - start.instructions == LOOP_INSNS


@requires_qemu
@pytest.mark.qemu
def test_flash_wait_states_add_per_line_fetch_costs(loop_elf, tmp_path):
    """No cache, no prefetch, 4-byte lines: every iteration fetches the
    loop's 3 lines again (12 bytes from 0x114), W cycles each."""
    w = 3
    slow = _model({"code": {"wait_states": w, "line_bytes": 4, "prefetch": False, "applies_to": ["fetch"]}})
    start, end = _loop(loop_elf, tmp_path, slow)[0]
    extra = (end.cycles - start.cycles) - LOOP_CYCLES
    assert 3 * w * N <= extra <= 3 * w * N + 12 * w, extra
    assert end.instructions - start.instructions == LOOP_INSNS  # the memory model never changes the count
    loads_only = _model({"code": {"wait_states": w, "line_bytes": 4, "applies_to": ["load"],
                                  "dcache": {"lines": 4, "ways": 2, "line_bytes": 16}}})
    start, end = _loop(loop_elf, tmp_path, loads_only)[0]
    assert end.cycles - start.cycles == LOOP_CYCLES  # the span loads nothing from code: no fetch cost either


@requires_qemu
@pytest.mark.qemu
def test_a_config_the_plugin_rejects_stops_qemu_with_the_plugins_reason(loop_elf, tmp_path):
    plugin = CyclePlugin(_model(), tmp_path, loop_elf)
    args = plugin.qemu_args()
    plugin.config_path.write_text(plugin.config_text().replace("cost alu", "cost multiply"))
    proc = _run_qemu(loop_elf, args, tmp_path)
    assert proc.returncode != 0
    assert "hil_cycles: config line" in proc.stderr and "unknown instruction class 'multiply'" in proc.stderr
    error = plugin.error()
    assert error is not None
    assert "unknown instruction class 'multiply'" in error
    with pytest.raises(InfraError, match="refused its configuration"):
        plugin.records()
    run = RunCycles(plugin.model, plugin)
    assert run.invoke(100, None, 40) is None  # the loop has no board_counter: whole-run totals only, noted
    notes = run.basis["notes"]
    assert isinstance(notes, list)
    assert "no `board_counter` symbol" in notes[0]
    run.finish()  # in the runner's clean-up: notes the refusal, never raises
    notes = run.basis["notes"]
    assert isinstance(notes, list)
    assert any("refused its configuration" in note for note in notes)


@requires_qemu
@pytest.mark.qemu
def test_config_lines_are_read_whole_and_a_negative_figure_is_refused(loop_elf, tmp_path):
    plugin = CyclePlugin(_model(), tmp_path, loop_elf)
    args = plugin.qemu_args()
    deep = tmp_path.joinpath(*["d" * 100] * 6)  # an output path longer than 512 characters
    deep.mkdir(parents=True)
    out = deep / "cycles.out"
    plugin.config_path.write_text(plugin.config_text().replace(f"output {plugin.output_path}", f"output {out}")
                                  .replace("cost alu 1000", "cost alu -1"))
    proc = _run_qemu(loop_elf, args, tmp_path)
    assert proc.returncode != 0 and "cannot read 'cost ...'" in out.read_text()  # -1 would have wrapped to 2^64-1
    plugin.config_path.write_text(plugin.config_text().replace("cost alu", "cost " + "x" * 300))
    proc = _run_qemu(loop_elf, args, tmp_path)
    error = plugin.error()
    assert proc.returncode != 0 and error is not None and error.startswith("config line")
    assert plugin.output_path.read_text().endswith("\n")  # cut short, still a whole line the host reads


@requires_qemu
@pytest.mark.qemu
def test_a_plugin_for_another_api_version_is_refused(loop_elf, tmp_path):
    so = tmp_path / "v2.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-std=gnu99", "-DAPI_VERSION=2", "-o", str(so), str(SOURCE)],
                   check=True)
    plugin = CyclePlugin(_model(), tmp_path, loop_elf)
    plugin.qemu_args()
    proc = _run_qemu(loop_elf, ["-plugin", f"{so},config={plugin.config_path}"], tmp_path)
    assert proc.returncode != 0 and "API version 2" in proc.stderr


# -- tables and alignment (no emulator) ---------------------------------------------------------------------


def test_timing_tables_are_checked_with_errors_that_name_the_fix():
    with pytest.raises(UsageError, match="unknown instruction class.*multiply") as exc:
        _model(model="bad-class")
    assert exc.value.hint is not None
    assert "alu" in exc.value.hint
    with pytest.raises(UsageError, match="no table") as exc:
        _model(model="cortex-m99")
    assert exc.value.hint is not None
    assert "test-core" in exc.value.hint
    with pytest.raises(UsageError, match="'flash' is not a region"):
        _model({"flash": {"wait_states": 1}})
    with pytest.raises(UsageError, match="applies_to"):
        _model({"code": {"wait_states": 1, "applies_to": ["store"]}})


def test_every_shipped_platform_table_loads():
    for name in ("mps2-an385", "mps2-an386", "mps2-an500", "mps2-an505", "mps3-an547", "riscv32-virt",
                 "lm3s6965evb", "stm32l4r5-qemu"):
        model = TimingModel.for_platform(load_platform(name))
        assert model is not None and model.clock_hz > 0 and model.source, name
    assert TimingModel.for_platform(load_platform("renode-stm32f746")) is None


def _reads(*pairs):
    return [Record(0, i, c) for i, c in pairs]


def test_alignment_gives_invoke_and_operator_estimates_when_the_counts_agree():
    # the built-in engine (firmware/app/builtin_ops.c, one read after each operator): start, mark, op 0 end,
    # op 1 end, op 2 end, end; each operator's count is from the read before it
    records = _reads((0, 0), (10, 12), (50, 67), (90, 117), (95, 125), (100, 135))
    found = align_invoke(records, count=100, operator_counts=[40, 40, 5], tolerance=4)
    assert found.cycles == 135 and found.instructions == 100 and found.note is None
    assert found.operators == [55, 50, 8] and sum(found.operators) <= found.cycles
    # TFLM's profiler (firmware/tflm/hil_tflm.cc): start, (op start, op end) x 3, end
    records = _reads((0, 0), (10, 12), (50, 67), (52, 70), (92, 117), (94, 120), (99, 128), (100, 135))
    found = align_invoke(records, count=100, operator_counts=[40, 40, 5], tolerance=4)
    assert found.note is None and found.operators == [55, 47, 8]
    # one operator: both layouts are start, op start, op end, end
    found = align_invoke(_reads((0, 0), (10, 12), (50, 67), (60, 80)), count=60, operator_counts=[40], tolerance=4)
    assert found.note is None and found.operators == [55]


def test_alignment_gives_no_operator_estimates_for_reads_of_neither_layout():
    # the built-in engine's pattern before 6f07132 (a second read after each operator): 2N+3 reads, which
    # neither firmware now makes; taking it for one of them would pair the wrong records
    records = _reads((0, 0), (10, 12), (50, 67), (52, 70), (92, 117), (94, 120), (100, 135))
    found = align_invoke(records, count=100, operator_counts=[40, 40], tolerance=4)
    assert found.cycles == 135 and found.operators is None
    assert found.note == "7 counter reads for 2 operators (expected 5 or 6): no per-operator estimates"


def test_alignment_refuses_an_estimate_when_the_counts_disagree():
    records = _reads((0, 0), (10, 12), (50, 70), (52, 73), (1000, 1300))
    found = align_invoke(records, count=200, operator_counts=[40], tolerance=40)
    assert found.note is not None
    assert found.cycles is None and "no estimate" in found.note
    found = align_invoke(records[:3] + [Record(0, 200, 260)], count=200, operator_counts=[200], tolerance=40)
    assert found.note is not None
    assert found.cycles == 260 and found.operators is None and "operator 0" in found.note
    one_read = align_invoke(records[:1], 0, None, 40).note
    assert one_read is not None and one_read.startswith("the cycle plugin saw 1 counter read")


# -- through hil (the demo model on mps2-an386) --------------------------------------------------------------


def _demo(tmp_path: Path, name: str, *extra: str) -> dict:
    out = tmp_path / f"{name}.json"
    proc = hil("run", "--model", DEMO, "--vectors", "2", "--seed", "5", "--json", out,
               "--workdir", tmp_path / name, *extra, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def demo_twice(tmp_path_factory) -> tuple[dict, dict]:
    tmp = tmp_path_factory.mktemp("demo")
    first = _demo(tmp, "a")
    return first, _demo(tmp, "b", "--firmware", first["firmware"]["path"])  # the same image, run again


@requires_qemu
@pytest.mark.qemu
def test_hil_run_estimates_are_deterministic_per_invoke_and_per_operator(demo_twice):
    first, second = demo_twice
    estimates = [[(v["cycles"]["value"], [o["cycles"] for o in v["operators"]]) for v in r["vectors"]]
                 for r in (first, second)]
    assert estimates[0] == estimates[1]
    basis = first["cycles_basis"]
    assert basis["model"] == "cortex-m4" and basis["source"] == "qemu-plugin" and basis["unclassified"] == 0
    assert basis["run"]["instructions"] > sum(v["count"]["value"] for v in first["vectors"])
    for v in first["vectors"]:
        c = v["cycles"]
        assert c["kind"] == "cycles_estimate" and c["value"] >= v["count"]["value"]  # M4: CPI >= 1
        assert c["latency_ms"] == pytest.approx(c["value"] / c["clock_hz"] * 1e3, rel=1e-6)
        assert sum(o["cycles"] for o in v["operators"]) <= c["value"]


@requires_qemu
@pytest.mark.qemu
def test_no_cycles_gives_no_estimate(tmp_path):
    result = _demo(tmp_path, "off", "--no-cycles")
    assert result["cycles_basis"] is None
    assert all("cycles" not in v and all("cycles" not in o for o in v["operators"]) for v in result["vectors"])
    assert not (tmp_path / "off" / "cycles.cfg").exists()


@requires_qemu
@pytest.mark.qemu
def test_console_mode_reports_the_whole_run_and_between_marks(loop_elf, tmp_path):
    out = tmp_path / "c.json"
    proc = hil("console", "--elf", loop_elf, "-p", "mps2-an385", "--expect-exit", "0", "--mark", "mark_start",
               "--mark", "mark_end", "--json", out, "--workdir", tmp_path / "run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())["cycles"]
    assert doc["model"] == "cortex-m3" and doc["run"]["instructions"] == 4 + LOOP_INSNS + 4
    (span,) = doc["marks"]
    assert (span["from"], span["to"], span["instructions"]) == ("mark_start", "mark_end", LOOP_INSNS)
    assert "mark_start -> mark_end: " in proc.stdout and "cycles (whole run): " in proc.stdout
    bad = hil("console", "--elf", loop_elf, "-p", "mps2-an385", "--expect-exit", "0", "--mark", "no_such_fn",
              "--workdir", tmp_path / "run2", cwd=tmp_path)
    assert bad.returncode == 2 and "no_such_fn not in the firmware's symbols" in bad.stdout + bad.stderr


@requires_qemu
@pytest.mark.qemu
def test_a_plugin_qemu_cannot_load_is_infrastructure_in_console_mode_not_the_firmware_exiting_1(loop_elf, tmp_path):
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    so = tmp_path / "cache" / "qemu-plugin" / digest / "hil_cycles.so"  # the cache holds one QEMU refuses
    so.parent.mkdir(parents=True)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-std=gnu99", "-DAPI_VERSION=2", "-o", str(so), str(SOURCE)],
                   check=True)
    out = tmp_path / "c.json"
    proc = hil("console", "--elf", loop_elf, "-p", "mps2-an385", "--expect-exit", "0", "--json", out,
               "--workdir", tmp_path / "run", cwd=tmp_path, env={"HIL_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "Could not load plugin" in json.loads(out.read_text())["error"]["message"]


def test_more_marks_than_the_plugin_watches_is_a_usage_error_and_a_refusal_never_breaks_the_console_doc(
        loop_elf, tmp_path):
    from harness.link.console import console_estimate

    with pytest.raises(UsageError, match="at most 64"):  # before anything boots, not QEMU failing to start
        CyclePlugin(_model(), tmp_path, loop_elf, marks=["mark_start"] * 65)
    with pytest.raises(UsageError, match="mark_start given more than once"):
        CyclePlugin(_model(), tmp_path, loop_elf, marks=["mark_start", "mark_end", "mark_start"])
    plugin = CyclePlugin(_model(), tmp_path, loop_elf, marks=["mark_start"])
    plugin.qemu_args()
    plugin.output_path.write_text("E config line 9: cannot read 'x ...'\n")  # the plugin refused to load
    doc = console_estimate(plugin, plugin.marks)  # the console run's clean-up: notes it, never raises
    assert doc["run"] is None and "refused its configuration" in doc["note"]


# The decoder alone, on the host: hil_cycles.c with the QEMU entry points stubbed out.
DECODER_MAIN = """
#include "%s"
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb) { (void)tb; return 0; }
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb) { (void)tb; return 0; }
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t i) { (void)tb; (void)i; return 0; }
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *i) { (void)i; return 0; }
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *i) { (void)i; return 0; }
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *i) { (void)i; return 0; }
bool qemu_plugin_mem_is_store(qemu_plugin_meminfo_t m) { (void)m; return 0; }
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t i, qemu_plugin_vcpu_tb_trans_cb_t c) { (void)i; (void)c; }
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *t, qemu_plugin_vcpu_udata_cb_t c,
    enum qemu_plugin_cb_flags f, void *u) { (void)t; (void)c; (void)f; (void)u; }
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *t, qemu_plugin_vcpu_udata_cb_t c,
    enum qemu_plugin_cb_flags f, void *u) { (void)t; (void)c; (void)f; (void)u; }
void qemu_plugin_register_vcpu_mem_cb(struct qemu_plugin_insn *t, qemu_plugin_vcpu_mem_cb_t c,
    enum qemu_plugin_cb_flags f, enum qemu_plugin_mem_rw r, void *u) { (void)t; (void)c; (void)f; (void)r; (void)u; }
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t i, qemu_plugin_udata_cb_t c, void *u) { (void)i; (void)c; (void)u; }
int main(void)
{
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        unsigned a = 0, b = 0;
        int n = sscanf(line, "%%x %%x", &a, &b);
        uint8_t bytes[4] = {a & 0xff, a >> 8, b & 0xff, b >> 8};
        printf("%%s\\n", class_names[decode(bytes, n == 2 ? 4 : 2).cls]);
    }
    return 0;
}
"""
# mnemonics (condition and .w/.n stripped) whose class is unambiguous, as arm-none-eabi-objdump prints them
OBJDUMP_CLASSES = {
    **dict.fromkeys(["ldr", "ldrb", "ldrh", "ldrsb", "ldrsh"], "load"), **dict.fromkeys(["str", "strb", "strh"], "store"),
    "ldrd": "load_pair", "strd": "store_pair", "push": "stm", "pop": "ldm", "ldmia": "ldm", "stmia": "stm",
    **dict.fromkeys(["b", "bl", "bx", "blx", "cbz", "cbnz", "tbb", "tbh"], "branch"),
    **dict.fromkeys(["add", "adds", "sub", "subs", "mov", "movs", "movw", "movt", "cmp", "lsls", "lsrs", "asrs", "and",
                     "ands", "orr", "orrs", "eor", "eors", "ubfx", "uxtb", "uxth", "sxth", "sxtb", "bic", "mvn"], "alu"),
    "mul": "mul", "muls": "mul", "mla": "mla", "mls": "mla", "smull": "mul_long", "umull": "mul_long",
    "smlal": "mla_long", "sdiv": "div", "udiv": "div", "ssat": "sat", "usat": "sat", "sel": "simd",
    "vmul.f32": "fp_mul", "vdiv.f32": "fp_div", "vadd.f32": "fp_alu", "vsub.f32": "fp_alu", "vldr": "fp_load",
    "vstr": "fp_store", "vpush": "fp_stm", "vpop": "fp_ldm", "vmrs": "fp_move", "vfma.f32": "fp_mac",
}
CONDITIONS = ("eq", "ne", "cs", "hs", "cc", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le")


def _objdump_class(mnemonic: str) -> str | None:
    name = mnemonic.removesuffix(".w").removesuffix(".n")
    for candidate in (name, *(name[:-2] for c in CONDITIONS if name.endswith(c)),
                      *(name.replace(c + ".", ".") for c in CONDITIONS if c + "." in name)):
        if candidate in OBJDUMP_CLASSES:
            return OBJDUMP_CLASSES[candidate]
    return None


@requires_qemu
@pytest.mark.qemu
def test_the_decoder_agrees_with_objdump_on_the_firmware(demo_twice, tmp_path):
    """Every instruction of the demo firmware (Cortex-M4F) whose mnemonic
    names its class unambiguously is decoded into that class."""
    import re

    decoder = tmp_path / "decoder"
    (tmp_path / "decoder.c").write_text(DECODER_MAIN % SOURCE)
    subprocess.run(["cc", "-O1", "-std=gnu99", "-o", str(decoder), str(tmp_path / "decoder.c")], check=True)
    elf = demo_twice[0]["firmware"]["path"]
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", elf], capture_output=True, text=True, check=True).stdout
    rows = [m.groups() for m in re.finditer(r"^\s*[0-9a-f]+:\t([0-9a-f]{4})(?: ([0-9a-f]{4}))?\s+\t(\S+)", listing, re.M)]
    got = subprocess.run([str(decoder)], input="".join(f"{a} {b or ''}\n" for a, b, _ in rows), capture_output=True,
                         text=True, check=True).stdout.split()
    checked = [(m, _objdump_class(m), g) for (_, _, m), g in zip(rows, got) if _objdump_class(m)]
    assert len(got) == len(rows) and len(checked) > 10000
    wrong = [(m, want, g) for m, want, g in checked if g != want]
    assert not wrong, wrong[:10]
    assert "default" not in got


def test_the_decoder_on_armv8_1m_loop_and_tail_predication_encodings(tmp_path):
    """Hand-checked against arm-none-eabi-as -march=armv8.1-m.main+mve: VCTP shares the low-overhead-loop
    encoding space (hw2 0xE801) but is a vector instruction that writes no PC; VDUP shares VMOV's (core to
    scalar) but fills a whole Q register."""
    decoder = tmp_path / "decoder"
    (tmp_path / "decoder.c").write_text(DECODER_MAIN % SOURCE)
    subprocess.run(["cc", "-O1", "-std=gnu99", "-o", str(decoder), str(tmp_path / "decoder.c")], check=True)
    cases = {"f003 e801": "mve_other",  # vctp.8 r3
             "f023 e801": "mve_other",  # vctp.32 r3
             "f042 e001": "lob",        # dls lr, r2
             "f002 e001": "lob",        # dlstp.8 lr, r2
             "f042 c003": "lob",        # wls lr, r2, <label>
             "f00f c007": "lob",        # le lr, <label>
             "f01f c007": "lob",        # letp lr, <label>
             "ed90 1e00": "mve_load",   # vldrb.s8 q0, [r0]
             "eea0 1b10": "mve_other",  # vdup.32 q0, r1
             "eee2 2b10": "mve_other",  # vdup.8 q1, r2
             "eed2 0b70": "fp_move",    # vmov.u8 r0, q1[3]
             "ee01 2b10": "fp_move",    # vmov.32 q0[2], r2 (one lane)
             "ee10 0a90": "fp_move",    # vmov r0, s1
             "eef1 fa10": "fp_move"}    # vmrs APSR_nzcv, fpscr
    got = subprocess.run([str(decoder)], input="".join(f"{k}\n" for k in cases), capture_output=True, text=True,
                         check=True).stdout.split()
    assert dict(zip(cases, got)) == cases
