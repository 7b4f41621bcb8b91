"""Host latency, throughput and peak memory of one variant, measured in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgefm.profile.variants import Variant


@dataclass
class LatencyStats:
    """Per-call latency in ms over ``runs`` timed calls after ``warmup`` untimed ones."""

    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @property
    def throughput_per_s(self) -> float:
        return 1e3 / self.mean_ms if self.mean_ms > 0 else float("inf")

    @classmethod
    def from_times(cls, times_ms) -> "LatencyStats":
        t = np.asarray(times_ms, dtype=np.float64)
        p50, p90, p99 = np.percentile(t, [50, 90, 99])
        return cls(int(t.size), float(p50), float(p90), float(p99), float(t.mean()), float(t.min()),
                   float(t.max()))

    def to_dict(self) -> dict:
        return {"runs": self.runs, "p50_ms": self.p50_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
                "mean_ms": self.mean_ms, "min_ms": self.min_ms, "max_ms": self.max_ms,
                "throughput_per_s": self.throughput_per_s}


@dataclass
class Measurement:
    variant: Variant
    ok: bool
    stats: LatencyStats | None = None
    rss_peak_mb: float | None = None
    rss_baseline_mb: float | None = None
    input_shape: list[int] | None = None
    params: int | None = None
    macs: int | None = None
    per_layer: list[dict] = field(default_factory=list)
    per_layer_source: str = ""
    error: str = ""
    extra: dict = field(default_factory=dict)


def measure(v: Variant, *, runs: int = 100, warmup: int = 10, per_layer: bool = True,
            etdump: bool = False, timeout_s: float = 300.0) -> Measurement:
    """Run ``v`` ``warmup`` + ``runs`` times in a fresh Python process (one thread).

    Peak RSS is the child's ``VmHWM`` (high-water resident set); ``rss_baseline_mb`` is its current RSS right after
    the backend's imports, so ``peak - baseline`` is what loading and running the model cost.
    Timing stops early (at least 10 runs) once a variant has spent ``EDGEFM_PROFILE_MAX_S``
    (default 8 s) in timed calls; ``stats.runs`` says how many were timed.
    """
    with tempfile.TemporaryDirectory(prefix="edgefm-prof-") as tmp:
        spec = {"kind": v.kind, "path": str(v.path), "runs": int(runs), "warmup": int(warmup),
                "per_layer": per_layer, "etdump": etdump, "input_shape": v.input_shape, "tmp": tmp,
                "unverified": v.unverified, "sha256": v.manifest.get("sha256")}
        env = dict(os.environ, OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3")
        try:
            # run the worker as a script: importing the edgefm package would load torch into
            # every child and swamp the peak RSS of the lighter backends
            p = subprocess.run([sys.executable, str(Path(__file__).with_name("_worker.py")), json.dumps(spec)],
                               capture_output=True, text=True, timeout=timeout_s, env=env)
        except subprocess.TimeoutExpired:
            return Measurement(v, False, error=f"timed out after {timeout_s:.0f} s")
    marker = "@@EDGEFM_RESULT@@"
    line = next((l for l in p.stdout.splitlines() if l.startswith(marker)), None)
    if line is None:
        tail = (p.stderr or p.stdout).strip().splitlines()[-1:] or ["no output"]
        return Measurement(v, False, error=f"worker exited {p.returncode}: {tail[0][:300]}")
    r = json.loads(line[len(marker):])
    if not r.get("ok"):
        return Measurement(v, False, error=r.get("error", "unknown error"))
    return Measurement(v, True, stats=LatencyStats.from_times(r["times_ms"]), rss_peak_mb=r["rss_peak_mb"],
                       rss_baseline_mb=r["rss_baseline_mb"], input_shape=r.get("input_shape"),
                       params=r.get("params"), macs=r.get("macs"), per_layer=r.get("per_layer", []),
                       per_layer_source=r.get("per_layer_source", ""),
                       extra={k: r[k] for k in ("call", "loaded_with", "input_dtype") if k in r})
