"""CoreMark/MHz from hil's cycle model, against each core's published figure.

For every core in benchmarks/coremark_port/published.toml: build EEMBC
CoreMark (a checkout you fetched, kept outside this tree) with
arm-none-eabi-gcc / riscv64-unknown-elf-gcc and this repository's small
port layer (benchmarks/coremark_port/: semihosting output, no timer), run
it on the core's QEMU machine with the cycle plugin
(firmware/qemu-plugin), and take the cycles the model estimates between
CoreMark's start_time() and stop_time() (plugin markers on
coremark_timed_start/stop). Then

    estimated CoreMark/MHz = iterations / (estimated cycles / 1e6)

against the published figure; the table is printed and written to
timing/validation.toml, which gives every estimate its error band
(harness/timing/validation.py). The model is the core's table alone
(zero-wait memory): the published figures are measured on zero-wait memory.

    git clone https://github.com/eembc/coremark /tmp/coremark
    .venv/bin/python benchmarks/coremark.py --coremark-dir /tmp/coremark

CoreMark's own "must run 10 s" complaint is expected (there is no timer);
its list/matrix/state CRCs are checked against the 2K performance run's
known values, so a miscompiled or misrun benchmark is never reported.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.platforms import TimingSpec, load_platform  # noqa: E402
from harness.timing.model import TimingModel  # noqa: E402
from harness.timing.plugin import CyclePlugin  # noqa: E402

PORT = ROOT / "benchmarks" / "coremark_port"
PUBLISHED = PORT / "published.toml"
VALIDATION = ROOT / "timing" / "validation.toml"
SOURCES = ("core_list_join.c", "core_main.c", "core_matrix.c", "core_state.c", "core_util.c")
OPT = ["-O2"]
MARKS = ["coremark_timed_start", "coremark_timed_stop"]
#: the 2K performance run's known CRCs (seeds 0, 0, 0x66): CoreMark's own check values
KNOWN_CRCS = {"seedcrc": "0xe9f5", "[0]crclist": "0xe714", "[0]crcmatrix": "0x1fd7", "[0]crcstate": "0x8e3a"}
COMMAND = ".venv/bin/python benchmarks/coremark.py --coremark-dir /tmp/coremark"


@dataclass
class Outcome:
    core: str
    published: float | None
    source: str
    iterations: int
    instructions: int
    cycles: int
    histogram: dict
    flags: list[str]
    compiler: str

    @property
    def estimated(self) -> float:
        return self.iterations / (self.cycles / 1e6)

    @property
    def error_pct(self) -> float | None:
        return None if self.published is None else (self.estimated - self.published) / self.published * 100


def linker_script(platform, isa: str) -> str:
    code, ram = platform.memory.region("code"), platform.memory.region("ram")
    entry = "_start" if isa == "rv32" else "reset_c"
    return f"""MEMORY {{ CODE (rx) : ORIGIN = {code.origin:#x}, LENGTH = {code.length:#x}
         RAM (rwx) : ORIGIN = {ram.origin:#x}, LENGTH = {ram.length:#x} }}
ENTRY({entry})
SECTIONS {{
  .text : {{ KEEP(*(.vectors)) KEEP(*(.text.start)) *(.text*) *(.rodata*) *(.srodata*) . = ALIGN(4); }} > CODE
  .data : {{ __data_start = .; *(.data*) *(.sdata*) . = ALIGN(4); __data_end = .; }} > RAM AT > CODE
  __data_load = LOADADDR(.data);
  .bss (NOLOAD) : {{ __bss_start = .; *(.bss*) *(.sbss*) *(COMMON) . = ALIGN(4); __bss_end = .; }} > RAM
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}}
"""


def build(coremark: Path, platform, entry: dict, isa: str, workdir: Path, opt: list[str]) -> tuple[Path, list[str], str]:
    """The ELF, the compiler flags and the compiler's version line."""
    compiler = f"{platform.firmware.toolchain}-gcc"
    flags = [*entry.get("cpu_flags", platform.firmware.cpu_flags), *opt]
    if isa == "rv32":
        flags.append("-mno-relax")  # no gp-relative addressing: the startup does not set gp
    iterations = int(entry["iterations"])
    shown = " ".join(flags)
    defines = [f"-DITERATIONS={iterations}", f'-DCOMPILER_FLAGS="{shown}"']
    script = workdir / "coremark.ld"
    script.write_text(linker_script(platform, isa))
    elf = workdir / "coremark.elf"
    sources = [coremark / s for s in SOURCES] + [PORT / "core_portme.c", PORT / "startup.c"]
    cmd = [compiler, *flags, *defines, f"-I{PORT}", f"-I{coremark}", *map(str, sources),
           "-nostdlib", "-T", str(script), "-lgcc", "-o", str(elf)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"building CoreMark failed:\n{' '.join(cmd)}\n{proc.stderr}")
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return elf, flags, version


def run(platform, model: TimingModel, elf: Path, workdir: Path, timeout: float) -> tuple[str, CyclePlugin]:
    plugin = CyclePlugin(model, workdir, elf, marks=MARKS)
    t = platform.target
    cmd = [t.executable or "qemu-system-arm", "-M", t.machine, *(["-cpu", t.cpu] if t.cpu else []),
           "-display", "none", "-monitor", "none", "-serial", "none",
           "-semihosting-config", "enable=on,target=native", "-kernel", str(elf),
           *t.extra_args, *plugin.qemu_args()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=workdir)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"CoreMark exited {proc.returncode} on {t.machine}:\n{output}\n{plugin.error() or ''}")
    return output, plugin


def check_crcs(output: str, core: str) -> None:
    for name, want in KNOWN_CRCS.items():
        found = re.search(re.escape(name) + r"\s*:\s*(0x[0-9a-f]+)", output)
        if not found or found.group(1) != want:
            raise SystemExit(f"{core}: CoreMark {name} is {found.group(1) if found else 'missing'}, "
                             f"not {want}: the build or run is wrong\n{output}")


def measure(coremark: Path, core: str, entry: dict, workroot: Path, timeout: float, opt: list[str],
            taken_branch: float | None = None, with_memory: str | None = None) -> Outcome:
    platform = load_platform(with_memory or entry["platform"])
    if with_memory:  # the platform's whole model, flash and caches included
        model = TimingModel.for_platform(platform)
        if model is None or model.id != core:
            raise SystemExit(f"--with-memory {with_memory}: its [timing] model is not {core}")
    else:  # the core's table alone: the published figures are for zero-wait memory
        clock = platform.timing.clock_hz if platform.timing and platform.timing.clock_hz else 1_000_000
        model = TimingModel.from_tables(TimingSpec(model=core, clock_hz=clock,
                                                   source="zero-wait memory (CoreMark validation)"),
                                        platform.memory.regions(), Path(platform.path))
    if taken_branch is not None:  # a sensitivity check, never written to timing/validation.toml
        model = dataclasses.replace(model, taken_branch=taken_branch)
    workdir = workroot / core
    workdir.mkdir(parents=True, exist_ok=True)
    elf, flags, version = build(coremark, platform, entry, model.isa, workdir, opt)
    output, plugin = run(platform, model, elf, workdir, timeout)
    check_crcs(output, core)
    marks = {r.marker: r for r in plugin.records() if r.marker in (1, 2)}
    if set(marks) != {1, 2}:
        raise SystemExit(f"{core}: the plugin saw markers {sorted(marks)}, not start (1) and stop (2)")
    totals = plugin.totals() or {}
    return Outcome(core=core, published=entry.get("published"), source=entry.get("source", ""),
                   iterations=int(entry["iterations"]),
                   instructions=marks[2].instructions - marks[1].instructions,
                   cycles=marks[2].cycles - marks[1].cycles,
                   histogram=totals.get("histogram", {}), flags=flags, compiler=version)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| core | published CoreMark/MHz | estimated | error | cycles error | instructions/iteration "
            "| cycles/iteration | estimated CPI | CPI the published figure implies |",
            "|---|---|---|---|---|---|---|---|---|"]
    for o in outcomes:
        published = f"{o.published:.2f}" if o.published is not None else "none checked"
        error = f"{o.error_pct:+.1f}%" if o.error_pct is not None else "-"
        # a rate 30% low is cycles 43% high: the band estimates carry is on cycles (harness/timing/validation.py)
        cycles_error = f"{(o.published / o.estimated - 1) * 100:+.1f}%" if o.published is not None else "-"
        implied = f"{1e6 / o.published / (o.instructions / o.iterations):.2f}" if o.published else "-"
        rows.append(f"| {o.core} | {published} | {o.estimated:.2f} | {error} | {cycles_error} "
                    f"| {o.instructions / o.iterations:,.0f} "
                    f"| {o.cycles / o.iterations:,.0f} | {o.cycles / o.instructions:.2f} | {implied} |")
    return "\n".join(rows)


def _toml_value(value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)


def write_validation(outcomes: list[Outcome], coremark_commit: str, path: Path = VALIDATION) -> None:
    lines = ["# CoreMark/MHz estimated by the cycle model against each core's published figure.",
             f"# Written by `{COMMAND}`; rerun it rather than editing.",
             "# error_pct = (estimated - published) / published x 100. The estimate includes the compiler's",
             "# share: GCC's code, not the compiler the vendor used (docs/counts.md names the confounders).",
             'describes = "CoreMark/MHz against the core vendor\'s published figure"', ""]
    for o in outcomes:
        fields = {"model": o.core, "benchmark": "CoreMark", "estimated": round(o.estimated, 3)}
        error_pct = o.error_pct
        if error_pct is not None:  # a published figure to compare with
            fields.update(published=o.published, error_pct=round(error_pct, 1), source=o.source)
        fields.update(iterations=o.iterations, instructions_per_iteration=round(o.instructions / o.iterations),
                      cycles_per_iteration=round(o.cycles / o.iterations), compiler=o.compiler,
                      flags=" ".join(o.flags), coremark_commit=coremark_commit, command=COMMAND)
        lines.append(f"[coremark.{o.core}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items()]
        lines.append("")
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coremark-dir", type=Path, required=True, help="a checkout of github.com/eembc/coremark")
    ap.add_argument("--cores", help="comma-separated model ids (default: every core in published.toml)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/hil-coremark"), help="builds and plugin output")
    ap.add_argument("--no-write", action="store_true", help="print the table only; leave timing/validation.toml")
    ap.add_argument("--histogram", action="store_true", help="also print each core's dynamic class histogram")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--opt", default=" ".join(OPT), help="optimisation flags (default %(default)s); "
                    "anything else is a sensitivity check and is not written")
    ap.add_argument("--taken-branch", type=float, help="override the table's taken-branch penalty "
                    "(sensitivity check; not written)")
    ap.add_argument("--with-memory", metavar="PLATFORM", help="run on PLATFORM with its whole [timing] model "
                    "(flash wait states, caches) instead of zero-wait memory (one core; not written)")
    args = ap.parse_args(argv)
    missing = [s for s in SOURCES if not (args.coremark_dir / s).is_file()]
    if missing:
        ap.error(f"{args.coremark_dir} is not a CoreMark checkout (no {', '.join(missing)}): "
                 "git clone https://github.com/eembc/coremark /tmp/coremark")
    published = tomllib.loads(PUBLISHED.read_text())
    cores = args.cores.split(",") if args.cores else list(published)
    unknown = [c for c in cores if c not in published]
    if unknown:
        ap.error(f"no entry for {', '.join(unknown)} in {PUBLISHED}; choose from {', '.join(published)}")
    outcomes = []
    for core in cores:
        print(f"- {core}", file=sys.stderr, flush=True)
        outcomes.append(measure(args.coremark_dir.resolve(), core, published[core], args.workdir, args.timeout,
                                args.opt.split(), args.taken_branch, args.with_memory))
    print(table(outcomes))
    if args.histogram:
        for o in outcomes:
            total = sum(o.histogram.values()) or 1
            top = sorted(o.histogram.items(), key=lambda kv: -kv[1])[:12]
            print(f"{o.core} (whole run): " + ", ".join(f"{k} {v / total:.1%}" for k, v in top))
    if args.opt.split() != OPT or args.taken_branch is not None or args.with_memory:
        print("(a sensitivity run: timing/validation.toml is left as it is)", file=sys.stderr)
    elif not args.no_write:
        commit = subprocess.run(["git", "-C", str(args.coremark_dir), "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip() or "unknown (not a git checkout)"
        write_validation(outcomes, commit)
        print(f"wrote {VALIDATION.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
