"""On-device heart-rate tracking across windows: a forward Bayesian filter over heart-rate bins.

A single 8 s window during running often holds a motion peak as strong as the pulse; the heart
rate itself moves at most a few bpm between windows 2 s apart. The tracker keeps a posterior
over the model's bins (``bins_bpm``): each new window,

    prior = K @ posterior          K: Gaussian in bpm, ``sigma_bpm`` per hop (how far HR moves)
    prior = (1 - floor) * prior + floor / F     (a lost track can always recover)
    posterior = prior * softmax(scores); normalised
    bpm = bins_bpm @ posterior

Cost per window on the device: the transition ``F x F`` multiply-accumulates (banded: the kernel
is cut at 4 sigma), ``F`` exponentials and ``2F`` more MACs; :func:`tracker_macs` counts them.
State: ``F`` floats. A gap in the recording (a window starting more than one hop after the last)
restarts the track.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, np.float64)
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def expected_bpm(scores: np.ndarray, bins_bpm) -> np.ndarray:
    """Per-window estimate without tracking: the expectation of softmax(scores) over the bins."""
    return softmax(scores) @ np.asarray(bins_bpm, np.float64)


def _kernel(bins: np.ndarray, sigma: float) -> np.ndarray:
    d = bins[:, None] - bins[None, :]
    k = np.exp(-0.5 * (d / sigma) ** 2)
    k[np.abs(d) > 4 * sigma] = 0.0
    return k / k.sum(0, keepdims=True)


@dataclass
class HRTracker:
    """Stateful tracker for one stream of windows (the firmware's view)."""

    bins_bpm: np.ndarray
    sigma_bpm: float
    floor: float = 1e-3

    def __post_init__(self):
        self.bins_bpm = np.asarray(self.bins_bpm, np.float64)
        if not (np.isfinite(self.sigma_bpm) and self.sigma_bpm > 0) or not 0 <= self.floor < 1:
            raise ValueError("sigma_bpm must be positive and floor in [0, 1)")
        self.K = _kernel(self.bins_bpm, float(self.sigma_bpm))
        self.post: np.ndarray | None = None

    def reset(self) -> None:
        self.post = None

    def update(self, scores: np.ndarray) -> float:
        like = softmax(np.asarray(scores).reshape(-1))
        F = len(self.bins_bpm)
        if self.post is None:
            post = like
        else:
            prior = (1 - self.floor) * (self.K @ self.post) + self.floor / F
            post = prior * like
            post = post / post.sum() if post.sum() > 0 else like
        self.post = post
        return float(self.bins_bpm @ post)


def track(scores: np.ndarray, recording: np.ndarray, start_s: np.ndarray, *, bins_bpm, sigma_bpm: float,
          floor: float = 1e-3) -> np.ndarray:
    """Track every recording's windows in time order; returns bpm per window in input order."""
    scores = np.asarray(scores)
    out = np.full(len(scores), np.nan)
    recording = np.asarray(recording)
    start_s = np.asarray(start_s, np.float64)
    for r in np.unique(recording):
        idx = np.flatnonzero(recording == r)
        idx = idx[np.argsort(start_s[idx], kind="stable")]
        t = HRTracker(bins_bpm, sigma_bpm, floor)
        hop = np.median(np.diff(start_s[idx])) if len(idx) > 1 else 0.0
        last = None
        for i in idx:
            if last is not None and start_s[i] - last > 1.5 * hop:
                t.reset()
            out[i] = t.update(scores[i])
            last = start_s[i]
    return out


def tracker_macs(cfg: dict) -> int:
    """Multiply-accumulates per window of the banded transition plus the softmax and expectation."""
    bins = np.asarray(cfg["bins_bpm"], np.float64)
    nz = int(np.count_nonzero(_kernel(bins, float(cfg["sigma_bpm"]))))
    return nz + 3 * len(bins)


# ---------------------------------------------------------------- classes (activity, phase)

def class_transitions(y: np.ndarray, recording: np.ndarray, start_s: np.ndarray, k: int,
                      pseudo: float = 1.0) -> np.ndarray:
    """``(K, K)`` hop-to-hop class transition probabilities ``T[from, to]`` counted along each
    recording's consecutive windows with known labels (``y >= 0``), plus ``pseudo`` counts."""
    c = np.full((k, k), float(pseudo))
    recording, start_s = np.asarray(recording), np.asarray(start_s, np.float64)
    for r in np.unique(recording):
        idx = np.flatnonzero(recording == r)
        idx = idx[np.argsort(start_s[idx], kind="stable")]
        a, b = y[idx[:-1]], y[idx[1:]]
        ok = (a >= 0) & (b >= 0)
        np.add.at(c, (a[ok].astype(int), b[ok].astype(int)), 1.0)
    return c / c.sum(1, keepdims=True)


def track_classes(scores: np.ndarray, recording: np.ndarray, start_s: np.ndarray, *, transition,
                  floor: float = 1e-3) -> np.ndarray:
    """Causal forward filter over classes along each recording (an HMM whose emission is
    ``softmax(scores)``): ``prior = (1 - floor) * T' @ posterior + floor / K``; posterior =
    prior * softmax(scores), normalised. Returns the posteriors ``(N, K)`` in input order; a gap
    (a window starting more than 1.5 hops after the last) restarts the filter. Per window on the
    device: ``K * K + 3K`` multiply-accumulates and ``K`` floats of state."""
    T = np.asarray(transition, np.float64)
    scores = np.asarray(scores)
    K = T.shape[0]
    out = np.zeros((len(scores), K))
    recording, start_s = np.asarray(recording), np.asarray(start_s, np.float64)
    like = softmax(scores)
    for r in np.unique(recording):
        idx = np.flatnonzero(recording == r)
        idx = idx[np.argsort(start_s[idx], kind="stable")]
        hop = np.median(np.diff(start_s[idx])) if len(idx) > 1 else 0.0
        post, last = None, None
        for i in idx:
            if post is None or (last is not None and start_s[i] - last > 1.5 * hop):
                post = like[i]
            else:
                p = ((1 - floor) * (T.T @ post) + floor / K) * like[i]
                post = p / p.sum() if p.sum() > 0 else like[i]
            out[i] = post
            last = start_s[i]
    return out
