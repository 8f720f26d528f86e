"""The runner: one straight line from a model and a platform to a result.

    model -> vectors -> build -> target -> link -> protocol -> reference -> checks -> result

The runner knows the protocol client and the Target interface, not QEMU or
boards; it reports progress through a `Reporter` so the CLI, pytest and
Robot Framework can each show it their own way.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import signal
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import serial

from . import resources
from .build.artifact import ElfInfo, read_elf
from .build.cmake import build_firmware
from .dirlock import DirectoryLock, lock_directory
from .build.project import BuildSpec
from .checks.budgets import evaluate as evaluate_budgets, measurements as budget_measurements
from .checks.counts import CountUnit, unit_for
from .checks.metrics import compare_outputs
from .checks.stack import stack_overflow
from .checks.truth import UserTruth
from .errors import (EXIT_FAILED, EXIT_INFRA, EXIT_INTERRUPTED, EXIT_OK, DiskError, HilError, InfraError,
                     UsageError, disk_error)
from .link.protocol import (DeviceClient, DeviceError, DeviceFault, ErrorCode, Hello, LinkBroken, LinkTimeout,
                            PendingInvoke, RetryPolicy, TargetStopped)
from .localize import localize
from .model.capacity import (arena_hint, baked_flash_hint, check_engine_limits, check_model_fits,
                             check_vectors_fit_host, model_buffer_hint)
from .model.reference import ReferenceRunner
from .model.tflite import ModelInfo, load_model, op_name
from .power.battery import battery_result
from .power.energy import EnergyModel, cycles_label
from .model.vectors import VectorSet, load_vectors, random_vectors
from .platforms import Platform, load_platform
from .provenance import run_provenance
from .spawn import count_interrupt, interrupted_since, interrupts, signals_held
from .results.result import (ERROR, FAULT, FIRMWARE_FAILURES, MISMATCH, PASSED, TIMEOUT,
                             RunResult, VectorResult, write_json_copies)
from .targets import Target, capabilities_of, check_board_options, make_target
from .timing import RunCycles, TimingModel
from .timing.calibration import Calibration, calibration_for, label_basis
from .targets.base import EXITED
from .targets.board import BoardSpec, resolve_boards
from .verdict import combine, status_word

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    model: Path
    platform: str
    vectors: int = 10
    seed: int = 0
    inputs: Path | None = None
    input_limit: int | None = None        # use only the first N vectors of --inputs
    json_out: Path | None = None
    workdir: Path | None = None
    firmware: Path | None = None          # a prebuilt ELF instead of building
    build: BuildSpec | None = None        # hil's runner on another engine (--engine tflm: build/tflm.py)
    extra_defines: dict[str, str] = field(default_factory=dict)
    boot_timeout: float = 10.0
    invoke_timeout: float = 30.0
    force_inline: bool = False           # stream bulk data through the UART even on emulators
    count: bool = True                   # instruction/cycle counts and per-operator profiles
    cycles: bool = True                  # cycle estimates (QEMU cycle plugin) where the platform has [timing]
    calibration: Path | None = None      # hil calibrate's file: per-operator factors, measured current
    localize: str = "auto"               # auto: on the first mismatch; always: vector 0 too; never
    bake: bool = False                   # build the model into the image (flash) instead of streaming it
    budgets: dict[str, float] = field(default_factory=dict)  # checks/budgets.py names
    # serial boards (docs/boards.md): ports and probe ids, paired in order
    ports: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    baud: int | None = None
    flasher: str | None = None           # overrides the platform file's board.flasher
    board: BoardSpec | None = None       # the one board this Run uses (set by resolve or run_boards)
    # the user's own truth (checks/truth.py): expected outputs and the float original
    expected: bool = False               # check the output_<k> arrays of --inputs
    expected_file: Path | None = None    # ... or of this file
    expected_tolerance: float = 0.0      # absolute, in output units
    float_model: Path | None = None
    battery: dict | None = None          # --rate/--battery-mah/--battery-v, checked (power/battery.py)


class Reporter(Protocol):
    def stage(self, text: str) -> None: ...
    def start_vectors(self, total: int) -> None: ...
    def vector_done(self, result: VectorResult) -> None: ...


class SilentReporter:
    """No screen (a library or plugin run, a farm's board): the stages go to
    the log, where pytest's caplog and the user's handlers see them."""

    def stage(self, text: str) -> None:
        log.info("%s", text)

    def start_vectors(self, total: int) -> None:
        pass

    def vector_done(self, result: VectorResult) -> None:
        pass


class _Terminated(BaseException):
    """SIGTERM, handled like Ctrl-C: stop, keep results."""


def _raise_terminated(signum, frame):
    count_interrupt()
    raise _Terminated()


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while a run cleans up (emulator, reference
    child, the final result), then let them end the process as usual.
    Outside the main thread signals are not ours to touch. Not a blocked
    signal mask: that holds them back from the main thread only, and any
    other thread the kernel hands the signal to makes the main thread raise
    at once (harness/spawn.py)."""
    with signals_held():
        yield


def default_workdir(platform: str, kind: str = "") -> Path:
    """The one default run directory (`hil run`, `hil console`, a Session,
    a ConsoleDevice): .hil/runs/<time>-[<kind>-]<platform>-<5 digits>. A
    platform given as a file's path is its file's stem, so the directory
    stays under .hil/runs."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = Path(platform).stem if platform.endswith(".toml") else platform
    return Path(".hil") / "runs" / f"{stamp}-{kind + '-' if kind else ''}{name}-{time.monotonic_ns() % 100000:05d}"


def load_refused_hint(code: int, prebuilt: bool) -> str:
    """The fix line of a LOAD_MODEL refused for the model's operators, its
    form or a fixed table of the firmware (sizes have their own, above)."""
    if code == ErrorCode.LIMIT:
        if prebuilt:
            return ("a fixed table of this firmware (named above) is smaller than the model needs: build it with a "
                    "larger one, where the RAM allows")
        return ("a fixed table of the built-in engine (named above) is smaller than the model needs: run it on a "
                "platform whose engine holds more, or raise that limit in firmware.defines, where the RAM allows")
    if code == ErrorCode.MODEL_INVALID:
        return "the firmware could not read the model; re-export it with the TFLite converter"
    return "use operators the built-in engine supports" if not prebuilt else "use operators this firmware registers"


#: the public steps of a Run in the order `Run.execute` calls them (harness.session calls them one at a time)
STEP_ORDER = ("begin", "make_workdir", "prepare", "firmware", "boot", "load", "setup_counting", "write_batch",
              "stream", "localize", "judge", "close")


def out_of_order(step: str, first: str, why: str) -> UsageError:
    """A step called before the one it needs: the caller's mistake (exit 2),
    never a verdict on the firmware. `first` == `step`: called again."""
    called = f"Run.{step}() again" if first == step else f"Run.{step}() before Run.{first}()"
    return UsageError(f"{called}: {why}",
                      hint=f"call the steps in order: {' -> '.join(STEP_ORDER)} (as Run.execute does; "
                           "harness.session.Session calls them for you)")


def _close_link(stream: object) -> None:
    """Close a run's serial port. pyserial's socket:// close() (QEMU's
    UART) sleeps 0.3 s after closing the socket "for quick reconnects": on
    a daemon thread, the socket closes at once and the pause delays no one
    (a port left open paid it when the garbage collector or the
    interpreter's exit closed it: 1.2 s after a 4-job suite)."""
    close = getattr(stream, "close", None)
    if not callable(close):
        return

    def quietly() -> None:
        try:
            close()
        except (serial.SerialException, OSError, ValueError):
            pass  # a port its target already closed, or that failed: nothing left to release

    threading.Thread(target=quietly, name="hil-link-close", daemon=True).start()


class Run:
    def __init__(self, config: RunConfig, reporter: Reporter | None = None) -> None:
        self.config = config
        self.reporter = reporter or SilentReporter()
        self.workdir = Path(config.workdir or default_workdir(config.platform)).resolve()
        self.result_path = self.workdir / "result.json"
        self.result: RunResult | None = None
        self.client: DeviceClient | None = None
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one result write at a time, in snapshot order (_save)
        self._target: Target | None = None
        self._aborted = False
        self._dirty = threading.Event()
        self._done = threading.Event()
        self._mismatch_saved = False
        self.write_error: DiskError | None = None  # the first result copy that could not be written
        self._workdir_lock: DirectoryLock | None = None  # this run's hold on its run directory
        self._workdir_taken = False  # another run holds it: this one writes no result there
        self._started = time.monotonic()
        self._first_verdict: float | None = None   # when the first vector was checked
        self._reference_wait = 0.0                 # seconds the device waited for the reference
        self._truth: UserTruth | None = None       # expected outputs / float model (checks/truth.py)
        self.timing_model: TimingModel | None = None  # the platform's [timing] (checked before anything boots)
        self.cycles: RunCycles | None = None       # the cycle plugin's estimates (harness/timing)
        self.calibration: Calibration | None = None  # harness/timing/calibration.py, checked before boot
        # what the device's counts mean (setup_counting)
        self.unit: CountUnit | None = None
        self.profile_unit: CountUnit | None = None
        self.instructions: Callable[[], int] | None = None  # the emulator's instruction counter, read around INVOKE
        self.energy_model: EnergyModel | None = None
        self._loaded = False    # the booted device holds the model (load/reload since boot)
        self._streamed = False  # stream() ran: there are vectors to judge

    # -- the public steps -----------------------------------------------------------
    #
    # `execute` runs them in order for `hil run` and the suite; harness.session
    # runs them one at a time (Robot Framework, pytest):
    #   begin -> make_workdir -> prepare (or prepare_target) -> firmware -> boot -> load
    #   -> setup_counting -> write_batch -> stream -> localize -> judge -> close (save
    #   whenever the document changed)

    @property
    def target(self) -> Target | None:
        """What runs the firmware, once `boot` made it (None before and after `release`)."""
        return self._target

    def begin(self, model: dict | None = None) -> RunResult:
        """The result document, before anything else: an interruption from
        here on leaves one (status "interrupted")."""
        self.result = RunResult(platform={"name": self.config.platform},
                                model={"path": str(self.config.model)} if model is None else model)
        return self.result

    def make_workdir(self) -> None:
        """The run directory; a disk that cannot take it is exit 3 naming the path."""
        self._make_workdir()

    def save(self) -> None:
        """Write the result now (run directory and --json); see `_save`."""
        if self.result is None:
            raise out_of_order("save", "begin", "there is no result document to write yet")
        self._save()

    def stop_if_unwritable(self) -> None:
        """End the run (exit 3) when a copy of the result could not be written."""
        self._stop_if_unwritable()

    def record_failure(self, code: int, message: str) -> None:
        """A run that ended before it could start (a usage error, a place
        that was never given): a result that says why, kept where it can be."""
        if self.result is None:
            self.begin()
        with contextlib.suppress(HilError):  # then only the console can say it
            self._make_workdir()
        try:
            self.fail(code, status_word(code), message)
            self._save()
        finally:
            self._unlock_workdir()  # nothing else will run here: the directory is free again

    def write_batch(self, model: ModelInfo, vectors: VectorSet) -> tuple[Path, list[list[int]]]:
        """The input batch file the device reads from (host files), named as
        the running target's working directory sees it."""
        if self._target is None:
            raise UsageError("cannot write the input batch: the target is not running")
        return self._write_batch(model, vectors, self._target.workdir)

    def reload(self, model: ModelInfo, bulk: bool) -> None:
        """Load the model again (a stateful model starts from a fresh state)."""
        if self.client is None:
            raise out_of_order("reload", "boot", "the target is not running")
        self._loaded = False
        self._load_model(self.client, model, bulk)
        self._loaded = True

    def stream(self, platform: Platform, model: ModelInfo, vectors: VectorSet,
               golden: list[list[np.ndarray]] | ReferenceRunner, batch, elf: ElfInfo,
               keep_outputs: dict | None = None) -> None:
        """Run every vector and record its result (`_stream`)."""
        if self.result is None:
            raise out_of_order("stream", "begin", "there is no result document to record the vectors in")
        if self.client is None:
            raise out_of_order("stream", "boot", "no target is running")
        if not self._loaded:  # the device would answer NO_MODEL, which mid-run means it rebooted
            raise out_of_order("stream", "load", "the device holds no model to run the vectors on")
        self._streamed = True
        self._stream(platform, model, vectors, golden, batch, elf, keep_outputs)

    def release(self) -> None:
        """Close the link and stop the target, leaving no process behind.
        Safe to call twice; the result is left as it is."""
        target, self._target = self._target, None
        client, self.client = self.client, None
        self._loaded = False
        try:
            if client is not None:
                close = getattr(client.stream, "close", None)  # a pyserial port; test pipes may have none
                with contextlib.suppress(Exception):
                    if close is not None:
                        close()
        finally:
            if target is not None:
                target.stop()
            self._unlock_workdir()  # a Session ends here: the next one may use the directory

    def _unlock_workdir(self) -> None:
        lock, self._workdir_lock = self._workdir_lock, None
        if lock is not None:
            lock.release()

    # -- result bookkeeping ------------------------------------------------------

    def _save(self) -> None:
        """Write the result now, atomically, to the run directory and to
        --json, each on its own: a disk that fails for one copy must not cost
        the other its update. Never raises (the writer thread calls it too):
        the first failure is kept in `self.write_error` and ends the run
        (`_stop_if_unwritable`)."""
        # The result is held (`_lock`, which recording a vector takes) only while it is copied; encoding and
        # writing happen after, one write at a time in the order of the copies (`_write_lock`), so a
        # newer document is never overwritten by an older one and the streaming thread never waits on a disk.
        with self._write_lock:
            for _ in range(3):
                with self._lock:
                    if self.result is None:
                        return
                    self._dirty.clear()
                    snapshot = self.result.snapshot()
                try:
                    text = self.result.as_json(snapshot)  # each vector encoded once
                    break
                except RuntimeError:
                    # the document's dicts (timings, device, ...) are set by the run's thread without the
                    # lock; one that changed while this thread encoded it ("dictionary changed size during
                    # iteration") is copied and encoded again, never the end of the writer thread
                    continue
            else:
                self._dirty.set()  # the next turn of the writer, or the final save, writes it
                return
            # --json first: it is the copy the user (CI) asked for, and the
            # order makes it never older than the run directory's, whenever
            # hil is killed (even between the two writes)
            copies = [*([Path(self.config.json_out)] if self.config.json_out else []),
                      *([] if self._workdir_taken else [self.result_path])]
            failed = write_json_copies(copies, text)
            self.write_error = self.write_error or failed

    def _stop_if_unwritable(self) -> None:
        """A copy of the result could not be written: end the run (exit 3,
        naming the path) instead of producing results that are not kept."""
        if self.write_error is not None:
            raise self.write_error

    def _flush_loop(self) -> None:
        """Write results while vectors complete, so even a killed run leaves
        a document with nearly everything it had: at most twice a second,
        and at most a twentieth of the time (the document of a long run
        takes a while to write, and the streaming thread waits for it)."""
        pause = 0.5
        while not self._done.is_set():
            if self._dirty.wait(0.5) and not self._done.wait(pause):
                t0 = time.monotonic()
                self._save()
                pause = max(0.5, 20 * (time.monotonic() - t0))

    # -- stages -------------------------------------------------------------------

    def prepare_target(self) -> Platform:
        """The platform, checked: a target kind hil can drive, board options
        only for boards, and the one board this run uses. Recorded in the result."""
        cfg = self.config
        platform = load_platform(cfg.platform)
        if check_board_options(platform, cfg.ports, cfg.probes, cfg.baud, cfg.flasher) and cfg.board is None:
            boards = resolve_boards(platform, cfg.ports, cfg.probes)
            if len(boards) > 1:
                raise UsageError(f"{len(boards)} boards given to one run",
                                 hint="give one --port per run, or run them together (runner.run_boards, hil run)")
            cfg.board = boards[0]
        if self.result is not None:
            self.result.platform = {"name": platform.name, "core": platform.core, "description": platform.description}
        return platform

    def prepare(self) -> tuple[Platform, ModelInfo, VectorSet]:
        """Everything the host can check before it builds or boots: the
        platform, the model (operators, sizes), the vectors, the user's truth,
        the timing model and calibration. Recorded in the result and saved."""
        platform, model, vectors = self._prepare()
        cfg = self.config
        if cfg.cycles and cfg.count:
            self.timing_model = TimingModel.for_platform(platform)
        self.calibration = calibration_for(platform, self.timing_model, cfg.calibration)
        if self.result is not None:
            self.result.model = model.as_dict()
            self.result.vector_source = vectors.source
            self.result.planned = len(vectors)
            self._save()
        self._stop_if_unwritable()  # before anything is built or booted
        return platform, model, vectors

    def _prepare(self) -> tuple[Platform, ModelInfo, VectorSet]:
        cfg = self.config
        platform = self.prepare_target()
        model = load_model(cfg.model)
        # The built-in engine's operator list is known here, so a model it
        # cannot run is refused before anything is built or booted. Other
        # firmware (--firmware: TFLM, a user's application) says so itself
        # when LOAD_MODEL names the operator.
        missing = model.unsupported() if not (cfg.firmware or cfg.build) else []
        if missing:
            names = ", ".join(f"{op.name} (operator {op.index}" + (f" of subgraph {op.subgraph})" if op.subgraph
                                                                     else ")") for op in missing)
            raise UsageError(f"{model.path}: the built-in engine does not support {names}",
                             hint="use only the operators listed by `hil platforms --ops`, or run the model with "
                                  "an engine that has them")
        # Sizes are known here too: a model or vector set that cannot fit the
        # device or the host is refused before vectors are made (capacity.py).
        check_model_fits(model, platform, prebuilt_firmware=bool(cfg.firmware), bake=cfg.bake)
        if not (cfg.firmware or cfg.build):  # the built-in engine's tables, as this platform builds them
            check_engine_limits(model, platform, cfg.extra_defines)
        if cfg.inputs:
            vectors = load_vectors(cfg.inputs, model, limit=cfg.input_limit)
            check_vectors_fit_host(model, len(vectors))
        else:
            check_vectors_fit_host(model, cfg.vectors)
            vectors = random_vectors(model, cfg.vectors, cfg.seed)
        self._truth = UserTruth.prepare(model, vectors, expected=cfg.expected, expected_file=cfg.expected_file,
                                        tolerance=cfg.expected_tolerance, float_model=cfg.float_model)
        return platform, model, vectors

    def firmware(self, platform: Platform) -> tuple[Path, ElfInfo, dict]:
        """The firmware to run: --firmware as given, else built (cached) for
        the platform. Returns the ELF's path, what hil read of it and its
        build record (the result's `firmware`)."""
        if self.config.firmware:
            elf = read_elf(self.config.firmware)
            return Path(self.config.firmware), elf, {"prebuilt": True, **elf.as_dict()}
        if self.config.build is not None:  # the runner on TFLM, built (once per tree and flags) like hil build
            from .build.project import build

            self.reporter.stage(f"building firmware for {platform.name} ({self.config.build.describe()})")
            r = build(self.config.build, platform, log=self.reporter.stage)
            return r.elf.path, r.elf, {"platform": r.platform, "inputs_hash": r.config_hash, "compiler": r.compiler,
                                       "cached": r.cached, "engine": r.engine, **r.extra, **r.elf.as_dict()}
        resources.require_board_layer(platform.name, platform.firmware.board,
                                      hint="pass --firmware with a runner ELF built for this board (any firmware "
                                           "that serves the hil protocol, docs/protocol.md), or add that board layer")
        self.reporter.stage(f"building firmware for {platform.name}"
                            + (" with the model baked in" if self.config.bake else ""))
        if self.config.bake:  # the image holds the model: a new model is a new image
            model = Path(self.config.model).read_bytes()
            try:
                record = build_firmware(platform, self.config.extra_defines, log=self.reporter.stage,
                                        cmake_vars={"HIL_BAKED_MODEL": str(Path(self.config.model).resolve())},
                                        extra_inputs=hashlib.sha256(model).hexdigest())
            except UsageError as exc:  # the linker's overflow: flash cannot be enlarged by editing a file
                if "memory.code" not in str(exc):
                    raise
                raise UsageError(f"{str(exc).splitlines()[0]}, with the model ({len(model):,} bytes) baked in",
                                 hint=baked_flash_hint(len(model), platform)) from exc
        else:
            record = build_firmware(platform, self.config.extra_defines, log=self.reporter.stage)
        return record.elf.path, record.elf, record.as_dict()

    def _write_batch(self, model: ModelInfo, vectors: VectorSet,
                     device_cwd: Path) -> tuple[Path, list[list[int]]]:
        """All input tensors of all vectors in one file the device reads from.
        Returns the path as the device should name it (relative to its
        working directory when possible: every byte into QEMU's UART counts)."""
        path = self.workdir / "inputs.bin"
        offsets, at = [], 0
        try:
            with open(path, "wb") as fh:
                for vector in vectors.vectors:
                    row = []
                    for spec, value in zip(model.inputs, vector):
                        raw = np.ascontiguousarray(value, dtype=spec.dtype).tobytes()
                        fh.write(raw)
                        row.append(at)
                        at += len(raw)
                    offsets.append(row)
        except OSError as exc:
            raise DiskError.writing("the input batch", path, exc) from exc
        if path.parent == Path(device_cwd).resolve():
            return Path(path.name), offsets
        return path, offsets

    def _load_model(self, client: DeviceClient, model: ModelInfo, bulk: bool, baked: bool = False) -> None:
        try:
            if baked:
                loaded = client.load_model(baked=True, timeout=60)
            elif bulk:
                loaded = client.load_model(file=model.path.resolve(), size=len(model.data), timeout=60)
            else:
                loaded = client.load_model(model.data, timeout=60)
        except DeviceError as exc:
            if exc.code in (ErrorCode.UNSUPPORTED_OP, ErrorCode.UNSUPPORTED, ErrorCode.MODEL_INVALID,
                            ErrorCode.ARENA_TOO_SMALL, ErrorCode.MODEL_TOO_LARGE, ErrorCode.LIMIT):
                # what helps is --bake or a platform with more memory (capacity.py), not an edit of
                # the platform file: its buffer sizes are what the part has
                if exc.code in (ErrorCode.MODEL_TOO_LARGE, ErrorCode.ARENA_TOO_SMALL) and self.config.firmware:
                    hint = ("this is your firmware's buffer (--firmware): give it a larger one, or build the "
                            "model into it (docs/build.md)")
                elif exc.code == ErrorCode.MODEL_TOO_LARGE:
                    hint = model_buffer_hint(len(model.data), load_platform(self.config.platform))
                elif exc.code == ErrorCode.ARENA_TOO_SMALL:
                    hint = arena_hint(max(exc.detail or 0, 1), load_platform(self.config.platform))
                else:
                    hint = load_refused_hint(exc.code, prebuilt=bool(self.config.firmware or self.config.build))
                raise UsageError(f"{model.path}: the firmware rejected the model: {exc.message}"
                                 + (f" (model {len(model.data)} bytes, capacity {exc.detail} bytes)"
                                    if exc.code == ErrorCode.MODEL_TOO_LARGE else "")
                                 + (f" (the arena needs {exc.detail} bytes)"
                                    if exc.code == ErrorCode.ARENA_TOO_SMALL and exc.detail else ""),
                                 hint=hint) from exc
            raise
        if loaded.crc32 != zlib.crc32(model.data):
            raise InfraError(f"the device holds a different model than was sent (CRC {loaded.crc32:#010x} "
                             f"!= {zlib.crc32(model.data):#010x})", hint="the link corrupts data; check it")
        if loaded.n_inputs != len(model.inputs) or loaded.n_outputs != len(model.outputs):
            raise InfraError("the device and the host disagree on the model's inputs/outputs")
        if self.result is not None:
            self.result.device["arena_used"] = loaded.arena_used

    # -- steps: `execute` runs them in order; harness.session runs them one at a time -----

    def boot(self, platform: Platform, elf_path: Path, elf: ElfInfo) -> Hello:
        """Start the target (boot the emulator, or flash and reset the board),
        open the protocol link, wait for HELLO and check that the device runs
        this build. Returns the device's Hello; the target is `self.target`,
        the client `self.client`."""
        cfg = self.config
        if self.result is None:
            raise out_of_order("boot", "begin", "there is no result document to record the target in")
        if self._target is not None:
            raise out_of_order("boot", "boot", "a target booted by this run still runs; release() it first "
                                               "(a second one would be left running)")
        self._loaded = False  # a device just booted holds no model
        caps = capabilities_of(platform)
        target: Any
        if caps.flash:
            assert cfg.board is not None, "prepare_target() resolves the board"
            target = self._target = make_target(platform, elf_path, self.workdir, count=cfg.count,
                                                board=cfg.board, baud=cfg.baud, flasher=cfg.flasher)
            self.reporter.stage(f"flashing {platform.name} on {cfg.board.port} ({target.flasher.name}"
                                f"{', probe ' + target.probe if target.probe else ''})")
        else:
            self.reporter.stage(f"booting {platform.name}")
            target = self._target = make_target(platform, elf_path, self.workdir, count=cfg.count)
        if caps.cycle_plugin:
            self.cycles = RunCycles.attach(self.timing_model, platform, target, elf_path, self.workdir)
            if self.cycles is not None:
                self.result.cycles_basis = self.cycles.basis
                if self.calibration is not None:
                    label_basis(self.calibration, self.cycles.basis)
        if self._aborted:
            raise _Terminated()
        if caps.flash:  # what will be flashed, through which probe, even if flashing fails
            self.result.target = target.describe()
        url = target.start()
        self.result.target = target.describe()
        if caps.serial_link:
            link = target.open_link()
            # a byte takes ten bit times on a UART: retransmissions wait for slow links
            retry = RetryPolicy(byte_time=max(RetryPolicy.byte_time, 10.0 / target.baud))
            self.client = client = DeviceClient(link, default_timeout=cfg.invoke_timeout, retry=retry,
                                                explain_silence=self._explain_silence)
        else:
            try:
                link = serial.serial_for_url(url, timeout=0.2)
            except (serial.SerialException, OSError) as exc:
                # an emulator that exited says why; one that runs (QEMU waits for this very connection
                # before it answers QMP) leaves the link to blame
                health = target.health()
                if health.state == EXITED:
                    raise TargetStopped(health.detail) from exc
                raise InfraError(f"link broken: cannot connect to {url}: {exc}",
                                 hint="the emulator's UART socket refused the connection; see its log: "
                                      f"{target.log_path}") from exc
            self.client = client = DeviceClient(link, default_timeout=cfg.invoke_timeout,
                                                explain_silence=self._explain_silence)
        self.result.link = client.stats
        if caps.readiness:
            hello = target.wait_ready(client, cfg.boot_timeout)
            self.result.target = target.describe()
        else:
            hello = client.hello(timeout=cfg.boot_timeout)
        self.result.device = {k: v for k, v in vars(hello).items()}
        self.result.provenance = run_provenance(self.result.firmware, self.result.target, self.result.device)
        if elf.build_id and hello.build_id != elf.build_id:
            if caps.flash and cfg.board is not None:
                raise InfraError(f"the device on {cfg.board.port} runs build {hello.build_id or '(none)'}, "
                                 f"not the {elf.build_id} just flashed"
                                 + (f" through probe {target.probe}" if target.probe else ""),
                                 hint="the port and the probe belong to different boards, or flashing did "
                                      "not take: pair each --port with its own --probe (`hil boards`)")
            raise InfraError(f"the device runs build {hello.build_id or '(none)'}, not {elf.build_id}",
                             hint="the wrong firmware is running; rebuild or reflash")
        return hello

    def load(self, model: ModelInfo, hello: Hello) -> bool:
        """Load the model into the device: from a host file when the target
        can read one (semihosting) and inline is not forced, else in chunks
        through the link. Returns True for the host-file path."""
        if self._target is None or self.client is None or self.result is None:
            raise out_of_order("load", "boot", "no target is running to load the model into")
        self._loaded = False
        bulk = self._target.host_files and hello.can_read_host_files and not self.config.force_inline
        if self.config.bake:
            if not hello.has_baked_model:
                raise InfraError("--bake: the firmware on the device has no model built in",
                                 hint="let hil build it (no --firmware), or build with HIL_BAKED_MODEL")
            self.result.device["model_transfer"] = "baked"
            self.reporter.stage(f"loading the model baked into the image ({len(model.data)} bytes)")
            self._load_model(self.client, model, bulk, baked=True)
            self._loaded = True
            self.result.device["bulk_transfer"] = "host-file" if bulk else "inline"
            return bulk
        self.result.device["bulk_transfer"] = "host-file" if bulk else "inline"
        self.reporter.stage(f"loading model ({len(model.data)} bytes, {'host file' if bulk else 'inline'})")
        self._load_model(self.client, model, bulk)
        self._loaded = True
        return bulk

    def _make_workdir(self) -> None:
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DiskError(f"cannot create the run directory {self.workdir}: {exc.strerror or exc}", self.workdir,
                            hint="run where you can write, or choose a writable --workdir") from exc
        if self._workdir_lock is None:  # two runs in one directory would mix their batches and results
            try:
                self._workdir_lock = lock_directory(self.workdir, "the run directory", "--workdir")
            except UsageError:
                self._workdir_taken = True
                raise

    def execute(self) -> RunResult:
        """The whole run: the public steps in order, every way out recorded
        in the result (harness/verdict.py's taxonomy)."""
        timings: dict[str, float] = {}
        result = self.begin()
        result.timings = timings
        interrupts_before = interrupts()
        reference = None
        elf = None
        old_term = None
        flusher = threading.Thread(target=self._flush_loop, name="hil-result-writer", daemon=True)
        try:
            try:
                old_term = signal.getsignal(signal.SIGTERM)
                try:
                    signal.signal(signal.SIGTERM, _raise_terminated)
                except ValueError:
                    old_term = None  # not the main thread: leave signals alone
                flusher.start()
                t0 = self._started = time.monotonic()
                self.make_workdir()
                platform, model, vectors = self.prepare()
                reference = ReferenceRunner(model.data, len(model.outputs))
                reference.submit(vectors.vectors)
                if self._truth is not None:
                    self._truth.start()
                elf_path, elf, result.firmware = self.firmware(platform)
                timings["prepare_build_s"] = time.monotonic() - t0

                t0 = time.monotonic()
                hello = self.boot(platform, elf_path, elf)
                timings["boot_s"] = time.monotonic() - t0

                t0 = time.monotonic()
                bulk = self.load(model, hello)
                batch = self.write_batch(model, vectors) if bulk else None
                timings["load_s"] = time.monotonic() - t0
                self.setup_counting(platform, hello)

                # the reference computes alongside: each vector is checked once both outputs are there
                t0 = time.monotonic()
                try:
                    self.stream(platform, model, vectors, reference, batch, elf)
                finally:
                    self._reference_timings(reference)
                self.stop_if_unwritable()
                timings["vectors_s"] = time.monotonic() - t0
                if self.client is not None:
                    timings["link_wait_s"] = self.client.stats.wait_s
                self.localize(model, vectors, reference)
                if interrupted_since(interrupts_before):  # taken, but its KeyboardInterrupt was dropped
                    raise KeyboardInterrupt
                self.judge(platform, elf, model)
            except HilError as exc:
                self._fail(exc.exit_code, status_word(exc.exit_code), str(exc))
            except DeviceFault as fault:  # loading or preparing the model: still the firmware's fault
                fault.symbol = elf.symbol_at(fault.pc) if elf is not None else None
                result.fault = fault.as_dict()
                self._fail(EXIT_FAILED, "failed", f"the firmware faulted before the vectors ran: {fault.describe()}")
            except DeviceError as exc:  # an error answer the stages above do not expect: the firmware's
                self._fail(EXIT_FAILED, "failed", f"the firmware answered with an error: {exc}")
            except (KeyboardInterrupt, _Terminated):
                self._fail(EXIT_INTERRUPTED, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
            except (serial.SerialException, OSError, ConnectionError) as exc:
                if self._aborted:
                    self._fail(EXIT_INTERRUPTED, "interrupted", "interrupted (Ctrl-C or SIGTERM)")
                elif disk_error(exc) is not None:
                    self._fail(EXIT_INFRA, "error", str(disk_error(exc)))
                else:
                    self._fail(EXIT_INFRA, "error", f"link failure: {exc}")
            except Exception as exc:  # a bug in hil itself: keep the results and say where
                import traceback

                log = self.workdir / "internal-error.log"
                where = str(log)
                try:
                    log.write_text(traceback.format_exc())
                except OSError:
                    where = "(not written: the run directory is not writable)"
                self._fail(EXIT_INFRA, "error", f"internal error in hil: {type(exc).__name__}: {exc} "
                                                f"(traceback in {where}; please report it)")
        finally:
            with signals_deferred():  # a second Ctrl-C must not cut the clean-up short
                if old_term is not None:
                    signal.signal(signal.SIGTERM, old_term)
                self.close(reference)
        return result

    def judge(self, platform: Platform, elf: ElfInfo, model: ModelInfo) -> bool:
        """The run's verdict once the vectors ran: firmware failures, the
        user's truth, and (while the device still answers) memory, budgets
        and battery life. Sets the result's status and exit code; True when
        it passed."""
        result = self.result
        if result is None:
            raise out_of_order("judge", "begin", "there is no result to judge")
        if not self._streamed:  # no vector ran: "passed" would be a verdict on nothing
            raise out_of_order("judge", "stream", "no vector has run, so there is nothing to judge")
        failed = any(v.status in FIRMWARE_FAILURES for v in result.vectors)
        failed = failed or (self._truth is not None and self._truth.failed(result.vectors))
        if not any(v.status in (FAULT, TIMEOUT) for v in result.vectors) and not result.error:
            self.measure_memory(platform, elf, model)  # the device still answers
            overflow = stack_overflow((result.memory or {}).get("device"))
            if overflow is not None:  # its outputs and counts may come from corrupted memory
                result.error = result.error or {"message": overflow}
                failed = True
            failed = not self.check_budgets() or failed
            result.battery = battery_result(self.config.battery, result, self.energy_model, failed)
        result.status = "failed" if failed else "passed"
        result.exit_code = EXIT_FAILED if failed else EXIT_OK
        return not failed

    def close(self, reference: ReferenceRunner | None = None) -> None:
        """The last step, on every way out: stop the target, the cycle
        plugin, the reference and the truth's children, and write the final
        result (a copy that could not be written makes it exit 3)."""
        self._done.set()
        if self._target is not None:
            self._target.stop()
        if self.client is not None:
            _close_link(self.client.stream)
        if self.cycles is not None:
            self.cycles.finish()
        if reference is not None:
            reference.close()
            if self.result is not None and self.result.provenance is not None:  # where the verdict's reference came from
                self.result.provenance["reference_outputs"] = reference.provenance()
        if self._truth is not None:
            self._truth.close()
        self._save()
        if self.result is not None and self.write_error is not None \
                and self.result.exit_code in (None, EXIT_OK, EXIT_FAILED):
            self._fail(EXIT_INFRA, "error", str(self.write_error))  # the copy that could be written says so
            self._save()
        self._unlock_workdir()

    # -- counts, memory, energy, budgets --------------------------------------------

    def setup_counting(self, platform: Platform, hello: Hello) -> None:
        """Decide what the device's counter measures, measure the counting
        overhead (an invoke that runs nothing), and load the energy model."""
        if self.result is None or self.client is None or self._target is None:
            raise out_of_order("setup_counting", "boot", "no target is running to count on")
        self.unit = None
        self.profile_unit = None
        self.instructions = None  # the emulator's instruction counter (Renode's monitor), read around INVOKE
        self.energy_model = EnergyModel.from_platform(platform.power, platform.counter, str(platform.path),
                                                      run_clock_hz=platform.firmware.clock_hz)
        if self.calibration is not None:  # a measured current replaces the platform's figure
            self.energy_model = self.calibration.energy_model(self.energy_model)
        if self.energy_model:
            self.result.energy_model = self.energy_model.as_dict()
        if self.config.count and platform.counter.source == "renode-monitor" \
                and self._target.capabilities.instruction_counter:
            counter: Callable[[], int] = getattr(self._target, "instructions")  # the capability's method
            self.instructions = counter
            before = counter()
            empty = self.client.invoke(empty=True)
            self.unit = CountUnit("instructions", 1.0, "sysbus.cpu ExecutedInstructions (Renode monitor), "
                                                       "from before the INVOKE request to after its reply")
            self.result.count_overhead = {"value": counter() - before, "kind": "instructions",
                                          "note": "instructions of an empty INVOKE request and reply; included "
                                                  "in every vector's value"}
            if hello.has_counter:  # per-operator counts from the device's counter, when it counts the same
                device = unit_for(empty.counter_source.name, platform, emulated_time_is_instructions=True)
                self.profile_unit = device if device and device.kind == self.unit.kind else None
            return
        if not (self.config.count and hello.has_counter):
            return
        if self.cycles is not None:
            self.cycles.skip()
        empty = self.client.invoke(empty=True)
        icount = bool(platform.target.icount) or platform.target_kind != "qemu"
        self.unit = self.profile_unit = unit_for(empty.counter_source.name, platform,
                                                 emulated_time_is_instructions=icount)
        if self.unit:
            self.result.count_overhead = {"value": self.unit.scale(empty.count), "kind": self.unit.kind,
                                          "note": "count of an empty invoke; included in every vector's value"}
            estimate = self.cycles.invoke(self.unit.scale(empty.count), None, self.unit.per_tick) if self.cycles else None
            if estimate is not None:
                self.result.count_overhead["cycles_estimate"] = estimate["value"]

    @staticmethod
    def _count(unit: CountUnit, raw: int) -> dict:
        return {"value": unit.scale(raw), "kind": unit.kind, "source": unit.source, "raw": raw}

    def _energy(self, count: dict | None, cycles: dict | None = None) -> dict | None:
        """A vector's energy: from the cycles estimate when there is one,
        else from the count (power/energy.py EnergyModel.for_vector)."""
        model, result = self.energy_model, self.result
        found = model.for_vector(count, cycles) if model else None
        if found is None or model is None or result is None:
            return None
        energy, kind = found
        if (result.energy_basis or {}).get("kind") != kind:  # the label every energy figure refers to
            result.energy_basis = model.basis(kind, cycles_label(result.cycles_basis, cycles))
        return energy

    def measure_memory(self, platform: Platform, elf: ElfInfo, model: ModelInfo) -> dict:
        """Flash and RAM by region (the ELF) and the device's high-water
        marks (GET_MEMORY): the result's `memory`, also returned."""
        if self.result is None or self.client is None:
            raise out_of_order("measure_memory", "boot", "no target is running to ask")
        regions = elf.region_usage(platform.memory.regions())
        memory = {"regions": regions, "model_bytes": len(model.data)}
        try:
            m = self.client.get_memory()
            memory["device"] = vars(m)
        except DeviceError:
            m = None
        flash = regions.get("code", {}).get("used")
        memory["flash_bytes"] = flash
        if m is not None:
            static_ram = regions.get("ram", {}).get("used", 0)
            if self.config.bake:  # the model is in flash, read in place
                memory["ram_bytes"] = static_ram + m.arena_high_water
                memory["ram_formula"] = "RAM region (.data + .bss + stack) + arena high-water (model baked in flash)"
            else:
                memory["ram_bytes"] = static_ram + m.arena_high_water + m.model_bytes
                memory["ram_formula"] = "RAM region (.data + .bss + stack) + arena high-water + model bytes"
        self.result.memory = memory
        return memory

    def check_budgets(self) -> bool:
        """The run's budgets (--max-*) against what it measured (checks/budgets.py)."""
        limits = {k: v for k, v in self.config.budgets.items() if v is not None}
        if not limits:
            return True
        assert self.result is not None, "begin() first"
        r = self.result
        checks = evaluate_budgets(limits, budget_measurements(r.vectors, r.memory or {}, r.energy_basis, r.cycles_basis))
        self.result.budgets = [c.as_dict() for c in checks]
        return all(c.passed for c in checks)

    def localize(self, model: ModelInfo, vectors: VectorSet, reference: ReferenceRunner) -> None:
        """Name the first operator whose output differs (harness/localize.py),
        as --localize asks: on the first mismatch, always, or never."""
        assert self.result is not None and self.client is not None, "boot() first"
        mode = self.config.localize
        mismatched = [v.index for v in self.result.vectors if v.status == MISMATCH]
        if mode == "never" or not self.result.vectors or any(v.status in (FAULT, TIMEOUT)
                                                             for v in self.result.vectors):
            return
        if not mismatched and mode != "always":
            return
        index = mismatched[0] if mismatched else 0
        self.reporter.stage(f"localising vector {index}: comparing every intermediate tensor")
        try:
            self.result.localization = localize(self.client, model, vectors.vectors[index], index, reference)
        except DeviceError as exc:
            self.result.localization = {"vector": index, "skipped": f"the firmware cannot localise: {exc}"}

    def abort(self) -> None:
        """Stop this run from another thread (a suite being interrupted):
        the emulator goes away, the run ends as interrupted and keeps its
        results."""
        self._aborted = True
        if self._target is not None:
            self._target.stop()

    def fail(self, code: int, status: str, message: str) -> None:
        """End the run's result with `status` and exit `code`, saying why."""
        self._fail(code, status, message)

    def _fail(self, code: int, status: str, message: str) -> None:
        assert self.result is not None, "begin() first"
        # an emulator that exited by itself says why in its log ("Could not load kernel ...")
        gone = self._target.exit_text() if code == EXIT_INFRA and self._target is not None else None
        if gone and gone not in message:
            message = f"{message}\n  {gone}"
        self.result.status = status
        self.result.exit_code = code
        self.result.error = {"message": message}

    def _stream(self, platform: Platform, model: ModelInfo, vectors: VectorSet,
                golden: list[list[np.ndarray]] | ReferenceRunner, batch, elf: ElfInfo,
                keep_outputs: dict | None = None) -> None:
        """Run every vector and record its result; `golden` is the reference
        outputs, or the ReferenceRunner computing them (each vector waits
        for its own); `keep_outputs`, when given, receives each vector's
        device outputs by index. A link that stays
        broken or a target that stops ends the run (LinkBroken, TargetStopped:
        exit 3) without blaming the vector in flight on the firmware."""
        assert self.client is not None, "boot() first"
        stats = self.client.stats
        self.reporter.start_vectors(len(vectors))
        try:
            self._stream_vectors(model, vectors, golden, batch, elf, keep_outputs)
        finally:
            if stats.troubled:
                self.reporter.stage(f"link: {stats.summary()}")

    def _stream_vectors(self, model: ModelInfo, vectors: VectorSet, golden: list[list[np.ndarray]] | ReferenceRunner,
                        batch, elf: ElfInfo, keep_outputs: dict | None) -> None:
        client = self.client
        assert client is not None, "boot() first"
        # outputs and profile in INVOKE's reply, and the inputs read by it from the batch file: one round
        # trip per vector, not four (docs/protocol.md); not where the emulator counts the whole request
        # (Renode: the reply would count too)
        one_trip = self.instructions is None
        read_by_invoke = one_trip and batch is not None and client.one_trip_invoke
        # With the inputs read by INVOKE, vector i+1's request goes out as soon as all of vector i is in
        # from the device: the device runs i+1 while the host checks i (reference, comparison, results).
        ahead: list[PendingInvoke | HilError] = []  # that request, or the error sending it raised (i+1's)
        try:
            for i, vector in enumerate(vectors.vectors):
                if not self._stream_vector(i, vector, model, vectors, golden, batch, elf, keep_outputs, ahead,
                                           one_trip, read_by_invoke):
                    return
        except Exception:
            if ahead and isinstance(ahead[0], PendingInvoke):  # answered, so the link is idle for what follows
                with contextlib.suppress(Exception):
                    client.finish_invoke(ahead[0])
            raise

    def _send_invoke(self, i: int, batch, one_trip: bool, read_by_invoke: bool, ahead: bool = False) -> PendingInvoke:
        """Vector i's INVOKE request, sent (its reply is read by `finish_invoke`);
        `ahead`: sent before the previous vector's cycle records are read (they
        end at the cut taken at its reply), so none are dropped here."""
        assert self.client is not None, "boot() first"
        if self.cycles is not None and not ahead:
            self.cycles.skip()
        # the batch file holds the vectors one after the other: the device steps through it on its own
        # (INVOKE NEXT, a request of one payload byte) where its HELLO offers that
        offsets = batch[1] if read_by_invoke else []
        stride = offsets[1][0] - offsets[0][0] if len(offsets) > 1 and offsets[0] else None
        return self.client.start_invoke(timeout=self.config.invoke_timeout, outputs=one_trip,
                                        profile=one_trip and self.profile_unit is not None,
                                        inputs=(batch[0], offsets[i]) if read_by_invoke else None, stride=stride)

    def _stream_vector(self, i: int, vector: list[np.ndarray], model: ModelInfo, vectors: VectorSet,
                       golden: list[list[np.ndarray]] | ReferenceRunner, batch, elf: ElfInfo,
                       keep_outputs: dict | None, ahead: list[PendingInvoke | HilError], one_trip: bool,
                       read_by_invoke: bool) -> bool:
        """Run and record vector i; False when the run cannot go on (a fault,
        a hang, a reboot). `ahead` holds vector i's request when it was sent
        early, and receives vector i+1's."""
        client = self.client
        result = self.result
        assert client is not None and result is not None, "boot() first"
        stage = "set_input"
        try:
            for j, (spec, value) in enumerate(zip(model.inputs, vector)):
                if read_by_invoke:
                    break
                if batch is not None:
                    path, offsets = batch
                    client.set_input(j, file=path, file_offset=offsets[i][j], size=spec.nbytes)
                else:
                    client.set_input(j, np.ascontiguousarray(value, dtype=spec.dtype).tobytes())
            stage = "invoke"
            before = self.instructions() if self.instructions else 0
            sent = ahead.pop() if ahead else self._send_invoke(i, batch, one_trip, read_by_invoke)
            if isinstance(sent, HilError):
                raise sent
            invoked = client.finish_invoke(sent)
            raw_count = self.instructions() - before if self.instructions else invoked.count
            stage = "get_output"
            outputs = [np.frombuffer(raw, dtype=spec.dtype).reshape(spec.shape)
                       for raw, spec in zip(client.outputs_of(invoked, len(model.outputs)), model.outputs)]
            if keep_outputs is not None:
                keep_outputs[i] = outputs
            stage = "get_profile"
            profile = client.profile_of(invoked) if self.profile_unit is not None else None
            cut = None
            if read_by_invoke and i + 1 < len(vectors.vectors):  # the device is done with vector i: it runs i+1
                # while the host checks i. Nothing but the request goes first: vector i's cycle records are
                # read after it, up to where they ended at i's reply (the cut)
                cut = self.cycles.cut() if self.cycles is not None else None
                try:
                    ahead.append(self._send_invoke(i + 1, batch, one_trip, read_by_invoke, ahead=True))
                except HilError as exc:  # the link or target failed: vector i+1's to report
                    ahead.append(exc)
        except DeviceFault as fault:
            fault.symbol = elf.symbol_at(fault.pc)
            result.fault = fault.as_dict()
            self._record(VectorResult(i, FAULT, error=f"{stage}: {fault.describe()}"))
            return False
        except LinkTimeout as exc:  # silence on a healthy link and target (the client asked it)
            if self._rebooted():
                self._record(VectorResult(i, ERROR, error=f"vector {i}: the device rebooted during {stage} "
                                                          f"(it answers HELLO again but has lost the model)"))
                result.error = {"message": f"the device rebooted during vector {i} ({stage}): a reset, "
                                                f"watchdog or brown-out; later vectors were not run"}
                return False
            self._record(VectorResult(i, TIMEOUT, error=f"vector {i}: {stage} hung: {exc}"))
            return False
        except DeviceError as exc:
            if exc.code == ErrorCode.NO_MODEL:  # it was loaded: the device rebooted in between
                self._record(VectorResult(i, ERROR, error=f"vector {i}: the device lost its model before "
                                                          f"{stage}: it rebooted"))
                result.error = {"message": f"the device rebooted before vector {i} ({stage}); later "
                                                f"vectors were not run"}
                return False
            self._record(VectorResult(i, ERROR, error=f"{stage}: {exc}"))
            return True
        unit, profile_unit = self.unit, self.profile_unit
        count = self._count(unit, raw_count) if unit is not None else None
        operators = None
        if profile is not None and profile_unit is not None:
            operators = [{"index": p.op_index, "op": op_name(p.builtin), "count": profile_unit.scale(p.count)}
                         for p in profile]
        cycles = None
        if self.cycles is not None and unit is not None and count is not None:  # fills the operators' estimates too
            cycles = self.cycles.invoke(count["value"], operators, unit.per_tick, upto=cut)
            if self.calibration is not None:
                cycles, operators = self.calibration.apply(cycles, operators)
        elif self.cycles is not None and cut is not None:
            self.cycles.skip(upto=cut)  # vector i's records, none of i+1's
        check = compare_outputs(outputs, self._golden(golden, i), [(s.scale, s.zero_point) for s in model.outputs])
        label = int(vectors.labels[i]) if vectors.labels is not None else None
        expected, float_ref = self._truth.check(i, outputs) if self._truth is not None else (None, None)
        self._record(VectorResult(i, PASSED if check.passed else MISMATCH,
                                  check.max_abs_diff, check.mismatches, count,
                                  operators=operators, cycles=cycles,
                                  top1=int(np.argmax(outputs[0])), label=label, cosine=check.cosine,
                                  l2_rel=check.l2_rel, ref_top1=check.ref_top1, mismatch=check.detail,
                                  expected=expected, float_ref=float_ref))
        return True

    def _golden(self, golden: list[list[np.ndarray]] | ReferenceRunner, index: int) -> list[np.ndarray]:
        """Vector `index`'s reference outputs; from a ReferenceRunner, waiting
        for them if need be (the wait is timed: `reference_wait_s`)."""
        if not isinstance(golden, ReferenceRunner):
            return golden[index]
        progress = getattr(self.reporter, "reference_progress", None)  # reporters may leave it out
        t0 = time.monotonic()
        try:
            outputs = golden.output(index, on_wait=progress)
        finally:
            self._reference_wait += time.monotonic() - t0
        if progress is not None:
            progress(golden.computed, golden.total)
        return outputs

    def _reference_timings(self, reference: ReferenceRunner) -> None:
        """How the reference kept up: `reference_wait_s` the device's time
        spent waiting for it, `reference_s` its own time for every vector
        (from the start of the run, when it has finished), `first_verdict_s`
        from the start of the run to the first vector checked."""
        assert self.result is not None, "begin() first"
        timings = self.result.timings
        timings["reference_wait_s"] = self._reference_wait
        if reference.finished is not None:
            timings["reference_s"] = reference.finished - self._started
        if self._first_verdict is not None:
            timings["first_verdict_s"] = self._first_verdict - self._started

    def _explain_silence(self) -> str | None:
        """The client asks this when the device stays silent or the link
        fails: why the target cannot answer (a stalled or exited emulator, a
        closed port), or None when it runs and the silence is the firmware's."""
        if self._aborted:
            raise _Terminated()  # the run is being stopped: that is why the link went away
        if self._target is None:
            return None
        state = self._target.health()
        return None if state.running else state.detail

    def _rebooted(self) -> bool:
        """After a request timed out: does the device answer again, without
        its model? Then it rebooted rather than hung."""
        client = self.client
        if self._aborted or client is None:
            return False
        try:
            client.hello(timeout=1.0)
            return client.get_memory().model_bytes == 0
        except (LinkTimeout, LinkBroken, DeviceError, DeviceFault, serial.SerialException, OSError):
            return False

    def _record(self, vector: VectorResult) -> None:
        if vector.energy is None and (vector.count or vector.cycles):
            vector.energy = self._energy(vector.count, vector.cycles)
        if self._first_verdict is None:
            self._first_verdict = time.monotonic()
        assert self.result is not None, "begin() first"
        with self._lock:
            self.result.vectors.append(vector)
        self.reporter.vector_done(vector)
        # A fault, hang or error ends the run, and the first mismatch is the
        # news a killed run must not lose: written now. Later mismatches go
        # with the periodic writes (a rewrite per vector made a run of 200
        # mismatches 2.5x slower).
        if vector.status == PASSED or (vector.status == MISMATCH and self._mismatch_saved):
            self._dirty.set()
        else:
            self._mismatch_saved |= vector.status == MISMATCH
            self._save()
        self._stop_if_unwritable()


def run(config: RunConfig, reporter: Reporter | None = None) -> RunResult:
    return Run(config, reporter).execute()


# -- several boards in one run -----------------------------------------------------------

BOARDS_SCHEMA = "hil.boards/1"


def combined_exit(codes: list[int | None]) -> int:
    """The boards' one exit status (harness/verdict.py); no board at all is infrastructure."""
    return combine(codes) if codes else EXIT_INFRA


@dataclass
class BoardsOutcome:
    """The results of one run on several boards (or one)."""

    runs: list[Run]
    exit_code: int
    document: dict | None = None   # hil.boards/1 when several boards ran
    path: Path | None = None


def plan_boards(config: RunConfig) -> list[BoardSpec] | None:
    """The boards a run will use, or None when the platform is not a board
    (or a single board: the Run resolves it itself and records any error)."""
    if len(config.ports) <= 1 and len(config.probes) <= 1:
        return None
    platform = load_platform(config.platform)
    check_board_options(platform, config.ports, config.probes, config.baud, config.flasher)
    return resolve_boards(platform, config.ports, config.probes)


def run_boards(config: RunConfig, reporter_for=None) -> BoardsOutcome:
    """The same firmware and vectors on each board, the boards in parallel
    (one thread each: the work is waiting on serial ports), one
    `hil.result/1` per board in its own directory, and a `hil.boards/1`
    document that holds them all. Ctrl-C or SIGTERM stops every board and
    keeps what each had."""
    import dataclasses

    reporter_for = reporter_for or (lambda label: SilentReporter())
    try:
        boards = plan_boards(config)
    except HilError as exc:
        run_ = Run(dataclasses.replace(config), reporter_for(""))
        run_.record_failure(exc.exit_code, str(exc))
        return BoardsOutcome([run_], exc.exit_code)
    if boards is None:
        run_ = Run(config, reporter_for(""))
        result = run_.execute()
        return BoardsOutcome([run_], result.exit_code if result.exit_code is not None else EXIT_INFRA)

    base = Path(config.workdir or default_workdir(config.platform)).resolve()
    runs: list[Run] = []
    for i, spec in enumerate(boards):
        label = f"{i}-{spec.label}"
        cfg = dataclasses.replace(config, board=spec, ports=[spec.port], probes=[spec.probe] if spec.probe else [],
                                  workdir=base / label, json_out=None)
        runs.append(Run(cfg, reporter_for(spec.label)))
    if config.firmware is None:  # build once, before the boards start (each Run then finds it cached)
        try:
            platform = load_platform(config.platform)
            runs[0].firmware(platform)
        except HilError:
            pass  # every board will report the build error in its own result
    threads = [threading.Thread(target=r.execute, name=f"hil-board-{i}", daemon=True) for i, r in enumerate(runs)]
    def on_term(signum, frame):
        raise _Terminated()

    old_term = None
    try:
        old_term = signal.signal(signal.SIGTERM, on_term)
    except ValueError:
        pass
    try:
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except (KeyboardInterrupt, _Terminated):
        for r in runs:
            r.abort()
        for t in threads:
            t.join(30)
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    results: list[tuple[Run, BoardSpec, RunResult]] = []
    for r, spec in zip(runs, boards):
        kept = r.result
        if kept is None:  # interrupted before it could start
            kept = r.begin()
            r.fail(EXIT_INTERRUPTED, "interrupted", "interrupted before this board started")
        results.append((r, spec, kept))
    exit_code = combined_exit([result.exit_code for _, _, result in results])
    document = {
        "schema": BOARDS_SCHEMA,
        "status": status_word(exit_code),
        "exit_code": exit_code,
        "platform": config.platform,
        "boards": [{"label": spec.label, "port": spec.port, "probe_id": spec.probe,
                    "status": result.status, "exit_code": result.exit_code, "result_path": str(r.result_path),
                    "result": result.as_dict()} for r, spec, result in results],
    }
    path = base / "boards.json"
    copies = [path, *([Path(config.json_out)] if config.json_out else [])]
    unwritable = write_json_copies(copies, document)
    if unwritable is not None and exit_code in (EXIT_OK, EXIT_FAILED):  # as one run does (Run.execute)
        exit_code = EXIT_INFRA
        document.update(status=status_word(exit_code), exit_code=exit_code, error={"message": str(unwritable)})
        write_json_copies(copies, document)
    return BoardsOutcome(runs, exit_code, document, path)
