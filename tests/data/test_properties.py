"""Property-based tests: malformed files and arrays get a typed error or a correct result, never a crash."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from edgefm.data.importers import import_dataset
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.store import read_recordings
from edgefm.data.windows import Preset, resample_stream, window_recording
from edgefm.errors import EdgefmError

SETTINGS = settings(max_examples=35, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _import(fmt, write, **kw):
    """Write files with ``write(dir)`` and import; returns the recordings or the typed error."""
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = write(d)
        try:
            p = import_dataset(fmt, src, d / "out", **kw)
        except EdgefmError as e:
            assert e.one_line()  # a message, possibly with path/field
            assert not (d / "out").exists()  # nothing half-written
            return e
        return list(read_recordings(p, mmap=False))


# ------------------------------------------------------------------ E4 CSV text

GOOD_ACC = "1500000000, 1500000000, 1500000000\n32, 32, 32\n" + "1,2,64\n" * 400
TOKENS = st.sampled_from(["", ",", "\n", "nan", "inf", "-", "1e400", "abc", "1,2", "\x00", ";", " ", "3.5", "64"])


def _e4_folder(d: Path, acc_text: str | bytes) -> Path:
    e4 = d / "S1" / "S1_E4_Data"
    e4.mkdir(parents=True)
    (e4 / "ACC.csv").write_bytes(acc_text if isinstance(acc_text, bytes) else acc_text.encode("utf-8", "replace"))
    (e4 / "BVP.csv").write_text("1500000000\n64\n" + "0.5\n" * 800)
    return d


@SETTINGS
@given(cut=st.integers(0, len(GOOD_ACC)), pos=st.integers(0, len(GOOD_ACC)), junk=st.lists(TOKENS, max_size=4))
def test_e4_corrupted_acc_gets_typed_error_or_exact_values(cut, pos, junk):
    text = GOOD_ACC[:pos] + "".join(junk) + GOOD_ACC[pos:cut] if pos < cut else GOOD_ACC[:cut]
    out = _import("e4", lambda d: _e4_folder(d, text))
    if isinstance(out, EdgefmError):
        return
    rec = out[0]
    z = rec.streams["acc_z"]
    # whatever was accepted: every valid z sample is one of the file's values (64/64 g), nothing invented
    assert np.all(z.data[z.valid] == 1.0) or junk
    assert np.isfinite(z.data[z.valid]).all() and np.isnan(z.data[~z.valid]).all()
    assert rec.streams["ppg"].n == 800


@SETTINGS
@given(blob=st.binary(max_size=300))
def test_e4_random_bytes(blob):
    _import("e4", lambda d: _e4_folder(d, blob))


# ------------------------------------------------------------------ Daphnet rows

@SETTINGS
@given(n=st.integers(1, 300), jitter=st.lists(st.integers(-20, 40), min_size=0, max_size=5),
       where=st.lists(st.integers(0, 299), min_size=0, max_size=5),
       labels=st.lists(st.integers(-1, 3), min_size=1, max_size=8),
       nan_at=st.lists(st.integers(0, 299), max_size=3))
def test_daphnet_random_times_and_labels(n, jitter, where, labels, nan_at):
    t = np.round(15 + np.arange(n) * 15.625)
    for w, j in zip(where, jitter):
        if w < n:
            t[w:] += j  # shifts: gaps (positive) or backwards jumps (negative)
    lab = np.resize(np.array(labels), n)
    rows = []
    for k in range(n):
        vals = ["nan" if k in nan_at else "100"] + ["-1000"] * 8
        rows.append(f"{int(t[k])} " + " ".join(vals) + f" {lab[k]}")

    def write(d):
        (d / "S01R01.txt").write_text("\n".join(rows) + "\n")
        return d / "S01R01.txt"
    out = _import("daphnet", write)
    if isinstance(out, EdgefmError):
        return
    rec = out[0]
    s = rec.streams["acc_x"]
    assert s.valid.sum() == n - len({k for k in nan_at if k < n})  # every row kept, NaN rows missing
    assert np.all(s.data[s.valid] == pytest.approx(0.1))
    fr = rec.labels["freeze"].values
    assert fr.size == s.n and set(np.unique(fr)) <= {-1, 0, 1}
    assert (fr == 1).sum() == (lab == 2).sum() and (fr == 0).sum() == (lab == 1).sum()


# ------------------------------------------------------------------ smartwatch HAR timestamps

@SETTINGS
@given(steps=st.lists(st.integers(-5, 150), min_size=1, max_size=120),
       bad_cell=st.one_of(st.none(), st.sampled_from(["", "nan", "x", "1e999"])))
def test_har_irregular_timestamps(steps, bad_cell):
    t = 1_000_000 + np.cumsum([0] + steps)
    v = np.arange(t.size, dtype=float)
    lines = ["x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label"]
    for k in range(t.size):
        cell = bad_cell if (bad_cell is not None and k == t.size // 2) else f"{v[k]}"
        lines.append(f"{cell},0,9.80665,0,0,0,{t[k]},SEATED")

    def write(d):
        (d / "s01").mkdir()
        (d / "s01" / "s01_01_sw.csv").write_text("\n".join(lines) + "\n")
        return d
    out = _import("sp-sw-har", write)
    if isinstance(out, EdgefmError):
        return
    assert (np.diff(t) >= 0).all()  # backwards timestamps must have been refused
    rec = out[0]
    s = rec.streams["acc_x"]
    # valid samples are the linear interpolation of the (duplicate-averaged) rows: within the row range
    x_g = s.data[s.valid] * 9.80665
    assert np.all(x_g >= -1e-3) and np.all(x_g <= v.max() + 1e-3)
    g = rec.start_time + np.arange(s.n) / 100.0
    ok = s.valid
    if ok.any() and bad_cell is None:
        ut = np.unique(t / 1000.0)
        uv = np.array([v[(t / 1000.0) == u].mean() for u in ut])
        np.testing.assert_allclose(x_g, np.interp(g[ok], ut, uv), atol=1e-3)


# ------------------------------------------------------------------ TROIKA .mat

@SETTINGS
@given(blob=st.binary(max_size=400), shape=st.tuples(st.integers(0, 8), st.integers(0, 2000)))
def test_troika_random_mat(blob, shape):
    def write(d):
        (d / "Training_data").mkdir()
        (d / "Training_data/DATA_01_TYPE01.mat").write_bytes(blob)
        sio.savemat(str(d / "Training_data/DATA_01_TYPE01_BPMtrace.mat"), {"BPM0": np.full((3, 1), 80.0)})
        return d
    assert isinstance(_import("troika", write), EdgefmError)

    def write2(d):
        (d / "Training_data").mkdir()
        sio.savemat(str(d / "Training_data/DATA_01_TYPE01.mat"), {"sig": np.ones(shape)})
        sio.savemat(str(d / "Training_data/DATA_01_TYPE01_BPMtrace.mat"), {"BPM0": np.full((3, 1), 80.0)})
        return d
    out = _import("troika", write2)
    if not isinstance(out, EdgefmError):
        assert shape[0] == 6 or shape[1] == 6


# ------------------------------------------------------------------ windowing and resampling

FS = st.sampled_from([1.0, 4.0, 25.0, 32.0, 50.0, 64.0, 100.0, 125.0, 128.0])


@SETTINGS
@given(fs=FS, n=st.integers(0, 1500), data=st.data())
def test_resample_keeps_missing_missing(fs, n, data):
    x = data.draw(hnp.arrays(np.float64, n, elements=st.one_of(
        st.floats(-1e3, 1e3), st.just(np.nan), st.just(np.inf))))
    s = Stream(ChannelSpec("ppg", "ppg", "a.u.", fs), x)
    try:
        r = resample_stream(s, 32.0)
    except EdgefmError:
        return
    assert r.spec.fs_hz == 32.0 and r.n == int(np.floor(n * 32.0 / fs + 1e-9)) or abs(fs - 32) < 1e-9
    assert np.isfinite(r.data[r.valid]).all() and np.isnan(r.data[~r.valid]).all()
    if not s.valid.any():
        assert not r.valid.any()


@SETTINGS
@given(dur=st.floats(0, 40), fs=FS, win=st.sampled_from([(4.0, 1.0), (8.0, 2.0), (2.0, 2.0)]),
       min_valid=st.sampled_from([0.0, 0.5, 1.0]), data=st.data())
def test_window_recording_shapes_and_masks(dur, fs, win, min_valid, data):
    n = int(dur * fs)
    x = data.draw(hnp.arrays(np.float64, n, elements=st.one_of(st.floats(-50, 50), st.just(np.nan))))
    labels = data.draw(hnp.arrays(np.int64, int(dur) + 1, elements=st.integers(-1, 2)))
    rec = Recording("s", 0.0, {"acc_x": Stream(ChannelSpec("acc_x", "acc", "g", fs), x)},
                    {"activity": LabelTrack("activity", "categorical", 1.0, labels, classes=("a", "b", "c"))})
    preset = Preset("p", (ChannelSpec("acc_x", "acc", "g", 8.0), ChannelSpec("acc_y", "acc", "g", 8.0)),
                    8.0, win[0], win[1], min_valid=min_valid)
    try:
        w = window_recording(rec, preset)
    except EdgefmError:
        return
    N = len(w)
    n8 = int(np.floor(rec.duration_s * 8 + 1e-6))
    most = 0 if n8 < preset.window else (n8 - preset.window) // preset.hop + 1
    assert N <= most and w.x.shape == (N, 2, preset.window)
    assert not w.mask[:, 1].any()  # absent channel: all missing
    assert (w.x[~w.mask] == 0).all() and np.isfinite(w.x).all()
    if N:
        assert (w.mask.mean((1, 2)) >= min_valid - 1e-9).all()
        assert set(np.unique(w.labels["activity"])) <= {-1, 0, 1, 2}
    if min_valid == 0.0:
        assert N == most


# ------------------------------------------------------------------ data model construction

ANY_ARRAY = st.one_of(
    hnp.arrays(st.sampled_from([np.float64, np.float32, np.int64, np.int8, np.bool_]),
               hnp.array_shapes(min_dims=1, max_dims=2, max_side=20)),
    st.lists(st.text(max_size=3), max_size=5).map(np.array))


@SETTINGS
@given(values=ANY_ARRAY, kind=st.sampled_from(["continuous", "categorical", "ordinal"]),
       classes=st.sampled_from([(), ("a", "b"), ("a", "b", "c", "d")]), fs=st.floats(-1, 100))
def test_label_track_typed_error_or_valid(values, kind, classes, fs):
    try:
        lt = LabelTrack("x", kind, fs, values, classes=classes)
    except EdgefmError:
        return
    assert lt.values.ndim == 1 and fs > 0 and kind in ("continuous", "categorical")
    if kind == "categorical":
        v = np.asarray(values, np.float64)
        known = np.isfinite(v) & (v >= 0)
        assert lt.values.dtype == np.int16
        np.testing.assert_array_equal(lt.values[known], v[known])  # codes kept exactly
        assert (lt.values[~known] == -1).all()
        if classes:
            assert lt.values.max(initial=-1) < len(classes)
    else:
        assert lt.values.dtype == np.float32


@SETTINGS
@given(data=ANY_ARRAY, fs=st.floats(allow_nan=True, allow_infinity=True))
def test_stream_typed_error_or_valid(data, fs):
    try:
        s = Stream(ChannelSpec("ppg", "ppg", "a.u.", fs), data)
    except EdgefmError:
        return
    assert s.data.ndim == 1 and s.data.dtype == np.float32 and s.spec.fs_hz > 0
    assert (s.valid == np.isfinite(s.data)).all()


# ------------------------------------------------------------------ generic CSV

@SETTINGS
@given(fs=st.sampled_from([1.0, 10.0, 50.0, -1.0, 0.0]), unit=st.sampled_from(["s", "ms", "us", "min"]),
       n=st.integers(0, 60), cell=st.one_of(st.none(), st.sampled_from(["", "nan", "x", "inf", "1e999"])),
       drop_col=st.booleans())
def test_csv_mapping_and_cells(fs, unit, n, cell, drop_col):
    rows = ["t,a"] + [f"{k * 100},{'%s' % cell if (cell is not None and k == n // 2) else k}" for k in range(n)]

    def write(d):
        (d / "r.csv").write_text("\n".join(rows).replace(",a", ",b" if drop_col else ",a") + "\n")
        return d / "r.csv"
    mp = {"fs_hz": fs, "timestamp": "t", "timestamp_unit": unit,
          "columns": {"a": {"channel": "acc_x", "modality": "acc", "unit": "g"}}}
    out = _import("csv", write, mapping=mp)
    if isinstance(out, EdgefmError):
        return
    assert fs == 10.0 and unit == "ms" and not drop_col and n >= 2  # the only consistent set-up
    s = out[0].streams["acc_x"]
    assert s.n == n and s.spec.fs_hz == 10.0
    ok = s.valid
    np.testing.assert_allclose(s.data[ok], np.arange(n)[ok])  # exact values where observed
    assert ok.sum() >= n - 1
