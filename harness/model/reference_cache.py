"""The reference cache's directory kept bounded: its size cap, least-
recently-used pruning, and what `hil cache` reads and clears.

A cached file's modification time is its last use: a hit touches it, so
pruning removes the files no run has read for longest. Every step is safe
against other `hil` processes doing the same at once: files are written
whole under a temporary name and renamed, and a file that vanishes while
it is being pruned or counted was simply removed by someone else first.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..build.cmake import cache_root_path
from ..errors import DiskError, UsageError

log = logging.getLogger(__name__)

#: the size cap's environment variable, and its default
LIMIT_ENV = "HIL_REFERENCE_CACHE_MAX"
DEFAULT_LIMIT = 1 << 30
#: a writer's temporary file older than this is left over from a killed process
STALE_TEMPORARY_S = 3600.0

#: the build cache's parts `hil cache` knows, each with the directories (under the cache root) it holds
PARTS: dict[str, tuple[str, ...]] = {
    "reference": ("reference",),
    "firmware": ("firmware", "cmake", "zephyr", "tflm", "tflm-lib"),
    "plugin": ("qemu-plugin",),
}
#: what each part is, for `hil cache` and its help
PART_TEXT = {
    "reference": "TFLM reference outputs of past jobs",
    "firmware": "firmware builds (hil's, your project's, TFLM libraries)",
    "plugin": "the QEMU cycle-counting plugin",
}
#: a build directory's lock files (harness/build: cmake.py's and project.py's)
LOCK_NAMES = (".lock", ".hil-lock")

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'1G', '512MiB', '300k', '1048576' -> bytes (K, M, G, T are powers of
    1024). Raises ValueError for anything else."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def size_text(n: float) -> str:
    """Bytes for people: 4.4 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def size_limit() -> tuple[int, str]:
    """The reference cache's cap in bytes and where it comes from; a value
    that is no size is bad input (exit 2), said before anything runs."""
    text = os.environ.get(LIMIT_ENV)
    if text is None or not text.strip():
        return DEFAULT_LIMIT, "default"
    try:
        return parse_size(text), LIMIT_ENV
    except ValueError:
        raise UsageError(f"{LIMIT_ENV}={text!r} is not a size",
                         hint=f"give bytes or a number with K, M or G (powers of 1024), e.g. {LIMIT_ENV}=512M; "
                              "0 keeps nothing; HIL_REFERENCE_CACHE=0 turns the cache off") from None


def reference_dir() -> Path:
    """Where reference outputs are kept (not created)."""
    return cache_root_path() / "reference"


@dataclass(frozen=True)
class Entry:
    path: Path
    size: int
    used: float  # modification time: written, or last read


def entries(directory: Path) -> list[Entry]:
    """The cached files (`*.npz`), and writers' temporary files (`.*`), oldest use first."""
    found = []
    try:
        children = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for child in children:
        if not (child.name.endswith(".npz") or child.name.startswith(".")):
            continue
        try:
            st = child.stat(follow_symlinks=False)
        except FileNotFoundError:  # pruned or replaced by another process meanwhile
            continue
        found.append(Entry(Path(child.path), st.st_size, st.st_mtime))
    return sorted(found, key=lambda e: (e.used, e.path.name))


def touch(path: Path) -> None:
    """Mark a file used now (its modification time), so pruning keeps it longest."""
    with contextlib.suppress(OSError):
        os.utime(path)


def prune(directory: Path, limit: int, now: float | None = None) -> list[Entry]:
    """Remove the least recently used files until the directory holds at
    most `limit` bytes, and writers' temporary files left over from killed
    processes. Returns what was removed; a file already gone is no error."""
    now = time.time() if now is None else now
    found = entries(directory)
    removed = []
    stale = [e for e in found if e.path.name.startswith(".") and now - e.used > STALE_TEMPORARY_S]
    kept = [e for e in found if e not in stale and not e.path.name.startswith(".")]
    total = sum(e.size for e in found if e not in stale)
    over = []
    for entry in kept:
        if total <= limit:
            break
        over.append(entry)
        total -= entry.size
    for entry in stale + over:
        try:
            entry.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.info("reference cache: cannot remove %s: %s", entry.path, exc)
            continue
        removed.append(entry)
    if over:
        log.info("reference cache over its cap of %s: removed the %d least recently used files (%s)",
                 size_text(limit), len(over), size_text(sum(e.size for e in over)))
    return removed


@dataclass(frozen=True)
class Usage:
    part: str
    directories: tuple[Path, ...]  # those that exist
    size: int
    entries: int  # reference: cached jobs; others: each directory's children (a build, a project)


def _tree_size(path: Path) -> int:
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def usage(root: Path, part: str) -> Usage:
    """How much one part of the cache holds."""
    if part == "reference":
        found = [e for e in entries(root / "reference") if not e.path.name.startswith(".")]
        present: tuple[Path, ...] = (root / "reference",) if (root / "reference").is_dir() else ()
        return Usage(part, present, sum(e.size for e in entries(root / "reference")), len(found))
    present = tuple(root / d for d in PARTS[part] if (root / d).is_dir())
    count = sum(1 for d in present for c in d.iterdir() if not c.name.startswith("."))
    return Usage(part, present, sum(_tree_size(d) for d in present), count)


def _locked_by_another(entry: Path) -> list:
    """Take every build lock in `entry` (its own and its builds'), without
    waiting; returns the open locks, or raises BlockingIOError when a
    running build holds one."""
    held = []
    try:
        for name in LOCK_NAMES:
            for lock in [entry / name, *entry.glob(f"*/{name}")]:
                if not lock.is_file():
                    continue
                fh = open(lock, "a")
                held.append(fh)
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BaseException:
        for fh in held:
            fh.close()
        raise
    return held


def clear(root: Path, part: str) -> tuple[int, int, list[Path]]:
    """Remove one part's entries: (entries removed, bytes freed, entries kept
    because a running build holds them). Only the directories hil itself
    makes are touched, never anything else under the cache root."""
    removed = freed = 0
    busy: list[Path] = []
    for directory in (root / d for d in PARTS[part]):
        try:
            children = sorted(directory.iterdir())
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DiskError(f"cannot read the cache directory {directory}: {exc.strerror or exc}", directory,
                            hint="make it readable, or point HIL_CACHE_DIR elsewhere") from exc
        for child in children:
            try:
                size = child.lstat().st_size if not child.is_dir() else _tree_size(child)
                if child.is_dir() and not child.is_symlink():
                    try:
                        held = _locked_by_another(child)
                    except BlockingIOError:
                        busy.append(child)
                        continue
                    try:
                        shutil.rmtree(child)
                    finally:
                        for fh in held:
                            fh.close()
                else:
                    child.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise DiskError(f"cannot remove {child}: {exc.strerror or exc}", child,
                                hint="make the cache writable (or remove it by hand)") from exc
            removed += 0 if child.name.startswith(".") else 1
            freed += size
    return removed, freed, busy


def describe(provenance: dict | None) -> str:
    """One line for a result's `provenance.reference_outputs` (the -v log,
    the Markdown and HTML reports)."""
    if not provenance:
        return "not recorded"
    covers = provenance.get("covers") or {}
    where = "from the cache" if provenance.get("source") == "cache" else "computed in this run"
    parts = [where]
    if provenance.get("file"):
        kept = " (kept there)" if provenance.get("source") != "cache" and provenance.get("kept") else ""
        parts.append(f"cache file {provenance['file']}{kept}")
    if covers:
        parts.append(f"key {provenance.get('key')} of model sha256 {str(covers.get('model_sha256'))[:12]}, "
                     f"{covers.get('vectors')} vectors in order (sha256 {str(covers.get('vectors_sha256'))[:12]}), "
                     f"arena {covers.get('arena_bytes')} B, {covers.get('outputs')} outputs, "
                     f"{covers.get('implementation')}")
    if provenance.get("note"):
        parts.append(str(provenance["note"]))
    return "; ".join(parts)
