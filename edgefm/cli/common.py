"""Shared CLI pieces: option aliases, output helpers, error handling.

Results go to stdout, progress and hints to stderr. Known errors (:class:`EdgefmError`)
become one line on stderr and exit code 1; set ``EDGEFM_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Callable

import typer
from rich.console import Console

from edgefm.errors import EdgefmError

out = Console()                 # results
err = Console(stderr=True)      # progress, hints, errors

JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Output path.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")]
UnverifiedOpt = Annotated[bool, typer.Option("--unverified", help="Accept a file without a manifest; every "
                                             "report then says 'unverified'.")]


def print_json(obj) -> None:
    from edgefm.manifest import dumps
    sys.stdout.write(dumps(obj) + "\n")


def handle_errors(fn: Callable) -> Callable:
    """Decorator for commands: EdgefmError -> one line + exit 1."""

    @functools.wraps(fn)
    def wrapper(*a, **k):
        try:
            return fn(*a, **k)
        except EdgefmError as e:
            if os.environ.get("EDGEFM_DEBUG"):
                raise
            err.print(f"[red]error:[/red] {type(e).__name__}: {e.one_line()}", highlight=False, soft_wrap=True)
            raise typer.Exit(1)
    return wrapper


def number(*, min: float | None = None, max: float | None = None, min_open: bool = False) -> Callable:
    """A Typer option callback that refuses NaN, infinities and values outside ``[min, max]``
    (``(min, max]`` with ``min_open``) with click's usage error for that option (exit 2), before
    the value sizes anything. Click's own ranges let NaN through (every comparison is False).

    >>> window_s: Annotated[float, typer.Option("--window-s", callback=number(min=0, min_open=True))]
    """
    import math

    def check(value):
        if value is None or isinstance(value, bool):
            return value
        v = float(value)
        if not math.isfinite(v):
            raise typer.BadParameter(f"must be a finite number, got {value}")
        if min is not None and (v < min or (min_open and v == min)):
            raise typer.BadParameter(f"must be {'>' if min_open else '>='} {min:g}, got {value}")
        if max is not None and v > max:
            raise typer.BadParameter(f"must be <= {max:g}, got {value}")
        return value
    return check


SEED_MAX = 2**32 - 1     # numpy's seed range


def note_unverified(*paths: Path) -> list[str]:
    """Say on stderr which checkpoints were accepted without a manifest; returns them."""
    from edgefm.train.checkpoint import without_manifest
    names = without_manifest(*paths)
    for n in names:
        err.print(f"[yellow]unverified:[/yellow] {n} has no manifest; its sha256 was not checked", highlight=False)
    return names
