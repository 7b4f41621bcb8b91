"""How well can *anything* fill a hidden wrist PPG waveform from the wrist accelerometer? (issue 3)

The teacher benchmark's WESAD ``sensor_ppg`` task hides the PPG (E4 BVP, 32 Hz) channel of every
held-out window and scores MAE in normalised units against linear interpolation, which for a
channel with no visible sample is the train mean (as mean fill is). This script scores, on the
*same* test windows (the eval's seeded subsample), fills that need no teacher:

* ``train_median``: the train split's median PPG value, one constant (the MAE-optimal constant);
* ``ridge_fir``: ridge regression of PPG on ACC x/y/z and |ACC| at lags -1..+1 s (every 2 samples)
  plus each window's ACC spread, fitted on train windows (a linear motion-artefact model);
* ``gbm_l1``: scikit-learn's HistGradientBoosting with absolute-error loss on the same features.

If none of them beats the constant by more than a fraction of a percent, the ACC carries no
usable information about the PPG waveform's phase, and the gain any model can show is bounded by
the constant's. Writes ``benchmarks/results/wesad_ppg_ceiling.json``.

    python benchmarks/wesad_ppg_ceiling.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_teacher as bt  # noqa: E402

OUT = bt.REPO / "benchmarks" / "results" / "wesad_ppg_ceiling.json"
LAGS = range(-32, 33, 2)                       # samples at 32 Hz: -1 .. +1 s


def features(x: np.ndarray, mask: np.ndarray):
    """x, mask: (N, 4, T) normalised [ppg, acc_x, acc_y, acc_z] -> (rows, features), ppg target, scored rows."""
    N, _, T = x.shape
    acc = x[:, 1:4]
    a = np.concatenate([acc, np.sqrt((acc ** 2).sum(1, keepdims=True))], 1)      # (N, 4, T)
    pad = np.pad(a, ((0, 0), (0, 0), (32, 32)), mode="edge")
    lagged = np.stack([pad[:, :, 32 + k:32 + k + T] for k in LAGS], 2).reshape(N, -1, T)
    ctx = np.concatenate([acc.std(-1, keepdims=True), a[:, 3:].mean(-1, keepdims=True)], 1).repeat(T, -1)
    F = np.concatenate([lagged, ctx], 1).transpose(0, 2, 1).reshape(N * T, -1)
    ok = (mask[:, 0] & mask[:, 1:4].all(1)).reshape(-1)
    return F[ok], x[:, 0].reshape(-1)[ok]


def main() -> int:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    from edgefm.data.store import WindowDataset
    from edgefm.eval import EvalConfig
    from edgefm.eval.generative import load_eval_windows
    from edgefm.manifest import atomic_write_json
    from edgefm.train import teacher_for_dataset

    work = Path(os.environ.get("TMPDIR", "/tmp")) / "edgefm_bench_teacher"
    path = bt.wesad_raw(work)
    if path is None:
        print(f"no WESAD data under {bt.SHARED}; nothing to measure")
        return 0
    ds = WindowDataset(path)
    if ds.channel_names != ("ppg", "acc_x", "acc_y", "acc_z"):
        raise SystemExit(f"{path}: expected channels ppg, acc_x, acc_y, acc_z, got {ds.channel_names}")

    # the eval's own windows (seeded subsample, z-scored, 0 where missing); the untrained model only
    # tells load_eval_windows the channels and window length
    geometry = teacher_for_dataset(ds, "tiny")
    xtr, mtr, _, _ = load_eval_windows(geometry, ds, EvalConfig(split="train", max_windows=3000))
    xte, mte, _, _ = load_eval_windows(geometry, ds, EvalConfig(split="test", max_windows=512))
    Ftr, ytr = features(xtr, mtr)
    sel = np.random.default_rng(1).choice(len(Ftr), min(300_000, len(Ftr)), replace=False)
    Ftr, ytr = Ftr[sel], ytr[sel]
    Fte, yte = features(xte, mte)
    med = float(np.median(ytr))
    mae = {"mean_fill (= linear)": float(np.abs(yte).mean()), "train_median": float(np.abs(yte - med).mean())}
    t0 = time.time()
    mae["ridge_fir"] = float(np.abs(Ridge(alpha=10.0).fit(Ftr, ytr).predict(Fte) - yte).mean())
    gbm = HistGradientBoostingRegressor(loss="absolute_error", max_iter=300, random_state=0).fit(Ftr, ytr)
    mae["gbm_l1"] = float(np.abs(gbm.predict(Fte) - yte).mean())
    base = mae["mean_fill (= linear)"]
    res = {"command": "python benchmarks/wesad_ppg_ceiling.py", "dataset": str(path),
           "test_subjects": ds.manifest["split"]["test"], "n_test_windows": len(xte),
           "train_rows_fitted": len(ytr), "features": Ftr.shape[1], "train_median": round(med, 5),
           "mae": {k: round(v, 5) for k, v in mae.items()},
           "gain_vs_linear": {k: round(1 - v / base, 5) for k, v in mae.items()},
           "fit_seconds": round(time.time() - t0, 1)}
    atomic_write_json(OUT, res)
    print(res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
