"""Calibration of the cycle estimate (and the active current) against one real board.

A board's DWT counts the cycles each operator really takes; the emulated
counterpart's cycle plugin estimates them. Their ratio per operator type
is the correction (`factor`): a robust central value (the median over the
operators of that type in the calibration set) with its spread. The
calibrated error band is the largest invoke-level residual when each model
is predicted from factors fitted without it (leave one model out): a
user's model is never in the calibration set, so the in-sample residual
would flatter the fit.

An analyser's samples, windowed by the invokes, give the mean active
current; an idle window gives the current between requests.

Files:
  recording DIR (`hil calibrate --record`, read by `--replay`): recording.json
      (schema RECORDING_SCHEMA: both sides' per-operator counts, the invoke
      windows) and analyser.npz (t in host seconds, current in A, voltage in V).
  calibration file (TOML, schema SCHEMA): what `hil run --calibration` and a
      platform's `[timing] calibration` apply (`load_calibration`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import resources
from ..errors import UsageError

log = logging.getLogger(__name__)

SCHEMA = "hil.calibration/1"
RECORDING_SCHEMA = "hil.calibration-recording/1"
RECORDING_FILE = "recording.json"
SAMPLES_FILE = "analyser.npz"
MIN_WINDOW_SAMPLES = 10  # an invoke window with fewer analyser samples is not used for the current
REDO = "record the calibration again (`hil calibrate --record DIR`)"


# -- the calibration file --------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpFactor:
    """board cycles / estimated cycles for one operator type."""

    factor: float      # median of the per-operator ratios
    spread: float      # median |ratio - factor| / factor (relative MAD)
    ratio_min: float
    ratio_max: float
    operators: int     # operator instances of this type in the calibration set
    samples: int       # (operator, vector) pairs behind them


@dataclass(frozen=True)
class Current:
    """What the analyser measured, and how."""

    analyser: str
    active_ma: float           # mean over invoke windows
    active_sd_ma: float        # spread of the per-invoke means
    invokes: int               # windows used
    window: str                # how invoke windows were found
    voltage_v: float | None = None
    idle_ma: float | None = None   # between requests (a busy-waiting firmware: not a sleep current)
    sleep_ua: float | None = None  # only from a window the firmware spent asleep
    conditions: str = ""


@dataclass(frozen=True)
class Calibration:
    board: str
    emulated: str
    timing_model: str
    clock_hz: int              # the emulated platform's [timing] clock the estimates are for
    board_clock_hz: int        # the board firmware's clock the cycles were counted at
    date: str
    hil_version: str
    factors: dict[str, OpFactor]
    default_factor: float      # for operator types not in the calibration set, and non-operator cycles
    band_fraction: float       # largest leave-one-model-out invoke residual, relative
    in_sample: float           # the same, in sample (for information: it flatters)
    models: tuple[str, ...]
    current: Current | None = None
    # per model: (board cycles, estimate, calibrated in sample, calibrated without the model), medians per invoke
    residuals: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    synthetic: bool = False    # made by scripts/make_calibration_fixture.py, not on hardware
    note: str = ""
    path: Path | None = None

    def factor(self, op_name: str) -> float:
        """The correction for an operator type (`default_factor` if it was not calibrated)."""
        f = self.factors.get(op_name)
        return f.factor if f is not None else self.default_factor

    @property
    def band(self) -> str:
        """The calibrated error band, as `cycles_basis["error_band"]` shows it."""
        where = self.path.name if self.path else "unsaved calibration"
        return (f"+-{_pct(self.band_fraction)} (calibrated on {self.board}, {where}: largest leave-one-model-out "
                f"invoke residual over {len(self.models)} models" + (", SYNTHETIC data)" if self.synthetic else ")"))

    @property
    def active_ma(self) -> float | None:
        return self.current.active_ma if self.current else None

    @property
    def sleep_ua(self) -> float | None:
        return self.current.sleep_ua if self.current else None

    def cite(self) -> str:
        where = self.path.name if self.path else "(unsaved calibration)"
        words = f"{where}: {self.board} vs {self.emulated}, {self.date[:10]}"
        return words + (", SYNTHETIC data, no hardware" if self.synthetic else "")

    def check_applies(self, platform: str, model_id: str, clock_hz: int) -> None:
        """Refuse a calibration made for another platform, timing model or clock (exit 2)."""
        fix = (f"use a calibration made against {platform} (`hil calibrate --platform <board> --emulated "
               f"{platform}`), or drop --calibration")
        if platform != self.emulated:
            raise UsageError(f"{self._where()}: calibrated against platform {self.emulated}, not {platform}", hint=fix)
        if model_id != self.timing_model:
            raise UsageError(f"{self._where()}: made for timing model {self.timing_model}, but {platform} uses "
                             f"{model_id}", hint="calibrate again: the timing tables changed since")
        if int(clock_hz) != int(self.clock_hz):
            raise UsageError(f"{self._where()}: made for estimates at {self.clock_hz / 1e6:g} MHz, this run's are at "
                             f"{clock_hz / 1e6:g} MHz", hint=fix)

    def _where(self) -> str:
        return str(self.path) if self.path else "calibration"

    # -- applying it -------------------------------------------------------------------------------------

    def apply(self, cycles: dict | None, operators: list[dict] | None) -> tuple[dict | None, list[dict] | None]:
        """One invoke's estimate corrected: each operator's `cycles` x its type's factor,
        the invoke's cycles outside operators x the default factor, latency at the same clock.
        The uncalibrated values stay beside them (`uncalibrated`)."""
        ops = None
        op_sum = new_sum = 0
        if operators is not None:
            ops = []
            for op in operators:
                op = dict(op)
                if isinstance(op.get("cycles"), (int, float)):
                    f = self.factor(op.get("op", ""))
                    op_sum += op["cycles"]
                    op["uncalibrated_cycles"] = op["cycles"]
                    op["cycles"] = round(op["cycles"] * f)
                    new_sum += op["cycles"]
                ops.append(op)
        if cycles is None or not isinstance(cycles.get("value"), (int, float)):
            return cycles, ops
        rest = max(cycles["value"] - op_sum, 0)
        value = round(new_sum + rest * self.default_factor)
        out = dict(cycles, value=value, uncalibrated=cycles["value"], calibration=self.cite())
        clock = cycles.get("clock_hz") or self.clock_hz
        out["latency_ms"] = round(value / clock * 1e3, 6)
        return out, ops

    def energy_model(self, model):
        """The platform's EnergyModel (harness/power/energy.py) with the measured active power (the
        analyser's current x its voltage, or the platform's voltage where it measured none) at the board's
        clock, tagged `verified` (`assumed` for synthetic data), its band the spread of the per-invoke
        means; the measured sleep power likewise. The model unchanged when nothing was measured."""
        if self.current is None or model is None:
            return model
        from ..power.energy import PowerFigure

        c = self.current
        volts = c.voltage_v or model.voltage_v
        status = "assumed" if self.synthetic else "verified"
        how = f"measured with {c.analyser} on {self.board}" + ("" if c.voltage_v else
                                                                 f" (current only; {volts:g} V from the platform)")
        if self.synthetic:
            how += "; SYNTHETIC test data, not a measurement"
        sd = c.active_sd_ma / c.active_ma * 100 if c.active_ma else 0.0
        active = PowerFigure(value=volts * c.active_ma, status=status, source=self.cite(), conditions=c.conditions,
                             basis=f"{how}: mean of {c.invokes} invoke windows ({c.window})", band_pct=(-sd, sd))
        sleep = model.sleep
        if c.sleep_ua is not None:
            sleep = PowerFigure(value=volts * c.sleep_ua, status=status, source=self.cite(), conditions=c.conditions,
                                basis=f"{how}: the window after the invokes", state="the firmware's own sleep")
        return dataclasses.replace(model, voltage_v=volts, clock_hz=float(self.board_clock_hz), active=active,
                                   sleep=sleep, source=f"{self.cite()}: {how}")

    def as_dict(self) -> dict:
        return {"file": str(self.path) if self.path else None, "board": self.board, "emulated": self.emulated,
                "timing_model": self.timing_model, "date": self.date, "band": self.band,
                "synthetic": self.synthetic, "active_ma": self.active_ma, "sleep_ua": self.sleep_ua}


def _pct(fraction: float) -> str:
    return f"{math.ceil(fraction * 1000) / 10:.1f}%"


def load_calibration(path: str | Path) -> Calibration:
    """Read a calibration file; a damaged or incomplete one is exit 2 naming the fix."""
    path = Path(path)
    redo = f"make it again with `hil calibrate` (or `hil calibrate --replay DIR --out {path}`)"
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"calibration file {path} does not exist", hint="give the path `hil calibrate --out` wrote")
    except OSError as exc:  # a directory, no permission: the user's path, not an internal error
        raise UsageError(f"calibration file {path} cannot be read ({exc.strerror or exc})",
                         hint="give the path `hil calibrate --out` wrote") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a valid calibration file ({exc})", hint=redo) from None
    if data.get("schema") != SCHEMA:
        raise UsageError(f"{path}: not a calibration file (schema {data.get('schema')!r}, expected {SCHEMA!r})",
                         hint=redo)
    try:
        factors = {}
        for op, f in data["factors"].items():
            factors[op] = OpFactor(float(f["factor"]), float(f["spread"]), float(f["ratio_min"]),
                                   float(f["ratio_max"]), int(f["operators"]), int(f["samples"]))
            if not (factors[op].factor > 0 and math.isfinite(factors[op].factor)):
                raise ValueError(f"factors.{op}.factor must be a positive number")
        band = data["band"]
        current = None
        if "current" in data:
            c = data["current"]
            current = Current(analyser=str(c["analyser"]), active_ma=float(c["active_ma"]),
                              active_sd_ma=float(c["active_sd_ma"]), invokes=int(c["invokes"]),
                              window=str(c["window"]), voltage_v=_opt(c, "voltage_v"), idle_ma=_opt(c, "idle_ma"),
                              sleep_ua=_opt(c, "sleep_ua"), conditions=str(c.get("conditions", "")))
        cal = Calibration(board=str(data["board"]), emulated=str(data["emulated"]),
                          timing_model=str(data["timing_model"]), clock_hz=int(data["clock_hz"]),
                          board_clock_hz=int(data["board_clock_hz"]), date=str(data["date"]),
                          hil_version=str(data["hil_version"]), factors=factors,
                          default_factor=float(data["default_factor"]), band_fraction=float(band["residual"]),
                          in_sample=float(band["in_sample"]), models=tuple(str(m) for m in band["models"]),
                          current=current, synthetic=bool(data.get("synthetic", False)),
                          residuals={str(k): (float(v["board"]), float(v["estimate"]), float(v["calibrated"]),
                                              float(v["held_out"])) for k, v in data.get("models", {}).items()},
                          note=str(data.get("note", "")), path=path)
    except KeyError as exc:
        raise UsageError(f"{path}: `{exc.args[0]}` is missing: the file is damaged or incomplete", hint=redo) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise UsageError(f"{path}: a value is damaged ({exc})", hint=redo) from None
    if not cal.default_factor > 0 or not cal.factors:
        raise UsageError(f"{path}: no usable factors", hint=redo)
    c = cal.current
    # a NaN, infinite, zero or negative figure would print a band of 'nan%', divide by a zero clock, or
    # give a negative power: each must be a number in its range
    checks: dict[str, tuple[float | None, int, bool]]
    checks = {"default_factor": (cal.default_factor, 0, False), "clock_hz": (cal.clock_hz, 0, False),
              "board_clock_hz": (cal.board_clock_hz, 0, False), "band.residual": (cal.band_fraction, 0, True),
              "band.in_sample": (cal.in_sample, 0, True)}
    if c is not None:
        checks.update({"current.active_ma": (c.active_ma, 0, False), "current.active_sd_ma": (c.active_sd_ma, 0, True),
                       "current.voltage_v": (c.voltage_v, 0, False), "current.idle_ma": (c.idle_ma, 0, True),
                       "current.sleep_ua": (c.sleep_ua, 0, True)})
    for key, (value, low, zero_ok) in checks.items():
        if value is not None and not (math.isfinite(value) and (value >= low if zero_ok else value > low)):
            raise UsageError(f"{path}: {key} = {value!r} is out of range (must be {'>=' if zero_ok else '>'} {low})",
                             hint=redo)
    return cal


def _opt(table: dict, key: str) -> float | None:
    return float(table[key]) if key in table else None


def write_calibration(cal: Calibration, path: str | Path) -> Calibration:
    """Write the TOML file (atomically) and return the calibration with its path."""
    path = Path(path)
    q = json.dumps  # a JSON string is a valid TOML basic string
    lines = [
        "# hil calibration: board cycles / emulator estimate per operator type, and the measured current.",
        "# Written by `hil calibrate`; read by `hil run --calibration FILE` and a platform's [timing] calibration.",
    ]
    if cal.synthetic:
        lines.append("# SYNTHETIC: made from generated data (scripts/make_calibration_fixture.py), no hardware was run.")
    lines += [f"schema = {q(SCHEMA)}", f"board = {q(cal.board)}", f"emulated = {q(cal.emulated)}",
              f"timing_model = {q(cal.timing_model)}", f"clock_hz = {cal.clock_hz}",
              f"board_clock_hz = {cal.board_clock_hz}", f"date = {q(cal.date)}", f"hil_version = {q(cal.hil_version)}",
              f"synthetic = {'true' if cal.synthetic else 'false'}", f"note = {q(cal.note)}",
              f"default_factor = {cal.default_factor:.6g}   # median board/estimate ratio of whole invokes", "",
              "[band]   # relative invoke residual after correction",
              f"residual = {cal.band_fraction:.6g}   # largest, each model predicted from the others' factors",
              f"in_sample = {cal.in_sample:.6g}   # largest, all models' factors (flatters the fit)",
              f"models = [{', '.join(q(m) for m in cal.models)}]", ""]
    for op in sorted(cal.factors):
        f = cal.factors[op]
        lines += [f"[factors.{op}]", f"factor = {f.factor:.6g}", f"spread = {f.spread:.6g}   # relative MAD",
                  f"ratio_min = {f.ratio_min:.6g}", f"ratio_max = {f.ratio_max:.6g}", f"operators = {f.operators}",
                  f"samples = {f.samples}", ""]
    for name, (board, estimate, calibrated, held_out) in cal.residuals.items():
        lines += [f"[models.{q(name)}]   # invoke cycles (medians): the board, the estimate, corrected in sample "
                  "and without this model", f"board = {board:.8g}", f"estimate = {estimate:.8g}",
                  f"calibrated = {calibrated:.8g}", f"held_out = {held_out:.8g}", ""]
    if cal.current is not None:
        c = cal.current
        lines += ["[current]", f"analyser = {q(c.analyser)}", f"active_ma = {c.active_ma:.6g}",
                  f"active_sd_ma = {c.active_sd_ma:.6g}", f"invokes = {c.invokes}", f"window = {q(c.window)}",
                  f"conditions = {q(c.conditions)}"]
        for key in ("voltage_v", "idle_ma", "sleep_ua"):
            if getattr(c, key) is not None:
                lines.append(f"{key} = {getattr(c, key):.6g}")
        lines.append("")
    _write_atomic(path, "\n".join(lines))
    return dataclasses.replace(cal, path=path)


def _write_atomic(path: Path, text: str) -> None:
    from ..errors import DiskError

    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text)
        tmp.replace(path)
    except OSError as exc:
        raise DiskError.writing("the calibration", path, exc) from exc


# -- the recording ---------------------------------------------------------------------------------------


@dataclass
class ModelRecord:
    """One model of the calibration set: per vector, the board's invoke cycles and per-operator
    cycles (`count`), and the emulator's estimate (`cycles`) for the same vectors."""

    name: str
    board: list[dict]      # [{"cycles": int, "operators": [{"index", "op", "count"}]}]
    emulated: list[dict]   # [{"cycles": int, "operators": [{"index", "op", "cycles"}]}]
    file: str = ""
    sha256: str = ""


@dataclass
class Recording:
    board: str
    emulated: str
    timing_model: str
    clock_hz: int
    board_clock_hz: int
    models: list[ModelRecord]
    windows: list[dict] = field(default_factory=list)   # [{"kind": invoke|idle|sleep, "t0", "t1", ...}]
    analyser: dict | None = None                        # {"kind", "window", "conditions", ...}
    samples: dict | None = None                         # {"t", "current_a", "voltage_v"} numpy arrays
    synthetic: bool = False
    note: str = ""

    def as_json(self) -> dict:
        return {"schema": RECORDING_SCHEMA, "synthetic": self.synthetic, "note": self.note, "board": self.board,
                "emulated": self.emulated, "timing_model": self.timing_model, "clock_hz": self.clock_hz,
                "board_clock_hz": self.board_clock_hz, "analyser": self.analyser, "windows": self.windows,
                "models": [dataclasses.asdict(m) for m in self.models]}


def save_recording(rec: Recording, directory: str | Path) -> Path:
    from ..errors import DiskError

    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if rec.samples is not None:
            arrays: dict = {k: np.asarray(v) for k, v in rec.samples.items() if v is not None}
            np.savez_compressed(directory / SAMPLES_FILE, **arrays)
    except OSError as exc:
        raise DiskError.writing("the calibration recording", directory, exc) from exc
    _write_atomic(directory / RECORDING_FILE, json.dumps(rec.as_json(), indent=1) + "\n")
    return directory


def load_recording(directory: str | Path) -> Recording:
    """Read and check a recording; anything missing or damaged is exit 2 naming it."""
    directory = Path(directory)
    where = directory / RECORDING_FILE
    if not where.is_file():
        raise UsageError(f"{directory} is not a calibration recording (no {RECORDING_FILE})",
                         hint="give the directory `hil calibrate --record` wrote")
    try:
        data = json.loads(where.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: damaged ({exc})", hint=REDO) from None
    if not isinstance(data, dict) or data.get("schema") != RECORDING_SCHEMA:
        raise UsageError(f"{where}: not a calibration recording (schema {RECORDING_SCHEMA!r} expected)", hint=REDO)
    try:
        models = [ModelRecord(name=str(m["name"]), board=list(m["board"]), emulated=list(m["emulated"]),
                              file=str(m.get("file", "")), sha256=str(m.get("sha256", ""))) for m in data["models"]]
        rec = Recording(board=str(data["board"]), emulated=str(data["emulated"]),
                        timing_model=str(data["timing_model"]), clock_hz=int(data["clock_hz"]),
                        board_clock_hz=int(data["board_clock_hz"]), models=models,
                        windows=list(data.get("windows") or []), analyser=data.get("analyser"),
                        synthetic=bool(data.get("synthetic", False)), note=str(data.get("note", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{where}: damaged or incomplete ({type(exc).__name__}: {exc})", hint=REDO) from None
    if rec.analyser:
        npz = directory / SAMPLES_FILE
        try:
            with np.load(npz) as z:
                rec.samples = {"t": z["t"], "current_a": z["current_a"],
                               "voltage_v": z["voltage_v"] if "voltage_v" in z.files else None}
        except FileNotFoundError:
            raise UsageError(f"{where} names an analyser but {npz} is missing", hint=REDO) from None
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"{npz}: damaged analyser samples ({exc})", hint=REDO) from None
    return rec


# -- the fit ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Op:
    model: str
    index: int
    op: str
    board: float       # median over vectors
    estimate: float
    samples: int


def _pairs(rec: Recording) -> tuple[list[_Op], dict[str, tuple[float, float]]]:
    """Operators paired board <-> emulator, and each model's (board, estimate) invoke cycles."""
    ops: list[_Op] = []
    invokes: dict[str, tuple[float, float]] = {}
    for m in rec.models:
        if not m.board or not m.emulated:
            side = "board" if not m.board else "emulator"
            raise UsageError(f"recording: model {m.name} has no {side} vectors", hint=REDO)
        board = _per_op(m.name, "board", m.board, "count")
        est = _per_op(m.name, "emulator", m.emulated, "cycles")
        if set(board) != set(est):
            missing_b = sorted(set(est) - set(board))
            missing_e = sorted(set(board) - set(est))
            words = []
            if missing_b:
                words.append(f"the board's counts lack operators {_names(missing_b, est)}")
            if missing_e:
                words.append(f"the emulator's estimates lack operators {_names(missing_e, board)}")
            raise UsageError(f"recording: model {m.name}: " + "; ".join(words),
                             hint="both sides must profile every operator of the same model: " + REDO)
        for idx in sorted(board):
            (op, b_vals), (op_e, e_vals) = board[idx], est[idx]
            if op != op_e:
                raise UsageError(f"recording: model {m.name} operator {idx} is {op} on the board but {op_e} "
                                 f"in the emulator", hint="the two sides ran different models: " + REDO)
            e = statistics.median(e_vals)
            if e <= 0:
                continue  # an operator that costs nothing in the estimate has no ratio
            ops.append(_Op(m.name, idx, op, statistics.median(b_vals), e, min(len(b_vals), len(e_vals))))
        b_inv = [v["cycles"] for v in m.board if isinstance(v.get("cycles"), (int, float))]
        e_inv = [v["cycles"] for v in m.emulated if isinstance(v.get("cycles"), (int, float))]
        if not b_inv or not e_inv:
            raise UsageError(f"recording: model {m.name} lacks invoke cycles on the "
                             f"{'board' if not b_inv else 'emulator'} side", hint=REDO)
        invokes[m.name] = (statistics.median(b_inv), statistics.median(e_inv))
    return ops, invokes


def _names(indices: list[int], side: dict) -> str:
    return ", ".join(f"{i} ({side[i][0]})" for i in indices)


def _per_op(model: str, side: str, vectors: list[dict], key: str) -> dict[int, tuple[str, list[float]]]:
    out: dict[int, tuple[str, list[float]]] = {}
    for v in vectors:
        operators = v.get("operators")
        if not operators:
            raise UsageError(f"recording: model {model}: a {side} vector has no per-operator counts (operators "
                             f"missing)", hint="profiling must be on for both sides (no --no-count): " + REDO)
        for op in operators:
            value = op.get(key)
            if not isinstance(value, (int, float)):
                raise UsageError(f"recording: model {model}: {side} operator {op.get('index')} has no `{key}`",
                                 hint=REDO)
            out.setdefault(int(op["index"]), (str(op["op"]), []))[1].append(float(value))
    return out


def _fit_factors(ops: list[_Op]) -> dict[str, OpFactor]:
    by_type: dict[str, list[_Op]] = {}
    for o in ops:
        by_type.setdefault(o.op, []).append(o)
    factors = {}
    for op, group in by_type.items():
        ratios = [o.board / o.estimate for o in group]
        f = statistics.median(ratios)
        factors[op] = OpFactor(factor=f, spread=statistics.median(abs(r - f) for r in ratios) / f,
                               ratio_min=min(ratios), ratio_max=max(ratios), operators=len(group),
                               samples=sum(o.samples for o in group))
    return factors


def _predict(model: str, ops: list[_Op], invoke_estimate: float, factors: dict[str, OpFactor],
             default: float) -> float:
    mine = [o for o in ops if o.model == model]
    op_sum = sum(o.estimate for o in mine)
    corrected = sum(o.estimate * (factors[o.op].factor if o.op in factors else default) for o in mine)
    return corrected + max(invoke_estimate - op_sum, 0) * default


def fit(rec: Recording, *, date: str, hil_version: str) -> Calibration:
    """Per-operator-type factors, the calibrated band and the measured current from a recording."""
    if len(rec.models) < 2:
        raise UsageError(f"recording: {len(rec.models)} model(s); the error band needs at least 2 (each is "
                         f"checked against the others' factors)", hint="record the whole calibration set")
    ops, invokes = _pairs(rec)
    factors = _fit_factors(ops)
    default = statistics.median(b / e for b, e in invokes.values())
    residuals = {}
    for name, (b, e) in invokes.items():
        others = [o for o in ops if o.model != name]
        rest = [bb / ee for n, (bb, ee) in invokes.items() if n != name]
        residuals[name] = (b, e, _predict(name, ops, e, factors, default),
                           _predict(name, ops, e, _fit_factors(others), statistics.median(rest)))
    in_sample = [abs(r[2] / r[0] - 1) for r in residuals.values()]
    held_out = [abs(r[3] / r[0] - 1) for r in residuals.values()]
    return Calibration(board=rec.board, emulated=rec.emulated, timing_model=rec.timing_model,
                       clock_hz=rec.clock_hz, board_clock_hz=rec.board_clock_hz, date=date,
                       hil_version=hil_version, factors=factors, default_factor=default,
                       band_fraction=max(held_out), in_sample=max(in_sample),
                       models=tuple(m.name for m in rec.models), current=measure_current(rec), residuals=residuals,
                       synthetic=rec.synthetic, note=rec.note)


def measure_current(rec: Recording) -> Current | None:
    """Mean current in the invoke windows (each invoke weighs the same), and in idle/sleep windows."""
    if not rec.analyser or rec.samples is None:
        return None
    t = np.asarray(rec.samples["t"], dtype=np.float64)
    amps = np.asarray(rec.samples["current_a"], dtype=np.float64)
    volts = rec.samples.get("voltage_v")
    if t.shape != amps.shape or t.ndim != 1:
        raise UsageError("recording: analyser samples t and current_a differ in shape", hint=REDO)
    guard = float(rec.analyser.get("guard_s", 0.0))

    def means(kind: str) -> list[float]:
        out = []
        for w in rec.windows:
            if w.get("kind") != kind:
                continue
            try:
                sel = (t >= float(w["t0"]) + guard) & (t <= float(w["t1"]) - guard)
            except (KeyError, TypeError, ValueError):
                raise UsageError(f"recording: a {kind} window is damaged ({w!r})", hint=REDO) from None
            if int(sel.sum()) >= MIN_WINDOW_SAMPLES:
                out.append(float(amps[sel].mean()))
        return out

    active = means("invoke")
    if not active:
        raise UsageError(f"recording: no invoke window holds {MIN_WINDOW_SAMPLES} or more analyser samples",
                         hint="the analyser did not record during the invokes (or its clock is not the host's); "
                              + REDO)
    idle, sleep = means("idle"), means("sleep")
    voltage = None
    if volts is not None and len(volts) == len(t):
        voltage = float(np.mean(volts))
    elif rec.analyser.get("voltage_v") is not None:
        voltage = float(rec.analyser["voltage_v"])
    return Current(analyser=str(rec.analyser.get("kind", "?")), active_ma=statistics.fmean(active) * 1e3,
                   active_sd_ma=(statistics.stdev(active) * 1e3 if len(active) > 1 else 0.0), invokes=len(active),
                   window=str(rec.analyser.get("window", "")), voltage_v=voltage,
                   idle_ma=statistics.fmean(idle) * 1e3 if idle else None,
                   sleep_ua=statistics.fmean(sleep) * 1e6 if sleep else None,
                   conditions=str(rec.analyser.get("conditions", "")))


# -- for the runner ----------------------------------------------------------------------------------------


def calibration_for(platform, timing_model, given: str | Path | None) -> Calibration | None:
    """The calibration a run applies: `--calibration FILE`, else the platform's `[timing] calibration`
    (relative to the platform file, or to the hil repository); checked against the run's platform,
    timing model and clock before anything boots. None when there is none."""
    where = "--calibration"
    path = Path(given) if given else None
    if path is None:
        named = platform.timing.calibration if platform.timing else ""
        if not named or timing_model is None:
            return None  # none named, or no estimate to apply it to (--no-cycles)
        where = f"{platform.path} [timing] calibration"
        base = Path(platform.path).resolve().parent
        repo = resources.data_root()  # a checkout's root, or the installed copy of its trees
        path = next((p for p in (base / named, repo / named) if p.is_file()), base / named)
    if timing_model is None:
        raise UsageError(f"{where}: platform {platform.name} gives no cycle estimate to calibrate (no [timing] "
                         f"table, or --no-cycles / --no-count)", hint="drop --calibration, or run with cycles on a "
                                                                     "platform that has a [timing] table")
    cal = load_calibration(path)
    cal.check_applies(platform.name, timing_model.id, timing_model.clock_hz)
    return cal


def label_basis(cal: Calibration, basis: dict) -> None:
    """The run's `cycles_basis`: cite the calibration, and its band becomes the error band."""
    basis["calibration"] = cal.cite()
    basis["uncalibrated_error_band"] = basis.get("error_band")
    basis["error_band"] = cal.band
