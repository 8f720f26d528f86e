"""`hil init`: write a commented starter hil.toml."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from ..errors import UsageError
from ..results.terminal import make_console

log = logging.getLogger(__name__)

out = make_console()


@click.command("init")
@click.option("--model", "-m", "model_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Your .tflite model (default: a placeholder path to edit).")
@click.option("--force", is_flag=True, help="Overwrite an existing hil.toml.")
def command(model_path, force) -> None:
    """Write a commented starter hil.toml for your model in this directory."""
    from ..config import CONFIG_NAME, STARTER

    target = Path(CONFIG_NAME)
    if target.exists() and not force:
        raise UsageError(f"{target.resolve()} already exists", hint="edit it, or pass --force to overwrite")
    rel = os.path.relpath(model_path, Path.cwd()) if model_path else "models/model.tflite"
    name = model_path.stem if model_path else "model"
    target.write_text(STARTER.format(name=Path.cwd().name, model_name=name, model_path=rel))
    out.print(f"wrote {target.resolve()}; next: `hil test`", markup=False)
