"""Subject-wise cross-validation of a task's deployable model, fp32 and int8, beside baselines.

    r = cross_validate(tw, loso_folds(tw), FitConfig())
    r["int8"]["hr_mae_subject_mean"], r["baselines"]["constant"], r["folds"][0]

For each fold the model is trained on the fold's training subjects only (``val_subjects`` of
them held out for early stopping when there are enough), int8-quantized with calibration windows
from those subjects (:func:`edgefm.tasks.deploy.quantize_task_model`) and scored on the held-out
subjects in fp32 and in int8 (the PT2E int8 graph; the exported runtimes reproduce it within
the per-window error their verification reports).

Heart rate: MAE of the tracked output (and per window) per held-out subject, their mean over
subjects and the MAE pooled over windows; int8 vs fp32 per window in bpm; baselines: the
training labels' mean (``constant``) and each held-out subject's own mean heart rate
(``subject_mean``, an oracle no model can know in advance). Classes: predictions of all folds
pooled, then macro-F1, balanced accuracy, accuracy and the confusion matrix; per-fold macro-F1;
int8 agreement with fp32; baseline: the training subjects' majority class.
"""

from __future__ import annotations

import time

import numpy as np

from edgefm.tasks.data import TaskWindows
from edgefm.tasks.deploy import calibration_windows, evaluate, int8_scores, quantize_task_model
from edgefm.tasks.fit import FitConfig, class_metrics, fit, score


def _inner_split(subjects: list[str], n_val: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    s = list(rng.permutation(sorted(subjects)))
    return sorted(s[n_val:]), sorted(s[:n_val])


def cross_validate(tw: TaskWindows | dict[str, TaskWindows], folds: list[tuple[list[str], list[str]]],
                   config: FitConfig = FitConfig(), *, int8: bool = True, val_subjects: int = 0,
                   calib_windows: int = 256, max_train_windows: int | None = None, log=None) -> dict:
    """See the module docstring. ``val_subjects``: training subjects held out per fold to pick
    the epoch (0: none, the last epoch is kept). ``tw`` may be ``{name: windows}`` of candidate
    inputs (e.g. ACC vs ACC + gyroscope, same windows): per fold each is trained and the one with
    the lowest validation error is the fold's model (needs ``val_subjects``).
    ``max_train_windows``: train on at most this many windows, evenly spaced in time."""
    say = log or (lambda s: None)
    cands = tw if isinstance(tw, dict) else {"": tw}
    if len(cands) > 1 and not val_subjects:
        raise ValueError("choosing among candidate inputs needs val_subjects")
    tw = next(iter(cands.values()))
    reg = tw.task.regression
    rows, pooled_y, pooled_p32, pooled_p8 = [], [], [], []
    err8, err8_trk, max_out = [], [], []
    for k, (train_s, test_s) in enumerate(folds):
        t0 = time.perf_counter()
        fit_s, val_s = (_inner_split(train_s, val_subjects, config.seed + k)
                        if val_subjects and len(train_s) > val_subjects + 1 else (list(train_s), []))
        chosen, val_err = None, {}
        for name, cw in cands.items():
            train = cw.of_subjects(fit_s)
            if max_train_windows:
                train = train.evenly(max_train_windows)
            val = cw.of_subjects(val_s) if val_s else None
            m = fit(train, config, val)
            if len(cands) > 1:
                val_err[name] = score(m, val)["error"]
            if chosen is None or (len(cands) > 1 and val_err[name] < val_err[chosen[0]]):
                chosen = (name, m, train, cw)
        name, tm, train, tw = chosen
        test = tw.of_subjects(test_s)
        qm = quantize_task_model(tm, calibration_windows(tm, train, calib_windows)) if int8 else None
        s8 = int8_scores(qm, tm, test) if qm is not None else None
        s32 = tm.scores(test)
        ev = evaluate(tm, test, qm, s8, s32)
        ok = test.known
        row = {"test": list(test_s), "val": val_s, "n": int(ok.sum()), "fp32": ev["fp32"],
               "train_windows": int(len(train)), "seconds": round(time.perf_counter() - t0, 1)}
        if len(cands) > 1:
            row["inputs"], row["val_error"] = name, val_err
        if qm is not None:
            row["int8"] = ev["int8"]
        all_train = tw.of_subjects(train_s)
        if reg:
            yk = test.y[ok]
            row["constant"] = float(np.mean(np.abs(yk - np.nanmean(all_train.y[all_train.known]))))
            row["subject_mean"] = float(np.mean(np.abs(yk - yk.mean())))
            trk32 = tm.decode(s32, test, True)
            if qm is not None:
                pooled_p8.append(tm.decode(s8, test, True)[ok])
                err8.append(_abs(tm.decode(s8, test, False), tm.decode(s32, test, False)))
                err8_trk.append(_abs(pooled_p8[-1], trk32[ok]))
                max_out.append(ev["int8"]["max_output_bpm"])
            pooled_p32.append(trk32[ok])
        else:
            counts = np.bincount(all_train.y[all_train.known].astype(int), minlength=len(tw.classes))
            row["majority_class"] = tw.classes[int(counts.argmax())]
            row["majority"] = class_metrics(test.y[ok], np.full(ok.sum(), counts.argmax()), list(tw.classes))["macro_f1"]
            pooled_p32.append(tm.decode(s32, test)[ok])
            if qm is not None:
                pooled_p8.append(tm.decode(s8, test)[ok])
            row["tracked"] = bool(tm.tracker.get("enabled"))
            row["majority_pred"] = int(counts.argmax())
        pooled_y.append(test.y[ok])
        rows.append(row)
        say(f"  fold {k + 1}/{len(folds)} test {','.join(test_s)}" + (f" [{name}]" if len(cands) > 1 else "") + ": " + (
            f"fp32 {ev['fp32']['hr_mae']:.2f}" + (f" int8 {ev['int8']['hr_mae']:.2f}" if qm else "") + " bpm tracked"
            if reg else f"fp32 macro-F1 {ev['fp32']['macro_f1']:.3f}" + (f" int8 {ev['int8']['macro_f1']:.3f}" if qm else ""))
            + f" ({row['seconds']:.0f} s)")
    y = np.concatenate(pooled_y)
    out: dict = {"task": tw.task.name, "channels": list(tw.channels), "fs_hz": tw.fs_hz,
                 "candidates": {n: list(c.channels) for n, c in cands.items()} if len(cands) > 1 else None,
                 "window_s": tw.window / tw.fs_hz, "hop_s": tw.hop / tw.fs_hz, "folds": rows,
                 "subjects": sorted({s for _, t in folds for s in t}), "fit": config.to_dict()}
    if reg:
        for name, key in (("fp32", "fp32"), ("int8", "int8")):
            if key not in rows[0]:
                continue
            out[name] = {"hr_mae_subject_mean": float(np.mean([r[key]["hr_mae"] for r in rows])),
                         "hr_mae_per_window_subject_mean": float(np.mean([r[key]["hr_mae_per_window"] for r in rows]))}
        out["fp32"]["hr_mae_pooled"] = float(np.mean(np.abs(np.concatenate(pooled_p32) - y)))
        if pooled_p8:
            out["int8"]["hr_mae_pooled"] = float(np.mean(np.abs(np.concatenate(pooled_p8) - y)))
            e, et = np.concatenate(err8), np.concatenate(err8_trk)
            out["int8"]["abs_err_vs_fp32"] = _stats(e)
            out["int8"]["abs_err_vs_fp32_tracked"] = _stats(et)
            out["int8"]["max_output_bpm"] = float(max(max_out))
        out["baselines"] = {"constant": float(np.mean([r["constant"] for r in rows])),
                            "subject_mean": float(np.mean([r["subject_mean"] for r in rows]))}
    else:
        classes = list(tw.classes)
        out["fp32"] = class_metrics(y, np.concatenate(pooled_p32), classes)
        out["fp32"]["macro_f1_fold_mean"] = float(np.mean([r["fp32"]["macro_f1"] for r in rows]))
        if pooled_p8:
            p8 = np.concatenate(pooled_p8)
            out["int8"] = class_metrics(y, p8, classes)
            out["int8"]["macro_f1_fold_mean"] = float(np.mean([r["int8"]["macro_f1"] for r in rows]))
            out["int8"]["agreement_with_fp32"] = float(np.mean(p8 == np.concatenate(pooled_p32)))
        maj = np.concatenate([np.full(r["n"], r["majority_pred"]) for r in rows])
        out["baselines"] = {"majority": class_metrics(y, maj, classes)}
    return out


def _abs(a, b) -> np.ndarray:
    return np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))


def _stats(e: np.ndarray) -> dict:
    return {"p50": float(np.percentile(e, 50)), "p99": float(np.percentile(e, 99)), "max": float(e.max()),
            "n": int(len(e))}
