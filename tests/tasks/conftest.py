"""Tiny recordings datasets for the task tests: wrist PPG whose pulse is at a known heart rate,
with arm motion at other frequencies in the accelerometer (and leaking into the PPG), and an
accelerometer whose activity classes differ in movement frequency."""

from __future__ import annotations

import numpy as np
import pytest

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.store import write_recordings

FS = 32.0


def hr_recording(subject: str, seed: int, dur_s: float = 120.0, hr0: float = 80.0, hr1: float = 140.0,
                 motion_hz: float = 2.6) -> Recording:
    """PPG at a heart rate sweeping hr0 -> hr1 bpm; ACC at ``motion_hz`` (also in the PPG, weaker)."""
    rng = np.random.default_rng(seed)
    n = int(dur_s * FS)
    t = np.arange(n) / FS
    hr = np.linspace(hr0, hr1, n)
    phase = 2 * np.pi * np.cumsum(hr / 60.0) / FS
    motion = np.sin(2 * np.pi * motion_hz * t + rng.uniform(0, 6))
    ppg = np.sin(phase) + 0.4 * motion + 0.3 * rng.normal(size=n)
    streams = {"ppg": Stream(ChannelSpec("ppg", "ppg", "a.u.", FS), ppg)}
    for k, a in enumerate("xyz"):
        streams[f"acc_{a}"] = Stream(ChannelSpec(f"acc_{a}", "acc", "g", FS),
                                     (k + 1) * 0.1 * motion + 0.02 * rng.normal(size=n))
    sec = np.arange(int(dur_s))
    labels = {"hr": LabelTrack("hr", "continuous", 1.0, np.interp(sec + 0.5, t, hr), unit="bpm")}
    return Recording(subject, 1e9 + 1000 * seed, streams, labels, {}, {}, id=f"{subject}-r{seed}")


def activity_recording(subject: str, seed: int, classes=("sit", "walk", "run"), seg_s: float = 20.0,
                       one_class: int | None = None) -> Recording:
    """ACC at 50 Hz: ``sit`` still, ``walk`` 1.8 Hz swing, ``run`` 2.8 Hz larger swing, in segments."""
    rng = np.random.default_rng(seed)
    fs = 50.0
    order = [one_class] * 6 if one_class is not None else list(rng.permutation(np.tile(np.arange(len(classes)), 2)))
    xs, lab = [], []
    for c in order:
        n = int(seg_s * fs)
        t = np.arange(n) / fs
        f, a = [(0.0, 0.0), (1.8, 0.3), (2.8, 0.8)][c]
        xs.append(a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6))[None, :] * np.array([[1.0], [0.6], [0.3]])
                  + 0.03 * rng.normal(size=(3, n)))
        lab += [c] * int(seg_s)
    x = np.concatenate(xs, 1)
    streams = {f"acc_{a}": Stream(ChannelSpec(f"acc_{a}", "acc", "g", fs), x[k]) for k, a in enumerate("xyz")}
    labels = {"activity": LabelTrack("activity", "categorical", 1.0, np.asarray(lab), classes=tuple(classes))}
    return Recording(subject, 1e9 + 1000 * seed, streams, labels, {}, {}, id=f"{subject}-r{seed}")


@pytest.fixture(scope="session")
def hr_data(tmp_path_factory):
    """Five subjects; each a different heart-rate sweep and motion frequency (s1 reaches 215 bpm)."""
    recs = [hr_recording(f"s{i}", i, hr0=60 + 10 * i, hr1=215 if i == 1 else 150 - 8 * i, motion_hz=2.0 + 0.3 * i)
            for i in range(5)]
    p = write_recordings(recs, tmp_path_factory.mktemp("tasks") / "hr", provenance={"test": "hr"})
    return p


@pytest.fixture(scope="session")
def activity_data(tmp_path_factory):
    recs = [activity_recording(f"a{i}", 10 + i) for i in range(5)]
    return write_recordings(recs, tmp_path_factory.mktemp("tasks") / "act", provenance={"test": "act"})


@pytest.fixture(scope="session")
def make_hr_recording():
    return hr_recording


@pytest.fixture(scope="session")
def make_activity_recording():
    return activity_recording
