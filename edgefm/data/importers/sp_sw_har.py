"""Smartwatch HAR (Matey-Sanz et al., Data in Brief 2023) watch CSVs -> recordings.

``sNN/sNN_MM_sw.csv``: ``x_acc,y_acc,z_acc`` (m/s^2), ``x_gyro,y_gyro,z_gyro`` (rad/s),
``timestamp`` (Unix ms), ``label`` (SEATED, STANDING_UP, WALKING, TURNING, SITTING_DOWN).
One recording per execution (id ``sNN_MM``), subject ``sNN``.

The watch samples irregularly (~100 Hz, steps 4-40 ms, repeated timestamps). Rules:
  * timestamps going backwards -> :class:`DataError` (the file's order is broken); timestamps
    whose median step is not within 4x of 10 ms (µs or s instead of ms) or that span more than
    a day (``_common.MAX_DURATION_S``) -> :class:`DataError` naming the file and ``timestamp``;
  * values outside the physical range (``_common.PHYSICAL_RANGE``: +-64 g, +-70 rad/s) are
    missing before interpolation and counted in ``meta["out_of_range"]``;
  * rows sharing a timestamp are averaged (one clock reading for two samples);
  * the rows are linearly interpolated onto a uniform ``fs_hz`` (100 Hz) grid; an output
    sample between two rows more than ``max_gap_s`` (0.1 s) apart is missing, as is any
    sample next to a NaN;
  * ``activity`` label: the label of the row at or before each grid time (-1 in gaps).
Channels: ``acc_x|y|z`` (g = m/s^2 / 9.80665), ``gyro_x|y|z`` (rad/s).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgefm.data.importers._common import (G, check_span, check_time_unit, check_timestamps, find_matching,
                                           mask_out_of_range, merge_duplicates, numeric_column, read_csv_frame,
                                           row_at_or_before, to_uniform_grid)
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import ConfigError, DataError

#: the watch's nominal rate: the median timestamp step must be within 4x of 10 ms (unit check)
NOMINAL_HZ = 100.0
ACTIVITY_CLASSES = ("seated", "standing_up", "walking", "turning", "sitting_down")
COLS = [("x_acc", "acc_x", "acc", "g", 1 / G), ("y_acc", "acc_y", "acc", "g", 1 / G),
        ("z_acc", "acc_z", "acc", "g", 1 / G), ("x_gyro", "gyro_x", "gyro", "rad/s", 1.0),
        ("y_gyro", "gyro_y", "gyro", "rad/s", 1.0), ("z_gyro", "gyro_z", "gyro", "rad/s", 1.0)]


def find_files(src: Path) -> list[Path]:
    return find_matching(src, "*.csv", r"s\d+_\d+_sw", "smartwatch files sNN_MM_sw.csv")


def read_info_table(path: Path, key: str) -> dict[str, dict]:
    """``subjects_info.csv`` (key ``subject_id``) / ``executions_info.csv`` (``execution_id``) as
    {key: {column: value}}; {} when the file is absent."""
    if not Path(path).is_file():
        return {}
    df = read_csv_frame(path, [key])
    return {str(r[key]): {k: _plain(v) for k, v in r.items() if k != key} for _, r in df.iterrows()}


def _plain(v):
    """A table cell as a JSON-safe value: numpy scalars unwrapped, NaN/inf (empty cells) -> None."""
    v = v.item() if hasattr(v, "item") else v
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v


def read_subjects_info(path: Path) -> dict[str, dict]:
    return read_info_table(path, "subject_id")


def check_options(fs_hz: float, max_gap_s: float) -> None:
    """Finite, in-range options; :class:`ConfigError` naming the option."""
    if isinstance(fs_hz, bool) or not isinstance(fs_hz, (int, float)) or \
            not (np.isfinite(fs_hz) and 1 <= fs_hz <= 1000):
        raise ConfigError(f"fs_hz must be in [1, 1000] Hz, got {fs_hz!r}", field="fs_hz")
    if isinstance(max_gap_s, bool) or not isinstance(max_gap_s, (int, float)) or \
            not (np.isfinite(max_gap_s) and 0 < max_gap_s <= 60):
        raise ConfigError(f"max_gap_s must be in (0, 60] s, got {max_gap_s!r}", field="max_gap_s")


def load_file(path: Path, *, subject_info: dict | None = None, execution_info: dict | None = None,
              fs_hz: float = 100.0, max_gap_s: float = 0.1) -> Recording:
    path = Path(path)
    check_options(fs_hz, max_gap_s)
    df = read_csv_frame(path, [c[0] for c in COLS] + ["timestamp", "label"])
    t = numeric_column(df, "timestamp", path) / 1000.0
    # a truncated last row may lack its timestamp: drop it; elsewhere a missing time is an error
    if t.size and not np.isfinite(t[-1]):
        df, t = df.iloc[:-1], t[:-1]
    check_timestamps(t, path, "timestamp")
    check_time_unit(t, NOMINAL_HZ, path, "timestamp", "ms")  # µs or s would scale the recording 1000x
    check_span(t[0], t[-1], "sp-sw-har", path, "timestamp")
    x = np.stack([numeric_column(df, c[0], path) * c[4] for c in COLS], 1)
    out_of_range = mask_out_of_range(x, [(c[1], c[2], c[3]) for c in COLS])  # raw rows, before interpolation
    lab_s = df["label"].astype(str).str.strip().str.lower()
    lut = {c: i for i, c in enumerate(ACTIVITY_CLASSES)}
    unknown = sorted(set(lab_s) - set(lut) - {"nan", ""})
    if unknown:
        raise DataError(f"unknown activity label {unknown[0]!r} (known: {', '.join(ACTIVITY_CLASSES)})",
                        path=path, field="label")
    codes = np.array([lut.get(v, -1) for v in lab_s], np.float64)
    tm, xm = merge_duplicates(t, np.c_[x, codes])
    # labels of merged rows: the first row's label (no averaging of categories)
    first = np.searchsorted(t, tm, "left")
    xm[:, -1] = codes[first]
    if tm.size < 2:
        raise DataError("fewer than two distinct timestamps", path=path, field="timestamp")
    g, y, valid = to_uniform_grid(tm, xm[:, :-1], fs_hz, max_gap_s)
    j = row_at_or_before(tm, g, fs_hz)
    lab = xm[j.clip(0), -1].astype(np.int16)
    lab[~valid.any(1)] = -1
    streams = {}
    for ci, (_, name, mod, unit, _) in enumerate(COLS):
        streams[name] = Stream(ChannelSpec(name, mod, unit, fs_hz), y[:, ci], valid[:, ci])
    m = re.match(r"(s\d+)_(\d+)", path.stem)
    subj = m.group(1) if m else path.parent.name
    rid = f"{m.group(1)}_{m.group(2)}" if m else path.stem
    meta = {"dataset": "Smartwatch HAR (watch)", "source_file": path.name,
            "cite": "Matey-Sanz, Casteleyn, Granell, Data in Brief 2023 (CC BY 4.0)",
            "out_of_range": out_of_range,
            "resampling": {"fs_hz": fs_hz, "method": "linear", "max_gap_s": max_gap_s,
                           "rows": int(t.size), "duplicate_rows_merged": int(t.size - tm.size)}}
    if subject_info and subj in subject_info:
        meta["subject_info"] = subject_info[subj]
    if execution_info and rid in execution_info:
        meta["execution_info"] = execution_info[rid]  # watch orientation, turn directions
    return Recording(subject=subj, start_time=float(tm[0]), streams=streams,
                     labels={"activity": LabelTrack("activity", "categorical", fs_hz, lab,
                                                    classes=ACTIVITY_CLASSES)},
                     meta=meta, id=rid)
