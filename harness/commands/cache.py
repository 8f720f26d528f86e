"""`hil cache`: what the build cache holds, and clearing or pruning it."""

from __future__ import annotations

import os

import click
from rich.markup import escape

from ..build.cmake import cache_root_path
from ..errors import InfraError, UsageError
from ..model.reference_cache import (LIMIT_ENV, PART_TEXT, PARTS, clear, parse_size, prune, reference_dir,
                                     size_limit, size_text, usage)
from ..results.console import make_console

out = make_console()


def _root():
    """The cache directory, which need not exist yet; a path that is no
    directory is said plainly (exit 3)."""
    root = cache_root_path()
    if root.exists() and not root.is_dir():
        where = "HIL_CACHE_DIR" if os.environ.get("HIL_CACHE_DIR") else "the default"
        raise InfraError(f"the cache {root} ({where}) is not a directory",
                         hint="point HIL_CACHE_DIR to a directory, or remove that file")
    return root


@click.group("cache", invoke_without_command=True)
@click.pass_context
def command(ctx: click.Context) -> None:
    """Show what the build cache holds; clear or prune it.

    The cache ($HIL_CACHE_DIR, else ~/.cache/hil) keeps firmware builds
    (firmware, your project's builds, TFLM libraries), the QEMU cycle
    plugin and the TFLM reference outputs of past jobs. Everything in it
    can be made again: clearing only costs time on the next run.

    The reference outputs are kept under a size cap, HIL_REFERENCE_CACHE_MAX
    (default 1G; K, M, G are powers of 1024; 0 keeps nothing): after each
    new file, the files no run has read for longest go first.
    HIL_REFERENCE_CACHE=0 turns the reference cache off. A run's
    result.json says where its reference came from
    (provenance.reference_outputs).

    \b
    Examples:
      hil cache                      where it is, its size and entries (the same as `hil cache info`)
      hil cache clear --reference    forget every cached reference output
      hil cache clear                everything hil keeps there (a build running now keeps its directory)
      hil cache prune --max 200M     shrink the reference outputs to 200 MiB now
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(info)


@command.command("info")
def info() -> None:
    """Where the cache is, and each part's size and entries."""
    limit, source = size_limit()
    root = _root()
    how = "HIL_CACHE_DIR" if os.environ.get("HIL_CACHE_DIR") else "default; HIL_CACHE_DIR moves it"
    out.print(f"cache {escape(str(root))} ({how})", highlight=False, soft_wrap=True)
    if not root.exists():
        out.print("  empty: nothing cached yet", highlight=False, soft_wrap=True)
    for part in PARTS:
        used = usage(root, part)
        line = f"  {part:<10} {size_text(used.size):>10}  {used.entries:>5} entries  {PART_TEXT[part]}"
        if part == "reference":
            off = " (off: HIL_REFERENCE_CACHE=0)" if os.environ.get("HIL_REFERENCE_CACHE", "1") == "0" else ""
            line += f"; cap {size_text(limit)} ({source}; {LIMIT_ENV}){off}"
        out.print(escape(line), highlight=False, soft_wrap=True)


@command.command("clear")
@click.option("--reference", "parts", flag_value="reference", multiple=True,
              help="Only the cached TFLM reference outputs.")
@click.option("--firmware", "parts", flag_value="firmware", multiple=True,
              help="Only the firmware builds (hil's, your project's, TFLM libraries).")
def clear_command(parts: tuple[str, ...]) -> None:
    """Remove cached entries: with no option, everything hil keeps there.

    Only the directories hil makes are removed, never anything else under
    $HIL_CACHE_DIR. A build that is running holds its directory's lock:
    that directory is kept and named.
    """
    root = _root()
    for part in parts or tuple(PARTS):
        removed, freed, busy = clear(root, part)
        out.print(f"{part}: removed {removed} ({size_text(freed)})", highlight=False, soft_wrap=True)
        for path in busy:
            out.print(f"  kept {escape(str(path))}: a running build holds it", highlight=False, soft_wrap=True)


@command.command("prune")
@click.option("--max", "max_size", metavar="SIZE",
              help=f"The size to shrink the reference outputs to (default: ${LIMIT_ENV}, else 1G).")
def prune_command(max_size: str | None) -> None:
    """Shrink the reference outputs to their cap now, least recently used first.

    Runs do this themselves after each new file; this is for a smaller cap
    at once, and to remove writers' temporary files left by killed runs.
    """
    if max_size is None:
        limit, _ = size_limit()
    else:
        try:
            limit = parse_size(max_size)
        except ValueError:
            raise UsageError(f"--max {max_size!r} is not a size",
                             hint="give bytes or a number with K, M or G (powers of 1024), e.g. --max 200M") from None
    _root()
    removed = prune(reference_dir(), limit)
    left = usage(cache_root_path(), "reference")
    out.print(f"reference: removed {len([e for e in removed if not e.path.name.startswith('.')])} "
              f"({size_text(sum(e.size for e in removed))}); {left.entries} left ({size_text(left.size)}, "
              f"cap {size_text(limit)})", highlight=False, soft_wrap=True)
