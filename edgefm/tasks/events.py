"""Event detection behind the opportunistic-inference gate: freezing of gait (Daphnet).

On the device the gate (:mod:`runtime.gate`, a motion-energy threshold with hysteresis) decides
which windows the detector runs on; the detector (the ``freeze`` task's student, a 2-class CNN
on one accelerometer) flags a window when its probability of freezing is at least a threshold.
An **episode** (a run of seconds labelled freezing) is caught when at least one window that
overlaps it is both gated on and flagged.

Everything is chosen on training subjects only (:func:`freeze_loso`, leave one subject out):

- the gate: :func:`runtime.calibrate.calibrate_traces` on the training subjects' recordings,
  target window recall ``target`` judged on its one-sided 95% Wilson lower bound;
- the detector: trained on the training subjects;
- its threshold: the largest whose episode recall, on out-of-fold probabilities of the
  training subjects (each training subject scored by a detector trained without it) behind the
  gate, is >= ``target`` (``criterion="pooled"``; ``"bound"`` asks the same of its one-sided 95%
  Wilson lower bound, which needs >= 53 training episodes even at perfect recall for a 0.95
  target: Daphnet's three subjects here have 35 in all, so ``bound`` would flag every window).

The held-out subject's figures: episode recall (with its Wilson 95% interval), the gate's skip
fraction (windows not inferred; Wilson 95% interval over windows), the detector's false alarms
flagged outside freezing, per hour of non-freezing time. ``placement``: Daphnet's ``ankle``, ``thigh`` or ``trunk`` sensor;
the gate reads the same sensor.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgefm.data.recording import Recording
from edgefm.errors import DataError
from edgefm.tasks.data import PLACEMENTS, TaskWindows, load_windows
from edgefm.tasks.fit import FitConfig, TaskModel, fit


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Two-sided Wilson score interval of k/n (95% by default); (nan, nan) when n == 0."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, c - h), min(1.0, c + h))


@dataclass(frozen=True)
class FreezeConfig:
    placement: str = "ankle"
    target: float = 0.95
    fit: FitConfig = field(default_factory=lambda: FitConfig(epochs=20))
    window_s: float = 4.0
    hop_s: float = 1.0
    fs_hz: float = 32.0
    criterion: str = "pooled"


def _as_placement(rec: Recording, placement: str) -> Recording:
    """The recording with the placement's accelerometer named ``acc_x|y|z`` (what the gate reads)."""
    src = PLACEMENTS[placement]
    if any(c not in rec.streams for c in src):
        raise DataError(f"recording {rec.id} has no {placement} accelerometer ({', '.join(src)})", path=rec.id,
                        field="channels")
    streams = {f"acc_{a}": dataclasses.replace(rec.streams[c], spec=dataclasses.replace(rec.streams[c].spec,
                                                                                     name=f"acc_{a}"))
               for a, c in zip("xyz", src)}
    return dataclasses.replace(rec, streams=streams)


def _episodes(rec: Recording) -> list[tuple[float, float]]:
    """(start_s, end_s) of each run of freezing seconds, relative to the recording's start."""
    lt = rec.labels.get("freeze")
    if lt is None:
        return []
    yes = lt.classes.index("yes") if "yes" in lt.classes else 1
    v = np.asarray(lt.values) == yes
    edges = np.diff(np.r_[0, v.astype(np.int8), 0])
    dt = 1.0 / lt.fs_hz
    return [(a * dt, b * dt) for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]


@dataclass
class _Subject:
    name: str
    traces: list            # GateTrace per recording
    episodes: dict          # recording id -> [(start_s, end_s)]
    windows: TaskWindows


def _caught(gate_on: np.ndarray, flagged: np.ndarray, tw: TaskWindows, episodes: dict, window_s: float
            ) -> tuple[int, int]:
    """(episodes caught, episodes) for windows of ``tw`` (one subject)."""
    k = n = 0
    hit = gate_on & flagged
    for rid, eps in episodes.items():
        i = np.flatnonzero(tw.recording == rid)
        s = tw.start_s[i]
        for a, b in eps:
            n += 1
            over = (s < b) & (s + window_s > a)
            k += bool(hit[i][over].any())
    return k, n


def _gate_on(tw: TaskWindows, traces: list, gate, window: int, hop: int) -> np.ndarray:
    """Gate decision for each window of ``tw`` (aligned by start time); windows the gate has no
    decision for (past the last block) count as on."""
    from runtime.gate import gate_offline, window_decisions
    on = np.ones(len(tw), bool)
    hop_s = hop / gate.fs_hz
    for tr in traces:
        d = window_decisions(gate_offline(tr.f, gate), window, hop, gate)
        i = np.flatnonzero(tw.recording == tr.id)
        k = np.round(tw.start_s[i] / hop_s).astype(int)
        ok = k < len(d)
        on[i[ok]] = d[k[ok]]
    return on


def _proba(tm: TaskModel, tw: TaskWindows) -> np.ndarray:
    from runtime.track import softmax
    return softmax(tm.scores(tw))[:, 1]


def _threshold(p: np.ndarray, on: np.ndarray, subs: list[_Subject], target: float, window_s: float,
               criterion: str = "pooled") -> float:
    """Largest threshold whose episode recall (``pooled``), or its one-sided 95% Wilson lower
    bound (``bound``), is >= target."""
    from runtime.calibrate import wilson_lower
    cands = np.unique(np.r_[0.0, np.quantile(p, np.linspace(0, 1, 201))])
    best = 0.0
    for t in cands:                     # recall falls as the threshold rises
        k = n = 0
        off = 0
        for s in subs:
            m = len(s.windows)
            kk, nn = _caught(on[off:off + m], p[off:off + m] >= t, s.windows, s.episodes, window_s)
            k, n, off = k + kk, n + nn, off + m
        if n and (wilson_lower(k, n) if criterion == "bound" else k / n) >= target:
            best = float(t)
        elif n:
            break
    return best


def freeze_loso(data: str | Path, config: FreezeConfig = FreezeConfig(), log=None) -> dict:
    """Leave-one-subject-out freezing-of-gait detection with the gate; see the module docstring."""
    from edgefm.data.store import read_recordings
    from runtime.calibrate import calibrate_traces, prepare
    from runtime.gate import GateConfig
    say = log or (lambda s: None)
    channels = PLACEMENTS[config.placement]
    tw_all = load_windows(data, "freeze", channels=channels, fs_hz=config.fs_hz, window_s=config.window_s,
                          hop_s=config.hop_s)
    base = GateConfig(fs_hz=config.fs_hz)
    window, hop = int(round(config.window_s * config.fs_hz)), int(round(config.hop_s * config.fs_hz))
    subs: dict[str, _Subject] = {}
    for rec in read_recordings(data):
        r = _as_placement(rec, config.placement)
        s = subs.setdefault(rec.subject, _Subject(rec.subject, [], {}, tw_all.of_subjects([rec.subject])))
        s.traces.append(prepare(r, base, window, hop))
        s.episodes[rec.id] = _episodes(rec)
    names = sorted(s for s in subs if subs[s].episodes and any(subs[s].episodes.values()))
    folds = []
    for held in names:
        train = [subs[s] for s in names if s != held]
        gate, _ = calibrate_traces([t for s in train for t in s.traces], config.target, window, hop, base)
        # out-of-fold detector probabilities on the training subjects -> threshold
        p_oof, on_oof = [], []
        for s in train:
            others = [o.name for o in train if o.name != s.name]
            tm_in = fit(tw_all.of_subjects(others), config.fit)
            p_oof.append(_proba(tm_in, s.windows))
            on_oof.append(_gate_on(s.windows, s.traces, gate, window, hop))
        thr = _threshold(np.concatenate(p_oof), np.concatenate(on_oof), train, config.target, config.window_s,
                         config.criterion)
        tm = fit(tw_all.of_subjects([s.name for s in train]), config.fit)
        h = subs[held]
        p = _proba(tm, h.windows)
        on = _gate_on(h.windows, h.traces, gate, window, hop)
        k, n = _caught(on, p >= thr, h.windows, h.episodes, config.window_s)
        k_det, _ = _caught(np.ones_like(on), p >= thr, h.windows, h.episodes, config.window_s)
        known = h.windows.known
        neg = known & (h.windows.y == 0)
        folds.append({"subject": held, "train_subjects": [s.name for s in train], "threshold": thr,
                      "gate": gate.to_dict(), "episodes": n, "caught": k, "caught_without_gate": k_det,
                      "windows": int(known.sum()), "skipped": int((~on & known).sum()),
                      "false_alarm_windows": int((on & (p >= thr) & neg).sum()),
                      "non_freeze_hours": float(neg.sum() * config.hop_s / 3600)})
        say(f"freeze, held-out {held}: {k}/{n} episodes, skip {folds[-1]['skipped'] / max(1, folds[-1]['windows']):.3f}")
    K, N = sum(f["caught"] for f in folds), sum(f["episodes"] for f in folds)
    W, S = sum(f["windows"] for f in folds), sum(f["skipped"] for f in folds)
    fa_h = sum(f["non_freeze_hours"] for f in folds)
    return {"placement": config.placement, "target": config.target, "method": "leave-one-subject-out",
            "episode_recall": K / N if N else math.nan, "episode_recall_ci95": wilson(K, N),
            "episodes": N, "caught": K, "skip": S / W if W else math.nan, "skip_ci95": wilson(S, W),
            "skip_per_subject": {f["subject"]: f["skipped"] / max(1, f["windows"]) for f in folds},
            "false_alarm_windows_per_hour": sum(f["false_alarm_windows"] for f in folds) / fa_h if fa_h else math.nan,
            "folds": folds}
