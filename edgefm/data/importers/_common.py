"""Helpers shared by the importers: robust numeric table reading and uniform-grid placement.

Rules every importer follows (and these helpers enforce):
  * a file that cannot be parsed, a missing column or a non-numeric value where a number
    belongs -> :class:`DataError` naming the file and the column;
  * NaN/inf samples and a truncated last row are *missing data*: they stay in the stream as
    invalid samples (``Stream`` marks non-finite values invalid), never an error, never imputed;
  * timestamps that go backwards -> :class:`DataError`; duplicated timestamps are averaged
    (a sensor delivering two samples with one clock reading), gaps become invalid samples.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from edgefm.errors import DataError

#: timestamp units accepted by :func:`to_seconds`
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def find_matching(src: Path, glob: str, stem: str | None, what: str, *, recursive: bool = True) -> list[Path]:
    """``src`` itself if it is a file, else the sorted files under it matching ``glob`` (and,
    with ``stem``, whose stem fully matches that regex); DataError naming ``what`` if none."""
    src = Path(src)
    if src.is_file():
        return [src]
    found = src.rglob(glob) if recursive else src.glob(glob)
    fs = sorted(p for p in found if stem is None or re.fullmatch(stem, p.stem))
    if not fs:
        raise DataError(f"no {what} found", path=src)
    return fs


def read_text(path: Path) -> str:
    """The file's text; unreadable or non-text files raise :class:`DataError`."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read file: {e.strerror or e}", path=path) from e
    if b"\x00" in raw[:65536]:
        raise DataError("is a binary file, expected text", path=path, hint="is this the right file?")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def parse_float(s: str, path: Path, field: str) -> float:
    try:
        v = float(str(s).strip())
    except ValueError:
        raise DataError(f"expected a number, got {str(s).strip()[:40]!r}", path=path, field=field) from None
    return v


def numeric_table(text: str, path: Path, ncols: int | None, names: list[str], *, sep: str = ",",
                  skip_rows: int = 0) -> np.ndarray:
    """Parse delimited numeric rows into ``(n, ncols)`` float64.

    Empty fields, ``nan`` and ``inf`` become NaN/inf (missing data downstream). A file that does
    not end with a line terminator was cut off: its last row is all NaN (a number cut mid-way
    must not pass as a value). A row with fewer
    fields than ``ncols`` is padded with NaN only if it is the last row (a truncated file);
    elsewhere a short or long row is a :class:`DataError`. A non-numeric field is a
    :class:`DataError` naming its column.
    """
    a = _numeric_table(text, path, ncols, names, sep=sep, skip_rows=skip_rows)
    if a.shape[0] and not text.endswith(("\n", "\r")) and len(text.splitlines()) > skip_rows:
        a[-1] = np.nan  # no line terminator: the last row may be cut mid-number -> missing
    return a


def _numeric_table(text: str, path: Path, ncols: int | None, names: list[str], *, sep: str,
                   skip_rows: int) -> np.ndarray:
    if ncols is not None:
        fast = _fast_table(text, ncols, sep, skip_rows)
        if fast is not None:
            return fast
    lines = text.splitlines()[skip_rows:]
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return np.zeros((0, ncols or len(names)), np.float64)
    rows = []
    for i, line in enumerate(lines):
        parts = line.split() if sep == " " else line.split(sep)
        if ncols is None:
            ncols = len(parts)
        if len(parts) != ncols:
            if i == len(lines) - 1 and len(parts) < ncols:
                parts = parts + [""] * (ncols - len(parts))  # truncated last row
            else:
                raise DataError(f"row {i + 1 + skip_rows} has {len(parts)} fields, expected {ncols}",
                                path=path, field=names[min(len(parts), ncols) - 1] if names else None)
        rows.append(parts)
    arr = np.empty((len(rows), ncols), np.float64)
    for j in range(ncols):
        col = [r[j].strip() for r in rows]
        try:
            arr[:, j] = [float(c) if c else np.nan for c in col]
        except ValueError:
            bad = next(c for c in col if c and not _is_float(c))
            row = col.index(bad) + 1 + skip_rows
            raise DataError(f"non-numeric value {bad[:40]!r} in row {row}", path=path,
                            field=names[j] if j < len(names) else f"column {j}") from None
    return arr


def _fast_table(text: str, ncols: int, sep: str, skip_rows: int) -> np.ndarray | None:
    """pandas' C parser for the common, well-formed case; None to fall back to the checking path."""
    import pandas as pd

    try:
        df = pd.read_csv(io.StringIO(text), sep=r"\s+" if sep == " " else sep, header=None,
                         skiprows=skip_rows, names=list(range(ncols)), dtype=np.float64,
                         skip_blank_lines=True, engine="c")
    except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, TypeError):
        return None
    a = df.to_numpy(np.float64)
    # short rows in the middle are padded with NaN by pandas; only a short *last* row is accepted
    nan_rows = np.isnan(a).any(1)
    if nan_rows[:-1].any():
        return None  # let the checking path decide (empty fields vs. missing fields)
    return a


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_csv_frame(path: Path, required: list[str], *, sep: str = ","):
    """Read a CSV with a header row into a pandas DataFrame; missing required columns raise."""
    import pandas as pd

    text = read_text(path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise DataError(f"cannot parse CSV: {str(e).splitlines()[0]}", path=path) from e
    df.columns = [str(c).strip() for c in df.columns]
    if len(df) and not text.endswith(("\n", "\r")):
        df = df.astype(object)
        df.iloc[-1, :] = np.nan  # cut off mid-row: the last row is missing, not a value
    for c in required:
        if c not in df.columns:
            raise DataError(f"missing column (has: {', '.join(df.columns)})", path=path, field=c)
    return df


def numeric_column(df, col: str, path: Path) -> np.ndarray:
    """A column as float64; non-numeric entries raise, empty ones are NaN."""
    import pandas as pd

    s = df[col]
    v = pd.to_numeric(s, errors="coerce").to_numpy(np.float64)
    bad = np.isnan(v) & s.notna().to_numpy() & (s.astype(str).str.strip().str.lower() != "nan").to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"non-numeric value {str(s.iloc[i])[:40]!r} in row {i + 2}", path=path, field=col)
    return v


def check_timestamps(t: np.ndarray, path: Path, field: str) -> None:
    """Timestamps must be finite and never go backwards (equal is allowed: averaged later)."""
    if t.size == 0:
        raise DataError("no samples", path=path, field=field)
    if not np.isfinite(t).all():
        i = int(np.flatnonzero(~np.isfinite(t))[0])
        raise DataError(f"timestamp in data row {i + 1} is missing or not finite", path=path, field=field)
    d = np.diff(t)
    if (d < 0).any():
        i = int(np.flatnonzero(d < 0)[0])
        raise DataError(f"timestamps go backwards at data row {i + 2} ({t[i]:g} -> {t[i + 1]:g})",
                        path=path, field=field, hint="sort the file or split it into monotonic parts")


def merge_duplicates(t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Average rows of ``x: (n, C)`` that share a timestamp (``t`` sorted); NaN-aware."""
    if t.size < 2 or (np.diff(t) > 0).all():
        return t, x
    ut, inv = np.unique(t, return_inverse=True)
    fin = np.isfinite(x)
    s = np.zeros((ut.size, x.shape[1]))
    c = np.zeros((ut.size, x.shape[1]))
    np.add.at(s, inv, np.where(fin, x, 0.0))
    np.add.at(c, inv, fin)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(c > 0, s / np.maximum(c, 1), np.nan)
    return ut, m


def to_uniform_grid(t_s: np.ndarray, x: np.ndarray, fs_hz: float, max_gap_s: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linearly interpolate irregular samples onto a uniform grid starting at ``t_s[0]``.

    Args:
        t_s: (n,) sample times in seconds, non-decreasing (duplicates already merged).
        x: (n, C) values; NaN = missing.
        fs_hz: output rate.
        max_gap_s: an output sample is valid only if the two input samples around it are both
            finite and at most ``max_gap_s`` apart (a longer gap is missing data, not a line).
    Returns:
        (grid_t_s (m,), y (m, C) float64 with NaN where invalid, valid (m, C) bool)
    """
    n, C = x.shape
    m = int(np.floor((t_s[-1] - t_s[0]) * fs_hz + 1e-6)) + 1
    g = t_s[0] + np.arange(m) / fs_hz
    j = row_at_or_before(t_s, g, fs_hz).clip(0)  # left neighbour index
    k = (j + 1).clip(0, n - 1)
    tl, tr = t_s[j], t_s[k]
    span = tr - tl
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.clip(np.where(span > 0, (g - tl) / np.where(span > 0, span, 1), 0.0), 0, 1)
    with np.errstate(invalid="ignore", over="ignore"):
        y = x[j] * (1 - w[:, None]) + x[k] * w[:, None]
    exact = np.abs(g - tl) <= _eps(fs_hz)
    y[exact] = x[j[exact]]
    ok_gap = (span <= max_gap_s + 1e-9) | exact
    valid = ok_gap[:, None] & np.isfinite(x[j]) & (np.isfinite(x[k]) | exact[:, None]) & np.isfinite(y)
    y = np.where(valid, y, np.nan)
    return g, y, valid


def _eps(fs_hz: float) -> float:
    """Time tolerance for "on the grid": float rounding of Unix-second timestamps, << 1 sample."""
    return min(1e-5, 1e-3 / fs_hz)


def row_at_or_before(t_s: np.ndarray, g: np.ndarray, fs_hz: float) -> np.ndarray:
    """Index of the last row with time <= each grid time (within float tolerance); -1 if none."""
    return np.searchsorted(t_s, g + _eps(fs_hz), side="right") - 1


def snap_to_grid(t_s: np.ndarray, fs_hz: float, path: Path, field: str, tol: float = 0.5
                 ) -> tuple[np.ndarray, int]:
    """Sample indices on a uniform grid for nearly-regular timestamps (e.g. ms rounding).

    Returns (index (n,), grid length). Two samples landing on one grid slot, or a timestamp
    further than ``tol`` samples from a slot, raise :class:`DataError` (wrong declared rate).
    """
    pos = (t_s - t_s[0]) * fs_hz
    idx = np.rint(pos).astype(np.int64)
    off = np.abs(pos - idx)
    if (off > tol).any():
        i = int(np.argmax(off))
        raise DataError(f"timestamp {t_s[i]:g} s is {off[i]:.2f} samples off a {fs_hz:g} Hz grid",
                        path=path, field=field, hint="the file's sampling rate is not the declared one")
    if (np.diff(idx) <= 0).any():
        i = int(np.flatnonzero(np.diff(idx) <= 0)[0])
        raise DataError(f"two samples fall on one {fs_hz:g} Hz grid slot at data row {i + 2}",
                        path=path, field=field, hint="the sampling rate is higher than declared")
    return idx, int(idx[-1]) + 1


def check_rate(t_s: np.ndarray, fs_hz: float, path: Path, field: str, rel_tol: float = 0.1) -> None:
    """The median sample interval must match ``1/fs_hz`` within ``rel_tol``."""
    d = np.diff(t_s)
    d = d[d > 0]
    if d.size == 0:
        return
    med = float(np.median(d))
    if abs(med * fs_hz - 1) > rel_tol:
        raise DataError(f"median sample interval {med * 1e3:.2f} ms does not match {fs_hz:g} Hz",
                        path=path, field=field, hint="wrong rate or wrong timestamp unit")
