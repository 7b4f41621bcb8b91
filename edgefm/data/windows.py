"""Presets, anti-aliased resampling and windowing into model batches.

``window_recording(rec, preset)`` -> :class:`Windows` with
  x:     (N, C, T) float32 at ``preset.fs_hz``; missing samples hold 0.0
  mask:  (N, C, T) bool, True = observed (the only truth about what is missing)
  labels: {name: (N,)} continuous mean over the window's known values (NaN if none) or
          categorical majority (-1 if none known)
  subject: (N,) str, start_time: (N,) float64 Unix seconds
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable

import numpy as np
from scipy import signal as sps

from edgefm.data.lsm_signals import LSM_SIGNALS, MINUTE_HZ
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import ConfigError, DataError, ShapeError


#: longest window (and hop) a preset may have, in samples: 2**20, about 9 h at 32 Hz; a window
#: is allocated per channel and per batch row, so a stray 1e9 s must fail before any array exists
MAX_WINDOW_SAMPLES = 1 << 20


@dataclass(frozen=True)
class Preset:
    """How recordings become model windows.

    channels: model channel order (LSM: clustered by modality); a channel missing from a
        recording is carried as all-missing, never invented.
    derive: optional transform run first (lsm-minutely computes the 26 minute features).
    min_valid: windows with a smaller observed fraction (over all channels) are dropped.
    """

    name: str
    channels: tuple[ChannelSpec, ...]
    fs_hz: float
    window_s: float
    hop_s: float
    min_valid: float = 0.0
    derive: Callable[[Recording], Recording] | None = field(default=None, compare=False, repr=False)
    #: a recording shorter than one window gives one window, padded at the end with *missing*
    #: samples (mask False), kept if ``min_valid`` allows (e.g. a 2 h WESAD session in a 300 min
    #: lsm-minutely window); recordings at least one window long are never padded.
    pad_short: bool = False

    def __post_init__(self):
        for name in ("fs_hz", "window_s", "hop_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a positive finite number, got {v!r}", field=name)
        if isinstance(self.min_valid, bool) or not isinstance(self.min_valid, (int, float)) \
                or not (0.0 <= self.min_valid <= 1.0):
            raise ConfigError(f"min_valid must be a fraction in [0, 1], got {self.min_valid!r}", field="min_valid")
        for name, v in (("window_s", self.window_s), ("hop_s", self.hop_s)):
            n = v * self.fs_hz
            if n > MAX_WINDOW_SAMPLES:
                raise ConfigError(f"{name}={v:g} s is {n:.3g} samples at {self.fs_hz:g} Hz, more than "
                                  f"{MAX_WINDOW_SAMPLES}", field=name)
            if abs(n - round(n)) > 1e-6 or round(n) < 1:
                raise ConfigError(f"{name}={v} s is not a whole number of samples at {self.fs_hz} Hz",
                                  field=name)

    @property
    def window(self) -> int:
        """Window length in samples."""
        return int(round(self.window_s * self.fs_hz))

    @property
    def hop(self) -> int:
        """Hop in samples."""
        return int(round(self.hop_s * self.fs_hz))

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def spec(self) -> dict:
        """The input spec that manifests carry (model side of every artifact)."""
        return {"preset": self.name, "fs_hz": self.fs_hz, "window_s": self.window_s,
                "hop_s": self.hop_s, "window": self.window, "hop": self.hop,
                "channels": [c.to_dict() for c in self.channels]}


def _derive_minutely(rec: Recording) -> Recording:
    from edgefm.data.features import minutely_features  # heavy; only for this preset
    return minutely_features(rec)


WRIST_HZ = 32.0
WRIST_RAW = Preset(
    name="wrist-raw",
    channels=(ChannelSpec("ppg", "ppg", "a.u.", WRIST_HZ),
              ChannelSpec("acc_x", "acc", "g", WRIST_HZ),
              ChannelSpec("acc_y", "acc", "g", WRIST_HZ),
              ChannelSpec("acc_z", "acc", "g", WRIST_HZ)),
    fs_hz=WRIST_HZ, window_s=8.0, hop_s=2.0, min_valid=0.5)

LSM_MINUTELY = Preset(
    name="lsm-minutely", channels=LSM_SIGNALS, fs_hz=MINUTE_HZ,
    window_s=300 * 60.0, hop_s=60 * 60.0, min_valid=0.2, derive=_derive_minutely, pad_short=True)

PRESETS: dict[str, Preset] = {p.name: p for p in (WRIST_RAW, LSM_MINUTELY)}


def get_preset(name: str | Preset) -> Preset:
    if isinstance(name, Preset):
        return name
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}", field="preset",
                          hint=f"choose one of {', '.join(PRESETS)}") from None


@dataclass
class Windows:
    x: np.ndarray
    mask: np.ndarray
    labels: dict[str, np.ndarray]
    subject: np.ndarray
    start_time: np.ndarray
    channels: tuple[ChannelSpec, ...]
    fs_hz: float
    label_info: dict[str, dict] = field(default_factory=dict)

    def __post_init__(self):
        n = self.x.shape[0]
        if self.x.ndim != 3 or self.mask.shape != self.x.shape:
            raise ShapeError(f"x {self.x.shape} and mask {self.mask.shape} must both be (N, C, T)")
        if self.x.shape[1] != len(self.channels):
            raise ShapeError(f"x has {self.x.shape[1]} channels, {len(self.channels)} named")
        for k, v in self.labels.items():
            if v.shape != (n,):
                raise ShapeError(f"label {k} has shape {v.shape}, want ({n},)", field=k)
        if self.subject.shape != (n,) or self.start_time.shape != (n,):
            raise ShapeError("subject and start_time must be (N,)")

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def select(self, idx) -> "Windows":
        return dataclasses.replace(
            self, x=self.x[idx], mask=self.mask[idx],
            labels={k: v[idx] for k, v in self.labels.items()},
            subject=self.subject[idx], start_time=self.start_time[idx])

    @staticmethod
    def concat(parts: list["Windows"]) -> "Windows":
        if not parts:
            raise DataError("no windows to concatenate")
        p0 = parts[0]
        keys = set(p0.labels)
        for p in parts[1:]:
            keys &= set(p.labels)
        return Windows(
            x=np.concatenate([p.x for p in parts]), mask=np.concatenate([p.mask for p in parts]),
            labels={k: np.concatenate([p.labels[k] for p in parts]) for k in sorted(keys)},
            subject=np.concatenate([p.subject for p in parts]),
            start_time=np.concatenate([p.start_time for p in parts]),
            channels=p0.channels, fs_hz=p0.fs_hz, label_info=p0.label_info)


# ---------------------------------------------------------------- resampling

def _ratio(fs_in: float, fs_out: float) -> tuple[int, int]:
    fr = Fraction(fs_out / fs_in).limit_denominator(1000)
    if fr.numerator == 0:
        raise ConfigError(f"cannot resample {fs_in} Hz to {fs_out} Hz")
    return fr.numerator, fr.denominator


def resample_stream(s: Stream, fs_out: float) -> Stream:
    """Resample one stream to ``fs_out`` with an anti-aliasing polyphase filter.

    Invalid samples are bridged by linear interpolation *only* as filter input, and every
    output sample whose neighbourhood touched an invalid input stays invalid.
    """
    fs_in = s.spec.fs_hz
    spec = dataclasses.replace(s.spec, fs_hz=fs_out)
    if abs(fs_in - fs_out) < 1e-9:
        return Stream(spec, s.data.copy(), s.valid.copy())
    up, down = _ratio(fs_in, fs_out)
    n_out = int(np.floor(s.n * up / down))
    if s.n == 0 or not s.valid.any():
        return Stream(spec, np.full(n_out, np.nan, np.float32), np.zeros(n_out, bool))
    d = s.data.astype(np.float64)
    v = s.valid
    if not v.all():
        idx = np.flatnonzero(v)
        d = np.interp(np.arange(s.n), idx, d[idx])
    y = sps.resample_poly(d, up, down, padtype="line")[:n_out]
    # validity: an output sample is valid only if all inputs within the filter's half-width are
    # resample_poly's default FIR has 2*10*max(up, down)+1 taps at the upsampled rate, so an
    # output sample depends on inputs within 10*max(up, down)/up samples of it
    half = max(1, int(np.ceil(10 * max(up, down) / up)))
    bad = (~v).astype(np.float64)
    if bad.any():
        k = np.ones(2 * half + 1)
        spread = np.convolve(bad, k, mode="same") > 0
        t_in = (np.arange(n_out) * down / up).astype(int).clip(0, s.n - 1)
        vo = ~spread[t_in]
    else:
        vo = np.ones(n_out, bool)
    y = y.astype(np.float32)
    y[~vo] = np.nan
    return Stream(spec, y, vo)


def _label_to_rate(lt: LabelTrack, fs_out: float, n_out: int) -> np.ndarray:
    """Nearest-sample lookup of a label track on an output grid of ``n_out`` samples."""
    t = np.arange(n_out) / fs_out
    idx = np.floor(t * lt.fs_hz + 1e-9).astype(np.int64)
    ok = (idx >= 0) & (idx < lt.values.shape[0])
    fill = np.nan if lt.kind == "continuous" else -1
    out = np.full(n_out, fill, dtype=lt.values.dtype)
    out[ok] = lt.values[idx[ok]]
    return out


# ---------------------------------------------------------------- windowing

def _window_starts(n: int, window: int, hop: int) -> np.ndarray:
    if n < window:
        return np.zeros(0, np.int64)
    return np.arange(0, n - window + 1, hop, dtype=np.int64)


def window_recording(rec: Recording, preset: Preset | str) -> Windows:
    """Cut one recording into the preset's windows; see the module docstring for shapes."""
    preset = get_preset(preset)
    if preset.derive is not None:
        rec = preset.derive(rec)
    fs, W, H = preset.fs_hz, preset.window, preset.hop
    n_rec = int(np.floor(rec.duration_s * fs + 1e-6))
    n = W if (preset.pad_short and 0 < n_rec < W) else n_rec  # padding is missing (M False)
    C = len(preset.channels)
    X = np.zeros((C, n), np.float32)
    M = np.zeros((C, n), bool)
    for ci, ch in enumerate(preset.channels):
        if ch.name not in rec.streams:
            continue  # absent channel: all missing
        s = resample_stream(rec.streams[ch.name], fs)
        m = min(n, s.n)
        X[ci, :m] = np.where(s.valid[:m], s.data[:m], 0.0)
        M[ci, :m] = s.valid[:m]
    starts = _window_starts(n, W, H)
    if len(starts):
        cs = np.r_[0, np.cumsum(M.sum(0).astype(np.int64))]
        valid_frac = (cs[starts + W] - cs[starts]) / float(W * C)
        if preset.min_valid > 0:
            starts = starts[valid_frac >= preset.min_valid]
    N = len(starts)
    ix = starts[:, None] + np.arange(W)[None, :]
    x = X[:, ix].transpose(1, 0, 2) if N else np.zeros((0, C, W), np.float32)
    mask = M[:, ix].transpose(1, 0, 2) if N else np.zeros((0, C, W), bool)
    labels, info = {}, {}
    for name, lt in rec.labels.items():
        lv = _label_to_rate(lt, fs, n)
        info[name] = {"kind": lt.kind, "unit": lt.unit, "classes": list(lt.classes)}
        if N == 0:
            labels[name] = np.zeros(0, np.float32 if lt.kind == "continuous" else np.int16)
            continue
        wv = lv[ix]
        if lt.kind == "continuous":
            with np.errstate(invalid="ignore"):
                cnt = np.isfinite(wv).sum(1)
                s_ = np.nansum(wv, 1)
                labels[name] = np.where(cnt > 0, s_ / np.maximum(cnt, 1), np.nan).astype(np.float32)
        else:
            k = max(len(lt.classes), int(wv.max()) + 1, 1)
            counts = np.stack([(wv == c).sum(1) for c in range(k)], 1)
            lab = counts.argmax(1).astype(np.int16)
            lab[counts.max(1) == 0] = -1
            labels[name] = lab
    return Windows(
        x=np.ascontiguousarray(x, np.float32), mask=np.ascontiguousarray(mask),
        labels=labels, subject=np.full(N, rec.subject, dtype=object).astype(str),
        start_time=rec.start_time + starts / fs, channels=tuple(preset.channels), fs_hz=fs,
        label_info=info)


def window_recordings(recs: Iterable[Recording], preset: Preset | str) -> Windows:
    parts = [window_recording(r, preset) for r in recs]
    parts = [p for p in parts if len(p)] or parts[:1]
    return Windows.concat(parts)
