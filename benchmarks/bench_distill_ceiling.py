"""How much heart rate is in the accelerometer at all? (issue 4: the bound on the 20% goal)

    python benchmarks/bench_distill_ceiling.py

A distilled ACC student can only carry the heart-rate information that its ACC input holds.
This script measures that information on the same held-out windows bench_distill.py uses,
without any neural network, so the distillation figures in distill.json can be read against it:

  constant        the train split's mean HR (what a model that learned nothing scores)
  ppg_dsp         HR from the PPG channel by a spectral peak in 0.7-3 Hz: the teacher's input
                  holds HR (a PPG teacher that encodes it should probe near this)
  acc_dsp_bcg     HR from ACC alone by the spectral peak of the 4-10 Hz envelope (the
                  ballistocardiographic route, how a wristband would read HR without its LED)
  ppg_dsp_best_lag  the same, against the label of the window ``lag`` seconds later (same
                  subject), at the lag that fits best: a device HR label (WESAD's E4 HR.csv) that
                  trails the signal shows up here
  acc_gbm_{10,100}pct  gradient-boosted trees on 36 ACC spectral/level features with 10% and
                  100% of the train labels: what the accelerometer's activity context predicts

Writes the section ``ceiling`` of benchmarks/results/distill.json (other sections kept), with
the command. Datasets: the synthetic cohort and WESAD windows that bench_distill.py prepared
(it prepares them if missing: same seeds, same splits).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import scipy.signal as ss

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("EDGEFM_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULT = REPO / "benchmarks" / "results" / "distill.json"


def _bench_distill():
    spec = importlib.util.spec_from_file_location("bench_distill", REPO / "benchmarks" / "bench_distill.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def spectral_hr(sig: np.ndarray, fs: float, *, envelope: bool = False, band=(0.7, 3.0)) -> np.ndarray:
    """(N, [K,] T) -> (N,) bpm: the periodogram peak in ``band`` (summed over K axes).

    ``envelope``: band-pass 4-10 Hz first and take the Hilbert envelope (BCG beats)."""
    lo, hi = (4.0, min(10.0, 0.45 * fs)) if envelope else band
    b, a = ss.butter(3, [lo / (fs / 2), hi / (fs / 2)], "band")
    y = ss.filtfilt(b, a, sig, axis=-1)
    if envelope:
        y = np.abs(ss.hilbert(y, axis=-1))
        y = y - y.mean(-1, keepdims=True)
    f, P = ss.periodogram(y, fs=fs, nfft=4096, axis=-1)
    if P.ndim == 3:
        P = P.sum(1)
    sel = (f >= band[0]) & (f <= band[1])
    return 60.0 * f[sel][P[:, sel].argmax(-1)]


def acc_features(acc: np.ndarray, fs: float) -> np.ndarray:
    """(N, 3, T) g -> (N, 36): per axis and magnitude, SD, mean |diff| and 7 log band powers."""
    mag = np.linalg.norm(acc, axis=1, keepdims=True)
    sig = np.concatenate([acc, mag], 1)
    f, P = ss.welch(sig, fs=fs, nperseg=min(128, sig.shape[-1]), axis=-1)
    edges = [0.5, 1, 2, 3, 5, 8, 12, fs / 2]
    bands = [np.log(P[..., (f >= a) & (f < b)].sum(-1) + 1e-9) for a, b in zip(edges[:-1], edges[1:])]
    feats = [sig.std(-1), np.log(np.abs(np.diff(sig, axis=-1)).mean(-1) + 1e-9), *bands]
    return np.concatenate(feats, 1).astype(np.float32)


def _best_lag(ds, fs: float, ppg_i: int, lags_s=tuple(range(0, 62, 2))) -> dict:
    """PPG spectral HR of each test window vs the HR label of the same subject's window that
    starts ``lag`` s later; the lag with the lowest MAE (every test window, no subsampling)."""
    w = ds.load("test", normalise=False)
    hr = np.asarray(w.labels["hr"], np.float64)
    ok = np.isfinite(hr) & w.mask.all((1, 2)) & np.isfinite(w.x).all((1, 2))
    est = np.full(len(hr), np.nan)
    est[ok] = spectral_hr(w.x[ok][:, ppg_i], fs)
    key = {(s, round(float(t), 1)): i for i, (s, t) in enumerate(zip(w.subject, w.start_time)) if ok[i]}
    best = None
    for lag in lags_s:
        pairs = [(i, key.get((w.subject[i], round(float(w.start_time[i]) + lag, 1)))) for i in np.flatnonzero(ok)]
        pairs = [(i, j) for i, j in pairs if j is not None]
        if len(pairs) < 0.5 * ok.sum():
            continue
        i, j = np.array(pairs).T
        m = float(np.mean(np.abs(est[i] - hr[j])))
        if best is None or m < best[1]:
            best = (lag, m, len(pairs))
    return {} if best is None else {"ppg_dsp_best_lag_s": best[0], "hr_mae_ppg_dsp_best_lag": best[1],
                                    "n_best_lag": best[2]}


def ceiling(ds_path: Path, max_train: int, max_eval: int, seed: int = 0) -> dict:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from edgefm.data.store import WindowDataset
    ds = WindowDataset(ds_path)
    names = list(ds.channel_names)
    fs = ds.fs_hz
    acc_i = [names.index(c) for c in ("acc_x", "acc_y", "acc_z")]

    def split(name):
        max_n = max_train if name == "train" else max_eval   # bench_distill's seeded draws
        w = ds.load(name, normalise=False)
        if len(w) > max_n:
            w = w.select(np.sort(np.random.default_rng(seed).choice(len(w), max_n, replace=False)))
        hr = np.asarray(w.labels["hr"], np.float64)
        ok = np.isfinite(hr) & w.mask.all((1, 2)) & np.isfinite(w.x).all((1, 2))
        return w.x[ok], hr[ok]

    xtr, ytr = split("train")
    xte, yte = split("test")
    mae = lambda p: float(np.mean(np.abs(p - yte)))  # noqa: E731
    out = {"n_train": int(len(ytr)), "n_test": int(len(yte)), "fs_hz": fs,
           "hr_mae_constant": mae(np.full(len(yte), ytr.mean()))}
    if "ppg" in names:
        out["hr_mae_ppg_dsp"] = mae(spectral_hr(xte[:, names.index("ppg")], fs))
        out.update(_best_lag(ds, fs, names.index("ppg")))
    out["hr_mae_acc_dsp_bcg"] = mae(spectral_hr(xte[:, acc_i], fs, envelope=True))
    ftr, fte = acc_features(xtr[:, acc_i], fs), acc_features(xte[:, acc_i], fs)
    for frac in (0.1, 1.0):
        errs = []
        for s in range(3):
            rng = np.random.default_rng(100 + s)
            sel = np.sort(rng.choice(len(ytr), max(20, int(frac * len(ytr))), replace=False))
            gbm = HistGradientBoostingRegressor(loss="absolute_error", max_iter=300, learning_rate=0.05,
                                                early_stopping=True, validation_fraction=0.2, random_state=s)
            errs.append(mae(gbm.fit(ftr[sel], ytr[sel]).predict(fte)))
            if frac == 1.0:
                break
        out[f"hr_mae_acc_gbm_{int(frac * 100)}pct"] = float(np.mean(errs))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", default="synthetic,wesad")
    ap.add_argument("--max-train", type=int, default=8000)
    ap.add_argument("--max-eval", type=int, default=4000)
    ap.add_argument("--synth-workdir", default="/tmp/edgefm_bench_distill_syn")
    ap.add_argument("--wesad-workdir", default="/tmp/edgefm_bench_distill")
    ap.add_argument("--synth-subjects", type=int, default=24)
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args(argv)
    bd = _bench_distill()
    from edgefm.manifest import atomic_write_json
    cmd = "python benchmarks/bench_distill_ceiling.py" + ("" if not (sys.argv[1:] if argv is None else argv)
                                                          else " " + " ".join(sys.argv[1:] if argv is None else argv))
    res = {"command": cmd, "what": "HR information in the inputs, measured without a network (see the script's docstring)"}
    t0 = time.time()
    for name in [s.strip() for s in args.sources.split(",") if s.strip()]:
        if name == "synthetic":
            work = Path(args.synth_workdir)
            work.mkdir(parents=True, exist_ok=True)
            path = bd.prepare_synthetic(work, args.synth_subjects)
        else:
            work = Path(args.wesad_workdir)
            work.mkdir(parents=True, exist_ok=True)
            path = bd.prepare_real("e4", SHARED / "wesad_e4", work)
        if path is None:
            res[name] = {"status": "unavailable"}
            continue
        res[name] = ceiling(path, args.max_train, args.max_eval)
        print(name, json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in res[name].items()}))
    res["seconds"] = round(time.time() - t0, 1)
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    old["ceiling"] = res
    atomic_write_json(args.out, old)
    print(f"wrote section 'ceiling' of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
