"""Step by step: start a target, load a model, stream vectors, check.

`hil run` does all of it in one go (`runner.Run.execute`). A `Session` does
the same steps one call at a time, through the same public `Run` steps
(`prepare_target`, `firmware`, `boot`, `load`, `setup_counting`, `stream`,
`measure_memory`, `save`, `release`), so the Robot Framework keywords
(`harness.robot_library`) and the pytest plugin (`harness.pytest_plugin`)
test exactly what `hil run` tests, on every kind of target (QEMU, Renode,
a serial board):

    with Session("mps2-an386") as dut:          # builds (cached) and boots the runner firmware
        dut.load_model("models/demo/gesture.tflite")
        batch = dut.stream(file="models/demo/gesture_test.npz", limit=20)
        assert batch.matches_reference(), batch.explain()
        assert batch.max_count < 3_000_000
        assert dut.run(batch[0].inputs).matches_reference()

Each `stream` computes its reference with the TFLite-Micro interpreter in a
child process, from a fresh interpreter; so that a stateful model (resource
variables, CALL_ONCE) starts from the same state on the device, the model
is loaded again before every stream after the first. (RESET mode 0 is not
enough: like TFLM's own reset it clears the variables but does not run
CALL_ONCE's initialisation again.)

`ConsoleDevice` is console mode step by step (`hil console`, through the
steps of `console_run.ConsoleRun`): start any firmware, then wait for lines
by regular expression, one call at a time.

The session's run directory keeps what `hil run` keeps: the emulator's log,
the input batch and a `hil.result/1` document with every vector streamed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import serial

from .build.artifact import ElfInfo
from .checks.budgets import BudgetCheck, evaluate as evaluate_budgets, measurements as budget_measurements
from .console_run import ConsoleRun
from .errors import EXIT_FAILED, EXIT_OK, HilError, InfraError, UsageError
from .link.console import ConsoleLines, ConsoleSpawn, compile_pattern, log_tail, number
from .link.protocol import Hello
from .model.capacity import check_engine_limits, check_model_fits, check_vectors_fit_host
from .model.reference import ReferenceRunner
from .model.tflite import ModelInfo, load_model
from .model.vectors import VectorSet, fit_input, load_vectors, random_vectors
from .paths import absolute
from .platforms import Platform
from .results.result import FAULT, MISMATCH, PASSED, TIMEOUT, RunResult, VectorResult
from .runner import Reporter, Run, RunConfig, default_workdir
from .verdict import code_for, combine, status_word

log = logging.getLogger(__name__)


#: operators that keep state between invokes
STATEFUL_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"})


class CheckFailed(AssertionError):
    """A check on the device failed (outputs, a budget, a console line):
    the firmware's fault, as opposed to a HilError (bad input, infrastructure)."""

    ROBOT_SUPPRESS_NAME = True  # Robot Framework shows the message alone


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"


# -- results of streaming ----------------------------------------------------------------


@dataclass(frozen=True)
class Vector:
    """One test vector: its inputs (one array per model input) and, for a
    labelled set, its label. `hil_vectors` (pytest) makes these."""

    index: int
    inputs: tuple
    label: int | None = None
    source: str = ""

    def __repr__(self) -> str:
        shapes = ", ".join(f"{np.asarray(a).dtype}{list(np.shape(a))}" for a in self.inputs)
        return f"Vector({self.source or 'given'} #{self.index}: {shapes}" + \
            (f", label {self.label})" if self.label is not None else ")")


@dataclass
class VectorOutcome:
    """What one vector did on the device, next to the reference."""

    index: int
    inputs: list
    reference: list           # the TFLite-Micro reference interpreter's outputs
    outputs: list | None      # the device's outputs (None when it faulted, hung or erred)
    result: VectorResult      # as in the hil.result/1 document

    @property
    def status(self) -> str:
        """passed | mismatch | fault | timeout | error"""
        return self.result.status

    @property
    def passed(self) -> bool:
        """Bit-exact with the reference."""
        return self.result.status == PASSED

    @property
    def count(self) -> int | None:
        """Instructions or cycles of this invoke (`count_kind` says which), or None."""
        return self.result.count["value"] if self.result.count else None

    @property
    def count_kind(self) -> str | None:
        return self.result.count["kind"] if self.result.count else None

    @property
    def energy_uj(self) -> float | None:
        """Estimated energy of this inference in uJ (from the platform's power table), or None."""
        return self.result.energy["uj"] if self.result.energy else None

    @property
    def operators(self) -> list[dict]:
        """Per-operator counts of this invoke ({index, op, count})."""
        return self.result.operators or []

    @property
    def max_abs_diff(self) -> float | None:
        return self.result.max_abs_diff

    @property
    def top1(self) -> int | None:
        return self.result.top1

    @property
    def label(self) -> int | None:
        return self.result.label

    @property
    def error(self) -> str | None:
        return self.result.error

    def matches_reference(self, tolerance_lsb: float = 0) -> bool:
        """True when the outputs equal the reference's bit for bit, or, with
        `tolerance_lsb`, differ by at most that much in any element."""
        if self.status not in (PASSED, MISMATCH):
            return False
        if self.status == PASSED:
            return True
        return tolerance_lsb > 0 and (self.result.max_abs_diff or 0) <= tolerance_lsb

    def describe(self) -> str:
        r = self.result
        if r.status == PASSED:
            text = f"vector {self.index}: bit-exact"
        elif r.status == MISMATCH:
            text = (f"vector {self.index}: {r.mismatches} output element(s) differ from the reference, "
                    f"largest difference {_fmt(r.max_abs_diff or 0)}")
            if r.mismatch and r.mismatch.get("worst_index") is not None:
                m = r.mismatch
                at = m["worst_position"] or m["worst_index"]
                text += f" at {at} (got {m['got']}, expected {m['expected']})"
        else:
            text = f"vector {self.index}: {r.status}: {r.error}"
        if r.count:
            text += f"; {_fmt(r.count['value'])} {r.count['kind']}"
        return text

    def __repr__(self) -> str:
        return f"<VectorOutcome {self.describe()}>"


class Batch(Sequence):
    """The outcome of one `Session.stream`: a sequence of VectorOutcome, and
    what the whole set did."""

    def __init__(self, outcomes: list[VectorOutcome], planned: int, source: dict, platform: str,
                 error: str | None = None, fault: dict | None = None) -> None:
        self.outcomes = outcomes
        self.planned = planned
        self.source = source
        self.platform = platform
        self.error = error    # why the set stopped early (a reboot), if it did
        self.fault = fault    # the device's fault report (kind, pc, lr, cfsr, symbol), if it faulted

    def __getitem__(self, index):
        return self.outcomes[index]

    def __len__(self) -> int:
        return len(self.outcomes)

    @property
    def not_run(self) -> int:
        """Vectors never run because the device faulted, hung or rebooted before them."""
        return self.planned - len(self.outcomes)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def failed(self) -> int:
        return len(self.outcomes) - self.passed

    def failures(self, tolerance_lsb: float = 0) -> list[VectorOutcome]:
        return [o for o in self.outcomes if not o.matches_reference(tolerance_lsb)]

    def matches_reference(self, tolerance_lsb: float = 0) -> bool:
        """Every planned vector ran and matched the reference (bit-exact, or within `tolerance_lsb`)."""
        return self.not_run == 0 and len(self.outcomes) > 0 and not self.failures(tolerance_lsb)

    def explain(self, tolerance_lsb: float = 0, limit: int = 5) -> str:
        """Why `matches_reference` is False (or that it is True), in one message."""
        bad = self.failures(tolerance_lsb)
        if not bad and self.not_run == 0 and self.outcomes:
            how = "bit-exact" if not tolerance_lsb else f"within {tolerance_lsb:g} LSB"
            return f"{len(self.outcomes)}/{self.planned} vectors {how} with the TFLite-Micro reference"
        parts = [f"{len(bad)} of {self.planned} vectors do not match the TFLite-Micro reference on {self.platform}"
                 + (f" ({self.not_run} not run)" if self.not_run else "")]
        parts += [o.describe() for o in bad[:limit]]
        if len(bad) > limit:
            parts.append(f"... and {len(bad) - limit} more")
        if self.error and not any(self.error in o.describe() for o in bad):
            parts.append(self.error)
        return "; ".join(parts)

    @property
    def counts(self) -> list[int]:
        return [o.count for o in self.outcomes if o.count is not None]

    @property
    def count_kind(self) -> str | None:
        """"instructions" (QEMU, Renode's monitor) or "cycles" (DWT on a board), or None without counts."""
        return next((o.count_kind for o in self.outcomes if o.count_kind), None)

    @property
    def max_count(self) -> int | None:
        return max(self.counts) if self.counts else None

    @property
    def energies_uj(self) -> list[float]:
        return [o.energy_uj for o in self.outcomes if o.energy_uj is not None]

    @property
    def max_energy_uj(self) -> float | None:
        return max(self.energies_uj) if self.energies_uj else None

    @property
    def accuracy(self) -> float | None:
        """Top-1 accuracy on a labelled set (None for unlabelled vectors)."""
        labelled = [o for o in self.outcomes if o.label is not None and o.top1 is not None]
        return sum(o.top1 == o.label for o in labelled) / len(labelled) if labelled else None

    def summary(self) -> dict:
        counts, energies = self.counts, self.energies_uj
        return {"platform": self.platform, "total": self.planned, "run": len(self.outcomes),
                "passed": self.passed, "failed": self.failed, "not_run": self.not_run,
                "matches_reference": self.matches_reference(),
                "count_kind": self.count_kind, "min_count": min(counts) if counts else None,
                "max_count": max(counts) if counts else None,
                "max_energy_uj": max(energies) if energies else None,
                "accuracy": self.accuracy, "fault": self.fault, "error": self.error}

    def __repr__(self) -> str:
        return f"<Batch {self.platform}: {self.explain()}>"


# -- a device that serves the hil protocol --------------------------------------------------


class Session:
    """One target running the hil runner firmware (or any firmware that
    serves the protocol), driven one step at a time."""

    def __init__(self, platform: str = "mps2-an386", *, firmware: str | Path | None = None,
                 defines: dict | None = None, port: str | None = None, probe: str | None = None,
                 baud: int | None = None, flasher: str | None = None, workdir: str | Path | None = None,
                 count: bool = True, inline: bool = False, boot_timeout: float = 10.0,
                 invoke_timeout: float = 30.0, reporter: Reporter | None = None) -> None:
        self.config = RunConfig(  # paths made absolute now: the emulator runs in the run directory
            model=Path(), platform=str(platform), firmware=absolute(firmware),
            extra_defines={str(k): str(v) for k, v in (defines or {}).items()},
            ports=[port] if port else [], probes=[probe] if probe else [], baud=baud, flasher=flasher,
            workdir=absolute(workdir or default_workdir(str(platform), "session")),
            count=count, force_inline=inline, boot_timeout=boot_timeout, invoke_timeout=invoke_timeout)
        self._run = Run(self.config, reporter)
        self.platform: Platform | None = None
        self.hello: Hello | None = None
        self.elf: ElfInfo | None = None
        self.model: ModelInfo | None = None
        self._bulk = False
        self._streams = 0
        self._broken: str | None = None
        self._ended_by: tuple[int | None, str] | None = None  # (exit status, message) of what ended the session
        self.started = False

    # -- where things are ----------------------------------------------------------------

    @property
    def workdir(self) -> Path:
        """The run directory: emulator log, input batch, result.json."""
        return self._run.workdir

    @property
    def result(self) -> RunResult | None:
        """Every vector streamed so far, as a hil.result/1 RunResult."""
        return self._run.result

    @property
    def target(self) -> dict:
        """What runs the firmware (kind, emulator or port, ...), as in the result."""
        return self._run.result.target if self._run.result else {}

    @property
    def device(self) -> dict:
        """The device's HELLO (build id, buffer sizes, ...) and transfer mode."""
        return self._run.result.device if self._run.result else {}

    # -- steps ---------------------------------------------------------------------------

    def start(self):
        """Build (cached) or take the firmware, boot or flash the target, wait
        for HELLO and check the build id. Returns the device's Hello."""
        if self.started:
            raise UsageError(f"the target {self.config.platform} is already started")
        run = self._run
        run.make_workdir()  # a disk that cannot take it is exit 3 naming the path
        result = run.begin(model={})
        self.started = True
        try:
            self.platform = platform = run.prepare_target()
            elf_path, self.elf, result.firmware = run.firmware(platform)
            self.hello = run.boot(platform, elf_path, self.elf)
            run.save()
            run.stop_if_unwritable()
        except BaseException as exc:
            self._ended(exc)
            self.stop()
            raise
        return self.hello

    def load_model(self, path: str | Path) -> ModelInfo:
        """Load a .tflite model into the device (host file on emulators with
        semihosting, inline otherwise) and measure the counting overhead."""
        platform, hello, result = self._need("load a model", model=False)
        model = load_model(absolute(path) or Path(path))
        check_model_fits(model, platform, prebuilt_firmware=self.config.firmware is not None)
        if self.config.firmware is None and self.config.build is None:
            check_engine_limits(model, platform, self.config.extra_defines)
        run = self._run
        if self.model is not None and self.model.sha256 == model.sha256:
            self._fresh_state()  # already there: only its state may need a reset
            return self.model
        run.config.model = model.path
        result.model = model.as_dict()
        self.model = None
        self._bulk = run.load(model, hello)
        run.setup_counting(platform, hello)
        self.model = model
        self._streams = 0
        run.save()
        return model

    def vectors(self, count: int | None = None, seed: int = 0, file: str | Path | None = None,
                limit: int | None = None) -> VectorSet:
        """Test vectors for the loaded model: from a .npy/.npz file (first
        `limit`), or `count` seeded random ones that respect each input's
        dtype and quantization."""
        model = self._loaded("make vectors")
        if file is not None:
            vectors = load_vectors(absolute(file) or Path(file), model, limit=limit)
            check_vectors_fit_host(model, len(vectors))
            return vectors
        count = 10 if count is None else int(count)
        check_vectors_fit_host(model, count)
        return random_vectors(model, count, int(seed))

    def as_vector_set(self, vectors) -> VectorSet:
        """A VectorSet from `Vector`s, lists of inputs, or arrays (single-input models)."""
        model = self._loaded("stream vectors")
        if isinstance(vectors, VectorSet):
            return vectors
        rows, labels = [], []
        for i, v in enumerate(vectors):
            rows.append(self._inputs(model, v, f"vector {i}"))
            labels.append(v.label if isinstance(v, Vector) else None)
        if not rows:
            raise UsageError("no vectors to stream")
        have = [x for x in labels if x is not None]
        return VectorSet(rows, {"kind": "given", "count": len(rows)},
                         np.array(labels) if len(have) == len(labels) else None)

    def stream(self, vectors=None, *, count: int | None = None, seed: int = 0, file: str | Path | None = None,
               limit: int | None = None) -> Batch:
        """Run a set of vectors through the device and the reference: a
        VectorSet, a list of vectors, or (`count`, `seed`) random ones, or
        the vectors of `file`. Returns a Batch; a fault, hang or reboot ends
        the set (the Batch says so) and the device cannot be used after it."""
        platform, _, result = self._need("stream vectors")
        model = self._loaded("stream vectors")
        if vectors is None:
            vectors = self.vectors(count, seed, file, limit)
        vectors = self.as_vector_set(vectors)
        run, elf = self._run, self._elf()
        self._fresh_state()
        reference = ReferenceRunner(model.data, len(model.outputs))
        try:
            reference.submit(vectors.vectors)
            golden = reference.result()
        finally:
            reference.close()
        if result.provenance is not None:  # where this set's reference came from, as a run records it
            result.provenance["reference_outputs"] = reference.provenance()
        batch_file = run.write_batch(model, vectors) if self._bulk else None
        before, fault_before, error_before = len(result.vectors), result.fault, result.error
        outputs: dict = {}
        result.planned += len(vectors)
        result.vector_source = vectors.source
        try:
            run.stream(platform, model, vectors, golden, batch_file, elf, keep_outputs=outputs)
        except (serial.SerialException, OSError, ConnectionError) as exc:
            self._broken = f"link failure: {exc}"
            failure = InfraError(f"the link to {platform.name} failed: {exc}",
                                 hint=f"the emulator or board went away; its log is in {self.workdir}")
            self._ended(failure)
            raise failure from exc
        except HilError as exc:  # the link broke, the target stopped, results cannot be written
            self._broken = str(exc)
            self._ended(exc)
            raise
        finally:
            self._streams += 1
            run.save()
        results = result.vectors[before:]
        outcomes = [VectorOutcome(r.index, list(vectors.vectors[r.index]), golden[r.index], outputs.get(r.index), r)
                    for r in results]
        fault = result.fault if result.fault is not fault_before else None
        error = (result.error or {}).get("message") if result.error is not error_before else None
        stopped = next((o for o in outcomes if o.status in (FAULT, TIMEOUT)), None)
        if error:
            self._broken = error
        elif stopped is not None:
            self._broken = stopped.describe()
        return Batch(outcomes, len(vectors), vectors.source, platform.name, error, fault)

    def run(self, *inputs) -> VectorOutcome:
        """One vector: `run(x)` for a single-input model, `run(x0, x1)` for
        several inputs, or `run(vector)` with a `Vector`."""
        model = self._loaded("run a vector")
        given: Any = inputs
        if len(inputs) == 1 and (isinstance(inputs[0], Vector) or len(model.inputs) > 1):
            given = inputs[0]
        batch = self.stream([given])
        if not batch.outcomes:
            raise InfraError(f"the vector did not run: {batch.error or 'no result'}")
        return batch[0]

    def memory(self) -> dict:
        """Flash and RAM by region (from the ELF), and the device's arena and
        stack high-water marks (GET_MEMORY), as in the result's `memory`."""
        platform, _, _ = self._need("measure memory")
        memory = self._run.measure_memory(platform, self._elf(), self._loaded("measure memory"))
        self._run.save()
        return memory

    def check_budgets(self, batch: Batch | None = None, **limits: float | None) -> list[BudgetCheck]:
        """Budgets as `hil run --max-count ...` checks them (max_count,
        max_energy_uj, max_cycles, max_latency_ms, max_arena, max_flash, max_ram) over `batch` (or every
        vector streamed); returns the BudgetChecks."""
        result = self._run.result
        vectors = [o.result for o in batch.outcomes] if batch is not None else list(result.vectors if result else [])
        memory = self.memory() if any(k in limits for k in ("max_arena", "max_flash", "max_ram")) else None
        measured = budget_measurements(vectors, memory, result.energy_basis if result else None,
                                       result.cycles_basis if result else None)
        return evaluate_budgets({k: v for k, v in limits.items() if v is not None}, measured)

    def stop(self) -> None:
        """Stop the target and leave no process behind. Safe to call twice."""
        run = self._run
        try:
            run.release()
        finally:
            if run.result is not None and run.result.status == "running":
                failed = any(v.status != PASSED for v in run.result.vectors)
                codes = [EXIT_FAILED if failed else EXIT_OK] + ([self._ended_by[0]] if self._ended_by else [])
                run.result.exit_code = combine(codes)
                run.result.status = status_word(run.result.exit_code)
                if self._ended_by and not run.result.error:
                    run.result.error = {"message": self._ended_by[1]}
                run.save()

    def _ended(self, exc: BaseException) -> None:
        """Remember the first error that ended this session (a start that
        failed, a link that broke), so that its result says what the one
        taxonomy says (harness/verdict.py) rather than "passed"."""
        if self._ended_by is None:
            self._ended_by = (code_for(exc), str(exc) or type(exc).__name__)

    def __enter__(self) -> "Session":
        if not self.started:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._run.target is not None else "stopped"
        model = f", model {self.model.path.name}" if self.model else ""
        return f"<Session {self.config.platform} ({state}{model}) in {self.workdir}>"

    # -- helpers ---------------------------------------------------------------------------

    def _need(self, what: str, model: bool = True) -> tuple[Platform, Hello, RunResult]:
        """The running target's platform, HELLO and result; a usage error
        naming the step to take first when there is none."""
        run = self._run
        if not self.started or run.target is None or self.platform is None or self.hello is None \
                or run.result is None:
            raise UsageError(f"cannot {what}: the target {self.config.platform} is not running",
                             hint="start it first (Start Target / Session.start)")
        if self._broken:
            raise InfraError(f"cannot {what}: the device stopped responding earlier ({self._broken})",
                             hint="start the target again")
        if model:
            self._loaded(what)
        return self.platform, self.hello, run.result

    def _loaded(self, what: str) -> ModelInfo:
        """The loaded model (the target running); a usage error when there is none."""
        if self.model is None:
            self._need(what, model=False)
            raise UsageError(f"cannot {what}: no model is loaded", hint="load one first (Load Model / load_model)")
        self._need(what, model=False)
        return self.model

    def _elf(self) -> ElfInfo:
        if self.elf is None:
            raise UsageError("the target is not running", hint="start it first (Start Target / Session.start)")
        return self.elf

    @property
    def stateful(self) -> bool:
        """The loaded model keeps state between invokes (resource variables)."""
        return self.model is not None and any(op.name in STATEFUL_OPS for op in self.model.operators)

    def _fresh_state(self) -> None:
        """Before a stream: a stateful model that has run is loaded again, so
        that it starts from the state a fresh reference interpreter has."""
        if self._streams and self.stateful and self.model is not None:
            self._run.reload(self.model, self._bulk)
            self._streams = 0

    @staticmethod
    def _inputs(model: ModelInfo, value: Any, where: str) -> list[np.ndarray]:
        specs = model.inputs
        if isinstance(value, Vector):
            value = value.inputs
        if isinstance(value, np.ndarray) or np.isscalar(value):
            value = [value]
        value = list(value)
        if len(value) != len(specs):
            raise UsageError(f"{where}: {len(value)} input array(s) for a model with {len(specs)} input(s)")
        out = []
        for spec, array in zip(specs, value):
            array = np.asarray(array)
            if array.size != int(np.prod(spec.shape, dtype=np.int64)):
                raise UsageError(f"{where}: {array.size} values do not fit input {spec.name!r} of shape "
                                 f"{tuple(spec.shape)}", hint=f"give an array of shape {tuple(spec.shape)}")
            out.append(fit_input(array.reshape(spec.shape), spec, where)[0])
        return out


# -- console mode ------------------------------------------------------------------------------


class ConsoleDevice:
    """Any firmware, tested by what it prints: `wait_for_line` one pattern at
    a time (`hil console` does a whole list in one go). On an emulator the
    console is the UART or semihosting output; on a board its serial port."""

    def __init__(self, elf: str | Path, platform: str = "mps2-an386", *, console: str = "uart",
                 port: str | None = None, probe: str | None = None, baud: int | None = None,
                 flasher: str | None = None, workdir: str | Path | None = None, fail: list[str] | None = None,
                 echo: Any = None) -> None:
        if console not in ("uart", "semihosting"):
            raise UsageError(f"console {console!r} is not known", hint="use uart or semihosting")
        self.elf: Path = absolute(elf) or Path(elf)  # the emulator runs in the run directory
        self.platform_name = str(platform)
        self.console = console
        self.fail = list(fail or [])
        self._run = ConsoleRun(self.elf, self.platform_name, [], self.fail, 60.0, console, None,
                               [port] if port else [], [probe] if probe else [], baud, flasher, None,
                               absolute(workdir or default_workdir(self.platform_name, "console")), echo)
        self.spawn: ConsoleSpawn | None = None
        self._lines: ConsoleLines | None = None
        self.platform: Platform | None = None
        self.lines: list[dict] = []
        self.metrics: dict = {}

    @property
    def workdir(self) -> Path:
        return self._run.workdir

    @property
    def log_path(self) -> Path:
        """Everything the console printed (console.log in the run directory)."""
        return self._run.log_path

    @property
    def target(self) -> dict:
        return self._run.doc.get("target", {})

    def start(self) -> dict:
        run = self._run
        if not self.elf.is_file():
            raise UsageError(f"firmware {self.elf} does not exist", hint="give the path of the firmware's .elf")
        run.doc["firmware"] = run.check_firmware()  # an ELF hil can read, or exit 2 before anything boots
        for p in self.fail:
            compile_pattern(p, "fail pattern")
        self.platform = platform = run.check_platform()
        run.workdir.mkdir(parents=True, exist_ok=True)
        try:
            reader = run.open(platform)
            self.spawn = ConsoleSpawn(reader, self.log_path, echo=run.echo)
            self._lines = ConsoleLines(self.spawn)
        except BaseException:
            self.stop()
            raise
        return self.target

    def wait_for_line(self, pattern: str, timeout: float = 10.0, fail: list[str] | None = None):
        """Wait up to `timeout` seconds for a line matching `pattern` (a
        Python regular expression searched in one line at a time; ^ and $
        are the line's start and end), among the lines after whatever the
        previous wait matched. Returns the named groups as a dict (numbers
        converted) when the pattern has any, else the matching line. Fails
        (CheckFailed) on a timeout, when the console ends first, or on a line
        that matches a fail pattern (the target's and `fail`), even one that
        also matches `pattern`. An emulator that stops by itself with an
        error of its own is an InfraError with its words."""
        regex = compile_pattern(pattern, "pattern")
        found = self._read(float(timeout), fail, regex, f"waiting for {pattern!r}")
        if found is None:
            raise CheckFailed(f"the console ended while waiting for {pattern!r}" + self._exit_note() + self._tail())
        if found is False:
            raise CheckFailed(f"timed out after {float(timeout):g} s waiting for {pattern!r}" + self._tail())
        line, m = found
        text = line.text.strip()
        groups = {k: number(v) for k, v in m.groupdict().items()}
        self.metrics.update({k: v for k, v in groups.items() if v is not None})
        started = self.spawn.started if self.spawn is not None else time.monotonic()
        self.lines.append({"pattern": pattern, "text": text, "groups": groups,
                           "at_s": round(time.monotonic() - started, 3)})
        return groups if regex.groupindex else text

    def watch(self, duration: float, fail: list[str] | None = None) -> bool:
        """Read the console for `duration` seconds, or until it ends (returns
        True then), failing (CheckFailed) at once on a line that matches a
        fail pattern: a smoke test ("no HardFault within 10 s") and what keeps
        fail patterns watched after the last expected line."""
        return self._read(float(duration), fail, None, "watching the console") is None

    def wait_for_exit(self, timeout: float = 10.0, fail: list[str] | None = None) -> int:
        """Emulators: wait for the firmware to exit (semihosting SYS_EXIT) and
        return its status (0 for ADP_Stopped_ApplicationExit); the lines it
        prints until then are checked against the fail patterns."""
        if self.platform is not None:
            self._run.check_platform(expect_exit=0)  # a usage error where the exit status cannot be observed
        started = time.monotonic()
        if not self.watch(timeout, fail):
            raise CheckFailed(f"the firmware did not exit within {float(timeout):g} s")
        code = self._run.exit_status(max(0.5, float(timeout) - (time.monotonic() - started)))
        if code is None:
            raise CheckFailed(f"the firmware did not exit within {float(timeout):g} s")
        return code

    def _read(self, seconds: float, fail: list[str] | None, regex, doing: str):
        """Lines until one matches `regex` ((line, match)), the time runs out
        (False) or the console ends (None); a fail pattern on any line is a
        CheckFailed, an emulator that stopped with an error of its own an
        InfraError."""
        import pexpect

        if self.spawn is None or self._lines is None:
            raise UsageError("cannot read the console: the console target is not running",
                             hint="start it first (Start Target with console=uart)")
        fails = [(p, compile_pattern(p, "fail pattern")) for p in [*self.fail, *(fail or [])]]
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            try:
                line = self._lines.next(deadline - time.monotonic())
            except pexpect.EOF:
                gone = self._run.target.exit_text() if self._run.target is not None else None
                if gone:
                    raise InfraError(f"the emulator stopped while {doing}: {gone}",
                                     hint="check the firmware file and the platform's emulator options") from None
                return None
            if line is None:
                return False
            for fail_pattern, fail_regex in fails:
                if fail_regex.search(line.text):
                    raise CheckFailed(f"fail pattern {fail_pattern!r} matched {line.text.strip()!r} while {doing}")
            m = regex.search(line.text) if regex is not None else None
            if m is not None:
                return line, m

    def stop(self) -> None:
        spawn, self.spawn = self.spawn, None
        if spawn is not None:
            try:
                spawn.close()
            except Exception:
                pass
        self._run.close()

    def __enter__(self) -> "ConsoleDevice":
        if self.spawn is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _exit_note(self) -> str:
        code = self._run.exit_status(0)
        return f" (the firmware exited with status {code})" if code is not None else ""

    def _tail(self, lines: int = 5) -> str:
        tail = log_tail(self.log_path, lines)
        return ("; last lines: " + " | ".join(tail)) if tail else "; the console printed nothing"


def parse_defines(value) -> dict[str, str]:
    """NAME=VALUE words (a string, a list) or a dict -> {NAME: VALUE}; a bare NAME is NAME=1."""
    if not value:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    words = re.split(r"[\s,]+", value.strip()) if isinstance(value, str) else [str(w) for w in value]
    out = {}
    for word in words:
        if not word:
            continue
        name, _, val = word.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise UsageError(f"{word!r} is not a preprocessor definition", hint="write NAME=VALUE, e.g. HIL_FAULT_ON_INVOKE=3")
        out[name] = val or "1"
    return out
