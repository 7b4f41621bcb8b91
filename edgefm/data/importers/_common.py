"""Helpers shared by the importers: robust numeric table reading and uniform-grid placement.

Rules every importer follows (and these helpers enforce):
  * a file that cannot be parsed, a missing column or a non-numeric value where a number
    belongs -> :class:`DataError` naming the file and the column;
  * NaN/inf samples and a truncated last row are *missing data*: they stay in the stream as
    invalid samples (``Stream`` marks non-finite values invalid), never an error, never imputed;
  * timestamps that go backwards -> :class:`DataError`; duplicated timestamps are averaged
    (a sensor delivering two samples with one clock reading), gaps become invalid samples;
  * bounds come before allocation: a file whose timestamps or start times imply a recording
    longer than :data:`MAX_DURATION_S` for its format, or whose median timestamp step does not
    fit the format's rate (a wrong unit), is a :class:`DataError` naming the file and field;
  * samples outside their channel's physical range (:data:`PHYSICAL_RANGE`) are marked missing
    and counted (``Recording.meta["out_of_range"]``, summed into the dataset's provenance and
    the import summary), never stored as valid;
  * categorical codes read from a file must lie in ``-1 ..`` :data:`MAX_CLASS_CODE`; anything
    else is a :class:`DataError` (checked before any integer cast, so nothing wraps).
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from edgefm.errors import DataError

#: timestamp units accepted by :func:`to_seconds`
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

DAY_S = 86400.0
#: longest span one recording may cover, per format (seconds). A file implying more (a start time
#: of 0 next to Unix-time files, a stray timestamp of 1e18) is refused before any array is sized.
#: E4 sessions and generic CSV logs: 31 days; the others are lab protocols of minutes to hours.
MAX_DURATION_S = {"e4": 31 * DAY_S, "csv": 31 * DAY_S, "sp-sw-har": DAY_S, "daphnet": DAY_S,
                  "troika": DAY_S}

#: the median timestamp step of an irregular format may differ from its nominal rate by at most
#: this factor either way; a 1000x difference is a wrong unit (µs or s where ms are expected)
UNIT_TOLERANCE = 4.0

G = 9.80665
#: physical/sensor range per (modality, unit), inclusive: a sample outside is missing data.
#: ACC: +-64 g (the widest wearable IMU ranges are +-16 g, high-g parts +-64 g);
#: gyro: +-70 rad/s (+-4000 deg/s, twice the widest wearable gyros); EDA 0-100 uS;
#: skin temperature 0-50 degC; heart rate 20-300 bpm; barometer 300-1100 hPa.
#: Every other channel (PPG and ECG in arbitrary units, any CSV channel): |x| <= ANY_LIMIT.
#: Non-finite samples are always missing.
PHYSICAL_RANGE: dict[tuple[str, str], tuple[float, float]] = {
    ("acc", "g"): (-64.0, 64.0),
    ("acc", "mg"): (-64000.0, 64000.0),
    ("acc", "m/s^2"): (-64 * G, 64 * G),
    ("gyro", "rad/s"): (-70.0, 70.0),
    ("gyro", "deg/s"): (-4000.0, 4000.0),
    ("eda", "uS"): (0.0, 100.0),
    ("temp", "degC"): (0.0, 50.0),
    ("hr", "bpm"): (20.0, 300.0),
    ("alt", "hPa"): (300.0, 1100.0),
}

#: largest categorical code a file may hold (-1 = unknown); codes index class lists and
#: per-class counts, so a stray 65537 must not size an array or wrap through int16
MAX_CLASS_CODE = 255


#: bound of a channel with no entry in PHYSICAL_RANGE: more than a 30-bit ADC count is no measurement
ANY_LIMIT = 1e9


def physical_range(modality: str, unit: str) -> tuple[float, float]:
    """(low, high) for a channel: its PHYSICAL_RANGE entry, else (-ANY_LIMIT, ANY_LIMIT)."""
    return PHYSICAL_RANGE.get((str(modality).lower(), str(unit)), (-ANY_LIMIT, ANY_LIMIT))


def mask_out_of_range(x: np.ndarray, specs: list[tuple[str, str, str]]) -> dict[str, int]:
    """Set samples of ``x: (n, C)`` outside their channel's range to NaN, in place.

    ``specs``: (channel, modality, unit) per column. Returns {channel: samples masked} (non-zero
    counts only). Used on raw rows before interpolation, so an absurd value cannot leak into
    its interpolated neighbours.
    """
    counts = {}
    for j, (name, modality, unit) in enumerate(specs):
        r = physical_range(modality, unit)
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(x[:, j]) & ((x[:, j] < r[0]) | (x[:, j] > r[1]))
        if bad.any():
            x[bad, j] = np.nan
            counts[name] = int(bad.sum())
    return counts


def apply_physical_range(rec) -> dict[str, int]:
    """Mark samples of every stream of ``rec`` outside its channel's range missing (in place:
    value NaN, valid False). Adds the counts to those an importer already put in
    ``rec.meta["out_of_range"]`` (raw rows masked before interpolation) and returns the total
    per channel (non-zero only)."""
    from edgefm.data.recording import Stream

    counts = {k: int(v) for k, v in (rec.meta.get("out_of_range") or {}).items()}
    for name, s in list(rec.streams.items()):
        r = physical_range(s.spec.modality, s.spec.unit)
        d = np.asarray(s.data)
        with np.errstate(invalid="ignore"):
            bad = np.asarray(s.valid) & ((d < r[0]) | (d > r[1]))
        if bad.any():
            rec.streams[name] = Stream(s.spec, np.where(bad, np.float32(np.nan), d), np.asarray(s.valid) & ~bad)
            counts[name] = counts.get(name, 0) + int(bad.sum())
    if counts:
        rec.meta["out_of_range"] = counts
    return counts


def check_span(first_s: float, last_s: float, fmt: str, path: Path, field: str) -> None:
    """A recording from ``first_s`` to ``last_s`` (seconds) must fit :data:`MAX_DURATION_S`."""
    cap = MAX_DURATION_S[fmt]
    span = float(last_s) - float(first_s)
    if not np.isfinite(span) or span > cap:
        raise DataError(f"timestamps span {span / DAY_S:.3g} days, more than the {cap / DAY_S:g}-day cap "
                        f"for one {fmt} recording", path=path, field=field,
                        hint="a timestamp is corrupt or in the wrong unit")


def check_time_unit(t_s: np.ndarray, fs_hz: float, path: Path, field: str, unit: str) -> None:
    """The median positive timestamp step must be within :data:`UNIT_TOLERANCE` of ``1/fs_hz``."""
    d = np.diff(t_s)
    d = d[d > 0]
    if d.size == 0:
        return
    ratio = float(np.median(d)) * fs_hz
    if not (1 / UNIT_TOLERANCE <= ratio <= UNIT_TOLERANCE):
        raise DataError(f"median timestamp step is {ratio:.3g} samples at {fs_hz:g} Hz: the timestamps "
                        f"are not in {unit} (wrong unit)", path=path, field=field,
                        hint=f"convert the timestamps to {unit}")


def check_codes(codes: np.ndarray, path: Path, field: str, first_row: int = 2) -> np.ndarray:
    """Categorical codes as int16, after checking they are whole numbers in -1..MAX_CLASS_CODE.

    ``codes``: float or int array, NaN = unknown (-1). Checked before any cast.
    """
    c = np.asarray(codes, np.float64)
    known = np.isfinite(c)
    bad = known & ((c != np.round(c)) | (c < -1) | (c > MAX_CLASS_CODE))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"categorical code {c[i]:g} in row {i + first_row} is not a whole number in "
                        f"-1..{MAX_CLASS_CODE}", path=path, field=field,
                        hint="is this the right column? categorical labels are small class codes")
    return np.where(known, c, -1).astype(np.int16)


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
