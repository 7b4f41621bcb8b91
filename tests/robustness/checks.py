"""Checks on what a successful command stored (the "silently wrong" half of the suite)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _recordings(ds: Path):
    m = json.loads((ds / "manifest.json").read_text())
    for e in m["recordings"]:
        yield e, ds / "recordings" / e["dir"]


def no_valid_beyond(bound: float, channels: tuple[str, ...] | None = None, out: str = "out"):
    """No sample stored as *valid* has ``|value| > bound`` (an absurd sensor value must be
    marked missing), and every absurd value that was kept is marked invalid."""
    def check(sb, res):
        ds = sb.p(out)
        if not (ds / "manifest.json").is_file():
            return f"no dataset at {out}"
        for e, rd in _recordings(ds):
            for name in e["streams"]:
                if channels is not None and name not in channels:
                    continue
                x = np.load(rd / f"{name}.npy")
                v = np.load(rd / f"{name}.valid.npy")
                with np.errstate(invalid="ignore"):
                    bad = v & ~(np.abs(x.astype(np.float64)) <= bound)
                if bad.any():
                    return (f"{name}: {int(bad.sum())} absurd samples (|v| > {bound:g}, e.g. "
                            f"{float(x[bad][0]):g}) stored as valid")
        return None
    return check


def labels_within(name: str, allowed: set[int], out: str = "out"):
    """Every stored code of categorical label ``name`` is in ``allowed`` (no wrapped codes)."""
    def check(sb, res):
        ds = sb.p(out)
        for e, rd in _recordings(ds):
            if name not in e["labels"]:
                continue
            v = np.load(rd / f"label.{name}.npy")
            extra = sorted(set(np.unique(v).tolist()) - allowed)
            if extra:
                return f"label {name} holds codes {extra[:5]} (allowed {sorted(allowed)})"
        return None
    return check


def max_duration(seconds: float, out: str = "out"):
    """No recording is longer than ``seconds`` (a wrong timestamp unit stretches a file)."""
    def check(sb, res):
        for e, rd in _recordings(sb.p(out)):
            if e["duration_s"] > seconds:
                return f"recording {e['id']} lasts {e['duration_s']:.1f} s (source covers at most {seconds:g} s)"
        return None
    return check


def events_within(name: str, out: str = "out"):
    """Every stored event time lies inside its recording."""
    def check(sb, res):
        for e, rd in _recordings(sb.p(out)):
            if name in e.get("events", {}):
                t = np.load(rd / f"event.{name}.npy")
                if t.size and (t.min() < -1 or t.max() > e["duration_s"] + 1):
                    return f"event {name} at {float(t.max()):g} s outside a {e['duration_s']:.0f} s recording"
        return None
    return check


def dataset_written(out: str = "out", kind: str | None = None):
    def check(sb, res):
        p = sb.p(out) / "manifest.json"
        if not p.is_file():
            return f"{out}/manifest.json missing after success"
        if kind and json.loads(p.read_text()).get("kind") != kind:
            return f"{out} is not a {kind} dataset"
        return None
    return check


def gone(rel: str):
    """After --overwrite: the file that was in the replaced output is gone."""
    def check(sb, res):
        return f"{rel} still exists: the output was not replaced" if sb.p(rel).exists() else None
    return check


def says(text: str):
    def check(sb, res):
        return None if text in (res.stdout + res.stderr) else f"output does not say {text!r}"
    return check
