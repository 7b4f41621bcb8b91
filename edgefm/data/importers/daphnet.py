"""Daphnet Freezing of Gait text files -> recordings.

Each ``SxxRyy.txt``: space-separated rows at 64 Hz: time (ms), ankle x/y/z, thigh x/y/z,
trunk x/y/z acceleration (mg), label (0 = outside the protocol, 1 = no freeze, 2 = freeze).

Channels (g, 64 Hz): ``acc_x|y|z`` = ankle (the FoG sensor of the original study),
``thigh_acc_x|y|z``, ``trunk_acc_x|y|z``.
Label ``freeze``: categorical ``("no", "yes")``: 0 -> -1 (unknown), 1 -> 0, 2 -> 1.

Validity from the time column: timestamps are whole ms of a 64 Hz clock (15/16 ms steps);
each row is placed on the 64 Hz grid by rounding; grid slots with no row (a gap) are
missing samples with label -1. A median step far from 15.625 ms (a wrong rate), two rows on
one slot, timestamps going backwards or spanning more than a day (``_common.MAX_DURATION_S``)
raise :class:`DataError`; values beyond +-64 g are missing and counted (``_common.PHYSICAL_RANGE``).
Subject ``daphnet-Sxx``, recording id ``daphnet-SxxRyy`` (a subject-level split keeps a
patient's runs together).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgefm.data.importers._common import (check_rate, check_span, check_timestamps, find_matching, numeric_table,
                                           read_text, snap_to_grid)
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import DataError

FS_HZ = 64.0
COLUMNS = ["time_ms", "ankle_x", "ankle_y", "ankle_z", "thigh_x", "thigh_y", "thigh_z",
           "trunk_x", "trunk_y", "trunk_z", "label"]
CHANNELS = ["acc_x", "acc_y", "acc_z", "thigh_acc_x", "thigh_acc_y", "thigh_acc_z",
            "trunk_acc_x", "trunk_acc_y", "trunk_acc_z"]
FREEZE_CLASSES = ("no", "yes")


def find_files(src: Path) -> list[Path]:
    return find_matching(src, "*.txt", r"S\d+R\d+", "Daphnet SxxRyy.txt files")


def load_file(path: Path) -> Recording:
    path = Path(path)
    a = numeric_table(read_text(path), path, len(COLUMNS), COLUMNS, sep=" ")
    if a.shape[0] < 2:
        raise DataError(f"only {a.shape[0]} rows", path=path, field="time_ms")
    a = a[np.isfinite(a[:, 0])] if np.isnan(a[-1, 0]) else a  # a truncated last row without time
    t_s = a[:, 0] / 1000.0
    check_timestamps(t_s, path, "time_ms")
    check_rate(t_s, FS_HZ, path, "time_ms")
    check_span(t_s[0], t_s[-1], "daphnet", path, "time_ms")  # before the grid is sized
    idx, n = snap_to_grid(t_s, FS_HZ, path, "time_ms")
    lab = a[:, 10]
    okl = np.isfinite(lab)
    if (okl & ~np.isin(lab, (0, 1, 2))).any():
        v = lab[okl & ~np.isin(lab, (0, 1, 2))][0]
        raise DataError(f"label {v:g} is not 0, 1 or 2", path=path, field="label")
    streams = {}
    for j, name in enumerate(CHANNELS):
        col = np.full(n, np.nan)
        col[idx] = a[:, j + 1] / 1000.0
        streams[name] = Stream(ChannelSpec(name, "acc", "g", FS_HZ), col)
    codes = np.full(n, -1, np.int16)
    codes[idx] = np.where(okl, lab, 0).astype(np.int16) - 1  # 0->-1, 1->0, 2->1
    m = re.match(r"(S\d+)(R\d+)", path.stem)
    subj, rid = (f"daphnet-{m.group(1)}", f"daphnet-{m.group(1)}{m.group(2)}") if m else (path.stem, path.stem)
    meta = {"dataset": "Daphnet Freezing of Gait", "source_file": path.name,
            "cite": "Baechlin et al., IEEE TITB 2010", "start_time_known": False,
            "time_offset_ms": float(a[0, 0]), "gap_samples": int(n - idx.size),
            "channels": {"acc_*": "ankle", "thigh_acc_*": "thigh", "trunk_acc_*": "trunk"}}
    return Recording(subject=subj, start_time=float(t_s[0]), streams=streams,
                     labels={"freeze": LabelTrack("freeze", "categorical", FS_HZ, codes,
                                                  classes=FREEZE_CLASSES)},
                     meta=meta, id=rid)
