"""Empatica E4 folders (WESAD layout) -> recordings.

Layout: ``SRC/SX/SX_E4_Data/{ACC,BVP,EDA,TEMP,HR,IBI}.csv`` (+ ``tags.csv``, ``info.txt``),
``SRC/SX/SX_quest.csv`` (protocol phases), ``SRC/SX/SX_readme.txt`` (subject traits).
``SRC`` may also be a single subject folder.

Empatica CSVs: row 1 = Unix start time per column, row 2 = rate (Hz) per column, then one
sample per row. ``IBI.csv``: row 1 = start time, then ``seconds since start, interval (s)``.

Channels (all share ``start_time`` = the earliest file start; a file that starts later is
front-padded with missing samples):
  ``acc_x|y|z`` g (file unit 1/64 g) at 32 Hz, ``ppg`` (BVP, a.u.) at 64 Hz, ``eda`` uS and
  ``temp`` degC at 4 Hz, ``hr`` bpm at 1 Hz (the E4's own PPG-derived estimate).
Labels:
  ``hr`` (bpm, 1 Hz): the device HR. Note: this is *not* an ECG reference (WESAD's ECG is on
      the chest device, not in these folders); ``meta["hr_label_source"]`` says so.
  ``rmssd`` (ms, 1 Hz): RMSSD of the E4 IBIs in a centred ``rmssd_window_s`` (60 s) window,
      from successive intervals only (two IBIs count as successive when the second beat's time
      minus its interval equals the first beat's time, i.e. no beat was skipped), NaN when
      fewer than ``rmssd_min_pairs`` successive differences are available.
  ``stress`` (categorical, 4 Hz): ``("baseline", "stress", "amusement", "meditation")`` from
      quest.csv phases Base, TSST, Fun, Medi 1/Medi 2; -1 elsewhere (including sRead/fRead/bRead).
Events: ``beats`` (s from start): the IBI beat times.

Alignment of quest.csv (read this before trusting phase boundaries):
  WESAD's quest.csv START/END values are minutes *and seconds* written as ``mm.ss``
  (``50.3`` = 50 min 30 s; over all 15 subjects no fractional part reaches .60), relative to the
  start of the chest RespiBAN recording, which is not part of these folders. The E4 was started
  well *before* the RespiBAN: with the phases placed at E4 time = quest time (offset 0), the
  device HR during the TSST is *lower* than at baseline in 15 of 15 subjects, which is
  physiologically backwards. The E4 session instead ends a few minutes after the last phase
  (``tags.csv`` holds the single end-of-session button press, at the end of the data).
  So by default the phases are anchored to the end:

      E4 time = quest time + offset,   offset = E4 end - last phase END - 300 s

  The 300 s (final questionnaire and stop after the last meditation) is one global constant:
  the rounded median, over the 15 subjects, of (E4 end - last END - physiological offset),
  where the physiological offset is the one maximising the HR+EDA contrast between TSST and
  baseline/meditation for that subject. Per subject the end-anchored offsets (13-26 min) then
  lie within 2.3 min RMS (worst 4.9 min) of the physiological ones, and the device HR during
  the TSST exceeds baseline in 14 of 15 subjects (EDA: 13 of 15). Treat phase
  boundaries as uncertain by ~3 min: fine for 8 s windows inside 10-20 minute phases, not for
  boundary-exact analyses. ``quest_offset_s`` overrides the estimate (seconds the E4 started
  before the RespiBAN); ``meta["quest_alignment"]`` records what was used.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgefm.data.importers._common import (DAY_S, MAX_DURATION_S, mask_out_of_range, numeric_table, parse_float,
                                           read_text)
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import ConfigError, DataError

STRESS_CLASSES = ("baseline", "stress", "amusement", "meditation")
PHASE_CODE = {"base": 0, "tsst": 1, "fun": 2, "medi 1": 3, "medi 2": 3, "medi": 3}

#: file -> (columns, expected rate Hz, [(channel, modality, unit, scale)])
E4_FILES = {
    "ACC": (3, 32.0, [("acc_x", "acc", "g", 1 / 64), ("acc_y", "acc", "g", 1 / 64),
                      ("acc_z", "acc", "g", 1 / 64)]),
    "BVP": (1, 64.0, [("ppg", "ppg", "a.u.", 1.0)]),
    "EDA": (1, 4.0, [("eda", "eda", "uS", 1.0)]),
    "TEMP": (1, 4.0, [("temp", "temp", "degC", 1.0)]),
    "HR": (1, 1.0, [("hr", "hr", "bpm", 1.0)]),
}
REQUIRED = ("ACC", "BVP")
STRESS_HZ = 4.0
RMSSD_HZ = 1.0


def find_subjects(src: Path) -> list[Path]:
    """Subject folders under ``src`` (folders holding an ``*_E4_Data`` folder or E4 CSVs)."""
    src = Path(src)
    if not src.is_dir():
        raise DataError("source folder not found", path=src)
    if _e4_dir(src) is not None:
        return [src]
    subs = sorted((d for d in src.iterdir() if d.is_dir() and _e4_dir(d) is not None), key=_natural)
    if not subs:
        raise DataError("no E4 subject folders found (expected SX/SX_E4_Data/ACC.csv)", path=src,
                        hint="point at the WESAD E4 root or one subject folder")
    return subs


def _natural(p: Path):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def _e4_dir(d: Path) -> Path | None:
    """The folder holding the E4 CSVs: ``d`` itself or its ``*_E4_Data`` child."""
    def has_e4(x: Path) -> bool:
        return any((x / f"{k}.csv").is_file() for k in (*E4_FILES, "IBI"))
    if has_e4(d):
        return d
    for c in sorted(d.glob("*_E4_Data")) + sorted(d.glob("E4_Data")):
        if c.is_dir():
            return c
    return None


def source_files(subject_dir: Path) -> list[Path]:
    e4 = _e4_dir(subject_dir)
    files = [e4 / f"{k}.csv" for k in (*E4_FILES, "IBI", "tags")]
    files += sorted(subject_dir.glob("*_quest.csv")) + sorted(subject_dir.glob("*_readme.txt"))
    return [f for f in files if f.is_file()]


def read_e4_csv(path: Path, ncols: int, expected_hz: float | None) -> tuple[float, float, np.ndarray]:
    """(start Unix s, rate Hz, samples (n, ncols)) of one Empatica CSV."""
    text = read_text(path)
    lines = text.splitlines()
    if len(lines) < 2:
        raise DataError("truncated: needs a start-time row and a rate row", path=path, field="header")
    starts = [parse_float(v, path, "start_time") for v in lines[0].split(",") if v.strip()]
    rates = [parse_float(v, path, "fs_hz") for v in lines[1].split(",") if v.strip()]
    if len(starts) != ncols or len(rates) != ncols:
        raise DataError(f"header has {len(starts)} start times and {len(rates)} rates, expected {ncols}",
                        path=path, field="header")
    if not all(np.isfinite(starts)) or len(set(starts)) != 1:
        raise DataError(f"start times must be finite and equal, got {starts}", path=path, field="start_time")
    if not all(np.isfinite(rates)) or len(set(rates)) != 1 or rates[0] <= 0:
        raise DataError(f"rates must be positive and equal, got {rates}", path=path, field="fs_hz")
    fs = rates[0]
    if expected_hz is not None and abs(fs - expected_hz) > 1e-6:
        raise DataError(f"rate header says {fs:g} Hz; the E4 records this file at {expected_hz:g} Hz",
                        path=path, field="fs_hz", hint="the header is corrupt or this is not an E4 file")
    names = [f"column {i}" for i in range(ncols)]
    data = numeric_table(text, path, ncols, names, skip_rows=2)
    return starts[0], fs, data


def read_ibi(path: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """(start Unix s, beat times s since start (n,), intervals s (n,)); bad rows dropped."""
    text = read_text(path)
    lines = text.splitlines()
    if not lines:
        raise DataError("empty file", path=path, field="header")
    start = parse_float(lines[0].split(",")[0], path, "start_time")
    if not np.isfinite(start):
        raise DataError("start time is not finite", path=path, field="start_time")
    a = numeric_table(text, path, 2, ["time", "ibi"], skip_rows=1)
    t, ibi = a[:, 0], a[:, 1]
    ok = np.isfinite(t) & np.isfinite(ibi) & (ibi > 0.2) & (ibi < 2.5)  # 24..300 bpm
    t, ibi = t[ok], ibi[ok]
    if (np.diff(t) <= 0).any():
        i = int(np.flatnonzero(np.diff(t) <= 0)[0])
        raise DataError(f"beat times are not increasing at data row {i + 2}", path=path, field="time")
    return start, t, ibi


def parse_quest(path: Path) -> list[tuple[str, float, float]]:
    """[(phase, start_s, end_s)] from a WESAD quest.csv (``mm.ss`` values -> seconds)."""
    rows = {}
    for line in read_text(path).splitlines():
        parts = [p.strip() for p in line.split(";")]
        if parts and parts[0].startswith("#"):
            key = parts[0].lstrip("#").strip().upper()
            if key in ("ORDER", "START", "END"):
                rows[key] = parts[1:]
    for k in ("ORDER", "START", "END"):
        if k not in rows:
            raise DataError(f"missing '# {k}' row", path=path, field=k)
    phases = []
    for i, name in enumerate(rows["ORDER"]):
        if not name:
            continue
        try:
            s, e = rows["START"][i], rows["END"][i]
        except IndexError:
            raise DataError(f"phase {name!r} has no start/end", path=path, field=name) from None
        s_s, e_s = _mmss(s, path, name), _mmss(e, path, name)
        if not e_s > s_s:
            raise DataError(f"phase {name!r} ends ({e}) before it starts ({s})", path=path, field=name)
        phases.append((name, s_s, e_s))
    return phases


def _mmss(v: str, path: Path, field: str) -> float:
    """``"50.3"`` -> 50 min 30 s -> 3030.0 s (WESAD's mm.ss notation)."""
    if not re.fullmatch(r"\d{1,6}(\.\d{1,2})?", v):
        raise DataError(f"time {v!r} is not in mm.ss form", path=path, field=field)
    mm, _, ss = v.partition(".")
    sec = int(ss.ljust(2, "0")) if ss else 0
    if sec >= 60:
        raise DataError(f"time {v!r} has {sec} seconds (mm.ss)", path=path, field=field)
    return int(mm) * 60.0 + sec


def parse_readme(path: Path) -> dict:
    """Subject traits from ``SX_readme.txt`` (``Key: value`` lines)."""
    out = {}
    for line in read_text(path).splitlines():
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            k = re.sub(r"[^a-z0-9]+", "_", k.strip().lower()).strip("_")
            if k and v.strip():
                out[k] = v.strip()
    return out


def rmssd_track(beat_t: np.ndarray, ibi_s: np.ndarray, n: int, fs_hz: float, window_s: float,
                min_pairs: int) -> np.ndarray:
    """RMSSD (ms) at ``fs_hz`` over centred ``window_s`` windows from successive IBIs only.

    ``beat_t`` (s from start, increasing), ``ibi_s`` (s): a pair (k-1, k) is successive when
    ``beat_t[k] - ibi_s[k] == beat_t[k-1]`` within 30 ms.
    """
    out = np.full(n, np.nan, np.float64)
    if beat_t.size < 2:
        return out
    succ = np.abs((beat_t[1:] - ibi_s[1:]) - beat_t[:-1]) < 0.03
    d2 = np.where(succ, (np.diff(ibi_s) * 1e3) ** 2, 0.0)
    tp = beat_t[1:]
    cs = np.r_[0.0, np.cumsum(d2)]
    cn = np.r_[0, np.cumsum(succ)]
    tc = np.arange(n) / fs_hz
    a = np.searchsorted(tp, tc - window_s / 2, "left")
    b = np.searchsorted(tp, tc + window_s / 2, "left")
    cnt = cn[b] - cn[a]
    ok = cnt >= min_pairs
    out[ok] = np.sqrt((cs[b] - cs[a])[ok] / cnt[ok])
    return out


#: seconds between the end of the last protocol phase and the end of the E4 session (see above)
END_MARGIN_S = 300.0


def check_options(quest_offset_s: float | None, rmssd_window_s: float, rmssd_min_pairs: int) -> None:
    """Finite, in-range options (before any file is read); :class:`ConfigError` naming the option."""
    cap = MAX_DURATION_S["e4"]
    if quest_offset_s is not None and not (_is_number(quest_offset_s) and abs(quest_offset_s) <= cap):
        raise ConfigError(f"quest_offset_s must be a finite number of seconds within +-{cap:g}, "
                          f"got {quest_offset_s!r}", field="quest_offset_s")
    if not (_is_number(rmssd_window_s) and 0 < rmssd_window_s <= 3600):
        raise ConfigError(f"rmssd_window_s must be in (0, 3600] s, got {rmssd_window_s!r}", field="rmssd_window_s")
    if isinstance(rmssd_min_pairs, bool) or not isinstance(rmssd_min_pairs, (int, np.integer)) \
            or not 1 <= rmssd_min_pairs <= 100000:
        raise ConfigError(f"rmssd_min_pairs must be a whole number in 1..100000, got {rmssd_min_pairs!r}",
                          field="rmssd_min_pairs")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and bool(np.isfinite(v))


def _check_starts(parts: dict, e4: Path) -> None:
    """All files of one session must lie within MAX_DURATION_S["e4"] of each other: a start
    time of 0 beside Unix times would front-pad billions of samples. Names the odd file."""
    starts = {k: p[0] for k, p in parts.items()}
    ends = {k: p[0] + p[2].shape[0] / p[1] for k, p in parts.items()}
    span = max(ends.values()) - min(starts.values())
    if span > MAX_DURATION_S["e4"]:
        med = float(np.median(list(starts.values())))
        odd = max(starts, key=lambda k: abs(starts[k] - med))
        raise DataError(f"start time {starts[odd]:.10g} is {abs(starts[odd] - med) / DAY_S:.3g} days from the "
                        f"other files' ({med:.10g}): the session would span {span / DAY_S:.3g} days, more "
                        f"than the {MAX_DURATION_S['e4'] / DAY_S:g}-day cap", path=e4 / f"{odd}.csv",
                        field="start_time", hint="the header's start time is corrupt")


def load_subject(d: Path, *, quest_offset_s: float | None = None, rmssd_window_s: float = 60.0,
                 rmssd_min_pairs: int = 20) -> Recording:
    """One WESAD/E4 subject folder -> :class:`Recording` (see the module docstring).

    Checked before anything is sized: the options (:func:`check_options`), a required file
    with no sample rows, and start times implying a session longer than
    ``_common.MAX_DURATION_S["e4"]``. Samples outside their channel's physical range are
    missing (counted in ``meta["out_of_range"]``), also in the ``hr`` label.
    """
    check_options(quest_offset_s, rmssd_window_s, rmssd_min_pairs)
    e4 = _e4_dir(d)
    if e4 is None:
        raise DataError("no E4 data folder (ACC.csv) found", path=d)
    subject = d.name if d.name != e4.name else e4.parent.name
    parts = {}
    for key, (ncols, fs, chans) in E4_FILES.items():
        f = e4 / f"{key}.csv"
        if not f.is_file():
            if key in REQUIRED:
                raise DataError("required file is missing", path=f, field=key)
            continue
        parts[key] = read_e4_csv(f, ncols, fs)
        if key in REQUIRED and parts[key][2].shape[0] == 0:
            raise DataError("required file has no sample rows (only its header)", path=f, field="rows",
                            hint="the recording is empty or the file was cut off")
    _check_starts(parts, e4)
    t0 = min(p[0] for p in parts.values())
    streams: dict[str, Stream] = {}
    out_of_range: dict[str, int] = {}
    for key, (start, fs, data) in parts.items():
        pad = int(round((start - t0) * fs))
        for ci, (name, modality, unit, scale) in enumerate(E4_FILES[key][2]):
            col = (data[:, ci] * scale)[:, None]
            out_of_range.update(mask_out_of_range(col, [(name, modality, unit)]))
            col = col[:, 0]
            if pad:
                col = np.r_[np.full(pad, np.nan), col]
            streams[name] = Stream(ChannelSpec(name, modality, unit, fs), col)
    rec_dur = max(s.duration_s for s in streams.values())
    labels: dict[str, LabelTrack] = {}
    events: dict[str, np.ndarray] = {}
    meta: dict = {"dataset": "WESAD (Empatica E4 wrist)", "source_dir": d.name, "out_of_range": out_of_range,
                  "hr_label_source": "E4 device HR.csv (PPG-derived estimate, not ECG)",
                  "cite": "Schmidt et al., ICMI 2018 (WESAD)"}
    if "hr" in streams:
        hs = streams["hr"]
        labels["hr"] = LabelTrack("hr", "continuous", hs.spec.fs_hz,
                                  np.where(hs.valid, hs.data, np.nan), unit="bpm")
    ibi_f = e4 / "IBI.csv"
    n_r = int(np.ceil(rec_dur * RMSSD_HZ))
    if ibi_f.is_file():
        ibi_start, bt, ibi = read_ibi(ibi_f)
        if abs(ibi_start - t0) > MAX_DURATION_S["e4"]:
            raise DataError(f"start time {ibi_start:.10g} is {abs(ibi_start - t0) / DAY_S:.3g} days from the "
                            f"session start {t0:.10g}", path=ibi_f, field="start_time",
                            hint="the header's start time is corrupt")
        beats = bt + (ibi_start - t0)
        events["beats"] = beats
        labels["rmssd"] = LabelTrack("rmssd", "continuous", RMSSD_HZ,
                                     rmssd_track(beats, ibi, n_r, RMSSD_HZ, rmssd_window_s, rmssd_min_pairs),
                                     unit="ms")
        meta["rmssd"] = {"window_s": rmssd_window_s, "min_successive_pairs": rmssd_min_pairs}
    quest = sorted(d.glob("*_quest.csv"))
    if quest:
        phases = parse_quest(quest[0])
        known = [p for p in phases if PHASE_CODE.get(p[0].strip().lower()) is not None]
        if quest_offset_s is None:
            end_s = rec_dur
            tags = e4 / "tags.csv"
            if tags.is_file():
                tv = [parse_float(v, tags, "tag") for v in read_text(tags).split() if v.strip()]
                tv = [v - t0 for v in tv if np.isfinite(v) and 0 < v - t0 <= rec_dur + 1]
                if tv:
                    end_s = max(tv)
            last = max((p[2] for p in known), default=0.0)
            offset, method = end_s - last - END_MARGIN_S, "end-anchored"
            if offset < 0:
                offset, method = 0.0, "start (session too short for the end anchor)"
        else:
            offset, method = float(quest_offset_s), "given"
        n_s = int(np.ceil(rec_dur * STRESS_HZ))
        codes = np.full(n_s, -1, np.int16)
        used = []
        for name, s_s, e_s in known:
            code = PHASE_CODE[name.strip().lower()]
            a = min(max(int(round((s_s + offset) * STRESS_HZ)), 0), n_s)
            b = min(max(int(round((e_s + offset) * STRESS_HZ)), 0), n_s)
            codes[a:b] = code
            used.append({"phase": name, "class": STRESS_CLASSES[code], "start_s": s_s + offset,
                         "end_s": e_s + offset})
        labels["stress"] = LabelTrack("stress", "categorical", STRESS_HZ, codes, classes=STRESS_CLASSES)
        meta["phases"] = used
        meta["quest_alignment"] = {"method": method, "offset_s": round(offset, 3),
                                   "time_base": "quest.csv mm.ss from the RespiBAN start; "
                                                "E4 time = quest time + offset_s",
                                   "end_margin_s": END_MARGIN_S, "uncertainty_s": 180.0}
    readme = sorted(d.glob("*_readme.txt"))
    if readme:
        meta["subject_info"] = parse_readme(readme[0])
    return Recording(subject=subject, start_time=float(t0), streams=streams, labels=labels,
                     events=events, meta=meta, id=subject)
