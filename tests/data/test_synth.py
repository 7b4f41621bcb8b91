"""The synthetic cohort: reproducible, physiologically coupled, no HR tone in ACC."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from edgefm.data import synth
from edgefm.data.features import detect_beats
from edgefm.data.store import WindowDataset, info, read_recordings
from edgefm.data.synth import (ACTIVITY_CLASSES, SynthConfig, iter_acc_trace, synth_acc_trace,
                               synthesize_recording)
from edgefm.errors import ConfigError

CFG = SynthConfig(subjects=6, days=0.5, seed=3, raw_minutes=4.0, freezing_fraction=0.5)


@pytest.fixture(scope="module")
def lats():
    return [synth._latent(CFG, i) for i in range(CFG.subjects)]


def _rest_starts(lat, codes=(synth.SLEEP, synth.SEDENTARY), k=4, seconds=60):
    ok = np.isin(lat.code, codes) & ~lat.charging & ~lat.offwrist & (lat.gesture == 0)
    idx = np.flatnonzero(ok[: lat.n1 - seconds])
    good = [int(s) for s in idx[:: max(1, len(idx) // k)] if ok[s:s + seconds].all()]
    return good[:k]


# ---------------------------------------------------------------- reproducibility

def test_same_seed_same_arrays_and_slices_match_the_whole():
    a = synthesize_recording(CFG, 1, 3000, 120)
    b = synthesize_recording(CFG, 1, 3000, 120)
    for k in a.streams:
        np.testing.assert_array_equal(a.streams[k].data, b.streams[k].data)
    np.testing.assert_array_equal(a.events["beats"], b.events["beats"])
    # a slice holds exactly the samples of the longer recording it belongs to
    big = synthesize_recording(CFG, 1, 2940, 300, parts=("acc", "eda"))
    for k in ("acc_x", "acc_y", "acc_z"):
        np.testing.assert_array_equal(a.streams[k].data, big.streams[k].data[60 * 32:180 * 32])
    np.testing.assert_array_equal(a.streams["eda"].data, big.streams["eda"].data[240:720])
    other = synthesize_recording(dataclasses.replace(CFG, seed=4), 1, 3000, 120)
    assert not np.array_equal(a.streams["acc_x"].data, other.streams["acc_x"].data)


def test_config_validates():
    for bad in (dict(subjects=0), dict(days=-1), dict(seed=-2), dict(freezing_fraction=1.5),
                dict(fs_hz=10.0), dict(raw_minutes=1e9), dict(acc_noise_g=float("nan"))):
        with pytest.raises(ConfigError):
            SynthConfig(**bad)
    with pytest.raises(ConfigError):
        synthesize_recording(CFG, 99)
    with pytest.raises(ConfigError):
        synthesize_recording(CFG, 0, parts=("ecg",))


# ---------------------------------------------------------------- heart

def test_hr_label_is_60_over_rr_of_the_beats(lats):
    rec = synthesize_recording(CFG, 0, 600, 300, _lat=lats[0])
    beats, hr = rec.events["beats"], rec.labels["hr"].values
    t = np.arange(len(hr)) + 0.0
    j = np.searchsorted(beats, t, side="right") - 1
    ok = (j >= 0) & (j < len(beats) - 1)
    np.testing.assert_allclose(hr[ok], 60.0 / (beats[j[ok] + 1] - beats[j[ok]]), rtol=1e-5)
    assert np.isfinite(hr[5:-5]).all()
    # rmssd label: RMSSD of RRs ending within +-30 s
    rr = np.diff(beats) * 1000
    i = 150
    sel = (beats[2:] >= i - 30) & (beats[2:] < i + 30)
    assert rec.labels["rmssd"].values[i] == pytest.approx(np.sqrt(np.mean(np.diff(rr)[sel] ** 2)), rel=1e-4)


def test_activity_intensity_drives_hr(lats):
    by = {c: [] for c in range(7)}
    for lat in lats:
        hr = synth.hr_label_from_beats(lat.beats, lat.n1)
        for c in range(7):
            m = lat.code == c
            if m.sum() > 300:
                by[c].append(np.nanmean(hr[m]) - lat.traits["hr_rest"])
    mean = {ACTIVITY_CLASSES[c]: np.mean(v) for c, v in by.items() if v}
    assert mean["sleep"] < mean["sedentary"] < mean["walking"]
    if "running" in mean:
        assert mean["running"] > mean["walking"] + 20
    # HR lags intensity: after walking starts HR keeps rising for tens of seconds
    lat = lats[0]
    hr = synth.hr_label_from_beats(lat.beats, lat.n1)
    rises = []
    for a, b in synth._segments_of(lat.code, synth.WALKING):
        if b - a > 240 and a > 120 and (lat.code[a - 120:a] == synth.SEDENTARY).all():
            rises.append(np.nanmean(hr[a + 150:a + 180]) - np.nanmean(hr[a:a + 10]))
    assert rises and np.mean(rises) > 5


def test_hrv_falls_with_exercise_and_is_physiological(lats):
    rm_rest, rm_walk = [], []
    for lat in lats:
        rm = synth.rmssd_label_from_beats(lat.beats, lat.n1)
        rm_rest.append(np.nanmedian(rm[lat.code == synth.SLEEP]))
        if (lat.code == synth.WALKING).sum() > 300:
            rm_walk.append(np.nanmedian(rm[lat.code == synth.WALKING]))
    assert 10 < np.median(rm_rest) < 100          # ms, resting RMSSD of adults
    assert np.median(rm_walk) < np.median(rm_rest)


# ---------------------------------------------------------------- PPG and ACC

def test_ppg_peak_detection_recovers_hr_at_rest(lats):
    errs = []
    for i, lat in enumerate(lats):
        for s in _rest_starts(lat, k=3):
            rec = synthesize_recording(CFG, i, s, 60, parts=("ppg",), _lat=lat)
            p = rec.streams["ppg"]
            b = detect_beats(p.data, p.spec.fs_hz, p.valid)
            errs.append(abs(60 / np.median(np.diff(b)) - np.nanmean(rec.labels["hr"].values)))
    errs = np.array(errs)
    assert len(errs) >= 8
    assert np.median(errs) < 2.0 and np.mean(errs < 5) >= 0.9


def _acc_hr_hits(cfg, lats, seconds):
    """Share of rest windows whose ACC spectral peak (0.7-3.3 Hz) lies within 5 bpm of HR."""
    hits = []
    for i, lat in enumerate(lats):
        for s in _rest_starts(lat, k=4, seconds=seconds):
            rec = synthesize_recording(cfg, i, s, seconds, parts=("acc",), _lat=lat if cfg is CFG else None)
            a = np.stack([rec.streams[k].data for k in ("acc_x", "acc_y", "acc_z")], 1)
            a = (a - a.mean(0)) * np.hanning(len(a))[:, None]
            P = (np.abs(np.fft.rfft(a, n=8192, axis=0)) ** 2).sum(1)
            f = np.fft.rfftfreq(8192, 1 / cfg.fs_hz)
            band = (f > 0.7) & (f < 3.3)
            hits.append(abs(f[band][P[band].argmax()] * 60 - np.nanmean(rec.labels["hr"].values)) < 5)
    return np.array(hits)


def test_acc_carries_no_clean_hr_tone(lats):
    hits = _acc_hr_hits(CFG, lats, 8)
    chance = 10 / (3.3 - 0.7) / 60   # a 10 bpm-wide hit window in a 156 bpm band: 6.4 %
    assert len(hits) >= 15
    assert hits.mean() < 3 * chance, f"ACC spectral peak finds HR in {hits.mean():.0%} of rest windows"


def test_bcg_is_faint_and_physically_bounded(lats):
    # same seed with and without BCG: the difference is the BCG itself (plus rounding)
    no_bcg = dataclasses.replace(CFG, bcg_g=0.0)
    s = _rest_starts(lats[2], k=1)[0]
    a = synthesize_recording(CFG, 2, s, 60, parts=("acc",))
    b = synthesize_recording(no_bcg, 2, s, 60, parts=("acc",))
    d = a.streams["acc_y"].data - b.streams["acc_y"].data
    assert np.abs(d).max() <= CFG.bcg_g + 1.5 * CFG.acc_lsb_g
    assert np.std(d) < np.std(a.streams["acc_y"].data - a.streams["acc_y"].data.mean())
    np.testing.assert_array_equal(a.streams["acc_x"].data, b.streams["acc_x"].data)


def test_freezing_episodes_have_3_to_8_hz_power():
    cfg = SynthConfig(subjects=2, days=0.5, seed=5, raw_minutes=0.0, freezing_fraction=1.0)
    lat = synth._latent(cfg, 0)
    segs = [(a, b) for a, b in synth._segments_of(lat.code, synth.FREEZING) if b - a >= 4
            and not lat.charging[a:b].any()]
    assert segs, "a FoG subject has freezing episodes in half a day"
    share_fog, share_walk = [], []
    for a, b in segs[:6]:
        rec = synthesize_recording(cfg, 0, a, b - a, parts=("acc",), _lat=lat)
        share_fog.append(_band_share(rec, 3, 8))
    for a, b in synth._segments_of(lat.code, synth.WALKING)[:6]:
        rec = synthesize_recording(cfg, 0, a, min(b - a, 30), parts=("acc",), _lat=lat)
        share_walk.append(_band_share(rec, 3, 8))
    assert np.median(share_fog) > 0.5
    assert np.median(share_fog) > np.median(share_walk) + 0.2
    assert (lat.freeze[lat.code == synth.FREEZING] == 1).all()
    assert (lat.freeze[lat.code != synth.FREEZING] == 0).all()


def _band_share(rec, lo, hi):
    a = np.stack([rec.streams[k].data for k in ("acc_x", "acc_y", "acc_z")], 1)
    a = a - a.mean(0)
    P = (np.abs(np.fft.rfft(a, axis=0)) ** 2).sum(1)
    f = np.fft.rfftfreq(len(a), 1 / rec.streams["acc_x"].spec.fs_hz)
    keep = f > 0.3
    return P[(f >= lo) & (f <= hi)].sum() / P[keep].sum()


def test_missingness_is_marked_not_imputed(lats):
    lat = next(la for la in lats if la.charging.any() and la.offwrist.any())
    i = lat.traits["index"]
    a, b = synth._segments_of(lat.charging.astype(np.int8), 1)[0]
    rec = synthesize_recording(CFG, i, a, min(b - a, 120), _lat=lat)
    for s in rec.streams.values():
        assert not s.valid.any() and np.isnan(s.data).all()
    a, b = synth._segments_of(lat.offwrist.astype(np.int8), 1)[0]
    rec = synthesize_recording(CFG, i, a, min(b - a, 120), _lat=lat)
    assert not rec.streams["ppg"].valid.any() and not rec.streams["eda"].valid.any()
    acc = rec.streams["acc_z"]
    assert acc.valid.all() and abs(np.mean(acc.data) - 1.0) < 0.01   # flat on a table
    assert np.std(rec.streams["acc_x"].data) < 0.01


# ---------------------------------------------------------------- long traces

def test_acc_trace_chunks_equal_the_whole_trace():
    whole = synth_acc_trace(0.1, seed=7)
    chunks = list(iter_acc_trace(0.1, seed=7))
    assert len(chunks) == 3 and [c.duration_s for c in chunks] == [3600.0, 3600.0, 1440.0]
    np.testing.assert_array_equal(np.concatenate([c.streams["acc_x"].data for c in chunks]),
                                  whole.streams["acc_x"].data)
    assert whole.streams["acc_x"].n == int(0.1 * 86400 * 32)
    assert set(whole.labels) == {"activity", "freeze", "hr"}
    assert chunks[1].start_time == chunks[0].start_time + 3600


# ---------------------------------------------------------------- the cohort directory

def test_cohort_layout_manifest_and_info(tiny_cohort):
    m = json.loads((tiny_cohort / "manifest.json").read_text())
    assert m["kind"] == "cohort" and len(m["subjects"]) == 8
    assert set(m["parts"]) == {"segments", "raw", "minutely", "traces"}
    params = m["provenance"]["generator"]["params"]
    assert set(params) == {f.name for f in dataclasses.fields(SynthConfig)}
    assert params["seed"] == 1 and params["raw_minutes"] == 6.0
    assert sorted(sum(m["split"].values(), [])) == m["subjects"]
    inf = info(tiny_cohort)
    assert inf["subjects"] == 8 and inf["hours"] == pytest.approx(48.0)
    assert set(inf["parts"]) == set(m["parts"])
    assert inf["parts"]["traces"]["channels"]["acc_x"]["fs_hz"] == 32.0
    fog = [s for s, t in m["subject_traits"].items() if t["fog"]]
    assert len(fog) == 4


def test_both_presets_produce_windows(tiny_cohort):
    raw = WindowDataset(tiny_cohort / "raw")
    b = next(raw.iter_batches("train", 16))
    assert b["x"].shape == (16, 4, 256) and np.isfinite(b["x"]).all()
    assert raw.channel_names == ("ppg", "acc_x", "acc_y", "acc_z")
    assert {"hr", "rmssd", "activity", "freeze"} <= set(raw.labels)
    assert raw.n("train") > 0 and raw.n("test") > 0
    assert np.nanmin(b["hr"]) > 35 and np.nanmax(b["hr"]) < 210
    mn = WindowDataset(tiny_cohort / "minutely")
    w = mn.load()
    assert w.x.shape[1:] == (26, 300) and len(w) == 16
    assert 0.3 < w.mask.mean() < 1.0      # missing minutes are masked, not filled
    tr = next(read_recordings(tiny_cohort / "traces"))
    assert tr.duration_s == pytest.approx(6 * 3600)
    assert set(tr.labels) == {"activity", "freeze", "hr"} and tr.labels["activity"].fs_hz == 1.0
