"""Robot Framework keywords for hil: the targets, the protocol and the checks
of `hil run` and `hil console`, one step per keyword.

    *** Settings ***
    Library    harness.robot_library.HilLibrary

Documentation: `python -m robot.libdoc harness.robot_library.HilLibrary
docs/robot-keywords.html`. The keywords drive `harness.session` (which runs
the same `runner.Run` steps as `hil run`), never the `hil` command.
"""

from __future__ import annotations

import atexit
import functools
import logging
import weakref
from pathlib import Path

from robot.api import logger
from robot.api.deco import keyword, library
from robot.utils import DotDict, timestr_to_secs

from .errors import UsageError
from .paths import absolute
from .power.energy import format_estimate
from .session import Batch, CheckFailed, ConsoleDevice, Session, parse_defines
from .verdict import MEANING, code_for, combine

log = logging.getLogger(__name__)

__version__ = "0.1.0"

#: every target any library instance started and has not stopped: stopped at
#: interpreter exit too, whatever happened to Robot's own teardown
_LIVE: "weakref.WeakSet" = weakref.WeakSet()


@atexit.register
def _stop_everything() -> None:
    for target in list(_LIVE):
        try:
            target.stop()
        except Exception:
            pass


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.3f}"


class _RobotReporter:
    """Run stages (building, booting, loading) into Robot's log."""

    def stage(self, text: str) -> None:
        logger.info(text)

    def start_vectors(self, total: int) -> None:
        pass

    def vector_done(self, result) -> None:
        pass


class _Started:
    def __init__(self, alias: str, device, owner: str) -> None:
        self.alias = alias
        self.device = device
        self.owner = owner   # "test": stopped when the test ends; "suite": when the suite ends
        self.batch: Batch | None = None


def _remember_failures(cls):
    """Wrap every keyword so that the kind of failure it ended with (the one
    taxonomy, harness/verdict.py) is known when the test ends."""
    def remembering(method):
        @functools.wraps(method)  # keeps the signature, docs and robot_name for Robot and libdoc
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except BaseException as exc:
                code = code_for(exc, default=None)
                if code is not None:
                    self._failure_codes.append(code)
                raise
        return run

    for name, member in list(vars(cls).items()):
        if callable(member) and hasattr(member, "robot_name"):
            setattr(cls, name, remembering(member))
    return cls


@library(scope="SUITE", version=__version__)
@_remember_failures
class HilLibrary:
    """Hardware-in-the-loop tests of embedded ML firmware, as Robot Framework keywords.

    The same targets, protocol and checks as ``hil run`` and ``hil console``,
    one step per keyword, on every kind of target a platform file describes:
    QEMU, Renode, and real boards over a serial port.

    = Protocol mode =

    The target runs the hil runner firmware (built and cached for the
    platform, or any ELF given with ``firmware``), which serves the hil
    protocol. `Load Model` loads a ``.tflite`` model, `Stream Vectors` runs
    test vectors through the device and, in a child process, through the
    TensorFlow Lite Micro reference interpreter; then the checks:
    `Outputs Should Match Reference`, `Count Should Be Below`,
    `Energy Should Be Below`, `Accuracy Should Be At Least` and
    `Memory Should Be Below` look at the last `Stream Vectors`.

    In the ``Settings`` section: ``Library    harness.robot_library.HilLibrary``
    and ``Suite Setup    Start Target    mps2-an386``; a test:

    | Gesture Model Is Bit Exact On Its Test Set
    |     Load Model        models/demo/gesture.tflite
    |     ${run}=    Stream Vectors    file=models/demo/gesture_test.npz    limit=50
    |     Outputs Should Match Reference
    |     Count Should Be Below     3000000    kind=instructions
    |     Energy Should Be Below    1000
    |     Should Be Equal As Integers    ${run.passed}    50

    A count is an instruction count on QEMU (and through Renode's monitor)
    and a DWT cycle count on a board; an energy figure is an estimate from
    the platform file's ``[power]`` table. Both are labelled so in the log.

    = Console mode =

    ``Start Target    console=uart`` (or ``semihosting`` on an emulator)
    boots any firmware, for example an upstream TFLM example or a Zephyr
    sample, and `Wait For Line` matches what it prints:

    | Start Target     mps2-an386    firmware=${ELF}    console=uart    fail=ASSERT|HardFault
    | Wait For Line    Booting
    | ${m}=    Wait For Line    inference took (?P<ticks>\\\\d+) ticks
    | Should Be True    ${m}[ticks] > 0
    | Firmware Should Exit With    0

    = Boards and Renode =

    A board platform (``nucleo-l4r5zi``, ...) needs ``port`` (any pyserial
    URL) and usually ``probe``; hil flashes it with the platform's flasher,
    resets it and waits for its HELLO. A Renode platform
    (``renode-stm32f4-discovery``, ...) needs ``renode`` on PATH or the
    ``RENODE`` environment variable. Nothing else changes: the keywords are
    the same for every kind of target.

    = Teardown =

    A target started in a test is stopped when that test ends, passed or
    failed; one started in ``Suite Setup`` when the suite ends. So a failed
    test never leaves an emulator running, and `Stop Target` is only
    needed to stop one early. (The emulators are also tied to the Robot
    process: if it is killed, they exit.)

    Several targets can run at once: give each an ``alias`` and choose
    with `Switch Target`; keywords act on the last one started or chosen.

    Every target keeps a run directory (under ``workdir``, by default
    ``.hil/runs``) with the emulator's log, the console log and a
    ``hil.result/1`` document; failures name it.
    """

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, platform: str = "mps2-an386", workdir: str | None = None, boot_timeout: str = "10s",
                 invoke_timeout: str = "30s") -> None:
        """Defaults for `Start Target`: the ``platform``, where run directories
        go (``workdir``, default ``.hil/runs``), and the seconds allowed for
        the boot (HELLO) and each invoke."""
        self.ROBOT_LIBRARY_LISTENER = self
        self.default_platform = platform
        self.workdir = absolute(workdir)  # against the directory robot was started in
        self.boot_timeout = timestr_to_secs(boot_timeout)
        self.invoke_timeout = timestr_to_secs(invoke_timeout)
        self._targets: dict[str, _Started] = {}
        self._current: str | None = None
        self._in_test = False
        self._started = 0
        self._failure_codes: list[int] = []  # kinds of the keyword failures of the current test

    # -- listener: teardown --------------------------------------------------------------

    def start_test(self, data, result) -> None:
        self._in_test = True
        self._failure_codes = []

    def end_test(self, data, result) -> None:
        """Stop the test's targets; tag a failed test with the kind of its
        failure, `hil-verdict:firmware-failure`, `hil-verdict:bad-input` or
        `hil-verdict:infrastructure`, so that CI can tell them apart."""
        self._in_test = False
        self._stop_where(lambda t: t.owner == "test")
        codes, self._failure_codes = self._failure_codes, []
        if result.failed and codes:
            result.tags.add("hil-verdict:" + MEANING[combine(codes)].replace(" ", "-"))

    def end_suite(self, data, result) -> None:
        self._stop_where(lambda t: True)

    def close(self) -> None:
        self._stop_where(lambda t: True)

    def _stop_where(self, which) -> None:
        for alias in [a for a, t in self._targets.items() if which(t)]:
            self._stop(alias)

    def _stop(self, alias: str) -> None:
        started = self._targets.pop(alias)
        if self._current == alias:
            self._current = next(reversed(self._targets), None) if self._targets else None
        try:
            started.device.stop()
        finally:
            _LIVE.discard(started.device)

    # -- targets --------------------------------------------------------------------------

    def _get(self, alias: str | None = None) -> _Started:
        name = alias or self._current
        if name is None or name not in self._targets:
            raise UsageError(f"no target {name!r} is running" if alias else "no target is running",
                             hint="start one with Start Target")
        return self._targets[name]

    def _session(self) -> tuple[_Started, Session]:
        started = self._get()
        if not isinstance(started.device, Session):
            raise UsageError(f"target {started.alias!r} runs in console mode; this keyword needs the hil protocol",
                             hint="use Wait For Line on it, or start the target without console=")
        return started, started.device

    def _console(self) -> ConsoleDevice:
        started = self._get()
        if not isinstance(started.device, ConsoleDevice):
            raise UsageError(f"target {started.alias!r} serves the hil protocol; Wait For Line needs console mode",
                             hint="Start Target ... firmware=APP.elf console=uart (or semihosting)")
        return started.device

    def _batch(self) -> tuple[Session, Batch]:
        started, session = self._session()
        if started.batch is None:
            raise UsageError("no vectors were streamed on this target yet", hint="use Stream Vectors first")
        return session, started.batch

    def _run_dir(self, platform: str, alias: str) -> Path | None:
        if self.workdir is None:
            return None
        import time

        stamp = time.strftime("%Y%m%d-%H%M%S")
        return self.workdir / f"{stamp}-{Path(platform).stem}-{alias}-{time.monotonic_ns() % 100000:05d}"

    @keyword
    def start_target(self, platform: str | None = None, firmware: str | None = None,
                     defines: str | dict | None = None, port: str | None = None, probe: str | None = None,
                     baud: int | None = None, flasher: str | None = None, console: str | None = None,
                     fail: str | list | None = None, alias: str | None = None, inline: bool = False,
                     count: bool = True, boot_timeout: str | None = None,
                     invoke_timeout: str | None = None) -> DotDict:
        """Starts a target and makes it the current one.

        ``platform`` is a platform name (``hil platforms`` lists them) or the
        path of a platform ``.toml`` file; default: the library's.

        Protocol mode (no ``console``): the hil runner firmware is built for
        the platform (cached by a hash of every input) with the extra
        preprocessor ``defines`` (``NAME=VALUE`` words, or a dictionary), or
        ``firmware`` names a prebuilt ELF that serves the hil protocol. The
        target boots (emulators) or is flashed and reset (boards), and hil
        waits for the device's HELLO and checks that it runs that build.

        Console mode: ``console=uart`` or ``console=semihosting`` (emulators)
        boots ``firmware``, any ELF, and reads what it prints; see
        `Wait For Line`. ``fail`` patterns (a regex, or a list) fail every
        later `Wait For Line` as soon as they appear.

        Boards: ``port`` (``/dev/ttyACM0``, ``socket://host:4001``,
        ``rfc2217://host:4000``, ...), ``probe`` (the debug probe's serial
        number), ``baud`` and ``flasher`` (``none`` for an already flashed
        board) as for ``hil run``.

        ``inline=True`` streams the model and inputs through the UART even
        where the emulator could read host files (what a board does);
        ``count=False`` runs without instruction counting.

        Returns a dictionary describing the target (``kind``, emulator or
        port, ...) and, in protocol mode, the device (``build_id``,
        ``engine``, ``arena_size``, ...) and ``workdir``.

        | Start Target    mps2-an386
        | Start Target    mps2-an386    defines=HIL_FAULT_ON_INVOKE=3    alias=faulty
        | Start Target    nucleo-l4r5zi    firmware=runner-l4r5.elf    port=/dev/ttyACM0
        | Start Target    mps2-an386    firmware=${ELF}    console=semihosting
        """
        platform = platform or self.default_platform
        self._started += 1
        alias = alias or f"target{self._started}"
        if alias in self._targets:
            raise UsageError(f"a target named {alias!r} is already running", hint="stop it, or give another alias")
        boot = timestr_to_secs(boot_timeout) if boot_timeout else self.boot_timeout
        invoke = timestr_to_secs(invoke_timeout) if invoke_timeout else self.invoke_timeout
        workdir = self._run_dir(platform, alias)
        if console:
            if not firmware:
                raise UsageError("console mode needs the firmware to run", hint="give firmware=path/to/app.elf")
            if defines:
                raise UsageError("defines build the hil runner firmware; console mode runs the given firmware",
                                 hint="build your firmware with its own options and give firmware=")
            fails = [fail] if isinstance(fail, str) else list(fail or [])
            device: ConsoleDevice | Session = ConsoleDevice(
                firmware, platform, console=console, port=port, probe=probe, baud=baud, flasher=flasher,
                workdir=workdir, fail=fails)
        else:
            if fail:
                raise UsageError("fail patterns are for console mode", hint="give console=uart (or semihosting)")
            device = Session(platform, firmware=firmware, defines=parse_defines(defines), port=port, probe=probe,
                             baud=baud, flasher=flasher, workdir=workdir, count=count, inline=inline,
                             boot_timeout=boot, invoke_timeout=invoke, reporter=_RobotReporter())
        started = _Started(alias, device, "test" if self._in_test else "suite")
        self._targets[alias] = started
        self._current = alias
        _LIVE.add(device)
        try:
            device.start()
        except BaseException:
            self._stop(alias)
            raise
        info = DotDict(alias=alias, platform=platform, workdir=str(device.workdir), target=DotDict(device.target))
        if isinstance(device, Session):
            hello = device.hello
            assert hello is not None, "start() returns once the device said hello"
            info.device = DotDict(device.device)
            logger.info(f"{alias}: {platform} running build {hello.build_id} ({hello.engine}) "
                        f"in {device.workdir}")
        else:
            logger.info(f"{alias}: {platform} running {firmware}, {console} console, log {device.log_path}")
        return info

    @keyword
    def stop_target(self, alias: str | None = None) -> None:
        """Stops the current target (or the one named ``alias``) and leaves no
        process behind. Targets are also stopped automatically when the test
        (or, for Suite Setup, the suite) that started them ends."""
        started = self._get(alias)
        self._stop(started.alias)

    @keyword
    def stop_all_targets(self) -> None:
        """Stops every target this library instance started."""
        self._stop_where(lambda t: True)

    @keyword
    def switch_target(self, alias: str) -> None:
        """Makes the target named ``alias`` the current one."""
        self._current = self._get(alias).alias

    # -- protocol mode ----------------------------------------------------------------------

    @keyword
    def load_model(self, path: str) -> DotDict:
        """Loads a ``.tflite`` model into the current target (from a host file
        on emulators that can read one, else through the link) and measures
        the counting overhead. Returns the model's ``sha256``, ``operators``,
        ``inputs`` and ``outputs``."""
        started, session = self._session()
        model = session.load_model(path)
        started.batch = None
        logger.info(f"loaded {model.path} ({len(model.data):,} bytes, {len(model.operators)} operators, "
                    f"{session.device.get('bulk_transfer')} transfer); arena used "
                    f"{session.device.get('arena_used', 0):,} bytes")
        info = model.as_dict()
        return DotDict(info)

    @keyword
    def stream_vectors(self, count: int = 10, seed: int = 0, file: str | None = None,
                       limit: int | None = None) -> DotDict:
        """Runs test vectors through the device and through the TFLite Micro
        reference: ``count`` seeded random vectors (respecting each input's
        dtype and quantization), or the vectors in ``file`` (``.npy``, or
        ``.npz`` with ``input_0``... and optional ``labels``), the first
        ``limit`` of them.

        Every output is compared with the reference bit for bit, and each
        invoke's count and estimated energy are recorded; the check keywords
        then look at this set. A fault, a hang or a reboot ends the set;
        the checks report it.

        Returns a summary: ``total``, ``run``, ``passed``, ``failed``,
        ``not_run``, ``matches_reference``, ``count_kind``, ``min_count``,
        ``max_count``, ``max_energy_uj``, ``accuracy`` (labelled sets),
        ``fault`` and ``error``.
        """
        started, session = self._session()
        batch = session.stream(count=count, seed=seed, file=file, limit=limit)
        started.batch = batch
        lines = [o.describe() for o in batch.outcomes[:25]]
        if len(batch) > 25:
            lines.append(f"... {len(batch) - 25} more")
        logger.info("\n".join(lines))
        summary = batch.summary()
        counted = (f"; count {_fmt(summary['min_count'])}..{_fmt(summary['max_count'])} {summary['count_kind']}"
                   if summary["max_count"] is not None else "")
        logger.info(f"{batch.passed}/{batch.planned} vectors bit-exact{counted}; run directory {session.workdir}")
        return DotDict(summary)

    @keyword
    def outputs_should_match_reference(self, tolerance_lsb: float = 0) -> None:
        """Fails unless every vector of the last `Stream Vectors` ran and its
        outputs equal the TFLite Micro reference's bit for bit (or, with
        ``tolerance_lsb``, differ by at most that many LSB in any element).

        The message names each failing vector: the elements that differ and
        the largest difference, or the fault (kind, PC, CFSR, function),
        the hang (the stage) or the reboot that stopped the set."""
        _, batch = self._batch()
        if not batch.matches_reference(tolerance_lsb):
            raise CheckFailed(batch.explain(tolerance_lsb))
        logger.info(batch.explain(tolerance_lsb))

    @keyword
    def count_should_be_below(self, limit: float, kind: str | None = None) -> None:
        """Fails unless the largest count of the last `Stream Vectors` is below
        ``limit``. The count is instructions on QEMU and Renode, DWT cycles
        on a board; give ``kind`` (``instructions`` or ``cycles``) to require
        one. A set without counts (no counter, ``count=False``) fails too."""
        session, batch = self._batch()
        if batch.max_count is None:
            raise CheckFailed(f"no count was measured on {batch.platform}: the device reports no counter for it, "
                              f"or the target was started with count=False")
        if kind and batch.count_kind != kind:
            raise CheckFailed(f"counts on {batch.platform} are {batch.count_kind}, not {kind}")
        count, worst = max(((o.count, o) for o in batch.outcomes if o.count is not None), key=lambda pair: pair[0])
        text = (f"largest count {_fmt(count)} {worst.count_kind} (vector {worst.index} of "
                f"{len(batch)})")
        if not count < float(limit):
            raise CheckFailed(f"{text} is not below {_fmt(float(limit))} {worst.count_kind}")
        logger.info(f"{text} is below {_fmt(float(limit))}")

    @keyword
    def energy_should_be_below(self, uj: float) -> None:
        """Fails unless the largest estimated energy per inference of the last
        `Stream Vectors` is below ``uj`` microjoules. The estimate comes from
        the platform file's ``[power]`` table (count / clock x voltage x
        active current); a platform without one fails, saying so."""
        session, batch = self._batch()
        if batch.max_energy_uj is None:
            raise CheckFailed(f"no energy estimate on {batch.platform}: its platform file has no [power] table "
                              f"with an active current, or no count was measured")
        model = (session.result.energy_model or {}) if session.result else {}
        energy_uj, worst = max(((o.energy_uj, o) for o in batch.outcomes if o.energy_uj is not None),
                               key=lambda pair: pair[0])
        basis = session.result.energy_basis if session.result else None
        text = f"largest energy {format_estimate(energy_uj, 'uJ', basis, detail=True)} (vector {worst.index})"
        if not energy_uj < float(uj):
            raise CheckFailed(f"{text} is not below {_fmt(float(uj))} uJ")
        logger.info(f"{text} is below {_fmt(float(uj))} uJ; energy model: {model}")

    @keyword
    def accuracy_should_be_at_least(self, minimum: float) -> None:
        """Fails unless the device's top-1 accuracy on the last `Stream
        Vectors` (a labelled ``.npz``) is at least ``minimum`` (0..1)."""
        _, batch = self._batch()
        if batch.accuracy is None:
            raise CheckFailed("the last vectors had no labels: stream a .npz file with a `labels` array")
        text = f"top-1 accuracy {batch.accuracy:.1%} on {len(batch)} labelled vectors"
        if batch.accuracy < float(minimum):
            raise CheckFailed(f"{text} is below {float(minimum):.1%}")
        logger.info(text)

    @keyword
    def memory_should_be_below(self, arena: int | None = None, flash: int | None = None,
                               ram: int | None = None) -> DotDict:
        """Fails if the device's tensor-arena high-water mark, the firmware's
        flash bytes or the RAM it needs (static + stack + arena + model)
        reach the given byte counts, as ``hil run --max-arena --max-flash
        --max-ram`` check them. Returns the measured memory."""
        _, session = self._session()
        checks = session.check_budgets(None, max_arena=arena, max_flash=flash, max_ram=ram)
        bad = [c.message for c in checks if not c.passed]
        for c in checks:
            logger.info(c.message)
        if bad:
            raise CheckFailed("; ".join(bad))
        return DotDict(session.memory())

    # -- console mode --------------------------------------------------------------------------

    @keyword
    def wait_for_line(self, pattern: str, timeout: str = "10s", fail: str | list | None = None):
        """Waits for a line matching the regular expression ``pattern`` on the
        current target's console, after the line the previous wait matched.

        ``pattern`` is a Python regex searched in one line at a time (``^``
        and ``$`` are the line's start and end; a prompt without a newline is
        matched once the console is quiet). Fails after ``timeout`` (Robot
        time: ``10s``, ``1 min``), when the firmware exits first, or at once
        on a line that matches a ``fail`` pattern (or one given to `Start
        Target`), even a line that also matches ``pattern``.

        Returns the named groups as a dictionary, numbers converted
        (``(?P<ms>\\d+)`` gives an integer, ``0x..`` too), or the matching
        line when the pattern has no named groups. In Robot data a regex
        backslash is written twice (``\\\\d``).

        | ${m}=    Wait For Line    inference took (?P<ms>\\\\d+) ms    timeout=30s
        | Should Be True    ${m}[ms] < 50
        """
        device = self._console()
        fails = [fail] if isinstance(fail, str) else list(fail or [])
        found = device.wait_for_line(pattern, timestr_to_secs(timeout), fails)
        logger.info(f"matched {device.lines[-1]['text']!r}")
        return DotDict(found) if isinstance(found, dict) else found

    @keyword
    def watch_console(self, duration: str = "10s", fail: str | list | None = None) -> None:
        """Reads the current target's console for ``duration`` (or until the
        firmware exits) and fails at once on a line that matches a ``fail``
        pattern (or one given to `Start Target`): fail patterns watched after
        the last `Wait For Line`, or a smoke test on its own.

        | Start Target     mps2-an386    firmware=${ELF}    console=uart    fail=HardFault|ASSERT
        | Watch Console    10s
        """
        device = self._console()
        ended = device.watch(timestr_to_secs(duration), [fail] if isinstance(fail, str) else list(fail or []))
        logger.info("the console ended with no fail pattern" if ended
                    else f"no fail pattern within {duration}")

    @keyword
    def firmware_should_exit_with(self, status: int = 0, timeout: str = "10s") -> None:
        """Emulators: waits for the firmware to exit (semihosting ``SYS_EXIT``
        or ``SYS_EXIT_EXTENDED``) and fails unless its exit status is
        ``status``; a line printed until then that matches a fail pattern
        given to `Start Target` fails it too."""
        device = self._console()
        code = device.wait_for_exit(timestr_to_secs(timeout))
        if code != int(status):
            raise CheckFailed(f"the firmware exited with status {code}, expected {int(status)}")
        logger.info(f"the firmware exited with status {code}")
