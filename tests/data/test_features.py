"""The 26 LSM minute features, each checked against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from edgefm.data.features import (SLEEP_BINS_G, acc_features, clean_rr, detect_beats, detect_steps,
                                  eda_features, hrv_features, minutely_features, step_count)
from edgefm.data.lsm_signals import LSM_SIGNAL_NAMES
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import DataError, ShapeError


def _beats_from_rr(rr_s, t0=0.5):
    return t0 + np.r_[0.0, np.cumsum(rr_s)]


# ---------------------------------------------------------------- HRV

def test_hrv_matches_hand_computation():
    rng = np.random.default_rng(0)
    rr = 0.8 + 0.05 * np.sin(np.arange(1200) * 2 * np.pi / 4.3) + rng.normal(0, 0.02, 1200)
    beats = _beats_from_rr(rr)
    minutes = np.arange(3, 10) * 60.0
    h = hrv_features(beats, minutes)
    t_end = beats[1:]
    for i, m in enumerate(minutes):
        a, b = m + 30 - 150, m + 30 + 150
        sel = (t_end >= a) & (t_end < b)
        w = rr[sel] * 1000
        d = np.diff(w)  # all RRs are usable and adjacent here
        assert h["rmssd"][i] == pytest.approx(np.sqrt(np.mean(d ** 2)), rel=1e-9)
        assert h["sdnn"][i] == pytest.approx(np.std(w, ddof=1), rel=1e-9)
        assert h["pnn30"][i] == pytest.approx(100 * np.mean(np.abs(d) > 30), rel=1e-9)
        assert h["rr_mean"][i] == pytest.approx(w.mean(), rel=1e-9)
        for q, k in ((20, "rr_p20"), (50, "rr_median"), (80, "rr_p80")):
            assert h[k][i] == pytest.approx(np.percentile(w, q), rel=1e-9)
        codes = np.floor(w / 20.0)
        _, cnt = np.unique(codes, return_counts=True)
        assert h["rr_entropy"][i] == pytest.approx(stats.entropy(cnt), rel=1e-9)
        assert h["rr_pct_valid"][i] == pytest.approx(min(100.0, 100 * w.sum() / 1000 / 300), rel=1e-9)
        hm = (t_end >= m) & (t_end < m + 60)
        assert h["hr"][i] == pytest.approx(np.mean(60 / rr[hm]), rel=1e-9)


def test_rmssd_from_known_beats_exact():
    # alternating RR 800/840 ms: every successive difference is 40 ms -> RMSSD 40, pNN30 100
    rr = np.tile([0.8, 0.84], 400)
    h = hrv_features(_beats_from_rr(rr), np.array([120.0, 180.0]))
    assert np.allclose(h["rmssd"], 40.0)
    assert np.allclose(h["pnn30"], 100.0)
    assert np.allclose(h["sdnn"], 20.0, rtol=0.01)


def test_clean_rr_rejects_outliers_and_implausible():
    rr = np.full(50, 0.8)
    rr[20] = 1.6   # a missed beat
    rr[30] = 0.2   # too short
    _, _, ok = clean_rr(_beats_from_rr(rr))
    assert not ok[20] and not ok[30]
    assert ok.sum() == 48


def test_hrv_invalid_without_beats_and_bad_beats_raise():
    h = hrv_features(np.array([1.0, 1.8]), np.array([0.0, 60.0]))
    assert np.isnan(h["rmssd"]).all() and np.isnan(h["hr"]).all()
    with pytest.raises(DataError):
        clean_rr(np.array([1.0, 0.5, 2.0]))


# ---------------------------------------------------------------- PPG beats

def test_detect_beats_recovers_pulse_train():
    fs = 64.0
    rng = np.random.default_rng(1)
    rr = 0.75 + rng.normal(0, 0.02, 80)
    beats = _beats_from_rr(rr, t0=0.3)
    t = np.arange(int(beats[-1] * fs)) / fs
    j = np.searchsorted(beats, t, side="right") - 1
    phi = (t - beats[j]) / rr[np.minimum(j, len(rr) - 1)]
    x = np.exp(-((phi - 0.16) / 0.07) ** 2) + 0.25 * np.exp(-((phi - 0.42) / 0.12) ** 2)
    x += rng.normal(0, 0.02, len(t)) + 0.2 * np.sin(2 * np.pi * 0.25 * t)
    got = detect_beats(x, fs)
    peaks = beats[:-1] + 0.16 * rr  # systolic peak times
    inner = peaks[(peaks > 3) & (peaks < t[-1] - 3)]
    d = np.abs(got[:, None] - inner[None, :]).min(0)
    assert np.all(d < 2 / fs)
    hr = 60 / np.median(np.diff(got))
    assert abs(hr - 60 / np.median(rr)) < 1.0


def test_detect_beats_rejects_bad_input():
    with pytest.raises(ShapeError):
        detect_beats(np.zeros((10, 2)), 64)
    with pytest.raises(DataError):
        detect_beats(np.zeros(100), -1)
    assert detect_beats(np.full(1000, np.nan), 64).size == 0


# ---------------------------------------------------------------- ACC

def _walk(fs=32.0, seconds=60, step_hz=1.8, amp=0.2):
    t = np.arange(int(seconds * fs)) / fs
    acc = np.zeros((len(t), 3))
    acc[:, 0] = -0.9 + amp * np.cos(2 * np.pi * step_hz * t)
    acc[:, 1] = 0.3
    acc[:, 2] = 0.3 + 0.05 * np.sin(2 * np.pi * step_hz / 2 * t)
    return t, acc


def test_step_count_counts_a_known_cadence():
    _, acc = _walk(step_hz=1.8, seconds=60)
    assert abs(step_count(acc, 32.0) - 108) <= 3
    still = np.tile([0.0, 0.0, 1.0], (1920, 1)) + np.random.default_rng(0).normal(0, 0.002, (1920, 3))
    assert step_count(still, 32.0) == 0
    with pytest.raises(ShapeError):
        detect_steps(np.zeros((100, 2)), 32.0)


def test_acc_features_match_direct_computation():
    fs = 32.0
    rng = np.random.default_rng(2)
    _, acc = _walk(fs=fs, seconds=180)
    acc += rng.normal(0, 0.01, acc.shape)
    f = acc_features(acc, fs)
    assert all(v[1].all() for v in f.values())
    W = int(round(51.2 * fs))
    off = int(round(4.4 * fs))
    for m in range(3):
        w = acc[m * 1920 + off: m * 1920 + off + W]
        assert f["arm_tilt"][0][m] == pytest.approx(np.log(np.mean(np.sqrt(w[:, 0] ** 2 + w[:, 2] ** 2))), rel=1e-5)
        mag = np.linalg.norm(w, axis=1)
        assert f["kurtosis"][0][m] == pytest.approx(stats.kurtosis(mag, fisher=True), rel=1e-3)
        lam = np.linalg.eigvalsh(np.cov(w.T))
        assert f["cov_condition"][0][m] == pytest.approx(np.log(lam[-1] / lam[0]), rel=1e-3)
        rs = (w.max(0) - w.min(0)).sum()
        assert f["sleep_coef"][0][m] == np.clip(np.digitize(rs, SLEEP_BINS_G[1:-1]), 0, 15)
        # PC1 of the band-passed signal is the 1.8 Hz step oscillation: crossings every 1/3.6 s
        assert f["zc_mean"][0][m] == pytest.approx(1 / 3.6, rel=0.03)
        assert abs(f["steps"][0][m] - 108) <= 3


def test_acc_features_invalid_where_data_missing():
    fs = 32.0
    _, acc = _walk(fs=fs, seconds=240)
    valid = np.ones(len(acc), bool)
    valid[1920:1920 + 600] = False       # minute 1 loses 31 % of its samples
    acc[1920:1920 + 600] = np.nan
    f = acc_features(acc, fs, valid)
    for k, (v, ok) in f.items():
        assert ok[0] and ok[2] and ok[3], k
        assert not ok[1] and np.isnan(v[1]), k


def test_eda_features_linear_ramp():
    fs = 4.0
    t = np.arange(int(600 * fs)) / fs
    eda = 2.0 + 0.5 * t / 60.0           # 0.5 uS per minute
    f = eda_features(eda, fs, np.ones_like(eda, bool), 10)
    val, ok = f["scl_slope"]
    assert ok[1:-1].all()
    assert np.allclose(val[1:-1], 0.5, atol=0.01)
    assert np.allclose(f["scl_value"][0][1:-1], 2.0 + 0.5 * (np.arange(1, 9) + 0.5), atol=0.02)


# ---------------------------------------------------------------- the recording

def _recording(minutes=10, with_eda=True):
    fs = 32.0
    _, acc = _walk(fs=fs, seconds=minutes * 60)
    streams = {f"acc_{a}": Stream(ChannelSpec(f"acc_{a}", "acc", "g", fs), acc[:, i]) for i, a in enumerate("xyz")}
    if with_eda:
        streams["eda"] = Stream(ChannelSpec("eda", "eda", "uS", 4.0), np.full(minutes * 240, 3.0))
    temp = np.full(minutes * 60, 33.0)
    temp[120:180] = np.nan  # minute 2 missing
    streams["temp"] = Stream(ChannelSpec("temp", "temp", "degC", 1.0), temp)
    beats = _beats_from_rr(np.full(int(minutes * 60 / 0.8) - 2, 0.8))
    act = np.repeat(np.array([2, 2, 1, 1, 1, 0, 0, 0, 0, 0]), 60)[: minutes * 60]
    labels = {"activity": LabelTrack("activity", "categorical", 1.0, act, classes=("a", "b", "c")),
              "hr": LabelTrack("hr", "continuous", 1.0, np.linspace(60, 70, minutes * 60), unit="bpm")}
    return Recording("s1", 0.0, streams, labels, {"beats": beats})


def test_minutely_features_channels_masks_and_labels():
    rec = minutely_features(_recording())
    assert tuple(rec.streams) == LSM_SIGNAL_NAMES
    assert all(s.spec.fs_hz == pytest.approx(1 / 60) for s in rec.streams.values())
    assert all(s.n == 10 for s in rec.streams.values())
    hr = rec.streams["f_hr"]
    assert hr.valid.all() and np.allclose(hr.data, 75.0, atol=0.01)
    rm = rec.streams["f_rmssd"]
    assert np.allclose(rm.data[rm.valid], 0.0, atol=1e-6) and rm.valid[2:-2].all()
    assert not rec.streams["f_alt_std"].valid.any()           # no altimeter -> invalid
    st = rec.streams["f_skin_temp"]
    assert not st.valid[2] and st.valid[[0, 1, 3]].all() and np.isnan(st.data[2])
    assert rec.streams["f_scl_value"].valid.all()
    assert rec.labels["activity"].values[0] == 2 and rec.labels["activity"].values[-1] == 0
    assert rec.labels["hr"].values[0] == pytest.approx(np.linspace(60, 70, 600)[:60].mean(), rel=1e-5)


def test_minutely_features_missing_modalities_and_short_recording():
    rec = _recording(with_eda=False)
    rec.events.pop("beats")
    out = minutely_features(rec)
    for name in ("f_hr", "f_rmssd", "f_scl_value", "f_scl_slope", "f_on_wrist"):
        assert not out.streams[name].valid.any(), name
    assert out.streams["f_steps"].valid.all()
    short = Recording("s", 0.0, {"temp": Stream(ChannelSpec("temp", "temp", "degC", 1.0), np.ones(30))})
    with pytest.raises(DataError):
        minutely_features(short)


def test_on_wrist_from_ppg_validity():
    fs = 32.0
    valid = np.ones(int(180 * fs), bool)
    valid[int(70 * fs):int(100 * fs)] = False     # off-wrist inside minute 1
    ppg = Stream(ChannelSpec("ppg", "ppg", "a.u.", fs), np.zeros(len(valid)), valid)
    out = minutely_features(Recording("s", 0.0, {"ppg": ppg}))
    ow = out.streams["f_on_wrist"]
    assert ow.valid.all() and ow.data.tolist() == [1.0, 0.0, 1.0]
