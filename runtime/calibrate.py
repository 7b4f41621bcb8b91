"""Gate calibration: pick thresholds on labelled ACC that keep a target event recall while
skipping as many windows as possible.

Events (docs/DESIGN.md): a window is an *event* when most of its labelled seconds have
``activity`` in {walking, running, cycling, strength, freezing} or ``freeze == 1``;
seconds with neither label known are unknown, and windows with no known second or with
any missing ACC sample (the runtime does not infer those) are left out of every figure.

Search: for each hysteresis ratio (off = ratio * on), minimum on-time and off-hold in a
small grid, binary-search the largest ``on_threshold`` (among quantiles of the calibration
features) whose event recall on the calibration recordings still meets the target; keep
the combination that skips most. By default what must meet the target is the one-sided
95% Wilson lower bound of the recall (``criterion="bound"``), so a calibration set with few
event windows (Daphnet: ~100) gives a conservative gate instead of an overfitted one. Reported on calibration and on held-out recordings (the
dataset's test split, or a subject-level split when it has none):
``skip`` (fraction of windows not inferred), ``recall`` (fraction of event windows
inferred), detection ``delay_s`` per event episode (first window of the episode to the
first inferred one; median / p90; ``episodes_missed``), plus a trade-off curve (JSON + PNG).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from edgefm.data.recording import Recording, Stream
from edgefm.errors import ConfigError, DataError
from runtime.gate import GateConfig, block_features, gate_offline, window_decisions

EVENT_ACTIVITIES = ("walking", "running", "cycling", "strength", "freezing")
RATIOS = (0.5, 0.75, 1.0)
MIN_ON_S = (0.0,)        # the off-hold does its job without overfitting (Daphnet leave-one-out)
HOLD_S = (1.0, 4.0, 8.0)   # longer holds overfit small calibration sets (Daphnet, leave-one-out)
MIN_SUBJECT_EVENTS = 5     # subjects with fewer event windows do not set the worst-subject recall


@dataclass
class GateTrace:
    """One recording prepared for gate evaluation.

    f: (nb,) block features (g; -inf = invalid block); event: (N,) bool; known: (N,) bool
    (window has a label and all its ACC); all windows start at multiples of ``hop``.
    """

    id: str
    subject: str
    f: np.ndarray
    event: np.ndarray
    known: np.ndarray


def _event_seconds(rec: Recording, n_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Per second: (is_event, is_known) from the ``activity`` and ``freeze`` labels."""
    ev = np.zeros(n_s, bool)
    known = np.zeros(n_s, bool)
    found = False
    for name in ("activity", "freeze"):
        lt = rec.labels.get(name)
        if lt is None or lt.kind != "categorical":
            continue
        found = True
        t = np.arange(n_s) + 0.5
        idx = np.floor(t * lt.fs_hz).astype(np.int64)
        ok = idx < len(lt.values)
        v = np.full(n_s, -1, np.int16)
        v[ok] = lt.values[idx[ok]]
        if name == "activity":
            codes = [i for i, c in enumerate(lt.classes) if c in EVENT_ACTIVITIES]
            if not lt.classes:
                raise DataError("activity label has no class names", path=rec.id, field="labels.activity")
            e = np.isin(v, codes)
        else:
            yes = lt.classes.index("yes") if "yes" in lt.classes else 1
            e = v == yes
        ev |= e
        known |= v >= 0
    if not found:
        raise DataError(f"recording {rec.id} has no 'activity' or 'freeze' label", path=rec.id,
                        field="labels", hint="calibrate on labelled traces (synthetic traces/ or Daphnet)")
    return ev & known, known


def prepare(rec: Recording, cfg: GateConfig, window: int, hop: int) -> GateTrace:
    """Features and window labels of one recording at the gate's rate (resampled if needed)."""
    from edgefm.data.windows import resample_stream
    for c in ("acc_x", "acc_y", "acc_z"):
        if c not in rec.streams:
            raise DataError(f"recording {rec.id} has no channel {c!r}", path=rec.id, field=c)
    ss: list[Stream] = [rec.streams[c] for c in ("acc_x", "acc_y", "acc_z")]
    if any(abs(s.spec.fs_hz - cfg.fs_hz) > 1e-9 for s in ss):
        ss = [resample_stream(s, cfg.fs_hz) for s in ss]
    n = min(s.n for s in ss)
    B = cfg.block
    nb = n // B
    acc = np.stack([np.asarray(s.data[:nb * B]) for s in ss], 1)
    valid = np.stack([np.asarray(s.valid[:nb * B]) for s in ss], 1)
    f = block_features(np.nan_to_num(acc), valid, B)
    wb, hb = cfg.blocks_per(window, "window"), cfg.blocks_per(hop, "hop")
    n_win = 0 if nb < wb else (nb - wb) // hb + 1
    # labels per window: majority of its known seconds
    n_s = int(nb * cfg.block_s)
    ev_s, kn_s = _event_seconds(rec, n_s)
    ws, hs = window / cfg.fs_hz, hop / cfg.fs_hz
    starts = (np.arange(n_win) * hs).astype(np.int64)
    cs_e, cs_k = np.r_[0, np.cumsum(ev_s)], np.r_[0, np.cumsum(kn_s)]
    w_s = int(round(ws))
    n_ev = cs_e[starts + w_s] - cs_e[starts]
    n_kn = cs_k[starts + w_s] - cs_k[starts]
    blk_ok = np.r_[0, np.cumsum(np.isfinite(f))]
    bstarts = np.arange(n_win) * hb
    all_valid = (blk_ok[bstarts + wb] - blk_ok[bstarts]) == wb
    return GateTrace(rec.id, rec.subject, f, (n_kn > 0) & (2 * n_ev > n_kn), (n_kn > 0) & all_valid)


def evaluate(traces: Iterable[GateTrace], cfg: GateConfig, window: int, hop: int) -> dict:
    """skip, recall, detection delay of ``cfg`` over prepared recordings."""
    n = inferred = events = caught = 0
    delays, missed = [], 0
    per_sub: dict[str, list[int]] = {}
    hop_s = hop / cfg.fs_hz
    for tr in traces:
        d = window_decisions(gate_offline(tr.f, cfg), window, hop, cfg)
        k = tr.known[:len(d)]
        e = tr.event[:len(d)] & k
        n += int(k.sum())
        inferred += int((d & k).sum())
        events += int(e.sum())
        caught += int((d & e).sum())
        ps = per_sub.setdefault(tr.subject, [0, 0])
        ps[0] += int(e.sum())
        ps[1] += int((d & e).sum())
        # episodes: runs of consecutive event windows
        if e.any():
            edges = np.diff(np.r_[0, e.astype(np.int8), 0])
            for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
                hit = np.flatnonzero(d[a:b])
                if len(hit):
                    delays.append(float(hit[0]) * hop_s)
                else:
                    missed += 1
    return {"windows": n, "event_windows": events, "inferred": inferred, "caught": caught,
            "delays_s": delays,
            "skip": 1.0 - inferred / n if n else math.nan,
            "recall": caught / events if events else math.nan,
            "recall_lower_bound": wilson_lower(caught, events),
            "worst_subject_recall": min((c / e for e, c in per_sub.values() if e >= MIN_SUBJECT_EVENTS),
                                        default=caught / events if events else math.nan),
            "episodes": len(delays) + missed, "episodes_missed": missed,
            "delay_s_median": float(np.median(delays)) if delays else math.nan,
            "delay_s_p90": float(np.percentile(delays, 90)) if delays else math.nan}


def wilson_lower(k: int, n: int, z: float = 1.645) -> float:
    """One-sided 95% Wilson lower bound of a proportion k/n (NaN when n == 0)."""
    if n == 0:
        return math.nan
    p = k / n
    den = 1 + z * z / n
    c = p + z * z / (2 * n)
    r = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (c - r) / den


def _candidates(traces: list[GateTrace], k: int = 160) -> np.ndarray:
    f = np.concatenate([t.f for t in traces])
    f = f[np.isfinite(f)]
    if len(f) == 0:
        raise DataError("no valid ACC blocks to calibrate on", field="acc")
    q = np.quantile(f, np.linspace(0.0, 0.999, k))
    return np.unique(np.maximum(q, 1e-6))


def _search(traces, ratio, min_on_s, hold_s, cands, base: GateConfig, target, window, hop, key="recall"):
    """Largest on-threshold in ``cands`` meeting ``target`` recall (recall ~ falls with it)."""
    def cfg_for(t):
        return dataclasses.replace(base, on_threshold=float(t), off_threshold=float(t * ratio),
                                   min_on_s=min_on_s, off_hold_s=hold_s)
    lo, hi = 0, len(cands) - 1
    best = None
    r0 = evaluate(traces, cfg_for(cands[0]), window, hop)
    if not r0[key] >= target:
        if not np.isfinite(r0[key]):
            return cfg_for(cands[0]), r0
        target = r0[key]    # unreachable: the largest threshold as sensitive as the lowest
    best = (cfg_for(cands[0]), r0)
    while lo < hi:   # invariant: cands[lo] meets the target
        mid = (lo + hi + 1) // 2
        r = evaluate(traces, cfg_for(cands[mid]), window, hop)
        if r[key] >= target:
            lo, best = mid, (cfg_for(cands[mid]), r)
        else:
            hi = mid - 1
    return best


def calibrate_traces(cal: list[GateTrace], target_recall: float, window: int, hop: int,
                     base: GateConfig = GateConfig(), ratios=RATIOS, min_on_s=MIN_ON_S,
                     hold_s=HOLD_S, criterion: str = "bound") -> tuple[GateConfig, dict]:
    """Pick the gate that meets ``target_recall`` on ``cal`` and skips most.

    criterion: what must reach the target: ``"bound"`` (default: the one-sided 95% Wilson
        lower bound of the pooled recall, so few event windows give a conservative gate),
        ``"pooled"`` (the recall itself) or ``"worst"`` (the lowest per-subject recall among
        subjects with >= MIN_SUBJECT_EVENTS event windows). When nothing reaches it, the
        most sensitive gate is kept (``met_target`` False in the report).
    """
    keys = {"bound": "recall_lower_bound", "pooled": "recall", "worst": "worst_subject_recall"}
    if criterion not in keys:
        raise ConfigError(f"unknown criterion {criterion!r}", field="criterion", hint="bound, pooled or worst")
    key = keys[criterion]
    if not 0.0 < target_recall <= 1.0:
        raise ConfigError(f"target recall must be in (0, 1], got {target_recall}", field="target_recall")
    if not any(t.event[t.known].any() for t in cal):
        raise DataError("no event windows in the calibration data", field="labels",
                        hint="calibrate on data with activity or freezing labels")
    cands = _candidates(cal)
    best = None
    for ratio in ratios:
        for mo in min_on_s:
            for hs in hold_s:
                if mo % base.block_s or hs % base.block_s or hs < base.block_s:
                    continue
                cfg, r = _search(cal, ratio, mo, hs, cands, base, target_recall, window, hop, key)
                ok = r[key] >= target_recall
                rank = (ok, r["skip"]) if ok else (ok, r[key], r["skip"])
                if best is None or rank > best[0]:
                    best = (rank, cfg, r)
    return best[1], best[2]


def curve(traces: list[GateTrace], cfg: GateConfig, window: int, hop: int, k: int = 30) -> list[dict]:
    """Skip/recall over on-thresholds, hysteresis ratio and min on-time of ``cfg`` kept."""
    ratio = cfg.off_threshold / cfg.on_threshold if cfg.on_threshold > 0 else 1.0
    q = _candidates(traces, 1000)
    cands = np.geomspace(max(q[10], 1e-4), max(q[-1], 2e-4), k)
    pts = []
    for t in np.unique(np.r_[cands, cfg.on_threshold]):
        c = dataclasses.replace(cfg, on_threshold=float(t), off_threshold=float(t * ratio))
        r = evaluate(traces, c, window, hop)
        pts.append({"on_threshold": float(t), "off_threshold": float(t * ratio),
                    "skip": r["skip"], "recall": r["recall"]})
    return pts


def _split(path: Path, recs_subjects: list[str]) -> tuple[set[str], set[str]]:
    from edgefm.data.store import open_manifest, subject_split
    m = open_manifest(path, "recordings")
    split = m.get("split") or {}
    subs = sorted(set(recs_subjects))
    test = set(split.get("test") or [])
    if not test or not (set(subs) - test):
        s = subject_split(subs)
        test = set(s["test"])
    cal = set(subs) - test
    if not cal:   # one subject: calibrate and report on the same data (said so in the report)
        return set(subs), set()
    return cal, test & set(subs)


def recordings_dir(data: str | Path) -> Path:
    """A recordings store: ``data`` itself, or a cohort's ``traces/``."""
    from edgefm.data.store import open_manifest
    data = Path(data)
    if (data / "manifest.json").exists():
        m = open_manifest(data)
        if m.get("kind") == "cohort":
            return data / "traces"
        if m.get("kind") == "recordings":
            return data
        raise DataError(f"is a {m.get('kind')!r} dataset; the gate calibrates on recordings",
                        path=data, field="kind", hint="pass a cohort, its traces/ or an imported dataset")
    return data  # open_manifest below raises the typed error


def pool(results: list[dict], hop_s: float) -> dict:
    """Pool per-fold :func:`evaluate` results (counts add up; delays are pooled per episode)."""
    n = sum(r["windows"] for r in results)
    ev = sum(r["event_windows"] for r in results)
    inf = sum(r["inferred"] for r in results)
    caught = sum(r["caught"] for r in results)
    delays = [d for r in results for d in r["delays_s"]]
    missed = sum(r["episodes_missed"] for r in results)
    return {"windows": n, "event_windows": ev, "inferred": inf, "caught": caught, "delays_s": delays,
            "skip": 1.0 - inf / n if n else math.nan, "recall": caught / ev if ev else math.nan,
            "episodes": len(delays) + missed, "episodes_missed": missed,
            "delay_s_median": float(np.median(delays)) if delays else math.nan,
            "delay_s_p90": float(np.percentile(delays, 90)) if delays else math.nan}


def _public(r: dict | None) -> dict | None:
    return None if r is None else {k: v for k, v in r.items() if k != "delays_s"}


def calibrate(data: str | Path, target_recall: float = 0.95, *, out: str | Path | None = None,
              window_s: float = 8.0, hop_s: float = 2.0, base: GateConfig = GateConfig(),
              cv: str = "split", criterion: str = "bound", ratios=RATIOS, min_on_s=MIN_ON_S,
              hold_s=HOLD_S) -> dict:
    """Calibrate the gate on a labelled recordings store (or cohort); returns the report.

    cv: how held-out figures are made. ``"split"``: calibrate on the dataset's train+val
        subjects, report on its test subjects. ``"loso"``: leave one subject out: for each
        subject, calibrate on the others and evaluate on it; the figures pool all folds
        (for small datasets such as Daphnet). The returned gate is calibrated on the
        calibration subjects (``split``) or on all subjects (``loso``).

    With ``out`` (``gate.json``) the report is written atomically, the trade-off curve
    beside it as ``gate.png``. ``report["gate"]`` is ``GateConfig.to_dict()``.
    """
    from edgefm.data.store import read_recordings
    from edgefm.manifest import atomic_write_json, package_versions
    if cv not in ("split", "loso"):
        raise ConfigError(f"unknown cv {cv!r}", field="cv", hint="choose split or loso")
    path = recordings_dir(data)
    window, hop = int(round(window_s * base.fs_hz)), int(round(hop_s * base.fs_hz))
    traces = [prepare(r, base, window, hop) for r in read_recordings(path)]
    if not traces:
        raise DataError("no recordings", path=path)
    subjects = sorted({t.subject for t in traces})
    grid = dict(ratios=ratios, min_on_s=min_on_s, hold_s=hold_s, criterion=criterion)
    if cv == "loso" and len(subjects) >= 2:
        cal_s, test_s = set(subjects), set(subjects)
        folds = []
        for s in subjects:
            c = [t for t in traces if t.subject != s]
            if not any(t.event[t.known].any() for t in c):
                continue
            cfg_s, _ = calibrate_traces(c, target_recall, window, hop, base, **grid)
            r = evaluate([t for t in traces if t.subject == s], cfg_s, window, hop)
            folds.append({"subject": s, "gate": cfg_s.to_dict(), **_public(r), "_r": r})
        held = pool([f.pop("_r") for f in folds], hop_s)
        held = {"subjects": subjects, "method": "leave-one-subject-out", "folds": folds, **_public(held)}
        cal, test = traces, []
    else:
        cal_s, test_s = _split(path, [t.subject for t in traces])
        cal = [t for t in traces if t.subject in cal_s]
        test = [t for t in traces if t.subject in test_s]
        held = None
    cfg, r_cal = calibrate_traces(cal, target_recall, window, hop, base, **grid)
    if held is None and test_s:
        held = {"subjects": sorted(test_s), "method": "test split",
                **_public(evaluate(test, cfg, window, hop))}
    curve_on = test if (test and cv == "split") else cal
    report = {
        "gate": cfg.to_dict(), "cost": cfg.cost(), "target_recall": target_recall,
        "data": str(path), "window_s": window_s, "hop_s": hop_s, "cv": cv, "criterion": criterion,
        "events": {"activity": list(EVENT_ACTIVITIES), "freeze": "yes"},
        "calibration": {"subjects": sorted(cal_s), **_public(r_cal)},
        "held_out": held,
        "curve": curve(curve_on, cfg, window, hop),
        "curve_on": "held_out" if (test_s and cv == "split") else "calibration",
        "met_target": bool(r_cal["recall"] >= target_recall),
        "versions": package_versions("numpy"),
    }
    if out is not None:
        out = Path(out)
        png = out.with_suffix(".png")
        plot_curve(report, png)
        report["plot"] = png.name
        atomic_write_json(out, _undefined_as_null(report))
    return report


def _undefined_as_null(obj):
    """JSON has no NaN: an undefined figure (recall with no events, skip with no windows) is
    written as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _undefined_as_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_undefined_as_null(v) for v in obj]
    return obj


def plot_curve(report: dict, png: str | Path) -> Path:
    """Skip vs recall trade-off, the chosen gate marked; written atomically."""
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from edgefm.manifest import atomic_write_bytes
    pts = report["curve"]
    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    ax.plot([p["recall"] for p in pts], [p["skip"] for p in pts], "o-", ms=3, label=report["curve_on"])
    chosen = report["held_out"] or report["calibration"]
    ax.plot([chosen["recall"]], [chosen["skip"]], "r*", ms=12, label="chosen gate")
    ax.axvline(report["target_recall"], color="gray", ls="--", lw=1, label="target recall")
    ax.set_xlabel("event-window recall")
    ax.set_ylabel("fraction of windows skipped")
    ax.set_title(f"gate trade-off (on={report['gate']['on_threshold']:.4f} g)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(png, buf.getvalue())
    return Path(png)
