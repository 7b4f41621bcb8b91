"""Evaluation on held-out subjects: retrieval, frozen-embedding probes, label efficiency,
and the supervised baseline at the same label budgets.

Protocol (the same for every embedding — distilled student, SSL baseline, teacher on PPG):
for each label fraction f in ``fractions`` and seed in ``seeds``, f of each *train* subject's
labelled windows (and f of each *val* subject's, for model selection) are drawn
(:func:`distill.probes.label_subset`); a linear probe and an MLP probe are fitted on the
train subset; the one with the better val score is "selected"; all three are scored on
*every* labelled test window (held-out subjects). Numbers are means over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distill.probes import (classification_metrics, label_subset, mae, make_probe)

REGRESSION, CLASSIFICATION = "regression", "classification"


@dataclass
class EmbeddedSplit:
    """Embeddings of one split: emb (N, E), labels {name: (N,)}, subject (N,)."""
    emb: np.ndarray
    labels: dict[str, np.ndarray]
    subject: np.ndarray

    def select(self, idx) -> "EmbeddedSplit":
        return EmbeddedSplit(self.emb[idx], {k: v[idx] for k, v in self.labels.items()}, self.subject[idx])


def _score(task: str, y, p) -> dict:
    if task == REGRESSION:
        return {"mae": mae(y, p)}
    return classification_metrics(y, p)


def _key(task: str) -> tuple[str, int]:
    """Metric used for selection and its sign (+1: lower is better)."""
    return ("mae", 1) if task == REGRESSION else ("balanced_accuracy", -1)


def pct_key(f: float) -> str:
    return f"{f * 100:g}%"


def _mean_scores(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    out = {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
    out.update({f"{k}_std": float(np.nanstd([r[k] for r in rows])) for k in keys if k != "n"})
    return out


def probe_suite(train: EmbeddedSplit, val: EmbeddedSplit, test: EmbeddedSplit, tasks: dict[str, str],
                fractions=(0.01, 0.1, 1.0), seeds=(0, 1, 2), probes=("linear", "mlp")) -> dict:
    """{task: {pct: {probe: scores, "selected": scores, "n_labels": int}}} (scores averaged over seeds)."""
    out = {}
    for task_name, task in tasks.items():
        if task_name not in train.labels or task_name not in test.labels:
            continue
        cat = task == CLASSIFICATION
        res = {}
        for f in fractions:
            rows = {p: [] for p in (*probes, "selected")}
            n_lab = []
            for seed in seeds:
                ti = label_subset(train.subject, train.labels[task_name], f, seed, categorical=cat)
                vi = label_subset(val.subject, val.labels[task_name], f, seed + 1000, categorical=cat)
                if len(ti) < 4 or (cat and len(np.unique(train.labels[task_name][ti])) < 2):
                    continue
                n_lab.append(len(ti))
                best = None
                for p in probes:
                    pr = make_probe(p, task, seed).fit(train.emb[ti], train.labels[task_name][ti])
                    sc = _score(task, test.labels[task_name], pr.predict(test.emb))
                    rows[p].append(sc)
                    k, sign = _key(task)
                    if len(vi):
                        v = _score(task, val.labels[task_name][vi], pr.predict(val.emb[vi]))[k]
                    else:
                        v = 0.0
                    if best is None or sign * v < sign * best[0]:
                        best = (v, sc, p)
                rows["selected"].append({**best[1], "probe": best[2]})
            if not n_lab:
                continue
            res[pct_key(f)] = {p: _mean_scores(r) for p, r in rows.items() if r}
            res[pct_key(f)]["selected"]["probes_chosen"] = [r["probe"] for r in rows["selected"]]
            res[pct_key(f)]["n_labels"] = int(np.mean(n_lab))
        out[task_name] = res
    return out


def fit_best_regressor(train: EmbeddedSplit, val: EmbeddedSplit, label: str = "hr", seed: int = 0,
                       probes=("linear", "mlp")):
    """Fit each probe on all labelled train windows, keep the one with lower val MAE.

    Returns (probe, {"probe": kind, "val_mae": ...}). This is the HR head of the deployable model.
    """
    yt = train.labels[label]
    best = None
    for p in probes:
        pr = make_probe(p, REGRESSION, seed).fit(train.emb, yt)
        v = mae(val.labels[label], pr.predict(val.emb)) if len(val.emb) else float("nan")
        if best is None or (np.isfinite(v) and v < best[1]["val_mae"]) or not np.isfinite(best[1]["val_mae"]):
            best = (pr, {"probe": p, "val_mae": v})
    return best


def supervised_suite(make_encoder, x_train, y_train, subj_train, x_val, y_val, subj_val, x_test, y_test,
                     fractions=(0.01, 0.1, 1.0), seeds=(0,), config=None, keep_models: bool = False) -> dict:
    """Supervised ACC-only baseline at each label fraction: {pct: {"mae", "mae_std", "n_labels"}}.

    ``make_encoder()`` builds a fresh encoder of the student's architecture. The val subset has
    the same fraction of labels (early stopping uses only labels the budget allows).
    """
    import torch
    from distill.baselines import SupervisedConfig, train_supervised
    config = config or SupervisedConfig()
    out, models = {}, {}
    for f in fractions:
        maes, n_lab = [], []
        # at 100% every draw is the whole label set: extra seeds would only vary the init
        for seed in (seeds if f < 1 else seeds[:1]):
            ti = label_subset(subj_train, y_train, f, seed)
            vi = label_subset(subj_val, y_val, f, seed + 1000)
            if len(ti) < 2 or len(vi) < 1:
                continue
            torch.manual_seed(seed)
            cfg = type(config)(**{**config.__dict__, "seed": seed})
            m = train_supervised(make_encoder(), x_train[ti], y_train[ti], x_val[vi], y_val[vi], cfg)
            with torch.no_grad():
                p = predict(m, x_test)
            maes.append(mae(y_test, p))
            n_lab.append(len(ti))
            if keep_models and seed == seeds[0]:
                models[pct_key(f)] = m
        if maes:
            out[pct_key(f)] = {"mae": float(np.mean(maes)), "mae_std": float(np.std(maes)),
                               "n_labels": int(np.mean(n_lab)), "seeds": len(maes)}
    return (out, models) if keep_models else out


def predict(model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """(N,) outputs of a (B, C, T) -> (B, 1) model on x: (N, C, T)."""
    import torch
    model.eval()
    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(np.ascontiguousarray(x[a:a + batch_size])))[:, 0].numpy()
                               for a in range(0, len(x), batch_size)]).astype(np.float64)


def bland_altman(y_ref: np.ndarray, y_pred: np.ndarray) -> dict:
    """Bias and 95% limits of agreement (bpm) of prediction minus reference."""
    ok = np.isfinite(y_ref) & np.isfinite(y_pred)
    d = y_pred[ok] - y_ref[ok]
    if not len(d):
        return {"bias": float("nan"), "loa_low": float("nan"), "loa_high": float("nan"), "n": 0}
    b, s = float(d.mean()), float(d.std(ddof=1)) if len(d) > 1 else 0.0
    return {"bias": b, "loa_low": b - 1.96 * s, "loa_high": b + 1.96 * s, "n": int(len(d))}
