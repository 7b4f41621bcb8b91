"""One dataset, end to end: distilled student vs supervised / SSL baselines vs teacher ceiling.

``compare(...)`` runs the evaluation protocol of :mod:`distill.evaluate` on one windows
dataset's held-out (test) subjects and returns ``(results, predictions, fitted)``:
results      JSON-able: retrieval, probes per model, supervised baseline, Bland–Altman
predictions  {"ref": (N,), model: (N,)} HR (bpm) on test windows, 100% labels
fitted       {"heads": {model: probe}, "supervised": SupervisedModel} for cross-dataset use

``cross_dataset(...)`` applies the heads fitted on the source to a dataset never trained on.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass

import numpy as np

from distill.data import acc_channels, acc_view, embed_student, embed_teacher, label, open_dataset
from distill.evaluate import (CLASSIFICATION, REGRESSION, EmbeddedSplit, bland_altman, fit_best_regressor,
                              pct_key, predict, probe_suite, supervised_suite)
from distill.probes import mae, retrieval_topk
from edgefm.data.windows import Windows
from edgefm.errors import ConfigError, DataError


@dataclass(frozen=True)
class CompareConfig:
    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    seeds: tuple[int, ...] = (0, 1, 2)          # probe label draws
    supervised_seeds: tuple[int, ...] = (0, 1)  # supervised baseline label draws (costly)
    retrieval_batches: tuple[int, ...] = (64,)
    probes: tuple[str, ...] = ("linear", "mlp")
    max_windows: dict | None = None             # per split cap, e.g. {"train": 20000}; seeded draw
    teacher_channels: tuple[str, ...] = ("ppg",)
    seed: int = 0

    def __post_init__(self):
        if not self.fractions or any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions must be in (0, 1], got {self.fractions}", field="fractions")
        if not self.seeds or not self.supervised_seeds:
            raise ConfigError("need at least one seed", field="seeds")
        if not self.probes or set(self.probes) - {"linear", "mlp"}:
            raise ConfigError(f"probes must be among linear, mlp; got {self.probes}", field="probes")
        if any(b < 2 for b in self.retrieval_batches):
            raise ConfigError("retrieval batch must be >= 2", field="retrieval_batches")


def tasks_of(label_info: dict) -> dict[str, str]:
    """Evaluation tasks from a dataset's label info: hr, rmssd (regression), activity, stress."""
    t = {}
    for name in ("hr", "rmssd"):
        if name in label_info:
            t[name] = REGRESSION
    for name in ("activity", "stress"):
        if name in label_info:
            t[name] = CLASSIFICATION
    return t


def load_normalised(ds, split: str, mean: dict | None = None, std: dict | None = None,
                    max_n: int | None = None, seed: int = 0) -> Windows:
    """Windows of ``split``, z-scored per channel with the dataset's statistics, except channels
    named in ``mean``/``std`` (e.g. a *source* dataset's ACC statistics for cross-dataset use,
    as the device would apply them)."""
    ds = open_dataset(ds)
    w = ds.load(split, normalise=False)
    if max_n and len(w) > max_n:
        w = w.select(np.sort(np.random.default_rng(seed).choice(len(w), max_n, replace=False)))
    mu = ds.mean[0, :, 0].copy()
    sd = ds.std[0, :, 0].copy()
    for i, c in enumerate(ds.channel_names):
        if mean and c in mean:
            mu[i], sd[i] = mean[c], std[c]
    x = np.where(w.mask, (w.x - mu[None, :, None]) / sd[None, :, None], 0.0).astype(np.float32)
    return dataclasses.replace(w, x=x)


def _emb_split(emb, w: Windows) -> EmbeddedSplit:
    return EmbeddedSplit(emb, {k: np.asarray(v) for k, v in w.labels.items()}, np.asarray(w.subject))


def compare(student, teacher, data, *, ssl_encoder=None, make_encoder=None, config: CompareConfig = CompareConfig(),
            supervised_config=None, log=True) -> tuple[dict, dict, dict]:
    """Evaluate a distilled ``student`` against baselines on ``data``'s held-out subjects.

    student: distilled (has ``distill_info`` with target statistics, for retrieval).
    ssl_encoder: the SSL baseline encoder (same architecture), or None to skip it.
    make_encoder: () -> fresh encoder for the supervised baseline, or None to skip it.
    """
    t0 = time.time()
    say = (lambda s: print(f"[{time.time() - t0:6.0f}s] {s}", file=sys.stderr)) if log else (lambda s: None)
    ds = open_dataset(data)
    cap = config.max_windows or {}
    splits = {s: load_normalised(ds, s, max_n=cap.get(s), seed=config.seed) for s in ("train", "val", "test")}
    chans = acc_channels(ds.channel_names)
    tasks = tasks_of(ds.labels)
    x = {s: acc_view(w, chans) for s, w in splits.items()}
    emb = {"student": {s: embed_student(student, x[s]) for s in splits}}
    say("student embeddings: " + ", ".join(f"{s} {len(v)}" for s, v in x.items()))
    if teacher is not None:
        emb["teacher"] = {s: embed_teacher(teacher, w, config.teacher_channels) for s, w in splits.items()}
        say("teacher embeddings")
    if ssl_encoder is not None:
        emb["ssl"] = {s: embed_student(ssl_encoder, x[s]) for s in splits}
    results = {"n_windows": {s: len(w) for s, w in splits.items()},
               "subjects": {s: sorted(set(map(str, w.subject))) for s, w in splits.items()},
               "tasks": tasks, "fractions": list(config.fractions), "seeds": list(config.seeds)}
    # retrieval of the paired teacher embedding (held-out subjects)
    if teacher is not None and getattr(student, "distill_info", None):
        info = student.distill_info
        tz = (emb["teacher"]["test"] - np.asarray(info["target_mean"])) / np.asarray(info["target_std"])
        proj = embed_student(student, x["test"], project=True)
        results["retrieval"] = []
        for b in config.retrieval_batches:
            if len(proj) >= b:
                results["retrieval"].append(retrieval_topk(proj, tz, batch=b, seed=config.seed))
        say(f"retrieval {results['retrieval']}")
    # frozen-embedding probes
    results["probes"] = {}
    for model, e in emb.items():
        results["probes"][model] = probe_suite(*(_emb_split(e[s], splits[s]) for s in ("train", "val", "test")),
                                               tasks, config.fractions, config.seeds, config.probes)
        say(f"probes {model}: hr " + ", ".join(
            f"{p} {v['selected']['mae']:.2f}" for p, v in results["probes"][model].get("hr", {}).items()))
    fitted = {"heads": {}}
    predictions = {}
    if "hr" in tasks:
        y = {s: label(w, "hr") for s, w in splits.items()}
        predictions["ref"] = y["test"]
        fitted["hr_train_mean"] = float(np.nanmean(y["train"]))
        results["hr_mae_constant_train_mean"] = mae(y["test"], np.full(len(y["test"]), fitted["hr_train_mean"]))
        results["bland_altman"] = {}
        for model, e in emb.items():
            pr, sel = fit_best_regressor(_emb_split(e["train"], splits["train"]),
                                         _emb_split(e["val"], splits["val"]), "hr", seed=config.seed,
                                         probes=config.probes)
            fitted["heads"][model] = pr
            predictions[model] = pr.predict(e["test"])
            results["bland_altman"][model] = {**bland_altman(y["test"], predictions[model]), "probe": sel["probe"]}
        if make_encoder is not None:
            sup, models = supervised_suite(make_encoder, x["train"], y["train"], splits["train"].subject,
                                           x["val"], y["val"], splits["val"].subject, x["test"], y["test"],
                                           config.fractions, config.supervised_seeds, supervised_config,
                                           keep_models=True)
            results["supervised"] = {"hr": sup}
            say("supervised hr " + ", ".join(f"{p} {v['mae']:.2f}" for p, v in sup.items()))
            if pct_key(1.0) in models:
                fitted["supervised"] = models[pct_key(1.0)]
                predictions["supervised"] = predict(models[pct_key(1.0)], x["test"])
                results["bland_altman"]["supervised"] = bland_altman(y["test"], predictions["supervised"])
    fitted["encoders"] = {"student": student, "ssl": ssl_encoder}
    fitted["acc_stats"] = {c: (float(ds.mean[0, i, 0]), float(ds.std[0, i, 0]))
                           for i, c in enumerate(ds.channel_names)}
    results["elapsed_s"] = time.time() - t0
    return results, predictions, fitted


def cross_dataset(fitted: dict, teacher, target, *, label_name: str = "hr", teacher_channels=("ppg",),
                  splits=("train", "val", "test")) -> tuple[dict, dict]:
    """HR MAE (bpm) on a dataset never trained on, with heads fitted on the source's train split.

    ACC is z-scored with the *source* statistics (what the deployed model applies); PPG (for
    the teacher) with the target's own statistics, since PPG amplitude units differ by device.
    Returns (results, predictions).
    """
    ds = open_dataset(target)
    src = fitted["acc_stats"]
    chans = acc_channels(ds.channel_names)
    mean = {c: src[c][0] for c in chans if c in src}
    std = {c: src[c][1] for c in chans if c in src}
    parts = []
    for s in splits:
        try:
            parts.append(load_normalised(ds, s, mean, std))
        except DataError:
            pass
    if not parts:
        raise DataError("target dataset has no windows", path=ds.path)
    w = Windows.concat(parts)
    y = label(w, label_name)
    x = acc_view(w, chans)
    res = {"n_windows": int(np.isfinite(y).sum()), "subjects": sorted(set(map(str, w.subject))),
           "protocol": "heads fitted on the source train split (100% labels); ACC normalised with source "
                       "statistics, PPG with the target's own; no training on the target"}
    preds = {"ref": y}
    for model, head in fitted["heads"].items():
        if model == "teacher":
            if teacher is None:
                continue
            e = embed_teacher(teacher, w, teacher_channels)
        else:
            enc = fitted["encoders"].get(model)
            if enc is None:
                continue
            e = embed_student(enc, x)
        preds[model] = head.predict(e)
        res[f"hr_mae_{model}"] = mae(y, preds[model])
    if "supervised" in fitted:
        preds["supervised"] = predict(fitted["supervised"], x)
        res["hr_mae_supervised"] = mae(y, preds["supervised"])
    if "hr_train_mean" in fitted:   # trivial reference: always predict the source's mean HR
        res["hr_mae_constant_source_mean"] = mae(y, np.full(len(y), fitted["hr_train_mean"]))
    return res, preds
