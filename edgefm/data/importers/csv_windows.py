"""One-row-per-window text files (UCI HAR's layout) -> continuous recordings, via a mapping.

In this layout every row of a channel file is one window (consecutive samples of that channel),
windows overlap (UCI HAR: 128 samples at 50 Hz, 50 % overlap), and side files give one label
and one subject per row. Mapping (TOML shown; JSON has the same keys)::

    fs_hz = 50.0                  # sampling rate of the samples in a row
    window = 128                  # optional: samples per row (default: the first row's length)
    overlap = 0.5                 # fraction shared by consecutive rows (or: hop = 64 samples)
    sep = " "                     # optional: " " = any whitespace (default), or "," ...
    skip_rows = 0                 # optional: header lines in every file
    parts = ["train", "test"]     # optional: "{part}" in a file name is replaced by each part
    subject_file = "{part}/subject_{part}.txt"    # one subject per row; or subject = "p01"
    subject_prefix = "s"          # optional: subject ids are prefix + value ("s" + 01 -> "s01")
    overlap_rtol = 1e-5           # optional: how closely overlapping samples must agree
    overlap_atol = 1e-6

    [channels.acc_x]              # channel name -> its file
    file = "{part}/Inertial Signals/total_acc_x_{part}.txt"
    modality = "acc"
    unit = "g"
    scale = 1.0                   # optional: value * scale

    [labels.activity]             # optional: one value per row
    file = "{part}/y_{part}.txt"
    kind = "categorical"          # or "continuous" (with unit)
    classes_file = "activity_labels.txt"   # "code name" per line; or classes = [...] (names or
                                           # codes 0..n-1) or [labels.activity.classes] code = name

File names are relative to ``src`` (a folder) or to the mapping file's folder (either may be
used; a name that exists in both places as different files is an error), or absolute, so the
mapping may live anywhere.

Reconstruction: consecutive rows (in file order) of one subject form one continuous stream when
their overlapping samples agree (``|a - b| <= overlap_atol + overlap_rtol * max(|a|, |b|)`` on
every channel, NaN ignored); the stream is then ``(rows - 1) * hop + window`` samples long and
each sample comes from the earliest row that holds it (a NaN there is filled from another row
holding the same sample). Where the subject changes or the overlaps disagree (a gap, another
session, the next activity of a protocol whose transitions were cut out) a new recording starts:
one recording per subject and contiguous run, id ``<subject>[-<part>]-<run:03d>``. Such breaks
are counted in the dataset's provenance (``csv_windows``: breaks by reason, the first rows where
overlaps disagree, single-row recordings) and in each recording's ``meta["windows"]``. With
``overlap = 0`` nothing can be checked: every row is its own recording unless
``contiguous = true`` says consecutive rows of a subject are back to back.

Labels: each sample takes the value of the row whose window centre is nearest, so cutting the
stream again with the same window and hop gives back each row's label (categorical, by
majority). Continuous labels are placed the same way (window means then mix in neighbouring
rows). Recordings have no clock (``start_time`` 0, ``meta["start_time_known"] = False``).

Bad input is a :class:`DataError` naming the file and field: a row whose length differs from the
window (ragged; a short *last* row is a truncated file and is padded as missing), a non-numeric
sample, channel, label and subject files whose row counts differ, an unknown class name or code,
an empty subject. NaN/empty samples are missing data; an empty label is unknown. Mapping
mistakes (a missing or unknown key, a hop that is not a whole number of samples, ``{part}``
without parts) are :class:`ConfigError`. Values outside the channel's physical range are missing and
counted (:data:`._common.PHYSICAL_RANGE`).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from edgefm.data.importers._common import MAX_CLASS_CODE, check_codes, numeric_table, parse_float, read_text
from edgefm.data.importers.csv import read_mapping
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import ConfigError, DataError
from edgefm.manifest import safe_name

#: highest sampling rate a mapping may declare (Hz), as for the csv format
MAX_FS_HZ = 10_000.0
#: most samples one row (window) may hold
MAX_WINDOW = 1_000_000
#: rows where overlaps disagree listed in the provenance (the count is always complete)
MAX_LISTED = 10


# ---------------------------------------------------------------- mapping

def load_mapping(mapping: str | Path | dict, src: str | Path) -> tuple[dict, Path | None]:
    """Parse and validate a mapping for ``src``; returns (normalised mapping, mapping file or None).

    File names are resolved (see the module docstring) and checked to exist; ``{part}`` is
    expanded per part.
    """
    f, raw = read_mapping(mapping)
    where = f
    _no_unknown(raw, ("fs_hz", "window", "overlap", "hop", "sep", "skip_rows", "overlap_rtol", "overlap_atol",
                      "contiguous", "parts", "subject_file", "subject", "subject_prefix", "channels", "labels"),
                where, "")
    src = Path(src)
    if not src.is_dir():
        raise DataError("the csv-windows source must be a folder (file names in the mapping are relative "
                        "to it or to the mapping file)", path=src)
    bases = [src] + ([f.parent] if f is not None else [])

    fs = _number(raw, "fs_hz", where, required=True)
    if not (0 < fs <= MAX_FS_HZ):
        raise ConfigError(f"fs_hz must be in (0, {MAX_FS_HZ:g}] Hz, got {fs:g}", path=where, field="fs_hz")
    window = raw.get("window")
    if window is not None:
        window = _whole(window, "window", where, 1, MAX_WINDOW)
    if ("overlap" in raw) == ("hop" in raw):
        raise ConfigError("give exactly one of overlap (fraction of a window) or hop (samples)",
                          path=where, field="overlap")
    overlap = hop = None
    if "overlap" in raw:
        overlap = _number(raw, "overlap", where)
        if not 0 <= overlap < 1:
            raise ConfigError(f"overlap must be in [0, 1), got {overlap:g}", path=where, field="overlap")
    else:
        hop = _whole(raw["hop"], "hop", where, 1, MAX_WINDOW)
    sep = raw.get("sep", " ")
    if not isinstance(sep, str) or len(sep) != 1 or sep in "\r\n\"'":
        raise ConfigError(f"sep must be one character (\" \" = any whitespace), got {sep!r}", path=where,
                          field="sep")
    skip = _whole(raw.get("skip_rows", 0), "skip_rows", where, 0, 1000)
    rtol = _number(raw, "overlap_rtol", where, default=1e-5)
    atol = _number(raw, "overlap_atol", where, default=1e-6)
    if rtol < 0 or atol < 0:
        raise ConfigError("overlap tolerances must be >= 0", path=where, field="overlap_rtol" if rtol < 0
                          else "overlap_atol")
    contiguous = raw.get("contiguous", False)
    if not isinstance(contiguous, bool):
        raise ConfigError(f"contiguous must be true or false, got {contiguous!r}", path=where, field="contiguous")

    parts = raw.get("parts")
    if parts is None:
        parts = [""]
    elif not (isinstance(parts, list) and parts and all(isinstance(p, str) and p for p in parts)):
        raise ConfigError("parts must be a non-empty list of names", path=where, field="parts")
    else:
        for p in parts:
            safe_name(p, what="parts", path=where)
        if len(set(parts)) != len(parts):
            raise ConfigError("parts are listed twice", path=where, field="parts")

    def files(name, field, per_part=True):
        return {p: _resolve(name, p, bases, where, field, per_part and parts != [""]) for p in parts}

    if ("subject_file" in raw) == ("subject" in raw):
        raise ConfigError("give exactly one of subject_file (one subject per row) or subject (one for all)",
                          path=where, field="subject_file")
    prefix = raw.get("subject_prefix", "s")
    if not isinstance(prefix, str):
        raise ConfigError("subject_prefix must be a string", path=where, field="subject_prefix")
    if "subject" in raw:
        subject = {"value": safe_name(str(raw["subject"]), what="subject", path=where)}
    else:
        subject = {"files": files(_string(raw, "subject_file", where), "subject_file"), "prefix": prefix}

    chans = raw.get("channels")
    if not isinstance(chans, dict) or not chans:
        raise ConfigError("needs a non-empty 'channels' table (channel -> {file, modality, unit})",
                          path=where, field="channels")
    channels = {}
    for name, spec in chans.items():
        key = f"channels.{name}"
        safe_name(name, what=key, path=where)
        if not isinstance(spec, dict):
            raise ConfigError("must be a table {file, modality, unit}", path=where, field=key)
        _no_unknown(spec, ("file", "modality", "unit", "scale"), where, key)
        for k in ("file", "modality", "unit"):
            if not isinstance(spec.get(k), str) or not spec.get(k):
                raise ConfigError(f"missing or empty '{k}'", path=where, field=f"{key}.{k}")
        scale = spec.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale):
            raise ConfigError("scale must be a finite number", path=where, field=f"{key}.scale")
        channels[name] = {"files": files(spec["file"], f"{key}.file"), "modality": spec["modality"],
                          "unit": spec["unit"], "scale": float(scale)}

    labels = {}
    lab = raw.get("labels") or {}
    if not isinstance(lab, dict):
        raise ConfigError("must be a table name -> {file, kind}", path=where, field="labels")
    for name, spec in lab.items():
        key = f"labels.{name}"
        safe_name(name, what=key, path=where)
        if not isinstance(spec, dict):
            raise ConfigError("must be a table {file, kind}", path=where, field=key)
        _no_unknown(spec, ("file", "kind", "unit", "classes", "classes_file"), where, key)
        kind = spec.get("kind", "categorical")
        if kind not in ("categorical", "continuous"):
            raise ConfigError(f"kind must be categorical or continuous, got {kind!r}", path=where,
                              field=f"{key}.kind")
        codes, names, cf = _classes(spec, key, bases, where) if kind == "categorical" else ({}, [], None)
        labels[name] = {"files": files(_string(spec, "file", where, key), f"{key}.file"), "kind": kind,
                        "unit": str(spec.get("unit", "")), "codes": codes, "classes": names, "classes_file": cf}
    return {"fs_hz": fs, "window": window, "overlap": overlap, "hop": hop, "sep": sep, "skip_rows": skip,
            "rtol": rtol, "atol": atol, "contiguous": contiguous, "parts": parts, "subject": subject,
            "channels": channels, "labels": labels, "mapping_file": f}, f


def _no_unknown(table: dict, known: tuple, where, prefix: str) -> None:
    """A key the format does not know (a typo) is a ConfigError, not silently ignored."""
    extra = sorted(str(k) for k in set(table) - set(known))
    if extra:
        raise ConfigError(f"unknown key(s): {', '.join(extra)}", path=where,
                          field=f"{prefix}.{extra[0]}" if prefix else extra[0], hint=f"allowed: {', '.join(known)}")


def _number(raw: dict, key: str, where, *, required=False, default=None) -> float:
    if key not in raw:
        if required:
            raise ConfigError("missing key", path=where, field=key)
        return default
    v = raw[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"must be a finite number, got {v!r}", path=where, field=key)
    return float(v)


def _whole(v, key: str, where, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v != int(v) \
            or not lo <= v <= hi:
        raise ConfigError(f"must be a whole number in [{lo}, {hi}], got {v!r}", path=where, field=key)
    return int(v)


def _string(raw: dict, key: str, where, prefix: str = "") -> str:
    v = raw.get(key)
    field = f"{prefix}.{key}" if prefix else key
    if not isinstance(v, str) or not v:
        raise ConfigError("missing or empty", path=where, field=field)
    return v


def _resolve(name: str, part: str, bases: list[Path], where, field: str, per_part: bool) -> Path:
    """A mapping's file name for one part -> an existing file (see the module docstring)."""
    if per_part and "{part}" not in name:
        raise ConfigError("several parts are listed but this file name has no {part}: every part would "
                          "read the same rows", path=where, field=field)
    if "{part}" in name and part == "":
        raise ConfigError("the file name has {part} but the mapping lists no parts", path=where, field=field)
    name = name.replace("{part}", part)
    p = Path(name)
    cands = [p] if p.is_absolute() else [b / p for b in bases]
    found = []
    for c in cands:
        if c.is_file() and all(c.resolve() != d.resolve() for d in found):
            found.append(c)
    if len(found) > 1:
        raise ConfigError(f"{name!r} exists both under the source and beside the mapping ({found[0]}, "
                          f"{found[1]})", path=where, field=field, hint="use an absolute path")
    if not found:
        raise DataError(f"file {name!r} not found (looked in {', '.join(str(b) for b in bases)})",
                        path=cands[0], field=field)
    return found[0]


def _classes(spec: dict, key: str, bases: list[Path], where) -> tuple[dict, list[str], Path | None]:
    """({code or name: class index}, class names, class-list file or None) of a categorical label."""
    if "classes" in spec and "classes_file" in spec:
        raise ConfigError("give classes or classes_file, not both", path=where, field=f"{key}.classes")
    pairs: list[tuple[int, str]] = []
    cf = None
    if "classes_file" in spec:
        cf = _resolve(_string(spec, "classes_file", where, key), "", bases, where, f"{key}.classes_file", False)
        for i, line in enumerate(read_text(cf).splitlines()):
            toks = line.split(None, 1)
            if not toks:
                continue
            if len(toks) != 2 or not re.fullmatch(r"-?\d+", toks[0]):
                raise DataError(f"line {i + 1} is not 'code name'", path=cf, field=f"{key}.classes_file")
            pairs.append((int(toks[0]), toks[1].strip()))
    elif isinstance(spec.get("classes"), dict):
        for c, n in spec["classes"].items():
            if not re.fullmatch(r"-?\d+", str(c).strip()) or not isinstance(n, str):
                raise ConfigError(f"classes must map whole-number codes to names, got {c!r} = {n!r}",
                                  path=where, field=f"{key}.classes")
            pairs.append((int(str(c).strip()), n))
    elif "classes" in spec:
        cl = spec["classes"]
        if not isinstance(cl, list) or not all(isinstance(c, str) for c in cl):
            raise ConfigError("classes must be a list of names or a table code -> name", path=where,
                              field=f"{key}.classes")
        pairs = list(enumerate(cl))
    else:
        return {}, [], None
    if not pairs or len(pairs) > MAX_CLASS_CODE + 1:
        raise ConfigError(f"between 1 and {MAX_CLASS_CODE + 1} classes are needed, got {len(pairs)}",
                          path=where, field=f"{key}.classes")
    pairs.sort()
    codes = [c for c, _ in pairs]
    names = [n for _, n in pairs]
    if len(set(codes)) != len(codes) or len(set(names)) != len(names) or any(not n for n in names):
        raise ConfigError("class codes and names must be unique and non-empty", path=where,
                          field=f"{key}.classes")
    lut = {str(c): i for i, c in enumerate(codes)}
    lut.update({n: i for i, n in enumerate(names)})
    return lut, names, cf


def source_files(mp: dict) -> list[Path]:
    """Every file the mapping reads (channels, labels, subjects, class lists, the mapping)."""
    fs = [f for c in mp["channels"].values() for f in c["files"].values()]
    fs += [f for v in mp["labels"].values() for f in v["files"].values()]
    fs += [v["classes_file"] for v in mp["labels"].values() if v["classes_file"] is not None]
    fs += list(mp["subject"].get("files", {}).values())
    if mp["mapping_file"] is not None:
        fs.append(mp["mapping_file"])
    return sorted(set(fs))


# ---------------------------------------------------------------- reading

def _read_rows(path: Path, ch: str, window: int | None, mp: dict) -> np.ndarray:
    """(rows, window) float64 of one channel file; ragged rows and non-numbers raise."""
    text = read_text(path)
    if window is None:
        first = next((ln for ln in text.splitlines()[mp["skip_rows"]:] if ln.strip()), "")
        window = len(first.split() if mp["sep"] == " " else first.split(mp["sep"]))
        if not 0 < window <= MAX_WINDOW:
            raise DataError(f"first row has {window} values; need 1..{MAX_WINDOW}", path=path,
                            field=f"channels.{ch}")
    a = numeric_table(text, path, window, [f"channels.{ch}"] * window, sep=mp["sep"], skip_rows=mp["skip_rows"])
    if a.shape[0] == 0:
        raise DataError("no rows", path=path, field=f"channels.{ch}")
    return a


def _read_column(path: Path, field: str, mp: dict) -> list[str]:
    """One value per row (stripped; '' = empty); a row with more than one value raises."""
    lines = read_text(path).splitlines()[mp["skip_rows"]:]
    while lines and not lines[-1].strip():
        lines.pop()
    out = []
    for i, ln in enumerate(lines):
        toks = ln.split() if mp["sep"] == " " else [t.strip() for t in ln.split(mp["sep"])]
        toks = [t for t in toks if t]
        if len(toks) > 1:
            raise DataError(f"row {i + 1 + mp['skip_rows']} has {len(toks)} values, expected one",
                            path=path, field=field)
        out.append(toks[0] if toks else "")
    return out


def _check_rows(values: list, n: int, path: Path, field: str, what: str) -> None:
    if len(values) != n:
        raise DataError(f"has {len(values)} rows, the channel files have {n} windows", path=path, field=field,
                        hint=f"each window needs exactly one {what}")


def _subjects(mp: dict, part: str, n: int) -> list[str]:
    s = mp["subject"]
    if "value" in s:
        return [s["value"]] * n
    path = s["files"][part]
    vals = _read_column(path, "subject_file", mp)
    _check_rows(vals, n, path, "subject_file", "subject")
    out, cache = [], {}
    for i, v in enumerate(vals):
        if v not in cache:
            if not v:
                raise DataError(f"row {i + 1 + mp['skip_rows']} has no subject", path=path, field="subject_file")
            sid = f"{s['prefix']}{int(v):02d}" if re.fullmatch(r"\d+", v) else f"{s['prefix']}{v}"
            cache[v] = safe_name(sid, what="subject_file", path=path)
        out.append(cache[v])
    return out


def _label_values(name: str, spec: dict, part: str, n: int, mp: dict) -> np.ndarray:
    """One value per row: float (continuous, NaN unknown) or class index (categorical, -1 unknown)."""
    path = spec["files"][part]
    field = f"labels.{name}"
    vals = _read_column(path, field, mp)
    _check_rows(vals, n, path, field, "label")
    first = 1 + mp["skip_rows"]
    if spec["kind"] == "continuous":
        return np.array([parse_float(v, path, f"{field} (row {i + first})") if v else np.nan
                         for i, v in enumerate(vals)], np.float64)
    if not spec["codes"]:
        num = np.array([parse_float(v, path, f"{field} (row {i + first})") if v else np.nan
                        for i, v in enumerate(vals)], np.float64)
        return check_codes(num, path, field, first_row=first).astype(np.int64)
    lut = spec["codes"]
    out = np.full(n, -1, np.int64)
    for i, v in enumerate(vals):
        if not v or v.lower() == "nan":
            continue
        key = str(int(float(v))) if re.fullmatch(r"-?\d+(\.0*)?", v) else v
        if key not in lut:
            raise DataError(f"label {v[:40]!r} in row {i + first} is not one of the classes "
                            f"({', '.join(spec['classes'][:8])}{' ...' if len(spec['classes']) > 8 else ''})",
                            path=path, field=field)
        out[i] = lut[key]
    return out


# ---------------------------------------------------------------- reconstruction

def _hop(mp: dict, window: int, where: Path) -> int:
    if mp["hop"] is not None:
        if mp["hop"] > window:
            raise ConfigError(f"hop {mp['hop']} is longer than the window ({window} samples)",
                              path=mp["mapping_file"], field="hop")
        return mp["hop"]
    h = window * (1 - mp["overlap"])
    if abs(h - round(h)) > 1e-6 or round(h) < 1:
        raise ConfigError(f"overlap {mp['overlap']:g} of a {window}-sample window is not a whole number of "
                          f"samples ({h:g})", path=mp["mapping_file"] or where, field="overlap",
                          hint="give hop (samples) instead")
    return int(round(h))


def _breaks(X: np.ndarray, subj: list[str], hop: int, mp: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per row boundary k|k+1: (same stream?, overlaps disagree?) for ``X: (C, R, W)``."""
    C, R, W = X.shape
    same_subject = np.array([subj[k] == subj[k + 1] for k in range(R - 1)], bool)
    if R < 2:
        return np.zeros(0, bool), np.zeros(0, bool)
    if hop >= W:  # nothing shared: only the mapping can say rows are back to back
        return same_subject & mp["contiguous"], np.zeros(R - 1, bool)
    a, b = X[:, :-1, hop:], X[:, 1:, :W - hop]
    with np.errstate(invalid="ignore"):
        close = np.abs(a - b) <= mp["atol"] + mp["rtol"] * np.maximum(np.abs(a), np.abs(b))
    ok = (close | ~np.isfinite(a) | ~np.isfinite(b)).all(axis=(0, 2))
    return same_subject & ok, same_subject & ~ok


def _stitch(rows: np.ndarray, hop: int) -> np.ndarray:
    """Rows (K, W) of one run -> stream ((K-1)*hop + W,): each sample from the earliest row that
    holds it, or, where that row has NaN, from the next one holding a finite copy."""
    K, W = rows.shape
    n = (K - 1) * hop + W
    t = np.arange(n)
    k = np.minimum(t // hop, K - 1)  # the latest row holding sample t
    off = t - k * hop
    s = np.full(n, np.nan)
    for back in range(int(math.ceil(W / hop))):  # then ever earlier rows: the earliest finite wins
        kb, ob = k - back, off + back * hop
        ok = (kb >= 0) & (ob < W)
        v = np.full(n, np.nan)
        v[ok] = rows[kb[ok], ob[ok]]
        s = np.where(np.isfinite(v), v, s)
    return s


def _placed(values: np.ndarray, n: int, W: int, hop: int) -> np.ndarray:
    """Per-row values -> per-sample values: the row whose window centre is nearest."""
    K = values.shape[0]
    k = np.floor((np.arange(n) - (W - 1) / 2) / hop + 0.5).astype(np.int64).clip(0, K - 1)
    return values[k]


def load_part(mp: dict, part: str, summary: dict) -> Iterator[Recording]:
    """The recordings of one part (all of them without parts); fills ``summary`` while reading."""
    window = mp["window"]
    arrays, files = {}, {}
    for ch, spec in mp["channels"].items():
        f = spec["files"][part]
        a = _read_rows(f, ch, window, mp)
        window = a.shape[1]
        if arrays and a.shape[0] != next(iter(arrays.values())).shape[0]:
            first = next(iter(arrays))
            raise DataError(f"has {a.shape[0]} rows but {files[first].name} ({first}) has "
                            f"{arrays[first].shape[0]}", path=f, field=f"channels.{ch}",
                            hint="every channel file needs one row per window")
        arrays[ch], files[ch] = a * spec["scale"], f
    X = np.stack(list(arrays.values()))  # (C, R, W)
    R, W = X.shape[1], X.shape[2]
    hop = _hop(mp, W, files[next(iter(files))])
    subj = _subjects(mp, part, R)
    labels = {name: _label_values(name, spec, part, R, mp) for name, spec in mp["labels"].items()}
    join, mismatch = _breaks(X, subj, hop, mp)
    starts = np.r_[0, np.flatnonzero(~join) + 1]
    ends = np.r_[starts[1:], R]
    summary["rows"] += R
    summary["breaks"]["overlap_mismatch"] += int(mismatch.sum())
    summary["breaks"]["subject"] += int(sum(subj[k] != subj[k + 1] for k in range(R - 1)))
    listed = summary["first_mismatch_rows"]
    listed += [{"part": part, "row": int(k) + 2 + mp["skip_rows"]}
               for k in np.flatnonzero(mismatch)[:max(MAX_LISTED - len(listed), 0)]]
    run_no: dict[str, int] = {}
    fs = mp["fs_hz"]
    for a, b in zip(starts, ends):
        s_id = subj[a]
        run_no[s_id] = run_no.get(s_id, 0) + 1
        rec_id = f"{s_id}-{part}-{run_no[s_id]:03d}" if part else f"{s_id}-{run_no[s_id]:03d}"
        n = (b - a - 1) * hop + W
        streams = {}
        for ci, (ch, spec) in enumerate(mp["channels"].items()):
            streams[ch] = Stream(ChannelSpec(ch, spec["modality"], spec["unit"], fs),
                                 _stitch(X[ci, a:b], hop).astype(np.float32))
        tracks = {}
        for name, spec in mp["labels"].items():
            v = _placed(labels[name][a:b], n, W, hop)
            tracks[name] = LabelTrack(name, spec["kind"], fs, v if spec["kind"] == "continuous" else v.astype(np.int16),
                                      unit=spec["unit"], classes=tuple(spec["classes"]))
        reason = "start" if a == 0 else ("subject" if subj[a - 1] != s_id else
                                         "overlap_mismatch" if mismatch[a - 1] else "no_overlap")
        summary["recordings"] += 1
        summary["single_row_recordings"] += int(b - a == 1)
        meta = {"dataset": "csv-windows", "part": part or None, "start_time_known": False,
                "source_files": {ch: f.name for ch, f in files.items()},
                "windows": {"first_row": int(a) + 1 + mp["skip_rows"], "rows": int(b - a), "window": W,
                            "hop": hop, "break_before": reason}}
        yield Recording(subject=s_id, start_time=0.0, streams=streams, labels=tracks, meta=meta, id=rec_id)


def load_all(mp: dict, summary: dict) -> Iterator[Recording]:
    """Every part's recordings, in order; ``summary`` (see :func:`new_summary`) is filled as they stream."""
    for part in mp["parts"]:
        yield from load_part(mp, part, summary)


def new_summary(mp: dict) -> dict:
    """The provenance record of a csv-windows import (filled while the recordings stream)."""
    return {"fs_hz": mp["fs_hz"], "parts": [p for p in mp["parts"] if p], "rows": 0, "recordings": 0,
            "single_row_recordings": 0, "breaks": {"subject": 0, "overlap_mismatch": 0},
            "first_mismatch_rows": [], "tolerance": {"rtol": mp["rtol"], "atol": mp["atol"]}}
