"""A built-in reference day of wrist ACC, for simulations run without a recorded trace.

Not a recording and not the synthetic cohort (``edgefm.data.synth``, preferred when present):
a fixed, documented schedule so that ``edgefm profile --device X`` can project battery life
on its own. Per day: 8 h sleep, 12.5 h sedentary (desk, meals, sofa) with brief fidgets,
1.5 h walking in bouts, 0.5 h running, 0.5 h cycling, 0.5 h strength, 0.5 h chores
(light, intermittent). Activity shows up as periodic vertical wrist acceleration on top of
gravity, with the amplitudes and cadences of the synthetic cohort's generator.
"""

from __future__ import annotations

import numpy as np

from firmware_sim.simulate import Trace

# (activity, minutes, amplitude g, cadence Hz)
SCHEDULE = [
    ("sleep", 480, 0.0, 0.0), ("sedentary", 60, 0.0, 0.0), ("walking", 20, 0.25, 1.8),
    ("sedentary", 180, 0.0, 0.0), ("walking", 15, 0.25, 1.8), ("sedentary", 90, 0.0, 0.0),
    ("chores", 30, 0.12, 1.0), ("sedentary", 150, 0.0, 0.0), ("walking", 25, 0.25, 1.8),
    ("running", 30, 0.8, 2.6), ("cycling", 30, 0.15, 1.3), ("strength", 30, 0.3, 0.5),
    ("sedentary", 120, 0.0, 0.0), ("walking", 30, 0.25, 1.8), ("sedentary", 150, 0.0, 0.0),
]
assert sum(m for _, m, _, _ in SCHEDULE) == 1440
EVENT_ACTIVITIES = ("walking", "running", "cycling", "strength")


def reference_day(days: float = 1.0, fs_hz: float = 32.0, seed: int = 0) -> Trace:
    """``days`` of wrist ACC (3, n) in g at ``fs_hz`` following :data:`SCHEDULE` each day."""
    rng = np.random.default_rng(seed)
    n_day = int(round(86400 * fs_hz))
    amp = np.empty(n_day, np.float32)
    cad = np.empty(n_day, np.float32)
    i = 0
    for _, minutes, a, f in SCHEDULE:
        k = int(round(minutes * 60 * fs_hz))
        amp[i:i + k], cad[i:i + k] = a, f
        i += k
    n = int(round(days * n_day))
    reps = -(-n // n_day)
    acc_day = _one_day(amp, cad, fs_hz, rng)
    acc = np.tile(acc_day, (1, reps))[:, :n]   # every day alike: the schedule repeats
    return Trace(acc, np.ones(n, bool), fs_hz, id=f"reference-day-x{days:g}")


def _one_day(amp: np.ndarray, cad: np.ndarray, fs_hz: float, rng) -> np.ndarray:
    n = amp.shape[0]
    t = np.arange(n) / fs_hz
    phase = 2 * np.pi * np.cumsum(cad) / fs_hz
    acc = rng.normal(0.0, 0.004, (3, n)).astype(np.float32)
    tilt = 0.3 * np.sin(2 * np.pi * t / 1800.0)          # slow posture drift over half-hours
    acc[0] += np.sin(tilt)
    acc[2] += np.cos(tilt) + amp * np.sin(phase)
    acc[1] += 0.3 * amp * np.sin(phase + 0.7)
    # brief fidgets while sedentary: one 4 s burst every ~10 minutes
    sed = (amp == 0) & (cad == 0)
    bursts = rng.random(n // int(4 * fs_hz) + 1) < (4 / 600)
    burst = np.repeat(bursts, int(4 * fs_hz))[:n] & sed
    acc[2, burst] += (0.1 * np.sin(2 * np.pi * 1.5 * t[burst])).astype(np.float32)
    return acc
