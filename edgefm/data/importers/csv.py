"""Generic CSV -> recordings, driven by a mapping file (JSON or TOML).

Mapping (TOML shown; JSON has the same keys)::

    fs_hz = 50.0                # the sensor's rate; the output grid rate
    timestamp = "time"          # timestamp column (default "timestamp")
    timestamp_unit = "ms"       # s | ms | us | ns
    subject = "p01"             # optional; default: the file's stem
    max_gap_s = 0.1             # optional; default 2.5 samples
    sep = ","                   # optional

    [columns.ax]                # CSV column -> channel
    channel = "acc_x"
    modality = "acc"
    unit = "g"
    scale = 1.0                 # optional: value * scale (e.g. 0.001 for mg -> g)

    [labels.state]              # optional label columns
    name = "activity"
    kind = "categorical"        # or "continuous" (with unit)
    classes = ["rest", "walk"]  # categorical: values are these names or integer codes

``src`` is one CSV file or a folder of them (one recording per file). Rows are placed on a
uniform ``fs_hz`` grid by linear interpolation (exact where timestamps sit on the grid);
rows sharing a timestamp are averaged; a gap longer than ``max_gap_s`` is missing data.
A median sample interval that disagrees with ``fs_hz`` by more than 10 % (wrong rate or unit),
timestamps spanning more than ``_common.MAX_DURATION_S["csv"]`` (31 days), backwards
timestamps, missing columns, non-numeric values and categorical codes outside
``-1.._common.MAX_CLASS_CODE`` raise :class:`DataError`. Channel and label names must be safe
file names (:func:`edgefm.manifest.safe_name`: letters, digits, ``_ . + -``); values outside
the channel's physical range (``_common.PHYSICAL_RANGE``) are missing and counted.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgefm.data.importers._common import (MAX_CLASS_CODE, TIME_UNITS, check_codes, check_rate, check_span,
                                           check_timestamps, find_matching, mask_out_of_range, merge_duplicates,
                                           numeric_column, read_csv_frame, read_text, row_at_or_before,
                                           to_uniform_grid)
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import ConfigError, DataError
from edgefm.manifest import safe_name

#: highest sampling rate a mapping may declare (Hz)
MAX_FS_HZ = 10_000.0


def read_mapping(mapping: str | Path | dict) -> tuple[Path | None, dict]:
    """A mapping as given (a dict) or read from its TOML/JSON file: ``(file or None, table)``."""
    f = None
    if not isinstance(mapping, dict):
        f = Path(mapping)
        if not f.is_file():
            raise ConfigError("mapping file not found", path=f, field="mapping")
        text = read_text(f)
        try:
            if f.suffix.lower() == ".toml":
                import tomllib
                mapping = tomllib.loads(text)
            else:
                mapping = json.loads(text)
        except Exception as e:  # json.JSONDecodeError, tomllib.TOMLDecodeError
            raise ConfigError(f"cannot parse mapping: {e}", path=f, field="mapping") from e
    if not isinstance(mapping, dict):
        raise ConfigError("mapping must be an object/table", path=f, field="mapping")
    return f, mapping


def load_mapping(mapping: str | Path | dict) -> tuple[dict, Path | None]:
    """Parse and validate a mapping; returns (normalised mapping, file or None)."""
    f, mapping = read_mapping(mapping)
    where = f

    def need(key, typ):
        if key not in mapping:
            raise ConfigError("missing key", path=where, field=key)
        try:
            return typ(mapping[key])
        except (TypeError, ValueError):
            raise ConfigError(f"must be {typ.__name__}, got {mapping[key]!r}", path=where, field=key) from None

    fs = need("fs_hz", float)
    if not (np.isfinite(fs) and 0 < fs <= MAX_FS_HZ):
        raise ConfigError(f"fs_hz must be in (0, {MAX_FS_HZ:g}] Hz, got {fs}", path=where, field="fs_hz")
    unit = str(mapping.get("timestamp_unit", "s"))
    if unit not in TIME_UNITS:
        raise ConfigError(f"unknown timestamp_unit {unit!r}", path=where, field="timestamp_unit",
                          hint=f"one of {', '.join(TIME_UNITS)}")
    cols = mapping.get("columns")
    if not isinstance(cols, dict) or not cols:
        raise ConfigError("needs a non-empty 'columns' table (column -> {channel, modality, unit})",
                          path=where, field="columns")
    chans = {}
    for col, spec in cols.items():
        if not isinstance(spec, dict):
            raise ConfigError("must be a table {channel, modality, unit}", path=where, field=f"columns.{col}")
        for k in ("channel", "modality", "unit"):
            if not isinstance(spec.get(k), str) or not spec.get(k):
                raise ConfigError(f"missing or empty '{k}'", path=where, field=f"columns.{col}.{k}")
        safe_name(spec["channel"], what=f"columns.{col}.channel", path=where)
        scale = spec.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not np.isfinite(scale):
            raise ConfigError("scale must be a finite number", path=where, field=f"columns.{col}.scale")
        chans[str(col)] = {"channel": spec["channel"], "modality": spec["modality"], "unit": spec["unit"],
                           "scale": float(scale)}
    names = [c["channel"] for c in chans.values()]
    if len(set(names)) != len(names):
        raise ConfigError("two columns map to one channel", path=where, field="columns")
    labels = {}
    for col, spec in (mapping.get("labels") or {}).items():
        if not isinstance(spec, dict):
            raise ConfigError("must be a table {name, kind}", path=where, field=f"labels.{col}")
        kind = spec.get("kind", "categorical")
        if kind not in ("categorical", "continuous"):
            raise ConfigError(f"kind must be categorical or continuous, got {kind!r}", path=where,
                              field=f"labels.{col}.kind")
        name = safe_name(spec.get("name", col), what=f"labels.{col}.name", path=where)
        classes = spec.get("classes", [])
        if not isinstance(classes, list) or len(classes) > MAX_CLASS_CODE + 1:
            raise ConfigError(f"classes must be a list of at most {MAX_CLASS_CODE + 1} names", path=where,
                              field=f"labels.{col}.classes")
        labels[str(col)] = {"name": name, "kind": kind,
                            "classes": [str(c) for c in classes], "unit": str(spec.get("unit", ""))}
    names = [v["name"] for v in labels.values()]
    if len(set(names)) != len(names):
        raise ConfigError("two label columns map to one label name", path=where, field="labels")
    max_gap = mapping.get("max_gap_s", 2.5 / fs)
    if isinstance(max_gap, bool) or not isinstance(max_gap, (int, float)) or not (np.isfinite(max_gap) and max_gap > 0):
        raise ConfigError(f"max_gap_s must be a positive number of seconds, got {max_gap!r}", path=where,
                          field="max_gap_s")
    max_gap = float(max_gap)
    return {"fs_hz": fs, "timestamp": str(mapping.get("timestamp", "timestamp")), "timestamp_unit": unit,
            "subject": mapping.get("subject"), "max_gap_s": max_gap, "sep": str(mapping.get("sep", ",")),
            "columns": chans, "labels": labels}, f


def find_files(src: Path) -> list[Path]:
    return find_matching(src, "*.csv", None, ".csv files", recursive=False)


def load_file(path: Path, mp: dict) -> Recording:
    path = Path(path)
    fs = mp["fs_hz"]
    tcol = mp["timestamp"]
    df = read_csv_frame(path, [tcol, *mp["columns"], *mp["labels"]], sep=mp["sep"])
    t = numeric_column(df, tcol, path) * TIME_UNITS[mp["timestamp_unit"]]
    if t.size and not np.isfinite(t[-1]):  # truncated last row
        df, t = df.iloc[:-1], t[:-1]
    check_timestamps(t, path, tcol)
    if t.size < 2:
        raise DataError("fewer than two rows", path=path, field=tcol)
    check_rate(t, fs, path, tcol)
    check_span(t[0], t[-1], "csv", path, tcol)
    x = np.stack([numeric_column(df, c, path) * spec["scale"] for c, spec in mp["columns"].items()], 1)
    out_of_range = mask_out_of_range(x, [(v["channel"], v["modality"], v["unit"]) for v in mp["columns"].values()])
    tm, xm = merge_duplicates(t, x)
    g, y, valid = to_uniform_grid(tm, xm, fs, mp["max_gap_s"])
    streams = {}
    for ci, spec in enumerate(mp["columns"].values()):
        name = spec["channel"]
        streams[name] = Stream(ChannelSpec(name, spec["modality"], spec["unit"], fs), y[:, ci], valid[:, ci])
    # labels: zero-order hold of the row at or before each grid time
    j = row_at_or_before(t, g, fs).clip(0)
    labels = {}
    any_valid = valid.any(1)
    for col, spec in mp["labels"].items():
        raw = df[col]
        if spec["kind"] == "continuous":
            v = numeric_column(df, col, path)[j]
            v[~any_valid] = np.nan
            labels[spec["name"]] = LabelTrack(spec["name"], "continuous", fs, v, unit=spec["unit"])
            continue
        classes = spec["classes"]
        sv = raw.astype(str).str.strip()
        if classes:
            lut = {c: i for i, c in enumerate(classes)}
            codes = np.full(len(sv), -1, np.int64)
            for i, v in enumerate(sv):
                if v in lut:
                    codes[i] = lut[v]
                elif v.lstrip("-").isdigit() and -1 <= int(v) < len(classes):
                    codes[i] = int(v)
                elif v not in ("", "nan"):
                    raise DataError(f"label {v!r} in row {i + 2} is not one of {classes}", path=path, field=col)
        else:
            codes = check_codes(numeric_column(df, col, path), path, col)  # before any cast
        c = codes[j].astype(np.int16)  # in -1..len(classes) or -1..MAX_CLASS_CODE: no wrap
        c[~any_valid] = -1
        labels[spec["name"]] = LabelTrack(spec["name"], "categorical", fs, c, classes=tuple(classes))
    subj = str(mp["subject"]) if mp.get("subject") else path.stem
    meta = {"dataset": "csv", "source_file": path.name, "out_of_range": out_of_range,
            "resampling": {"fs_hz": fs, "method": "linear", "max_gap_s": mp["max_gap_s"],
                           "rows": int(t.size), "duplicate_rows_merged": int(t.size - tm.size)}}
    return Recording(subject=subj, start_time=float(tm[0]), streams=streams, labels=labels, meta=meta,
                     id=f"{subj}-{path.stem}" if mp.get("subject") else path.stem)
