"""Small generated ``lsm-minutely``-shaped window datasets for tests and smoke runs.

Not the synthetic cohort (``edgefm.data.synth`` owns that): this writes the 26 ``f_*``
minute signals directly from a latent day (sleep / sedentary / activity bouts, circadian
rhythm, a subject's resting heart rate), with per-signal noise, minute dropouts and off-wrist
hours, so that the teacher's code paths run on data with real structure and real gaps in
seconds. Windows are written with the core store API (``write_windows``) and the
``lsm-minutely`` preset's geometry (300-minute windows); ``hop_min`` sets the hop.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgefm.data.lsm_signals import LSM_SIGNALS, MINUTE_HZ
from edgefm.data.recording import Recording, Stream
from edgefm.data.store import subject_split, write_windows
from edgefm.data.windows import LSM_MINUTELY


def _day_latent(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(n)
    hour = (t / 60.0 + rng.uniform(-1, 1)) % 24
    sleep = ((hour >= 23) | (hour < 7)).astype(float)
    act = np.zeros(n)
    i = 0
    while i < n:  # activity bouts during the day: Markov on/off with bout lengths 5-90 min
        if sleep[i] == 0 and rng.random() < 0.02:
            ln = int(rng.integers(5, 90))
            act[i:i + ln] = rng.uniform(0.3, 1.0) * (1 - sleep[i:i + ln])
            i += ln
        i += 1
    k = np.ones(9) / 9  # motion ramps smoothly over minutes
    act = np.convolve(act, k, mode="same")
    circ = np.sin(2 * np.pi * (hour - 15) / 24)
    return {"sleep": sleep, "act": act, "circ": circ}


def _signals(lat: dict, rest_hr: float, rng: np.random.Generator) -> np.ndarray:
    n = lat["act"].shape[0]
    a, s, c = lat["act"], lat["sleep"], lat["circ"]
    ar = np.zeros(n)
    e = rng.normal(0, 1, n)
    for i in range(1, n):  # slow physiological drift
        ar[i] = 0.97 * ar[i - 1] + 0.25 * e[i]
    hr = rest_hr + 60 * a - 6 * s + 3 * c + 2 * ar
    rr = 60000.0 / hr
    rmssd = 45 * np.exp(-1.5 * a) + 10 * s + 2 * ar
    out = {
        "f_hr": hr, "f_rr_pct_valid": 90 - 40 * a, "f_rr_p80": rr * 1.05, "f_rr_p20": rr * 0.95,
        "f_rr_median": rr, "f_rr_mean": rr * 1.002, "f_rr_entropy": 3 - a + 0.3 * s,
        "f_rr_diff_entropy": 2.5 - 0.8 * a, "f_pnn30": 40 * np.exp(-2 * a) + 10 * s, "f_rmssd": rmssd,
        "f_sdnn": 50 + 20 * a + 5 * s, "f_on_wrist": np.ones(n), "f_jerk_ratio": 0.2 + 0.6 * a,
        "f_steps": 120 * a ** 1.5, "f_log_energy": -3 + 4 * a - 0.5 * s, "f_cov_condition": 5 - 3 * a,
        "f_log_energy_ratio": 0.5 * a + 0.1 * c, "f_zc_std": 0.3 - 0.2 * a, "f_zc_mean": 1.5 - a,
        "f_arm_tilt": 0.5 + 0.3 * s + 0.1 * c, "f_kurtosis": 3 + 4 * a, "f_sleep_coef": 1.2 * s - 0.5 * a,
        "f_scl_value": 2 + 1.5 * a + 0.5 * c + 0.5 * ar / 3, "f_scl_slope": np.gradient(1.5 * a),
        "f_skin_temp": 33 + 1.0 * s - 0.8 * a + 0.3 * c, "f_alt_std": 0.05 + 0.2 * a,
    }
    X = np.stack([out[ch.name] for ch in LSM_SIGNALS]).astype(np.float64)
    scale = np.std(X, axis=1, keepdims=True) + 1e-3
    X += rng.normal(0, 1, X.shape) * 0.25 * scale          # per-minute measurement noise
    return X.astype(np.float32)


def toy_recordings(subjects: int = 8, days: float = 2.0, seed: int = 0, missing: float = 0.05) -> list[Recording]:
    """``subjects`` recordings of ``days`` days of the 26 minute signals at 1/60 Hz."""
    rng = np.random.default_rng(seed)
    n = int(round(days * 1440))
    recs = []
    for si in range(subjects):
        lat = _day_latent(n, rng)
        X = _signals(lat, rng.uniform(55, 75), rng)
        valid = rng.random(X.shape) > missing                 # sporadic minute dropouts
        for _ in range(int(days * 2)):                         # off-wrist hours: everything missing
            a = int(rng.integers(0, max(1, n - 120)))
            valid[:, a:a + int(rng.integers(20, 120))] = False
        streams = {ch.name: Stream(ch, np.where(valid[i], X[i], np.nan).astype(np.float32), valid[i])
                   for i, ch in enumerate(LSM_SIGNALS)}
        recs.append(Recording(f"T{si:02d}", 1.7e9, streams, {}, {}, {}, id=f"T{si:02d}-0"))
    return recs


def write_toy_minutely(out: str | Path, subjects: int = 8, days: float = 2.0, seed: int = 0,
                       hop_min: int = 60, missing: float = 0.05, shard_size: int = 4096) -> Path:
    """Write a windows dataset of toy minute signals (``lsm-minutely`` geometry); returns ``out``."""
    preset = dataclasses.replace(LSM_MINUTELY, derive=None, hop_s=hop_min * 60.0)
    recs = toy_recordings(subjects, days, seed, missing)
    split = subject_split([r.subject for r in recs], seed=seed)
    return write_windows(recs, out, preset, split=split, shard_size=shard_size,
                         provenance={"generator": {"name": "edgefm.train.toydata", "subjects": subjects,
                                                   "days": days, "seed": seed, "missing": missing,
                                                   "fs_hz": MINUTE_HZ}})
