"""Power analysers `hil calibrate` reads the board's current from.

Each driver captures in a background thread, from `start()` to `stop()`,
and timestamps its samples on the host's monotonic clock, the clock the
invoke windows are taken on (link timing). A read returns the samples of
the time just before it: they are placed back from the read's host time at
the analyser's sample rate. USB latency shifts them by a few ms at most,
which the calibration's guard at each end of a window (--guard-ms) covers.

Drivers (optional packages, imported only when chosen; a missing one is
exit 2 naming the pip command):
  joulescope  Joulescope JS110/JS220 through the `joulescope` package:
              `scan_require_one(config="auto")`, `read(contiguous_duration=...)`
              giving [current A, voltage V] rows.
  ppk2        Nordic Power Profiler Kit II through `ppk2-api` (0.9): ampere-meter
              mode (the board powered as usual, the PPK2 in series; the API
              needs the supply voltage stated: --ppk2-mv), or source-meter
              mode (--ppk2-source: the PPK2 powers the board at --ppk2-mv);
              100 k samples/s in uA.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from ..errors import InfraError, UsageError

log = logging.getLogger(__name__)

ANALYSERS = ("joulescope", "ppk2")
PIP = {"joulescope": "pip install joulescope", "ppk2": "pip install ppk2-api"}


def _require(kind: str, module: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"--analyser {kind} needs the Python package that drives it, which is not installed",
                         hint=f"{PIP[kind]} (into hil's environment: .venv/bin/{PIP[kind]})") from None


class Analyser:
    """Capture loop shared by the drivers: `_open`, `_read` -> (current A, voltage V | None), `_close`."""

    kind = ""
    read_s = 0.1  # length of one read
    max_rate_hz = 100_000.0  # faster captures (a Joulescope's MS/s) are averaged down to this: memory, file size

    def __init__(self) -> None:
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.rate_hz: float | None = None
        self.conditions = ""

    def start(self) -> None:
        self._open()
        self._thread = threading.Thread(target=self._loop, name=f"hil-{self.kind}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.is_set():
                amps, volts = self._read()
                end = time.monotonic()
                n = len(amps)
                if n:
                    step = 1.0 / self.rate_hz if self.rate_hz else self.read_s / n
                    k = int(self.max_rate_hz and 1.0 / (step * self.max_rate_hz)) or 1
                    if k > 1:  # average blocks of k samples
                        n, step = n // k, step * k
                        amps = np.asarray(amps[:n * k], dtype=np.float64).reshape(n, k).mean(axis=1)
                        volts = None if volts is None else np.asarray(volts[:n * k]).reshape(n, k).mean(axis=1)
                    t = end - (n - np.arange(n) - 0.5) * step
                    self._chunks.append((t, np.asarray(amps, dtype=np.float32),
                                         None if volts is None else np.asarray(volts, dtype=np.float32)))
        except BaseException as exc:  # kept and raised by stop(): the main thread reports it
            self._error = exc

    def stop(self) -> dict:
        """End the capture; the samples as {"t", "current_a", "voltage_v"}."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        try:
            self._close()
        except Exception:
            pass
        if self._error is not None:
            raise InfraError(f"the {self.kind} analyser failed while capturing: {self._error}",
                             hint="check its USB connection and that no other program holds it")
        if not self._chunks:
            raise InfraError(f"the {self.kind} analyser gave no samples", hint="check it is connected and powered")
        t = np.concatenate([c[0] for c in self._chunks])
        amps = np.concatenate([c[1] for c in self._chunks])
        volts = None
        if all(c[2] is not None for c in self._chunks):
            volts = np.concatenate([c[2] for c in self._chunks])
        return {"t": t, "current_a": amps, "voltage_v": volts}

    voltage_v: float | None = None  # the supply voltage, where the driver knows it without sampling it

    def describe(self) -> dict:
        return {"kind": self.kind, "rate_hz": self.rate_hz, "conditions": self.conditions,
                "voltage_v": self.voltage_v}

    def _open(self) -> None: ...
    def _read(self): ...
    def _close(self) -> None: ...


class Joulescope(Analyser):
    kind = "joulescope"

    def _open(self) -> None:
        js_mod = _require(self.kind, "joulescope")
        try:
            self.js = js_mod.scan_require_one(config="auto")
            self.js.open()
        except Exception as exc:
            raise InfraError(f"no Joulescope could be opened: {exc}",
                             hint="connect one Joulescope (and close the Joulescope UI, which holds it)") from exc
        self.conditions = "Joulescope, config auto (current range auto)"

    def _read(self):
        data = np.asarray(self.js.read(contiguous_duration=self.read_s))
        return data[:, 0], data[:, 1]

    def _close(self) -> None:
        self.js.close()


class Ppk2(Analyser):
    kind = "ppk2"

    def __init__(self, port: str | None, mv: int, source: bool = False) -> None:
        super().__init__()
        self.port, self.mv, self.source = port, int(mv), source
        self.rate_hz = 100_000.0
        self.voltage_v = self.mv / 1000

    def _open(self) -> None:
        api = _require(self.kind, "ppk2_api.ppk2_api").PPK2_API
        port = self.port
        if port is None:
            found = [d[0] if isinstance(d, (tuple, list)) else d for d in api.list_devices()]
            if len(found) != 1:
                raise UsageError(f"{len(found)} PPK2s attached", hint="name one with --analyser-port")
            port = found[0]
        try:
            self.ppk = api(port, timeout=1, write_timeout=1, exclusive=True)
            self.ppk.get_modifiers()
            if self.source:
                self.ppk.use_source_meter()
                self.ppk.set_source_voltage(self.mv)
                self.ppk.toggle_DUT_power("ON")
                self.conditions = f"PPK2 source meter powering the board at {self.mv} mV"
            else:
                self.ppk.use_ampere_meter()
                self.ppk.set_source_voltage(self.mv)  # ppk2-api refuses to measure until the voltage is stated
                self.conditions = f"PPK2 ampere meter in series with the board's {self.mv} mV supply (stated)"
            self.ppk.start_measuring()
        except Exception as exc:
            raise InfraError(f"the PPK2 on {port} could not be started: {exc}",
                             hint="check the port (--analyser-port) and that no other program holds it") from exc

    def _read(self):
        time.sleep(0.01)
        data = self.ppk.get_data()
        if not data:
            return np.zeros(0), None
        got = self.ppk.get_samples(data)
        samples = got[0] if isinstance(got, tuple) else got  # newer ppk2-api also returns the digital channels
        return np.asarray(samples, dtype=np.float64) * 1e-6, None  # uA -> A

    def _close(self) -> None:
        self.ppk.stop_measuring()


def make_analyser(kind: str, port: str | None = None, mv: int = 3300, source: bool = False) -> Analyser:
    if kind == "joulescope":
        return Joulescope()
    if kind == "ppk2":
        return Ppk2(port, mv, source)
    raise UsageError(f"unknown analyser {kind!r}", hint=f"choose one of {', '.join(ANALYSERS)}")
