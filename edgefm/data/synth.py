"""The synthetic cohort: a documented physiological model of people wearing a wristband.

``synthesize(SynthConfig(...), out)`` writes a cohort directory (see docs/DESIGN.md):
``manifest.json`` (kind ``cohort``), ``segments/`` (raw PPG + ACC + EDA/TEMP/ALT segments),
``raw/`` (``wrist-raw`` windows), ``minutely/`` (``lsm-minutely`` windows of whole days) and
``traces/`` (one continuous raw ACC trace per subject). Everything is seeded: the same
``(seed, subject)`` gives identical arrays, and every parameter is in the manifest.

The model, layer by layer (time ``t`` in seconds from the recording start, which is
``start_hour`` local time, 06:00 by default, on 2024-01-01):

1. **Subjects** (``_traits``). Age, sex, fitness (a z-score), BMI, Fitzpatrick skin type
   1-6. Resting HR falls with fitness (about -4 bpm per SD); maximum HR = 208 - 0.7 age
   (Tanaka 2001). Subject-specific HR gain per MET (fitter: lower), on/off time constants
   of the HR response (fitter: faster), RSA depth (falls with age), walking/running
   cadence, pedalling cadence, breathing rate, PPG perfusion amplitude and SNR (lower for
   darker skin and higher BMI), PPG motion coupling, tonic skin conductance, skin
   temperature, home altitude. A ``freezing_fraction`` of subjects are older people with
   freezing of gait (FoG): slower cadence and FoG episodes.
2. **Daily schedule** (``_schedule``, 1 Hz). Sleep from bed time (~23:00) to wake time
   (~07:00) with posture changes; sedentary by default while awake, with gestures;
   walking bouts (Poisson, log-normal durations, median 5 min); an exercise session
   (running with walking warm-up/cool-down, cycling, or strength training as sets and
   rests) in the morning or evening with a probability rising with fitness. For FoG
   subjects, 2-60 s freezing episodes interrupt walking (label ``freezing`` and
   ``freeze = 1``). Activity classes (codes 0..6): ``ACTIVITY_CLASSES``.
3. **Energy expenditure and heart rate** (1 Hz). Each class has a MET level (walking and
   running speed vary per bout). Target HR = resting HR + gain x (MET - 1), lower in
   sleep, capped near the maximum; the actual HR follows it through a first-order lag
   with separate rise and fall time constants, plus a slow Ornstein-Uhlenbeck drift and a
   circadian term. Breathing rate rises with MET.
4. **Beats** (``_beats``). The instantaneous cardiac rate is HR/60 modulated by respiratory
   sinus arrhythmia (depth falls as HR rises above rest, x1.3 in sleep) and a 0.1 Hz Mayer
   wave; beats are the integer crossings of its integral (4 Hz grid, integrated day by day), then each RR gets multiplicative white
   jitter whose size also falls with HR. Ground truth comes from these beats only: label
   ``hr`` at time t is 60 / RR of the interval containing t; label ``rmssd`` is the RMSSD
   of the RRs ending within +-30 s of t. The PPG-derived beats a device would detect
   (events ``beats`` of the whole-day recordings used for the minute features) drop out in
   5 s blocks with a probability rising with motion, and wherever the band is off-wrist.
5. **ACC** (``_render_acc``, ``fs_hz``, g, sensor frame). Gravity projected on a wrist
   orientation that changes with posture (per activity: desk, arm hanging, arms bent,
   handlebars, random in bed); walking/running add arm swing (a rotation at half the step
   rate) and step impacts at the cadence with harmonics, with stride-to-stride amplitude
   variation and irregular arm motion (band-limited noise); cycling a small pedalling motion
   and road vibration; strength sets a large curl rotation at the repetition rate;
   freezing a 3-8 Hz tremble with gait suppressed; sedentary and sleep random gestures
   (band-limited noise bursts). Cadence is drawn per subject and bout, independent of HR:
   the only coupling between ACC and HR is physiological (both follow activity intensity,
   HR with its own lag and drift). Then a faint ballistocardiographic pulse (``bcg_g``,
   ~1 mg, a damped 7 Hz wavelet 150 ms after each beat), white sensor noise
   (``acc_noise_g``), quantisation to ``acc_lsb_g`` and clipping to +-``acc_range_g``.
   Off-wrist the band lies flat and still (ACC valid, z = +1 g); while charging nothing
   is recorded (invalid). Rendered in one-hour chunks seeded by (seed, subject, chunk),
   so any slice equals the same samples of the full trace and long traces stream.
6. **PPG** (segments only, ``ppg_fs_hz``). One pulse per beat (systolic and diastolic
   Gaussian waves, widths scaling with RR), perfusion amplitude with slow variation,
   respiratory baseline wander and drift, motion artefacts = a subject-specific linear
   mix of the band-passed ACC axes (so artefacts are correlated with ACC, not with HR),
   white noise at the subject's SNR; invalid off-wrist and while charging.
7. **EDA** (4 Hz, uS): tonic level (subject base, higher with MET and sweating, lower in
   sleep, lagged) plus phasic responses (Poisson impulses, rate rising with activity,
   convolved with a 1 s rise / 6 s decay kernel). **Skin temperature** (1 Hz): base, +1 C
   in sleep, -0.8 C in exercise, lag of 10 min. **Altimeter** (1 Hz, hPa): barometric
   drift plus elevation changes while moving (0.12 hPa per metre), sensor noise.
8. **Missingness**, always marked in validity masks, never imputed: nightly charging
   (30-90 min, all sensors invalid), off-wrist episodes (PPG, EDA and temperature invalid,
   ACC flat), EDA duty-cycled during sleep (5 min on, 5 min off), beat dropouts under
   motion (above).

What is stored where: ``segments`` hold raw PPG + ACC + EDA/TEMP/ALT + true beats and
labels (``hr``, ``rmssd``, ``activity``, ``freeze``) for ``raw_minutes`` per subject in
``segment_minutes`` pieces sampled across the day's activities; ``raw`` windows them with
``wrist-raw``; ``minutely`` holds the 26 LSM features of the whole day
(``edgefm.data.features.minutely_features``) windowed with ``lsm-minutely``; ``traces`` hold
the whole-day ACC with ``activity``/``freeze``/``hr`` labels at 1 Hz.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing as mp
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from scipy import signal as sps

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import ConfigError

ACTIVITY_CLASSES = ("sleep", "sedentary", "walking", "running", "cycling", "strength", "freezing")
SLEEP, SEDENTARY, WALKING, RUNNING, CYCLING, STRENGTH, FREEZING = range(7)
FREEZE_CLASSES = ("no", "yes")
#: Unix time of t = 0 for start_hour = 0 (2024-01-01 00:00 UTC; the cohort lives in UTC).
EPOCH0 = 1704067200.0
GENERATOR_VERSION = "1"

_CHUNK_S = 3600  # ACC is rendered (and seeded) in chunks of this many seconds
#: longest recording per subject (days): the 1 Hz latent state is held whole (~60 bytes per
#: second, ~160 MB for 31 days), as is a whole-day trace in ``synth_acc_trace``
MAX_DAYS = 31.0
MIN_DAYS = 600 / 86400  # ten minutes
#: largest cohort (subjects are generated one after another; segments and minute features of all
#: subjects are held until written)
MAX_SUBJECTS = 10_000


@dataclass(frozen=True)
class SynthConfig:
    """Every parameter of the synthetic cohort (all recorded in the manifest).

    Sizes and rates:
        subjects, days: cohort size (1..MAX_SUBJECTS) and recording length per subject (days may
            be fractional; at least 10 minutes, at most MAX_DAYS = 31). Every number must be
            finite; an invalid one is a ConfigError naming the field.
        seed: everything derives from (seed, subject index).
        raw_minutes: minutes of raw PPG+ACC segments per subject (split in segment_minutes).
        freezing_fraction: share of subjects with freezing-of-gait episodes.
        traces: also write the continuous ACC trace per subject (``traces/``).
        fs_hz: ACC rate (Hz); ppg_fs_hz, eda_fs_hz: PPG and EDA rates; temp and alt at 1 Hz.
        start_hour: local clock time of t = 0 (06:00 so that short cohorts see waking hours).
    """

    subjects: int = 100
    days: float = 1.0
    seed: int = 0
    raw_minutes: float = 20.0
    freezing_fraction: float = 0.2
    traces: bool = True
    fs_hz: float = 32.0
    ppg_fs_hz: float = 64.0
    eda_fs_hz: float = 4.0
    segment_minutes: float = 4.0
    start_hour: float = 6.0
    # --- schedule
    wake_hour: float = 7.0            # mean wake time (local hours), SD 0.6 h
    bed_hour: float = 23.0            # mean bed time (local hours), SD 0.6 h
    walk_bouts_per_day: float = 10.0  # Poisson mean while awake (x (1 + 0.2 fitness))
    walk_bout_median_min: float = 5.0 # log-normal median bout length, sigma 0.7
    exercise_prob: float = 0.6        # chance of one exercise session a day (x fitness)
    fog_rate_per_walk_min: float = 0.6  # freezing episodes per minute of walking (FoG subjects)
    # --- heart
    hr_rest_mean: float = 66.0        # bpm, SD 6, -4 bpm per fitness SD
    hr_gain_per_met: float = 10.0     # bpm per MET above 1, -1.5 per fitness SD
    hr_tau_on_s: float = 35.0         # rise time constant, fitter subjects faster
    hr_tau_off_s: float = 90.0        # fall time constant
    rsa_depth: float = 0.045          # RR modulation depth at rest for a 20-year-old
    mayer_depth: float = 0.02         # 0.1 Hz RR modulation depth at rest
    rr_jitter: float = 0.012          # multiplicative white RR jitter at rest (SD)
    # --- accelerometer
    acc_noise_g: float = 0.003        # white sensor noise SD per axis (g)
    acc_lsb_g: float = 1.0 / 1024.0   # quantisation step (g): +-8 g at 14 bit
    acc_range_g: float = 8.0          # full scale (g)
    bcg_g: float = 0.001              # ballistocardiographic pulse peak (g): faint, physical
    # --- PPG
    ppg_snr_db: float = 30.0          # pulse-to-noise ratio (dB) for skin type 1, BMI 25
    ppg_motion_gain: float = 1.5      # artefact amplitude per g of band-passed ACC (x pulse amplitude)
    # --- missingness
    charge_minutes: tuple[float, float] = (30.0, 90.0)  # nightly charging duration range
    offwrist_per_day: float = 1.0     # off-wrist episodes (5-30 min) per day, Poisson mean
    eda_night_duty: bool = True       # EDA sensor 5 min on / 5 min off during sleep

    def __post_init__(self):
        def bad(field, msg):
            raise ConfigError(msg, field=field)
        for f in dataclasses.fields(self):  # every number finite before any is used
            v = getattr(self, f.name)
            for x in (v if isinstance(v, tuple) else (v,)):
                if isinstance(x, (float, np.floating)) and not math.isfinite(x):
                    bad(f.name, f"{f.name} must be a finite number, got {v!r}")
        if isinstance(self.subjects, bool) or not isinstance(self.subjects, (int, np.integer)) \
                or not 1 <= self.subjects <= MAX_SUBJECTS:
            bad("subjects", f"subjects must be a whole number in 1..{MAX_SUBJECTS}, got {self.subjects!r}")
        if not (math.isfinite(self.days) and 0 < self.days <= MAX_DAYS):
            bad("days", f"days must be in (0, {MAX_DAYS:g}], got {self.days!r}")
        if self.days < MIN_DAYS:
            bad("days", "days must cover at least 10 minutes")
        if not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            bad("seed", f"seed must be a non-negative integer, got {self.seed!r}")
        if not (math.isfinite(self.raw_minutes) and self.raw_minutes >= 0):
            bad("raw_minutes", f"raw_minutes must be >= 0, got {self.raw_minutes!r}")
        if self.raw_minutes > self.days * 1440 / 2:
            bad("raw_minutes", "raw_minutes must be at most half of the recording")
        if not (0.0 <= self.freezing_fraction <= 1.0):
            bad("freezing_fraction", f"freezing_fraction must be in [0, 1], got {self.freezing_fraction!r}")
        for f in ("fs_hz", "ppg_fs_hz", "eda_fs_hz"):
            v = getattr(self, f)
            if not (math.isfinite(v) and 1.0 <= v <= 1000.0):
                bad(f, f"{f} must be in [1, 1000] Hz, got {v!r}")
            if abs(v * 60 - round(v * 60)) > 1e-9:
                bad(f, f"{f} must give a whole number of samples per minute, got {v!r}")
        if self.fs_hz < 20:
            bad("fs_hz", "fs_hz must be >= 20 Hz to carry gait and tremor (3-8 Hz)")
        if not (0.5 <= self.segment_minutes <= 60):
            bad("segment_minutes", "segment_minutes must be in [0.5, 60]")
        if not (0 <= self.start_hour < 24):
            bad("start_hour", "start_hour must be in [0, 24)")
        lo, hi = self.charge_minutes
        if not (0 <= lo <= hi <= 300):
            bad("charge_minutes", "charge_minutes must be (lo, hi) with 0 <= lo <= hi <= 300")
        for f in ("acc_noise_g", "acc_lsb_g", "bcg_g", "rsa_depth", "mayer_depth", "rr_jitter",
                  "walk_bouts_per_day", "exercise_prob", "offwrist_per_day", "fog_rate_per_walk_min",
                  "ppg_motion_gain"):
            v = getattr(self, f)
            if not (math.isfinite(v) and v >= 0):
                bad(f, f"{f} must be a non-negative number, got {v!r}")
        if self.exercise_prob > 1:
            bad("exercise_prob", "exercise_prob must be <= 1")
        if not 1.5 < self.acc_range_g <= 64:
            bad("acc_range_g", "acc_range_g must be in (1.5, 64] g")
        for f in ("wake_hour", "bed_hour"):
            if not 0 <= getattr(self, f) < 24:
                bad(f, f"{f} must be in [0, 24)")
        for f in ("hr_tau_on_s", "hr_tau_off_s", "walk_bout_median_min", "hr_rest_mean"):
            if not getattr(self, f) > 0:
                bad(f, f"{f} must be positive")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["charge_minutes"] = list(self.charge_minutes)
        return d

    @property
    def seconds(self) -> int:
        """Recording length per subject in whole seconds."""
        return int(round(self.days * 86400))


def subject_id(i: int) -> str:
    return f"s{i:03d}"


def _rng(cfg: SynthConfig, subject: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(cfg.seed), int(subject), *stream])


# ---------------------------------------------------------------- 1. subject traits

def _traits(cfg: SynthConfig, i: int) -> dict:
    r = _rng(cfg, i, 0)
    n_fog = int(round(cfg.freezing_fraction * cfg.subjects))
    # which subjects have FoG: a seeded permutation, so the fraction is exact
    fog = bool(np.random.default_rng([int(cfg.seed), 999]).permutation(cfg.subjects)[i] < n_fog) \
        if i < cfg.subjects else False
    age = float(r.uniform(60, 80) if fog else r.uniform(20, 70))
    sex = "female" if r.random() < 0.5 else "male"
    fitness = float(np.clip(r.normal(0, 1) - (0.8 if fog else 0.0), -2.5, 2.5))
    bmi = float(np.clip(r.normal(25.5, 4.0), 17, 42))
    skin = int(r.integers(1, 7))
    hr_rest = float(np.clip(cfg.hr_rest_mean - 4 * fitness + (3 if sex == "female" else 0)
                            + r.normal(0, 6), 45, 95))
    hr_max = 208 - 0.7 * age
    gain = float(np.clip(cfg.hr_gain_per_met - 1.5 * fitness + r.normal(0, 1.5), 5, 18))
    tau_on = float(np.clip(cfg.hr_tau_on_s * (1 - 0.15 * fitness) * r.lognormal(0, 0.2), 10, 120))
    tau_off = float(np.clip(cfg.hr_tau_off_s * (1 - 0.15 * fitness) * r.lognormal(0, 0.2), 30, 300))
    rsa = float(cfg.rsa_depth * math.exp(-(age - 20) / 45) * r.lognormal(0, 0.25))
    walk_cad = float(np.clip(r.normal(1.52 if fog else 1.80, 0.08), 1.3, 2.1))   # steps/s
    run_cad = float(np.clip(r.normal(2.70, 0.12), 2.3, 3.1))
    pedal = float(np.clip(r.normal(1.30, 0.12), 0.9, 1.7))                       # rev/s
    rep = float(np.clip(r.normal(0.40, 0.06), 0.25, 0.6))                        # reps/s
    fog_hz = float(r.uniform(3.5, 7.5))
    fog_axis = r.normal(size=3)
    fog_axis = (fog_axis / np.linalg.norm(fog_axis)).tolist()
    resp = float(np.clip(r.normal(14, 2), 9, 20)) / 60.0                         # Hz
    snr_db = float(cfg.ppg_snr_db - 2.5 * (skin - 1) - 0.3 * (bmi - 25) + r.normal(0, 1.5))
    ppg_amp = float(math.exp(-(bmi - 25) / 40) * (1 - 0.06 * (skin - 1)) * r.lognormal(0, 0.15))
    motion_mix = r.normal(0, 1, 3)
    motion_mix = (cfg.ppg_motion_gain * r.uniform(0.6, 1.4) * motion_mix / np.linalg.norm(motion_mix)).tolist()
    scl = float(np.clip(r.lognormal(math.log(4.0), 0.6), 0.3, 25))               # uS
    temp0 = float(r.normal(33.0, 0.5))
    elev0 = float(r.uniform(0, 600))                                             # m
    ex_type = int(r.choice([RUNNING, CYCLING, STRENGTH], p=[0.4, 0.3, 0.3]))
    if fog:
        ex_type = int(r.choice([CYCLING, STRENGTH]))
    return dict(index=i, id=subject_id(i), fog=fog, age=age, sex=sex, fitness=fitness, bmi=bmi,
                skin_type=skin, hr_rest=hr_rest, hr_max=hr_max, hr_gain=gain, tau_on=tau_on,
                tau_off=tau_off, rsa=rsa, walk_cadence_hz=walk_cad, run_cadence_hz=run_cad,
                pedal_hz=pedal, rep_hz=rep, fog_hz=fog_hz, fog_axis=fog_axis, resp_hz=resp,
                ppg_snr_db=snr_db, ppg_amp=ppg_amp, ppg_motion_mix=motion_mix, scl_uS=scl,
                temp_c=temp0, elevation_m=elev0, exercise=ACTIVITY_CLASSES[ex_type])


# ---------------------------------------------------------------- 2-3. schedule and heart rate

@dataclass
class _Latent:
    """The subject's hidden state on a 1 Hz grid (index = second from start) plus beats."""

    cfg: SynthConfig
    traits: dict
    n1: int
    code: np.ndarray        # (n1,) int8 activity code
    freeze: np.ndarray      # (n1,) int8
    met: np.ndarray         # (n1,) float32
    hr: np.ndarray          # (n1,) float32 latent HR (bpm) driving the beats
    resp_phase: np.ndarray  # (n1,) float64 breathing phase (rad)
    gait_phase: np.ndarray  # (n1,) float64 step phase (rad); cadence integral
    gait_amp: np.ndarray    # (n1,) float32 0 = no gait, 1 walking, ~2.5 running
    aux_phase: np.ndarray   # (n1,) float64 pedal / repetition / tremor phase (rad)
    set_on: np.ndarray      # (n1,) float32 strength set in progress (0/1)
    gesture: np.ndarray     # (n1,) float32 gesture amplitude envelope (g)
    orient: np.ndarray      # (n1, 3) float32 gravity direction in the sensor frame
    charging: np.ndarray    # (n1,) bool
    offwrist: np.ndarray    # (n1,) bool
    beats: np.ndarray       # true beat times (s)
    slow: dict | None = None  # cache of _render_slow


def _segments_of(code: np.ndarray, value: int) -> list[tuple[int, int]]:
    m = np.r_[False, code == value, False]
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[0::2], d[1::2]))


def _schedule(cfg: SynthConfig, tr: dict, n1: int):
    """Activity code, freeze flag, MET, set flag, charging/off-wrist masks at 1 Hz."""
    r = _rng(cfg, tr["index"], 1)
    code = np.full(n1, SEDENTARY, np.int8)
    met = np.full(n1, 1.3, np.float32)
    set_on = np.zeros(n1, np.float32)
    charging = np.zeros(n1, bool)
    offwrist = np.zeros(n1, bool)
    h0 = cfg.start_hour * 3600
    n_days = int(math.ceil((n1 + h0) / 86400)) + 1
    # wake/bed in seconds from start, for calendar days -1 .. n_days
    wakes = [(d * 86400 + cfg.wake_hour * 3600 - h0) + r.normal(0, 0.6 * 3600) for d in range(-1, n_days)]
    beds = [(d * 86400 + cfg.bed_hour * 3600 - h0) + r.normal(0, 0.6 * 3600) for d in range(-1, n_days)]

    def put(a, b, c, m=None):
        a, b = int(max(0, round(a))), int(min(n1, round(b)))
        if b > a:
            code[a:b] = c
            if m is not None:
                met[a:b] = m
        return a, b

    fit = tr["fitness"]
    for d in range(n_days + 1):
        wake = wakes[d] if d < len(wakes) else None
        bed_prev = beds[d - 1] if d >= 1 else -1e9
        if wake is not None:
            put(bed_prev, wake, SLEEP, 0.95)
        if d >= len(beds):
            continue
        awake_a, awake_b = wakes[d], beds[d]
        if awake_b <= 0 or awake_a >= n1:
            continue
        span = awake_b - awake_a
        # walking bouts (commutes, errands)
        nb = r.poisson(cfg.walk_bouts_per_day * max(0.3, 1 + 0.2 * fit))
        for _ in range(nb):
            dur = float(np.clip(r.lognormal(math.log(cfg.walk_bout_median_min * 60), 0.7), 60, 45 * 60))
            a = awake_a + r.uniform(0, max(span - dur, 1))
            speed = float(np.clip(r.normal(1.0, 0.12), 0.7, 1.35))
            put(a, a + dur, WALKING, 3.3 * speed ** 1.5)
        # one exercise session
        if r.random() < np.clip(cfg.exercise_prob * (1 + 0.3 * fit), 0, 1):
            ex = ACTIVITY_CLASSES.index(tr["exercise"])
            if r.random() < 0.5:
                a = awake_a + r.uniform(30, 90) * 60
            else:
                a = d * 86400 - h0 + r.uniform(17.0, 19.5) * 3600
            dur = r.uniform(20, 60) * 60
            if ex == RUNNING:
                wu = r.uniform(3, 6) * 60
                put(a, a + wu, WALKING, 3.5)
                put(a + wu, a + dur - wu, RUNNING, float(np.clip(r.normal(9.5 + fit, 1.0), 7, 13)))
                put(a + dur - wu, a + dur, WALKING, 3.5)
            elif ex == CYCLING:
                put(a, a + dur, CYCLING, float(np.clip(r.normal(6.5 + 0.7 * fit, 0.8), 4.5, 10)))
            else:
                aa, bb = put(a, a + dur, STRENGTH, 2.5)
                t = aa
                while t < bb:
                    s = int(np.clip(r.normal(35, 8), 15, 60))
                    rest = int(np.clip(r.normal(80, 20), 40, 150))
                    e = min(bb, t + s)
                    set_on[t:e] = 1.0
                    met[t:e] = 6.0
                    t = e + rest
        # nightly charging: before bed or right after waking
        lo, hi = cfg.charge_minutes
        cdur = r.uniform(lo, hi) * 60
        ca = (awake_b - cdur - r.uniform(0, 30) * 60) if r.random() < 0.6 else awake_a + r.uniform(5, 30) * 60
        a, b = int(max(0, ca)), int(min(n1, ca + cdur))
        if b > a:
            charging[a:b] = True
        # off-wrist episodes (shower, taking it off)
        for _ in range(r.poisson(cfg.offwrist_per_day)):
            od = r.uniform(5, 30) * 60
            oa = awake_a + r.uniform(0, max(span - od, 1))
            a, b = int(max(0, oa)), int(min(n1, oa + od))
            if b > a:
                offwrist[a:b] = True
    # within-class MET variation for sedentary (standing, chores) as a slow random level
    sed = code == SEDENTARY
    lvl = np.repeat(r.uniform(1.1, 1.8, n1 // 300 + 1), 300)[:n1].astype(np.float32)
    met[sed] = lvl[sed]
    # freezing of gait interrupts walking
    freeze = np.zeros(n1, np.int8)
    if tr["fog"]:
        for a, b in _segments_of(code, WALKING):
            k = r.poisson(cfg.fog_rate_per_walk_min * (b - a) / 60)
            for _ in range(k):
                dur = int(np.clip(r.lognormal(math.log(8), 0.7), 2, 60))
                s = int(r.integers(a, max(a + 1, b - dur)))
                code[s:s + dur] = FREEZING
                met[s:s + dur] = 2.0
                freeze[s:s + dur] = 1
    offwrist &= ~charging
    return code, freeze, met, set_on, charging, offwrist


def _lag(target: np.ndarray, y0: float, tau_on: float, tau_off: float) -> np.ndarray:
    """First-order response at 1 Hz with separate rise and fall time constants."""
    a_on, a_off = 1 - math.exp(-1 / tau_on), 1 - math.exp(-1 / tau_off)
    out = np.empty(target.shape[0], np.float64)
    y = y0
    for i, x in enumerate(target.tolist()):
        y += (x - y) * (a_on if x > y else a_off)
        out[i] = y
    return out


def _ou(r: np.random.Generator, n: int, sd: float, tau_s: float, dt: float = 1.0) -> np.ndarray:
    """Ornstein-Uhlenbeck process (stationary SD ``sd``, time constant ``tau_s``) on a dt grid."""
    a = math.exp(-dt / tau_s)
    e = r.normal(0, sd * math.sqrt(1 - a * a), n)
    e[0] = r.normal(0, sd)
    return sps.lfilter([1.0], [1.0, -a], e)


def _latent(cfg: SynthConfig, i: int, seconds: int | None = None) -> _Latent:
    tr = _traits(cfg, i)
    n1 = int(seconds if seconds is not None else cfg.seconds)
    code, freeze, met, set_on, charging, offwrist = _schedule(cfg, tr, n1)
    r = _rng(cfg, i, 2)
    t = np.arange(n1, dtype=np.float64)
    clock_h = (cfg.start_hour + t / 3600) % 24
    # heart rate: lagged response to MET + slow drift + circadian
    target = tr["hr_rest"] + tr["hr_gain"] * (met.astype(np.float64) - 1.0)
    target[code == SLEEP] -= 6.0
    target = np.minimum(target, 0.95 * tr["hr_max"])
    hr = _lag(target, float(target[0]), tr["tau_on"], tr["tau_off"])
    hr += _ou(r, n1, 3.0, 600.0) + 2.0 * np.sin(2 * np.pi * (clock_h - 10) / 24)
    hr = np.clip(hr, 38, tr["hr_max"]).astype(np.float32)
    # breathing: faster with MET
    resp_hz = tr["resp_hz"] * (1 + 0.09 * np.maximum(met - 1, 0)) * np.exp(_ou(r, n1, 0.08, 120.0))
    resp_phase = 2 * np.pi * np.cumsum(np.minimum(resp_hz, 0.75))
    # gait: cadence per bout with a within-bout random walk
    cad = np.zeros(n1)
    gait_amp = np.zeros(n1, np.float32)
    walking = (code == WALKING)
    running = (code == RUNNING)
    cad_var = np.exp(_ou(r, n1, 0.03, 60.0))
    cad[walking] = tr["walk_cadence_hz"] * cad_var[walking] * np.sqrt(met[walking] / 3.3)
    cad[running] = tr["run_cadence_hz"] * cad_var[running] * (met[running] / 9.5) ** 0.25
    cad[code == FREEZING] = tr["walk_cadence_hz"]  # phase keeps running, amplitude 0
    gait_amp[walking] = (met[walking] / 3.3)
    gait_amp[running] = 2.5
    gait_phase = 2 * np.pi * np.cumsum(cad)
    # auxiliary rhythm: pedalling, repetitions, FoG tremble
    aux = np.zeros(n1)
    aux[code == CYCLING] = tr["pedal_hz"]
    aux[code == STRENGTH] = tr["rep_hz"]
    aux[code == FREEZING] = tr["fog_hz"]
    aux_phase = 2 * np.pi * np.cumsum(aux)
    # gestures: Poisson bursts of 1-6 s with log-normal amplitude
    rate = np.select([code == SEDENTARY, code == SLEEP, code == CYCLING, code == STRENGTH],
                     [1.5 / 60, 0.05 / 60, 0.2 / 60, 1.0 / 60], 0.0)
    starts = np.flatnonzero(r.random(n1) < rate)
    gesture = np.zeros(n1, np.float32)
    if len(starts):
        durs = r.integers(1, 7, len(starts))
        amps = r.lognormal(math.log(0.06), 0.6, len(starts)).astype(np.float32)
        for s, dd, aa in zip(starts.tolist(), durs.tolist(), amps.tolist()):
            gesture[s:s + dd] = np.maximum(gesture[s:s + dd], aa)
    gesture[(code == STRENGTH) & (set_on > 0)] = 0
    # orientation: a posture per activity bout and at random posture changes
    base = {SLEEP: None, SEDENTARY: (0.15, 0.25, -0.95), WALKING: (-0.95, 0.2, 0.2),
            RUNNING: (-0.45, 0.35, -0.8), CYCLING: (0.25, 0.1, -0.95), STRENGTH: (-0.6, 0.1, 0.75),
            FREEZING: (-0.95, 0.2, 0.2)}
    spread = {SLEEP: 1.0, SEDENTARY: 0.35, WALKING: 0.12, RUNNING: 0.15, CYCLING: 0.15,
              STRENGTH: 0.3, FREEZING: 0.12}
    change_every = {SLEEP: 1800, SEDENTARY: 300, WALKING: 1e9, RUNNING: 1e9, CYCLING: 1200,
                    STRENGTH: 120, FREEZING: 1e9}
    bounds = np.flatnonzero(np.diff(code.astype(np.int16))) + 1
    cuts = [0] + bounds.tolist() + [n1]
    orient = np.zeros((n1, 3), np.float32)
    prev_walk = None
    for a, b in zip(cuts[:-1], cuts[1:]):
        c = int(code[a])
        if c == FREEZING and prev_walk is not None:
            orient[a:b] = prev_walk  # the arm stays where it was
            continue
        pos = a
        while pos < b:
            step = int(min(b - pos, max(30, r.exponential(change_every[c]))))
            if base[c] is None:
                v = r.normal(size=3)
            else:
                v = np.asarray(base[c]) + r.normal(0, spread[c], 3)
            v = v / np.linalg.norm(v)
            orient[pos:pos + step] = v
            if c == WALKING:
                prev_walk = v
            pos += step
    orient[offwrist] = (0.0, 0.0, 1.0)  # lying flat on a table, face up
    k = np.ones(5) / 5.0  # smooth posture changes over a few seconds
    for ax in range(3):
        orient[:, ax] = np.convolve(np.pad(orient[:, ax], 2, mode="edge"), k, mode="valid")
    orient /= np.linalg.norm(orient, axis=1, keepdims=True) + 1e-9
    # off-wrist: no motion at all
    for arr in (gait_amp, gesture):
        arr[offwrist] = 0
    set_on_eff = set_on.copy()
    set_on_eff[offwrist] = 0
    lat = _Latent(cfg, tr, n1, code, freeze, met, hr, resp_phase, gait_phase, gait_amp, aux_phase,
                  set_on_eff, gesture, orient, charging, offwrist, np.zeros(0))
    lat.beats = _beats(lat, r)
    return lat


# ---------------------------------------------------------------- 4. beats

def _beats(lat: _Latent, r: np.random.Generator) -> np.ndarray:
    """True beat times (s): integer crossings of the integral of the modulated cardiac rate
    (on a 4 Hz grid, integrated day by day so memory stays bounded), then RR jitter."""
    fs = 4.0
    n1, tr, cfg = lat.n1, lat.traits, lat.cfg
    grid = np.arange(n1)
    mayer_noise = _ou(r, n1, 1.0, 60.0)      # slow random phase of the Mayer wave (1 Hz)
    P_end = r.random()                        # cardiac phase (cycles) before the first sample
    parts = []
    for s0 in range(0, n1, 86400):
        s1 = min(n1, s0 + 86400)
        g0 = int(round(s0 * fs))
        t = np.arange(g0, int(round(s1 * fs))) / fs
        hr = np.interp(t, grid, lat.hr)
        excess = np.maximum(hr - tr["hr_rest"], 0)
        sleep = lat.code[np.minimum(t.astype(np.int64), n1 - 1)] == SLEEP
        rsa = tr["rsa"] * np.exp(-excess / 25.0) * np.where(sleep, 1.3, 1.0)
        resp = np.interp(t, grid, lat.resp_phase)
        mayer = cfg.mayer_depth * np.exp(-excess / 30.0) * np.sin(2 * np.pi * 0.095 * t + np.interp(t, grid, mayer_noise))
        f = hr / 60.0 * (1 + rsa * np.sin(resp) + mayer)
        P = np.r_[P_end, P_end + np.cumsum(f) / fs]    # P[j] = phase at time (g0 + j - 1) / fs
        k = np.arange(math.floor(P[0]) + 1, math.floor(P[-1]) + 1, dtype=np.float64)
        idx = np.clip(np.searchsorted(P, k), 1, len(P) - 1)
        frac = (k - P[idx - 1]) / np.maximum(P[idx] - P[idx - 1], 1e-12)
        parts.append((g0 + idx - 2 + frac) / fs)
        P_end = float(P[-1])
    beats = np.concatenate(parts)
    beats = beats[beats >= 0]
    rr = np.diff(beats)
    hr_b = 60.0 / rr
    jit = cfg.rr_jitter * np.exp(-np.maximum(hr_b - tr["hr_rest"], 0) / 35.0) + 0.002
    rr = rr * (1 + jit * r.normal(0, 1, rr.shape[0]))
    rr = np.clip(rr, 0.25, 2.0)
    beats = beats[0] + np.r_[0.0, np.cumsum(rr)]
    return beats[beats < n1 - 1e-6]


def hr_label_from_beats(beats: np.ndarray, n: int, fs_hz: float = 1.0) -> np.ndarray:
    """Label ``hr`` (bpm) on a grid of ``n`` samples at ``fs_hz``: 60 / RR of the beat interval
    containing each sample time; NaN before the first and after the last beat."""
    t = np.arange(n) / fs_hz
    out = np.full(n, np.nan, np.float32)
    if len(beats) < 2:
        return out
    j = np.searchsorted(beats, t, side="right") - 1
    ok = (j >= 0) & (j < len(beats) - 1)
    rr = np.diff(beats)
    out[ok] = 60.0 / rr[j[ok]]
    return out


def rmssd_label_from_beats(beats: np.ndarray, n: int, fs_hz: float = 1.0, half_s: float = 30.0) -> np.ndarray:
    """Label ``rmssd`` (ms) on a grid: RMSSD of the RRs whose end beat lies within +-half_s."""
    t = np.arange(n) / fs_hz
    out = np.full(n, np.nan, np.float32)
    if len(beats) < 4:
        return out
    rr = np.diff(beats) * 1000.0
    d2 = np.diff(rr) ** 2           # successive difference i ends at beat i+2
    tb = beats[2:]
    cs = np.r_[0.0, np.cumsum(d2)]
    a = np.searchsorted(tb, t - half_s)
    b = np.searchsorted(tb, t + half_s)
    cnt = b - a
    ok = cnt >= 5
    out[ok] = np.sqrt((cs[b[ok]] - cs[a[ok]]) / cnt[ok])
    return out


def _detected_beats(lat: _Latent) -> np.ndarray:
    """Beats a PPG device would detect: dropouts in 5 s blocks rising with motion; none
    off-wrist or while charging."""
    r = _rng(lat.cfg, lat.traits["index"], 3)
    nb = lat.n1 // 5 + 1
    met5 = np.pad(lat.met, (0, nb * 5 - lat.n1), mode="edge").reshape(nb, 5).max(1)
    gest5 = np.pad(lat.gesture, (0, nb * 5 - lat.n1)).reshape(nb, 5).max(1)
    p = np.clip(0.02 + 0.07 * np.maximum(met5 - 2, 0) + 2.0 * gest5, 0, 0.9)
    drop = r.random(nb) < p
    off = lat.offwrist | lat.charging
    b = lat.beats
    sec = np.minimum(b.astype(np.int64), lat.n1 - 1)
    keep = ~drop[sec // 5] & ~off[sec]
    return b[keep]


# ---------------------------------------------------------------- 5. ACC

def _interp_grid(arr: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Linear interpolation of a 1 Hz array at times t (s)."""
    return _Grid(t, arr.shape[0])(arr)


class _Grid:
    """Sample times t (s) mapped onto the 1 Hz latent grid once; ``grid(arr)`` interpolates."""

    def __init__(self, t: np.ndarray, n1: int):
        i0 = np.minimum(np.floor(t).astype(np.int64), n1 - 1)
        self.i0, self.i1 = i0, np.minimum(i0 + 1, n1 - 1)
        self.f = (t - i0).astype(np.float32)

    def __call__(self, arr: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        i0, i1, f = (self.i0, self.i1, self.f) if idx is None else (self.i0[idx], self.i1[idx], self.f[idx])
        a0, a1 = arr[i0], arr[i1]
        if arr.ndim == 2:
            f = f[:, None]
        return a0 + (a1 - a0) * f

    def nearest(self, arr: np.ndarray) -> np.ndarray:
        return arr[self.i0]


def _bcg(beats: np.ndarray, t0: float, n: int, fs: float, amp: float) -> np.ndarray:
    """Faint BCG on n samples from t0 (s): a damped 7 Hz wavelet (decay 80 ms, 0.4 s long)
    150 ms after each beat, peak ``amp`` g."""
    out = np.zeros(n, np.float32)
    if amp <= 0 or len(beats) == 0:
        return out
    bt = beats + 0.15
    L = int(math.ceil(0.4 * fs))
    k = np.ceil((bt - t0) * fs - 1e-9).astype(np.int64)[:, None] + np.arange(L)[None, :]
    tau = k / fs + t0 - bt[:, None]
    w = np.exp(-tau / 0.08) * np.sin(2 * np.pi * 7.0 * tau) * (amp / 0.63)  # 0.63: unit peak
    ok = (k >= 0) & (k < n) & (tau >= 0) & (tau < 0.4)
    out += np.bincount(k[ok], weights=w[ok], minlength=n)[:n].astype(np.float32)
    return out


def _render_acc_chunk(lat: _Latent, k: int) -> tuple[np.ndarray, np.ndarray]:
    """ACC (n, 3) in g and validity (n,) for chunk k = [k*_CHUNK_S, (k+1)*_CHUNK_S) s."""
    cfg, tr = lat.cfg, lat.traits
    fs = cfg.fs_hz
    a = int(round(k * _CHUNK_S * fs))
    b = int(min(round((k + 1) * _CHUNK_S * fs), round(lat.n1 * fs)))
    n = b - a
    s0, s1 = k * _CHUNK_S, min(lat.n1, (k + 1) * _CHUNK_S + 2)
    r = _rng(cfg, tr["index"], 10, k)
    t = np.arange(a, b) / fs
    G = _Grid(t, lat.n1)
    g = lat.orient[G.i0]  # posture is constant within most seconds: interpolate only where it moves
    moving = (lat.orient[G.i1] != g).any(1)
    if moving.any():
        mi = np.flatnonzero(moving)
        gm = G(lat.orient, mi)
        g[mi] = gm / (np.sqrt((gm * gm).sum(1, keepdims=True)) + 1e-9)
    acc = g.copy()
    # band-limited noise (4 Hz knots, linear interpolation): gestures and gait irregularity
    n_knots = int(math.ceil(n / fs * 4)) + 2
    knots = r.standard_normal((n_knots, 3), dtype=np.float32)
    # gait: arm swing rotation about y at half the step rate, and step impacts
    if lat.gait_amp[s0:s1].any():
        ga = G(lat.gait_amp)
        idx = np.flatnonzero(ga > 0)
        ph = G(lat.gait_phase, idx)
        w = ga[idx]
        irr = _interp_grid(knots, (t[idx] - a / fs) * 4)   # (m, 3) smooth N(0, 1) noise
        w = w * (1 + 0.15 * irr[:, 0])                       # stride-to-stride amplitude
        theta = (0.35 * np.minimum(w, 1.0) + 0.1 * np.maximum(w - 1, 0)) * np.sin(ph / 2)
        c, s = np.cos(theta), np.sin(theta)
        gx, gz = g[idx, 0], g[idx, 2]
        acc[idx, 0] = gx * c + gz * s
        acc[idx, 2] = -gx * s + gz * c
        imp = 0.12 * w * (np.cos(ph) + 0.5 * np.cos(2 * ph + 0.7) + 0.25 * np.cos(3 * ph + 1.9))
        acc[idx] += (imp[:, None] * g[idx]).astype(np.float32)
        acc[idx, 0] += (0.06 * w * np.sin(ph + 0.4)).astype(np.float32)
        acc[idx] += 0.04 * w[:, None] * np.roll(irr, 1, axis=1)    # irregular arm motion
    # auxiliary rhythms: pedalling (+ vibration), strength sets, FoG tremble
    codes = lat.code[s0:s1]
    code = G.nearest(lat.code) if codes.min() != codes.max() else None
    def where(c):
        if code is None:
            return np.arange(n) if codes[0] == c else np.zeros(0, np.int64)
        return np.flatnonzero(code == c)
    cyc = where(CYCLING) if (codes == CYCLING).any() else ()
    if len(cyc):
        ph = G(lat.aux_phase, cyc)
        acc[cyc, 0] += (0.03 * np.sin(ph)).astype(np.float32)
        acc[cyc] += 0.04 * r.standard_normal((len(cyc), 3), dtype=np.float32)
    if lat.set_on[s0:s1].any():
        so = G(lat.set_on)
        st = np.flatnonzero(so > 0)
        ph = G(lat.aux_phase, st)
        theta = so[st] * 1.2 * (1 - np.cos(ph)) / 2
        c, s = np.cos(theta), np.sin(theta)
        gx, gz = acc[st, 0].copy(), acc[st, 2].copy()
        acc[st, 0] = gx * c + gz * s + 0.15 * so[st] * np.sin(ph)
        acc[st, 2] = -gx * s + gz * c
    fz = where(FREEZING) if (codes == FREEZING).any() else ()
    if len(fz):
        ph = G(lat.aux_phase, fz)
        amp = 0.12 * (1 + 0.4 * np.sin(0.5 * ph / tr["fog_hz"]))
        trem = amp * (np.sin(ph) + 0.3 * np.sin(2 * ph + 0.5))
        acc[fz] += (trem[:, None] * np.asarray(tr["fog_axis"], np.float32)[None, :]).astype(np.float32)
    # gestures: the band-limited noise under an envelope
    if lat.gesture[s0:s1].any():
        env = G(lat.gesture)
        ge = np.flatnonzero(env > 0)
        acc[ge] += env[ge, None] * _interp_grid(knots, (t[ge] - a / fs) * 4)
    # BCG, sensor noise, quantisation, clipping
    bb = lat.beats[(lat.beats > t[0] - 1) & (lat.beats < t[-1] + 1)]
    bcg = _bcg(bb, float(t[0]), n, fs, cfg.bcg_g)
    sec = G.i0
    if lat.offwrist[s0:s1].any():
        bcg[lat.offwrist[sec]] = 0
    acc[:, 1] += bcg
    acc += np.float32(cfg.acc_noise_g) * r.standard_normal((n, 3), dtype=np.float32)
    lsb = np.float32(cfg.acc_lsb_g)
    acc = np.clip(np.round(acc / lsb) * lsb, -cfg.acc_range_g, cfg.acc_range_g).astype(np.float32)
    valid = ~lat.charging[sec]
    if not valid.all():
        acc[~valid] = np.nan
    return acc, valid


def _render_acc(lat: _Latent, a_s: int, b_s: int, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """ACC (n, 3) and validity for whole seconds [a_s, b_s). ``cache``: {chunk: arrays},
    reused and pruned to the chunks of this call (for streaming consecutive spans)."""
    fs = lat.cfg.fs_hz
    k0, k1 = a_s // _CHUNK_S, (b_s - 1) // _CHUNK_S
    if cache is None:
        parts = [_render_acc_chunk(lat, k) for k in range(k0, k1 + 1)]
    else:
        for k in [k for k in cache if not k0 <= k <= k1]:
            del cache[k]
        parts = [cache[k] if k in cache else cache.setdefault(k, _render_acc_chunk(lat, k))
                 for k in range(k0, k1 + 1)]
    acc = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
    val = np.concatenate([p[1] for p in parts]) if len(parts) > 1 else parts[0][1]
    off = int(round(k0 * _CHUNK_S * fs))
    i, j = int(round(a_s * fs)) - off, int(round(b_s * fs)) - off
    return acc[i:j], val[i:j]


# ---------------------------------------------------------------- 6. PPG

def _pulse(phi: np.ndarray) -> np.ndarray:
    """Unit pulse over one beat, phase phi in [0, 1): systolic + diastolic Gaussian waves."""
    return (np.exp(-((phi - 0.16) / 0.07) ** 2) + 0.25 * np.exp(-((phi - 0.42) / 0.12) ** 2)
            - 0.22)


def _render_ppg(lat: _Latent, a_s: int, b_s: int, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PPG (n,) a.u. at ppg_fs_hz for seconds [a_s, b_s); ``acc`` (m, 3) at fs_hz, same span."""
    cfg, tr = lat.cfg, lat.traits
    fs = cfg.ppg_fs_hz
    r = _rng(cfg, tr["index"], 20, a_s)
    t = np.arange(int(round(a_s * fs)), int(round(b_s * fs))) / fs
    b = lat.beats
    j = np.searchsorted(b, t, side="right") - 1
    ok = (j >= 0) & (j < len(b) - 1)
    jj = np.clip(j, 0, max(len(b) - 2, 0))
    rr = b[jj + 1] - b[jj]
    phi = np.where(ok, (t - b[jj]) / np.maximum(rr, 1e-3), 0.0)
    amp = tr["ppg_amp"] * np.exp(_interp_grid(_ou(r, b_s - a_s + 2, 0.15, 60.0), t - a_s))
    x = amp * np.where(ok, _pulse(phi), 0.0)
    # baseline: respiration and slow drift
    x += 0.15 * tr["ppg_amp"] * np.sin(_interp_grid(lat.resp_phase, t))
    x += tr["ppg_amp"] * _interp_grid(_ou(r, b_s - a_s + 2, 0.3, 30.0), t - a_s)
    # motion artefact: subject-specific mix of band-passed ACC, brought to the PPG rate
    accf = np.nan_to_num(acc.astype(np.float64))
    sos = sps.butter(2, [0.3, min(8.0, cfg.fs_hz / 2 - 1)], btype="band", fs=cfg.fs_hz, output="sos")
    bp = sps.sosfiltfilt(sos, accf, axis=0) if accf.shape[0] > 30 else accf * 0
    mix = bp @ np.asarray(tr["ppg_motion_mix"])
    ta = np.arange(acc.shape[0]) / cfg.fs_hz
    x += tr["ppg_amp"] * np.interp(t - a_s, ta, mix)
    # sensor noise at the subject's SNR
    x += r.normal(0, tr["ppg_amp"] * 10 ** (-tr["ppg_snr_db"] / 20), t.shape[0])
    sec = np.minimum(t.astype(np.int64), lat.n1 - 1)
    valid = ~(lat.offwrist[sec] | lat.charging[sec])
    x = x.astype(np.float32)
    x[~valid] = np.nan
    return x, valid


# ---------------------------------------------------------------- 7. EDA, temperature, altimeter

def _render_slow(lat: _Latent) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Whole-recording EDA (eda_fs_hz), skin temperature and pressure (1 Hz), cached."""
    if lat.slow is None:
        lat.slow = _render_slow_uncached(lat)
    return lat.slow


def _render_slow_uncached(lat: _Latent) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    cfg, tr = lat.cfg, lat.traits
    r = _rng(cfg, tr["index"], 30)
    n1 = lat.n1
    met = lat.met.astype(np.float64)
    sleep = lat.code == SLEEP
    # EDA
    fe = cfg.eda_fs_hz
    ne = int(round(n1 * fe))
    te = np.arange(ne) / fe
    tonic_t = tr["scl_uS"] * (1 + 0.12 * np.maximum(met - 1.3, 0)) * np.where(sleep, 0.7, 1.0)
    a = 1 - math.exp(-1 / 300.0)
    tonic = sps.lfilter([a], [1, a - 1], tonic_t, zi=[tonic_t[0] * (1 - a)])[0]
    tonic *= np.exp(_ou(r, n1, 0.15, 1800.0))
    rate = np.where(sleep, 0.2, 1.5 + 0.4 * np.maximum(met - 1.3, 0)) / 60.0  # SCRs per second
    imp = np.zeros(ne)
    ev = np.flatnonzero(r.random(n1) < rate)
    if len(ev):
        imp[np.minimum((ev * fe).astype(np.int64), ne - 1)] = r.lognormal(math.log(0.08 * tr["scl_uS"] ** 0.5), 0.5, len(ev))
    tk = np.arange(int(30 * fe)) / fe
    kern = (1 - np.exp(-tk / 1.0)) * np.exp(-tk / 6.0)
    eda = np.interp(te, np.arange(n1), tonic) + sps.fftconvolve(imp, kern)[:ne]
    eda += r.normal(0, 0.01, ne)
    eda = np.maximum(np.round(eda / 0.001) * 0.001, 0.0)
    sec_e = np.minimum(te.astype(np.int64), n1 - 1)
    ev_ok = ~(lat.charging[sec_e] | lat.offwrist[sec_e])
    if cfg.eda_night_duty:
        ev_ok &= ~(sleep[sec_e] & ((te // 300).astype(np.int64) % 2 == 1))
    # skin temperature
    tt = tr["temp_c"] + np.where(sleep, 1.0, 0.0) - 0.8 * (met > 4.5)
    a = 1 - math.exp(-1 / 600.0)
    temp = sps.lfilter([a], [1, a - 1], tt, zi=[tt[0] * (1 - a)])[0]
    temp += _ou(r, n1, 0.3, 1800.0) + r.normal(0, 0.03, n1)
    temp = np.round(temp / 0.02) * 0.02
    t_ok = ~(lat.charging | lat.offwrist)
    # pressure: weather drift + elevation (random vertical speed while moving)
    moving = np.isin(lat.code, (WALKING, RUNNING, CYCLING))
    vz = np.repeat(r.normal(0, 0.12, n1 // 60 + 1), 60)[:n1] * moving
    elev = tr["elevation_m"] + np.cumsum(vz)
    p0 = 1013.25 * (1 - 2.25577e-5 * elev) ** 5.25588
    press = p0 + _ou(r, n1, 3.0, 6 * 3600.0) + r.normal(0, 0.04, n1)
    press = np.round(press / 0.01) * 0.01
    p_ok = ~lat.charging
    out = {}
    for name, d, ok, fs in (("eda", eda, ev_ok, fe), ("temp", temp, t_ok, 1.0), ("alt", press, p_ok, 1.0)):
        d = d.astype(np.float32)
        d[~ok] = np.nan  # not recorded: no value, not a made-up one
        out[name] = (d, ok, fs)
    return out


# ---------------------------------------------------------------- recordings

_UNITS = {"eda": ("eda", "uS"), "temp": ("temp", "degC"), "alt": ("alt", "hPa")}


def _labels(lat: _Latent, a_s: int, b_s: int, beats: np.ndarray | None = None,
            which=("activity", "freeze", "hr", "rmssd")) -> dict[str, LabelTrack]:
    """Label tracks at 1 Hz for seconds [a_s, b_s); ``beats`` relative to a_s."""
    out = {}
    if "activity" in which:
        out["activity"] = LabelTrack("activity", "categorical", 1.0, lat.code[a_s:b_s].astype(np.int16),
                                     classes=ACTIVITY_CLASSES)
    if "freeze" in which:
        out["freeze"] = LabelTrack("freeze", "categorical", 1.0, lat.freeze[a_s:b_s].astype(np.int16),
                                   classes=FREEZE_CLASSES)
    if beats is None:  # beats around the span too, so labels near its edges are complete
        beats = lat.beats[(lat.beats >= a_s - 35) & (lat.beats < b_s + 35)] - a_s
    if "hr" in which:
        out["hr"] = LabelTrack("hr", "continuous", 1.0, hr_label_from_beats(beats, b_s - a_s), unit="bpm")
    if "rmssd" in which:
        out["rmssd"] = LabelTrack("rmssd", "continuous", 1.0, rmssd_label_from_beats(beats, b_s - a_s), unit="ms")
    return out


def _acc_streams(acc: np.ndarray, valid: np.ndarray, fs: float) -> dict[str, Stream]:
    return {f"acc_{ax}": Stream(ChannelSpec(f"acc_{ax}", "acc", "g", fs), acc[:, i], valid)
            for i, ax in enumerate("xyz")}


def _meta(lat: _Latent, part: str) -> dict:
    tr = lat.traits
    return {"synthetic": True, "part": part, "generator": "edgefm.data.synth",
            "traits": {k: tr[k] for k in ("age", "sex", "fitness", "bmi", "skin_type", "hr_rest", "fog")}}


PARTS = ("ppg", "acc", "eda", "temp", "alt")


def synthesize_recording(cfg: SynthConfig, subject_index: int, start_s: int = 0, seconds: int | None = None,
                         parts: tuple[str, ...] = PARTS, _lat: _Latent | None = None,
                         _acc: tuple[np.ndarray, np.ndarray] | None = None) -> Recording:
    """One subject's raw recording over whole seconds [start_s, start_s + seconds).

    Deterministic per (cfg.seed, subject_index): any slice holds the same samples as the
    whole recording. ``parts`` picks the sensors (``ppg`` needs ``acc`` internally for
    motion artefacts, rendered either way). Labels ``activity``, ``freeze``, ``hr``,
    ``rmssd`` at 1 Hz; events ``beats`` (true beats, seconds from this recording's start).
    """
    bad = set(parts) - set(PARTS)
    if bad:
        raise ConfigError(f"unknown parts {sorted(bad)}", field="parts", hint=f"choose from {PARTS}")
    if not (0 <= subject_index < cfg.subjects):
        raise ConfigError(f"subject_index {subject_index} outside 0..{cfg.subjects - 1}", field="subject_index")
    lat = _lat or _latent(cfg, subject_index)
    seconds = lat.n1 - start_s if seconds is None else int(seconds)
    a_s, b_s = int(start_s), int(start_s) + seconds
    if a_s < 0 or seconds <= 0 or b_s > lat.n1:
        raise ConfigError(f"span [{a_s}, {b_s}) s outside the recording (0..{lat.n1} s)", field="start_s/seconds")
    streams: dict[str, Stream] = {}
    acc = val = None
    if "acc" in parts or "ppg" in parts:
        if _acc is not None:  # the whole recording's ACC, already rendered
            i, j = int(round(a_s * cfg.fs_hz)), int(round(b_s * cfg.fs_hz))
            acc, val = _acc[0][i:j], _acc[1][i:j]
        else:
            acc, val = _render_acc(lat, a_s, b_s)
    if "ppg" in parts:
        x, v = _render_ppg(lat, a_s, b_s, acc)
        streams["ppg"] = Stream(ChannelSpec("ppg", "ppg", "a.u.", cfg.ppg_fs_hz), x, v)
    if "acc" in parts:
        streams.update(_acc_streams(acc, val, cfg.fs_hz))
    slow = [p for p in ("eda", "temp", "alt") if p in parts]
    if slow:
        sl = _render_slow(lat)
        for p in slow:
            d, v, fs = sl[p]
            i, j = int(round(a_s * fs)), int(round(b_s * fs))
            mod, unit = _UNITS[p]
            streams[p] = Stream(ChannelSpec(p, mod, unit, fs), d[i:j], v[i:j])
    beats = lat.beats[(lat.beats >= a_s) & (lat.beats < b_s)] - a_s
    sid = lat.traits["id"]
    return Recording(sid, EPOCH0 + cfg.start_hour * 3600 + a_s, streams,
                     _labels(lat, a_s, b_s), {"beats": beats}, _meta(lat, "segment"),
                     id=sid if (a_s == 0 and b_s == lat.n1) else f"{sid}-{a_s:06d}")


def _segment_starts(lat: _Latent, n_seg: int, seg_s: int) -> list[int]:
    """Segment start seconds covering the day's activity classes round-robin."""
    r = _rng(lat.cfg, lat.traits["index"], 4)
    ok = ~lat.charging
    classes = [c for c in range(len(ACTIVITY_CLASSES)) if ((lat.code == c) & ok).any()]
    awake = [c for c in classes if c != SLEEP]
    r.shuffle(awake)
    order = awake + ([SLEEP] if SLEEP in classes else [])
    starts: list[int] = []
    hi = lat.n1 - seg_s
    for k in range(n_seg):
        c = order[k % len(order)] if order else SEDENTARY
        cand = np.flatnonzero((lat.code == c) & ok)
        free = lambda s: all(abs(s - o) >= seg_s for o in starts)
        for _ in range(30):
            t = int(r.choice(cand)) if len(cand) else int(r.integers(0, hi + 1))
            s = int(np.clip(t - seg_s // 2, 0, hi))
            if free(s):
                break
        else:  # rare class crowded out: take the first free slot of the day, or skip
            slots = [s for s in range(0, hi + 1, seg_s) if free(s) and ok[s:s + seg_s].any()]
            if not slots:
                continue
            s = slots[int(r.integers(0, len(slots)))]
        starts.append(s)
    return sorted(starts)


def _day_recording(lat: _Latent, acc: np.ndarray, val: np.ndarray) -> Recording:
    """Whole recording as a device would log it, input of the minute features: ACC, EDA,
    TEMP, ALT, the optical on-wrist flag (1 Hz) and the PPG-detected beats."""
    cfg = lat.cfg
    streams = _acc_streams(acc, val, cfg.fs_hz)
    for p, (d, v, fs) in _render_slow(lat).items():
        mod, unit = _UNITS[p]
        streams[p] = Stream(ChannelSpec(p, mod, unit, fs), d, v)
    streams["on_wrist"] = Stream(ChannelSpec("on_wrist", "ppg", "bool", 1.0),
                                 (~lat.offwrist).astype(np.float32), ~lat.charging)
    sid = lat.traits["id"]
    return Recording(sid, EPOCH0 + cfg.start_hour * 3600, streams, _labels(lat, 0, lat.n1),
                     {"beats": _detected_beats(lat)}, _meta(lat, "day"), id=sid)


def _subject_parts(args) -> tuple[Recording | None, list[Recording], Recording, dict]:
    """Everything one subject contributes: (trace, segments, minute features, traits)."""
    cfg, i = args
    from edgefm.data.features import minutely_features
    lat = _latent(cfg, i)
    acc, val = _render_acc(lat, 0, lat.n1)
    day = _day_recording(lat, acc, val)
    feats = minutely_features(day)
    n_seg = int(round(cfg.raw_minutes / cfg.segment_minutes)) if cfg.raw_minutes > 0 else 0
    segs = []
    if n_seg:
        seg_s = int(round(cfg.raw_minutes * 60 / n_seg))
        for s in _segment_starts(lat, n_seg, seg_s):
            rec = synthesize_recording(cfg, i, s, seg_s, _lat=lat, _acc=(acc, val))
            segs.append(rec)
    trace = None
    if cfg.traces:
        sid = lat.traits["id"]
        trace = Recording(sid, EPOCH0 + cfg.start_hour * 3600, _acc_streams(acc, val, cfg.fs_hz),
                          _labels(lat, 0, lat.n1, which=("activity", "freeze", "hr")), {},
                          _meta(lat, "trace"), id=sid)
    return trace, segs, feats, lat.traits


# ---------------------------------------------------------------- long ACC traces

def iter_acc_trace(days: float, seed: int, fs_hz: float = 32.0, chunk_s: int = _CHUNK_S,
                   subject_index: int = 0, freezing: bool = False) -> Iterator[Recording]:
    """A long ACC-only trace as consecutive chunk recordings of ``chunk_s`` seconds.

    Memory: the 1 Hz latent state (about 60 bytes per second of trace, 36 MB a week)
    plus one chunk; the ACC itself is never held whole. Chunks carry ``activity``,
    ``freeze`` and ``hr`` labels at 1 Hz; ``start_time`` advances chunk by chunk.
    """
    if not isinstance(chunk_s, (int, np.integer)) or chunk_s <= 0:
        raise ConfigError(f"chunk_s must be a positive whole number of seconds, got {chunk_s!r}",
                          field="chunk_s")
    cfg = SynthConfig(subjects=max(1, subject_index + 1), days=days, seed=seed, fs_hz=fs_hz,
                      raw_minutes=0.0, freezing_fraction=1.0 if freezing else 0.0)
    lat = _latent(cfg, subject_index)
    sid = lat.traits["id"]
    cache: dict = {}
    for a_s in range(0, lat.n1, chunk_s):
        b_s = min(lat.n1, a_s + chunk_s)
        acc, val = _render_acc(lat, a_s, b_s, cache)
        yield Recording(sid, EPOCH0 + cfg.start_hour * 3600 + a_s, _acc_streams(acc, val, fs_hz),
                        _labels(lat, a_s, b_s, which=("activity", "freeze", "hr")), {},
                        _meta(lat, "trace"), id=f"{sid}-{a_s:07d}")


def synth_acc_trace(days: float, seed: int, fs_hz: float = 32.0, freezing: bool = False) -> Recording:
    """A continuous ACC-only trace of ``days`` (3 channels at fs_hz, labels at 1 Hz).

    Held whole in memory (about 48 MB per day at 32 Hz); stream long ones with
    :func:`iter_acc_trace` instead.
    """
    chunks = list(iter_acc_trace(days, seed, fs_hz, freezing=freezing))
    c0 = chunks[0]
    streams = {k: Stream(s.spec, np.concatenate([c.streams[k].data for c in chunks]),
                         np.concatenate([c.streams[k].valid for c in chunks])) for k, s in c0.streams.items()}
    labels = {k: dataclasses.replace(lt, values=np.concatenate([c.labels[k].values for c in chunks]))
              for k, lt in c0.labels.items()}
    return Recording(c0.subject, c0.start_time, streams, labels, {}, dict(c0.meta),
                     id=f"{c0.subject}-seed{seed}")


# ---------------------------------------------------------------- the cohort directory

def synthesize(cfg: SynthConfig, out: str | Path, workers: int | None = None, *,
               overwrite: bool = False) -> Path:
    """Write the cohort directory ``out`` atomically; returns ``out``.

    ``workers``: processes over subjects (default: min(2, CPUs), 1 for tiny cohorts).
    The output does not depend on it. ``out`` is checked before any work
    (:func:`edgefm.data.store.prepare_output`); an existing non-empty ``out`` is replaced only
    with ``overwrite``.
    """
    from edgefm.data.store import output_errors, prepare_output, subject_split, write_recordings, write_windows
    from edgefm.data.windows import LSM_MINUTELY, WRIST_RAW
    from edgefm.manifest import SCHEMA_VERSION, atomic_dir, atomic_write_json, package_versions

    if not isinstance(cfg, SynthConfig):
        raise ConfigError("synthesize needs a SynthConfig", field="cfg")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 256):
        raise ConfigError(f"workers must be a whole number in 1..256, got {workers!r}", field="workers")
    out = prepare_output(out, overwrite=overwrite)
    ids = [subject_id(i) for i in range(cfg.subjects)]
    split = subject_split(ids, seed=cfg.seed)
    if workers is None:
        workers = 1 if cfg.subjects * cfg.days < 4 else min(2, os.cpu_count() or 1)
    provenance = {"generator": {"name": "edgefm.data.synth", "version": GENERATOR_VERSION,
                                "params": cfg.to_dict(), "seed": cfg.seed}}
    segs: list[Recording] = []
    feats: list[Recording] = []
    traits: dict[str, dict] = {}

    def results():
        jobs = [(cfg, i) for i in range(cfg.subjects)]
        if workers > 1:
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            with ctx.Pool(workers, initializer=_worker_init) as pool:
                yield from pool.imap(_subject_parts, jobs, chunksize=1)
        else:
            yield from map(_subject_parts, jobs)

    def traces():
        for trace, s, f, tr in results():
            segs.extend(s)
            feats.append(f)
            traits[tr["id"]] = {k: v for k, v in tr.items() if k not in ("index",)}
            if trace is not None:
                yield trace

    with output_errors(out), atomic_dir(out, overwrite=overwrite) as tmp:
        parts = {}
        if cfg.traces:
            write_recordings(traces(), tmp / "traces", provenance=provenance, split=split)
            parts["traces"] = {"kind": "recordings", "path": "traces"}
        else:
            for _ in traces():
                pass
        if segs:
            write_recordings(segs, tmp / "segments", provenance=provenance, split=split)
            parts["segments"] = {"kind": "recordings", "path": "segments"}
            write_windows(segs, tmp / "raw", WRIST_RAW, provenance=provenance, split=split)
            parts["raw"] = {"kind": "windows", "preset": WRIST_RAW.name, "path": "raw"}
        minutely = dataclasses.replace(LSM_MINUTELY, derive=None)  # features already computed
        if cfg.days * 1440 >= LSM_MINUTELY.window_s / 60:
            write_windows(feats, tmp / "minutely", minutely, provenance=provenance, split=split)
            parts["minutely"] = {"kind": "windows", "preset": LSM_MINUTELY.name, "path": "minutely"}
        atomic_write_json(tmp / "manifest.json", {
            "schema_version": SCHEMA_VERSION, "kind": "cohort", "subjects": ids,
            "hours": cfg.subjects * cfg.seconds / 3600.0, "split": split,
            "provenance": {**provenance, "versions": package_versions("numpy", "scipy")},
            "parts": parts, "activity_classes": list(ACTIVITY_CLASSES),
            "subject_traits": traits})
    return out


def _worker_init():
    os.environ.setdefault("OMP_NUM_THREADS", "1")
