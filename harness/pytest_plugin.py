"""pytest plugin: hil targets as fixtures.

Installed with hil (entry point `pytest11: hil`), or load it by hand with
`pytest -p harness.pytest_plugin`. Nothing happens unless a test uses its
fixtures: no emulator starts and nothing is imported beyond this module.

    from harness.pytest_plugin import hil_vectors

    @pytest.fixture(scope="module")
    def dut(hil_dut):                       # booted once per module and platform
        hil_dut.load_model("models/demo/gesture.tflite")
        return hil_dut

    @pytest.mark.parametrize("vector", hil_vectors("models/demo/gesture.tflite", count=5, seed=1))
    def test_vector(dut, vector):           # one test per vector in the report
        out = dut.run(vector)
        assert out.matches_reference()
        assert out.count < 3_000_000        # out.count_kind: instructions or cycles

Command line: `--hil-platform NAME` (repeatable; default mps2-an386, or the
`hil_platforms` ini option): every test that uses `hil_dut`, `hil_target`
or `hil_platform` runs once per platform. `@pytest.mark.hil_platforms(...)`
limits a test to some platforms; on the others it is reported as skipped.
`--hil-firmware ELF` uses a prebuilt runner, `--hil-define NAME=VALUE`
builds the runner with extra definitions, `--hil-port`/`--hil-probe` reach
a board, `--hil-workdir DIR` keeps the run directories there.

Fixtures:
- `hil_platform` (session): the platform name of this parametrisation.
- `hil_dut` (module): a started `harness.session.Session`: `load_model`,
  `run(x)` -> VectorOutcome (`matches_reference()`, `outputs`,
  `reference`, `count`, `count_kind`, `energy_uj`, `operators`),
  `stream(...)` -> Batch (`matches_reference()`, `explain()`, `max_count`,
  `max_energy_uj`, `accuracy`, `[i]`), `memory()`, `check_budgets(...)`.
- `hil_target` (function): a factory, `hil_target(firmware=..., defines=...,
  console="uart")`, for targets with other firmware (fault injection,
  console mode); each is stopped when the test ends.
"""

from __future__ import annotations

import itertools
import logging
import re
from pathlib import Path

import pytest

log = logging.getLogger(__name__)

DEFAULT_PLATFORM = "mps2-an386"
_counter = itertools.count()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("hil", "hil: hardware-in-the-loop targets (harness.pytest_plugin)")
    group.addoption("--hil-platform", action="append", default=[], dest="hil_platform", metavar="NAME",
                    help=f"platform (name or .toml path) to run hil tests on; repeatable [default: "
                         f"{DEFAULT_PLATFORM}, or the hil_platforms ini option]")
    group.addoption("--hil-firmware", dest="hil_firmware", metavar="ELF",
                    help="a prebuilt runner firmware for hil_dut instead of building it")
    group.addoption("--hil-define", action="append", default=[], dest="hil_define", metavar="NAME=VALUE",
                    help="extra preprocessor definition for the runner firmware hil_dut builds (repeatable)")
    group.addoption("--hil-port", dest="hil_port", metavar="URL", help="boards: the serial port (pyserial URL)")
    group.addoption("--hil-probe", dest="hil_probe", metavar="ID", help="boards: the debug probe's serial number")
    group.addoption("--hil-inline", action="store_true", dest="hil_inline", default=False,
                    help="stream bulk data through the UART even on emulators (the board path)")
    group.addoption("--hil-workdir", dest="hil_workdir", metavar="DIR",
                    help="where run directories go [default: pytest's temporary directory]")
    parser.addini("hil_platforms", "platforms for hil fixtures when --hil-platform is not given", type="args",
                  default=[])


def pytest_configure(config) -> None:
    config.addinivalue_line(
        "markers", "hil_platforms(*names): run this test only on these hil platforms (of those chosen with "
                   "--hil-platform); it is reported as skipped on the others")


#: the codes (harness/verdict.py) of the hil tests that failed in this pytest session
_FAILURE_CODES = pytest.StashKey[list]()
_HIL_FIXTURES = frozenset({"hil_dut", "hil_target", "hil_platform"})


def _failure_code(exc: BaseException | None) -> int | None:
    """The taxonomy's code of a failed hil test: its exception's, or that of
    the HilError a fixture turned into a plain failure (`_start`)."""
    from harness.verdict import code_for

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        code = code_for(exc, default=None)
        if code is not None:
            return code
        exc = exc.__cause__ or exc.__context__
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that uses hil's fixtures says which kind of failure it
    is, in the one taxonomy `hil run` uses (harness/verdict.py): the
    firmware's (a check, an assert), bad input, or infrastructure (emulator,
    link, disk). JUnit XML carries it as the properties `hil_verdict` and
    `hil_exit_code`."""
    outcome = yield
    if call.excinfo is None or not _HIL_FIXTURES & set(getattr(item, "fixturenames", ())):
        return
    code = _failure_code(call.excinfo.value)
    if code is None:
        return
    from harness.verdict import MEANING

    properties = [("hil_verdict", MEANING[code]), ("hil_exit_code", code)]
    outcome.get_result().user_properties.extend(properties)
    item.user_properties.extend(properties)  # JUnit XML takes them from the teardown report
    item.config.stash.setdefault(_FAILURE_CODES, []).append(code)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    codes = config.stash.get(_FAILURE_CODES, [])
    if not codes:
        return
    from harness.verdict import MEANING, combine

    kinds = ", ".join(f"{codes.count(c)} {MEANING[c]}" for c in sorted(set(codes)))
    verdict = combine(codes)
    terminalreporter.write_line(f"hil: failed tests by kind: {kinds}; as one hil verdict: {MEANING[verdict]} "
                                f"(exit {verdict} in `hil run` terms)")


def selected_platforms(config) -> list[str]:
    """The platforms of this session: --hil-platform, else the ini option, else the default."""
    names = list(config.getoption("hil_platform") or []) or list(config.getini("hil_platforms") or []) \
        or [DEFAULT_PLATFORM]
    return list(dict.fromkeys(names))


def _platform_id(name: str) -> str:
    return Path(name).stem if name.endswith(".toml") else name


def pytest_generate_tests(metafunc) -> None:
    if "hil_platform" not in metafunc.fixturenames:
        return
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        if "hil_platform" in (names.replace(" ", "").split(",") if isinstance(names, str) else names):
            return  # the test chose its platforms itself
    marker = metafunc.definition.get_closest_marker("hil_platforms")
    allowed = None if marker is None else {_platform_id(str(a)) for a in marker.args}
    params = []
    for name in selected_platforms(metafunc.config):
        marks: tuple | pytest.MarkDecorator = ()
        if allowed is not None and _platform_id(name) not in allowed:
            marks = pytest.mark.skip(reason=f"not run on {_platform_id(name)}: the test is for "
                                            f"{', '.join(sorted(allowed))} (hil_platforms marker)")
        params.append(pytest.param(name, id=_platform_id(name), marks=marks))
    metafunc.parametrize("hil_platform", params, indirect=True)


class HilOptions:
    """The command line's hil options, and where run directories go."""

    def __init__(self, config, tmp_path_factory) -> None:
        from harness.paths import absolute

        # relative to where pytest was started, whatever the tests' working directory is later
        started_in = config.invocation_params.dir
        self.firmware = absolute(config.getoption("hil_firmware"), started_in)
        self.defines = list(config.getoption("hil_define") or [])
        self.port = config.getoption("hil_port")
        self.probe = config.getoption("hil_probe")
        self.inline = bool(config.getoption("hil_inline"))
        workdir = config.getoption("hil_workdir")
        self._base = absolute(workdir, started_in)
        self._factory = tmp_path_factory

    def workdir(self, platform: str, label: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{_platform_id(platform)}-{label}")[-80:]
        if self._base is None:
            return self._factory.mktemp(f"hil-{name}", numbered=True)
        return self._base / f"{name}-{next(_counter)}"

    def board_options(self, platform: str) -> dict:
        """--hil-port and --hil-probe, for board platforms only."""
        from harness.platforms import load_platform
        from harness.targets import capabilities_of

        if not (self.port or self.probe) or not capabilities_of(load_platform(platform)).flash:
            return {}
        return {"port": self.port, "probe": self.probe}


def _start(device):
    """Start a Session or ConsoleDevice; an error (bad input, emulator
    missing) is reported as the fixture's error, without a hil traceback."""
    from harness.errors import HilError

    try:
        device.start()
    except HilError as exc:
        device.stop()
        pytest.fail(f"{type(exc).__name__}: {exc}", pytrace=False)
    return device


@pytest.fixture(scope="session")
def hil_options(request, tmp_path_factory) -> HilOptions:
    return HilOptions(request.config, tmp_path_factory)


@pytest.fixture(scope="session")
def hil_platform(request) -> str:
    """The platform this test runs on (one of --hil-platform)."""
    return getattr(request, "param", None) or selected_platforms(request.config)[0]


@pytest.fixture(scope="module")
def hil_dut(request, hil_platform, hil_options):
    """The hil runner firmware running on `hil_platform`, booted once per
    module (and platform), stopped after the module's last test."""
    from harness.session import Session, parse_defines

    dut = Session(hil_platform, firmware=hil_options.firmware, defines=parse_defines(hil_options.defines),
                  inline=hil_options.inline, workdir=hil_options.workdir(hil_platform, request.module.__name__),
                  **hil_options.board_options(hil_platform))
    _start(dut)
    try:
        yield dut
    finally:
        dut.stop()


@pytest.fixture
def hil_target(request, hil_platform, hil_options):
    """A factory for more targets on `hil_platform` (or `platform=`), each
    stopped when the test ends:

    - `hil_target(defines={"HIL_FAULT_ON_INVOKE": "3"})`, `hil_target(firmware="runner.elf")`:
      a Session (the hil protocol), started;
    - `hil_target(firmware="app.elf", console="uart", fail=["ASSERT"])`: a
      ConsoleDevice, started: `wait_for_line(regex, timeout)` returns the
      named groups, `wait_for_exit()` the firmware's exit status.
    """
    from harness.session import ConsoleDevice, Session, parse_defines

    started: list[Session | ConsoleDevice] = []

    def start(firmware=None, defines=None, console=None, platform=None, fail=None, **options):
        name = platform or hil_platform
        workdir = hil_options.workdir(name, request.node.name)
        board = {**hil_options.board_options(name), **{k: options.pop(k) for k in ("port", "probe")
                                                       if k in options}}
        if console:
            if not firmware:
                raise ValueError("console mode needs firmware=path/to/app.elf")
            console_device = ConsoleDevice(firmware, name, console=console, workdir=workdir, fail=fail, **board,
                                           **options)
            started.append(console_device)
            return _start(console_device)
        options.setdefault("inline", hil_options.inline)
        session = Session(name, firmware=firmware, defines=parse_defines(defines), workdir=workdir, **board, **options)
        started.append(session)
        return _start(session)

    try:
        yield start
    finally:
        for device in reversed(started):
            device.stop()


def hil_vectors(model, file=None, count: int | None = None, seed: int = 0, limit: int | None = None) -> list:
    """Test vectors as `pytest.param`s, one test each in the report:
    `@pytest.mark.parametrize("vector", hil_vectors(MODEL, file=NPZ, limit=20))`
    or `hil_vectors(MODEL, count=5, seed=1)` (seeded random vectors that
    respect each input's dtype and quantization). Pass a vector to
    `hil_dut.run(vector)`; its `label` (labelled .npz sets) is kept."""
    from harness.model.tflite import load_model
    from harness.model.vectors import load_vectors, random_vectors
    from harness.session import Vector

    info = load_model(Path(model))
    if file is not None:
        vectors = load_vectors(Path(file), info, limit=limit)
        name = Path(file).stem
    else:
        vectors = random_vectors(info, 10 if count is None else count, seed)
        name = f"seed{seed}"
    labels = vectors.labels
    return [pytest.param(Vector(i, tuple(v), int(labels[i]) if labels is not None else None, name), id=f"{name}-{i}")
            for i, v in enumerate(vectors.vectors)]
