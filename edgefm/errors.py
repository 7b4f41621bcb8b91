"""Typed errors. Each says what went wrong, where (file, field), and what to do next.

The CLI turns any :class:`EdgefmError` into one line on stderr and exit code 1;
tracebacks only with ``EDGEFM_DEBUG=1``.
"""

from __future__ import annotations

from pathlib import Path


class EdgefmError(Exception):
    """Base of every error edgefm raises on purpose.

    Args:
        message: what went wrong.
        path: the file or directory concerned, if any.
        field: the field, column, channel or key concerned, if any.
        hint: the next thing to try.
    """

    def __init__(self, message: str, *, path: str | Path | None = None,
                 field: str | None = None, hint: str | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.field = field
        self.hint = hint
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = []
        if self.path:
            where.append(self.path)
        if self.field:
            where.append(f"field '{self.field}'")
        s = (": ".join([", ".join(where), self.message]) if where else self.message)
        if self.hint:
            s += f" ({self.hint})"
        return s


class DataError(EdgefmError):
    """Malformed or inconsistent input data (corrupt file, missing column, bad rate, NaN)."""


class ShapeError(DataError):
    """An array does not have the shape, rate or channels that were declared."""


class ManifestError(EdgefmError):
    """A manifest is missing, unreadable, of an unknown schema, or inconsistent with its files."""


class IntegrityError(ManifestError):
    """An artifact's sha256 does not match its manifest (corrupted or tampered)."""


class ConfigError(EdgefmError):
    """A configuration value, budget file or device profile is invalid or unknown."""


class ExportError(EdgefmError):
    """An export failed."""


class UnsupportedOpError(ExportError):
    """A model contains an op the target runtime cannot run; names the op and the layer."""


class VerificationError(EdgefmError):
    """An exported artifact failed verification in its real runtime."""


class BudgetExceeded(EdgefmError):
    """One or more budget rows failed."""


class InputSpecError(EdgefmError):
    """Runtime input has the wrong shape, rate or channels for the artifact's manifest."""
