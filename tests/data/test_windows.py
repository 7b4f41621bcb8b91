"""Windowing and resampling (edgefm.data.windows) against independent computations."""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.windows import (LSM_MINUTELY, WRIST_RAW, Preset, get_preset, resample_stream, window_recording,
                                 window_recordings)
from edgefm.errors import ConfigError, DataError, ShapeError


def wrist_rec(dur_s: float, fs_ppg=64.0, fs_acc=32.0, seed=0, subject="a", labels=None) -> Recording:
    rng = np.random.default_rng(seed)
    streams = {"ppg": Stream(ChannelSpec("ppg", "ppg", "a.u.", fs_ppg), rng.normal(size=int(dur_s * fs_ppg)))}
    for a in "xyz":
        streams[f"acc_{a}"] = Stream(ChannelSpec(f"acc_{a}", "acc", "g", fs_acc), rng.normal(size=int(dur_s * fs_acc)))
    return Recording(subject, 1000.0, streams, labels or {})


@pytest.mark.parametrize("dur_s,expected", [(7.9, 0), (8.0, 1), (9.9, 1), (10.0, 2), (100.0, 47), (303.5, 148)])
def test_window_counts_for_known_lengths(dur_s, expected):
    w = window_recording(wrist_rec(dur_s), "wrist-raw")
    assert len(w) == expected == max(0, int(np.floor((dur_s - 8) / 2 + 1e-9)) + 1 if dur_s >= 8 else 0)
    assert w.x.shape == (expected, 4, 256) and w.mask.shape == w.x.shape
    if expected:
        np.testing.assert_allclose(w.start_time, 1000.0 + 2.0 * np.arange(expected))
        assert w.channel_names == ("ppg", "acc_x", "acc_y", "acc_z")


def test_native_rate_channel_is_copied_exactly():
    rec = wrist_rec(20)
    w = window_recording(rec, "wrist-raw")
    np.testing.assert_array_equal(w.x[1, 1], rec.streams["acc_x"].data[64:64 + 256])


def test_label_aggregation_mean_and_majority():
    n = 30  # 1 Hz labels over 30 s
    hr = np.arange(n, dtype=float) + 60
    hr[10:14] = np.nan
    act = np.full(n, -1)
    act[:5], act[5:20], act[20:] = 0, 2, 1
    rec = wrist_rec(30, labels={
        "hr": LabelTrack("hr", "continuous", 1.0, hr, unit="bpm"),
        "activity": LabelTrack("activity", "categorical", 1.0, act, classes=("a", "b", "c"))})
    w = window_recording(rec, "wrist-raw")
    for i in range(len(w)):
        seg = hr[2 * i:2 * i + 8]
        want = np.nanmean(seg) if np.isfinite(seg).any() else np.nan
        np.testing.assert_allclose(w.labels["hr"][i], want, rtol=1e-6)
        seg_a = act[2 * i:2 * i + 8]
        vals, cnt = np.unique(seg_a[seg_a >= 0], return_counts=True)
        assert w.labels["activity"][i] == vals[np.argmax(cnt)]
    assert w.label_info["activity"]["classes"] == ["a", "b", "c"]


def test_unknown_labels_stay_unknown():
    rec = wrist_rec(16, labels={"hr": LabelTrack("hr", "continuous", 1.0, np.full(16, np.nan)),
                                "freeze": LabelTrack("freeze", "categorical", 1.0, np.full(16, -1), classes=("no", "yes"))})
    w = window_recording(rec, "wrist-raw")
    assert np.isnan(w.labels["hr"]).all() and (w.labels["freeze"] == -1).all()


def tone(f_hz, fs, dur_s, amp=1.0):
    t = np.arange(int(dur_s * fs)) / fs
    return amp * np.sin(2 * np.pi * f_hz * t)


@pytest.mark.parametrize("fs_in", [64.0, 125.0, 128.0])
def test_resampling_antialiasing(fs_in):
    """A tone above the new Nyquist (16 Hz at 32 Hz) is attenuated; a tone inside passes."""
    dur = 20.0
    hi = resample_stream(Stream(ChannelSpec("acc_x", "acc", "g", fs_in), tone(24.0, fs_in, dur)), 32.0)
    lo = resample_stream(Stream(ChannelSpec("acc_x", "acc", "g", fs_in), tone(3.0, fs_in, dur)), 32.0)
    core = slice(64, -64)  # away from the edges
    rms = lambda x: float(np.sqrt(np.mean(x[core] ** 2)))
    assert hi.spec.fs_hz == 32.0 and hi.n == int(np.floor(dur * fs_in * 32.0 / fs_in))
    assert rms(hi.data) < 0.05 * (1 / np.sqrt(2))  # aliasing would leave an 8 Hz tone at full power
    assert rms(lo.data) == pytest.approx(1 / np.sqrt(2), rel=0.02)
    t = np.arange(lo.n) / 32.0
    np.testing.assert_allclose(lo.data[core], np.sin(2 * np.pi * 3.0 * t)[core], atol=0.02)


def test_mask_propagates_through_resampling():
    fs_in = 128.0
    x = tone(2.0, fs_in, 30)
    valid = np.ones(x.size, bool)
    valid[1280:1920] = False  # 10 s .. 15 s missing
    x[~valid] = 1e6  # garbage under the mask must not leak anywhere
    s = resample_stream(Stream(ChannelSpec("ppg", "ppg", "a.u.", fs_in), x, valid), 32.0)
    t = np.arange(s.n) / 32.0
    assert not s.valid[(t >= 10) & (t < 15)].any()
    assert s.valid[(t < 9.5) | (t >= 15.5)].all()
    assert np.isnan(s.data[~s.valid]).all()
    assert np.abs(s.data[s.valid]).max() < 1.1  # the 1e6 values did not bleed through the filter
    rec = Recording("a", 0.0, {"ppg": s})
    w = window_recording(dataclasses.replace(rec), Preset("p", (ChannelSpec("ppg", "ppg", "a.u.", 32.0),), 32.0, 8.0, 2.0))
    m = w.mask[:, 0]
    assert (w.x[:, 0][~m] == 0).all()  # missing positions hold 0.0


def test_absent_channel_is_all_missing_and_min_valid_drops():
    rec = wrist_rec(40)
    del rec.streams["ppg"]
    w = window_recording(rec, "wrist-raw")  # 3 of 4 channels observed = 0.75 >= 0.5
    assert len(w) == 17 and not w.mask[:, 0].any() and w.mask[:, 1:].all()
    for a in "xyz":
        rec.streams[f"acc_{a}"].valid[:] = False
        rec.streams[f"acc_{a}"].valid[:32 * 10] = True  # first 10 s observed
    w = window_recording(rec, "wrist-raw")
    # window observed fraction = 3 channels * overlap(window, [0, 10 s)) / (4 * 8 s) must be >= 0.5
    starts = np.arange(17) * 2.0
    frac = 3 * np.clip(10 - starts, 0, 8) / 32
    assert len(w) == int((frac >= 0.5).sum()) == 3


def test_window_recordings_concat_and_presets():
    w = window_recordings([wrist_rec(20, subject="a"), wrist_rec(12, subject="b", seed=1)], "wrist-raw")
    assert len(w) == 7 + 3 and list(w.subject) == ["a"] * 7 + ["b"] * 3
    assert get_preset("wrist-raw") is WRIST_RAW and get_preset(LSM_MINUTELY) is LSM_MINUTELY
    assert WRIST_RAW.window == 256 and WRIST_RAW.hop == 64
    assert LSM_MINUTELY.window == 300 and LSM_MINUTELY.hop == 60 and len(LSM_MINUTELY.channels) == 26
    with pytest.raises(ConfigError):
        get_preset("nope")
    with pytest.raises(ConfigError):
        Preset("bad", WRIST_RAW.channels, 32.0, 8.01, 2.0)


def test_stream_and_track_validation():
    with pytest.raises(ShapeError):
        Stream(ChannelSpec("a", "acc", "g", 32.0), np.zeros((3, 2)))
    with pytest.raises(ShapeError):
        Stream(ChannelSpec("a", "acc", "g", 32.0), np.zeros(3), np.ones(4, bool))
    with pytest.raises(DataError):
        ChannelSpec("a", "acc", "g", float("nan"))
    with pytest.raises(DataError):
        LabelTrack("x", "categorical", 1.0, np.array([0, 3]), classes=("a", "b"))
    s = Stream(ChannelSpec("a", "acc", "g", 32.0), np.array([1.0, np.inf, np.nan, 2.0]))
    assert s.valid.tolist() == [True, False, False, True]


def test_wesad_windows_both_presets(shared_data, tmp_path_factory):
    """Real data through both presets: wrist-raw windows from WESAD; lsm-minutely features."""
    from edgefm.data.importers import import_dataset
    from edgefm.data.store import read_recordings

    p = import_dataset("e4", shared_data / "wesad_e4" / "S5", tmp_path_factory.mktemp("w") / "s5")
    rec = next(read_recordings(p))
    w = window_recording(rec, "wrist-raw")
    assert len(w) == (int(np.floor(rec.duration_s * 32)) - 256) // 64 + 1
    # E4 BVP at 64 Hz was anti-alias resampled to 32 Hz: its spectrum above 16 Hz is gone, the pulse stays
    ppg = w.x[w.labels["stress"] == 0][:, 0]
    assert ppg.std() > 1.0
    if importlib.util.find_spec("edgefm.data.features") is None:
        pytest.skip("edgefm.data.features (the minute features) is not in this tree yet")
    # A WESAD session (~2 h) is shorter than one 300-minute window: lsm-minutely pads it (missing)
    wm = window_recording(rec, LSM_MINUTELY)
    assert len(wm) == 1 and wm.x.shape == (1, 26, 300)
    minutes = int(np.floor(rec.duration_s / 60))
    assert not wm.mask[0, :, minutes + 1:].any()  # the padding is missing, never invented
    names = [c.name for c in LSM_MINUTELY.channels]
    assert wm.mask[0, names.index("f_steps"), :minutes - 1].all()  # ACC features every minute
    assert not wm.mask[0, names.index("f_alt_std")].any()  # the E4 has no altimeter
    assert 0.2 <= wm.mask.mean() <= 0.5


def test_pad_short_only_when_asked():
    short = wrist_rec(5.0)
    assert len(window_recording(short, "wrist-raw")) == 0
    padded = dataclasses.replace(WRIST_RAW, name="pad", pad_short=True, min_valid=0.5)
    w = window_recording(short, padded)
    assert len(w) == 1 and w.mask[0, :, :160].all() and not w.mask[0, :, 160:].any()
    assert (w.x[0, :, 160:] == 0).all()
    assert len(window_recording(wrist_rec(3.0), padded)) == 0  # 3/8 observed < min_valid
    assert len(window_recording(wrist_rec(20.0), padded)) == 7  # long recordings: no padding
