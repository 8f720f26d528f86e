"""Where hil's own files are: the firmware sources, the platform files, the
timing tables, the bundled models and the calibration set.

They ship inside the package, under `harness/_data/` (one tree with the
repository's layout: firmware/, platforms/, timing/, models/, calibration/).
In the repository those entries are symbolic links to the top-level trees, so
a checkout and an editable install read the files being edited; a wheel
holds copies (setuptools follows the links, pyproject.toml package-data).
Every module asks this one for a path, through `importlib.resources`, never
relative to its own `__file__`.

CMake, the compilers and QEMU need real directories. Wheels install
unpacked, so `files()` is a directory on disk; hil imported from a zip file
(zipimport) has none, and that is refused with an error saying so.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import InfraError, UsageError

log = logging.getLogger(__name__)

PACKAGE = "harness"
DATA = "_data"


@lru_cache(maxsize=None)
def data_root() -> Path:
    """The directory holding firmware/, platforms/, timing/, models/ and
    calibration/ (links resolved: in a checkout, the repository's root)."""
    root = resources.files(PACKAGE) / DATA
    if not isinstance(root, Path):
        raise InfraError(f"hil is imported from an archive ({root}); its firmware sources and platform files must be "
                         f"real files for CMake and QEMU",
                         hint="install hil as a wheel or from a checkout (pip install hil), not as a zip file")
    if not (root / "firmware").is_dir():
        raise InfraError(f"hil's data files are missing: {root / 'firmware'} is not a directory",
                         hint="reinstall hil (pip install --force-reinstall hil); in a checkout, the links under "
                              "harness/_data need git's core.symlinks=true")
    return (root / "firmware").resolve().parent


def firmware_dir() -> Path:
    """The firmware sources (CMake project, engine, board layers, QEMU plugin)."""
    return data_root() / "firmware"


def board_layer(board: str) -> Path | None:
    """The built-in firmware's board layer `board` (a platform file's
    firmware.board), or None when the built-in firmware has none: such a
    platform runs only firmware built elsewhere."""
    path = firmware_dir() / "boards" / board
    return path if board and "/" not in board and path.is_dir() else None


def require_board_layer(platform: str, board: str, hint: str) -> Path:
    """board_layer(board), or UsageError naming the layers there are."""
    layer = board_layer(board)
    if layer is None:
        have = sorted(d.name for d in (firmware_dir() / "boards").iterdir() if d.is_dir())
        raise UsageError(f"platform {platform} names board layer {board!r}, which the built-in firmware does not "
                         f"have (it has {', '.join(have)})", hint=hint)
    return layer


def platforms_dir() -> Path:
    """The bundled platform files (`hil platforms`)."""
    return data_root() / "platforms"


def timing_dir() -> Path:
    """The timing tables of the cycle estimate, and their validation data."""
    return data_root() / "timing"


def models_dir() -> Path:
    """The bundled models: demo/ (hil demo) and test/ (the calibration set's)."""
    return data_root() / "models"


def demo_model() -> Path:
    return models_dir() / "demo" / "gesture.tflite"


def demo_vectors() -> Path:
    return models_dir() / "demo" / "gesture_test.npz"


def calibration_set() -> Path:
    """`hil calibrate`'s fixed model set; its model paths are relative to data_root()."""
    return data_root() / "calibration" / "set.toml"


def qemu_plugin_source() -> Path:
    return firmware_dir() / "qemu-plugin" / "hil_cycles.c"
