"""The error band of a timing model, from its validation against silicon.

timing/validation.toml (CoreMark/MHz against Arm's published figures) and
timing/validation-mlperf-tiny.toml (MLPerf Tiny v0.5 latencies against the
reference submission) hold measured comparisons. Any table in them with
the timing model's id (`model`) and a signed `error_pct` (estimate against
silicon, percent) counts; the band is the largest error found, so it is
what the model has been seen to miss by, not a statistical interval.

The band is for cycles. A latency error is a cycles error. A CoreMark/MHz
error is on a rate, the inverse of cycles: CoreMark/MHz 30% low means
cycles 1 / 0.7 - 1 = 43% high. It is converted so (`error_of = "rate"`,
the default for validation.toml; a file may say `error_of = "time"`).
Missing files or a model never validated give "unknown (not validated)",
never a number.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .. import resources

log = logging.getLogger(__name__)

TIMING_DIR = resources.timing_dir()

#: validation files: what each compares, in words for the band, and whether its error is on a rate or a time
FILES = {
    "validation.toml": ("CoreMark/MHz against Arm's published figure", "rate"),
    "validation-mlperf-tiny.toml": ("MLPerf Tiny v0.5 latency against the reference submission", "time"),
}

UNKNOWN = "unknown (not validated)"
#: in a band text whose largest error came from a comparison marked like_for_like = false
UNLIKE = "set by a comparison that is not like for like"


@dataclass(frozen=True)
class Comparison:
    model: str
    benchmark: str
    error_pct: float  # the cycles estimate's error against silicon, percent
    what: str  # what was compared (FILES)
    file: str
    reported_pct: float | None = None  # the error as the file states it (on a rate for CoreMark/MHz)
    like_for_like: bool = True  # False: the file says the software differed (like_for_like = false)


def cycles_error(error_pct: float, error_of: str) -> float | None:
    """A stated error as the cycles estimate's error: a time's is the same,
    a rate's is inverted (None when a rate error of -100% or less makes
    no sense)."""
    if error_of != "rate":
        return error_pct
    if error_pct <= -100:
        return None
    return (1 / (1 + error_pct / 100) - 1) * 100


def _walk(node, parent: str, what: str, error_of: str, file: str, found: list[Comparison]) -> None:
    if isinstance(node, dict):
        model = node.get("model") or node.get("timing_model")
        error = node.get("error_pct")
        if isinstance(model, str) and isinstance(error, (int, float)) and not isinstance(error, bool):
            cycles = cycles_error(float(error), error_of)
            if cycles is not None:
                name = str(node.get("benchmark") or node.get("name") or parent)
                found.append(Comparison(model, name, cycles, what, file, float(error),
                                        node.get("like_for_like") is not False))
        for key, value in node.items():
            _walk(value, str(key), what, error_of, file, found)
    elif isinstance(node, list):
        for item in node:
            _walk(item, parent, what, error_of, file, found)


def comparisons(model_id: str | None = None, directory: Path | None = None) -> list[Comparison]:
    """Every comparison in the validation files (of one model, if given).
    A file that is missing or not valid TOML contributes nothing."""
    directory = Path(directory or TIMING_DIR)
    found: list[Comparison] = []
    for name, (what, error_of) in FILES.items():
        path = directory / name
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            continue
        error_of = str(data.get("error_of") or error_of)
        _walk(data, "", str(data.get("describes") or what), error_of, f"timing/{name}", found)
    return [c for c in found if model_id is None or c.model == model_id]


def error_pct(model_id: str | None, directory: Path | None = None) -> float | None:
    """The largest |error| (percent) the model showed in any validation, or
    None when it was never validated."""
    if not model_id:
        return None
    found = comparisons(model_id, directory)
    return max(abs(c.error_pct) for c in found) if found else None


def error_band(model_id: str | None, directory: Path | None = None) -> str:
    """'+-9% (CoreMark/MHz against Arm's published figure: 1 benchmark,
    timing/validation.toml)' or 'unknown (not validated)'."""
    if not model_id:
        return UNKNOWN
    found = comparisons(model_id, directory)
    if not found:
        return UNKNOWN
    worst = max(abs(c.error_pct) for c in found)
    groups: dict[tuple[str, str], list[int]] = {}
    for c in found:
        group = groups.setdefault((c.what, c.file), [0, 0])
        group[0] += 1
        group[1] += not c.like_for_like
    sources = "; ".join(f"{what}: {n} benchmark{'s' if n > 1 else ''}"
                        f"{f', {unlike} not like for like' if unlike else ''}, {file}"
                        for (what, file), (n, unlike) in groups.items())
    # a comparison whose software differed from silicon's (like_for_like = false) may still set the band (the
    # model was seen to miss by that much on a real workload), but the band then says so
    unlike = f", {UNLIKE} (the software differed)" if not any(
        c.like_for_like for c in found if abs(c.error_pct) == worst) else ""
    return f"+-{_pct(worst)}% (largest cycles error seen{unlike}{';' if unlike else ','} {sources})"


def _pct(value: float) -> str:
    """One decimal: the energy band is computed from this text (power/energy.py band_pct_of)."""
    return f"{value:.1f}"


def band_head(text: str) -> str:
    """'+-58.0%' of a band text, with '(not like for like)' when the band
    was set by such a comparison: the short form a column or label prints."""
    text = str(text)
    return text.split(" (")[0] + (" (not like for like)" if UNLIKE in text else "")
