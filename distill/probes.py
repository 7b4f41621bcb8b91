"""Frozen-embedding probes and the metrics they are judged by.

``RidgeProbe`` (linear, closed form, ridge strength chosen by generalised cross-validation),
``MLPProbe`` (one hidden ReLU layer, early stopping on an internal split) — both regression
(HR in bpm, RMSSD in ms) and, for ``MLPProbe`` and ``LinearClassifierProbe``, classification
(activity, stress). Every regression probe converts to an ``nn.Module`` (``to_module()``) so
that it can be the heart-rate head of the deployable model.

Label efficiency: ``label_subset`` samples a fraction of the labelled windows, per subject,
seeded, so that 1% of labels means 1% of each subject's labelled windows.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score
from torch import nn

from distill._early import BestWeights
from edgefm.errors import DataError

# ---------------------------------------------------------------- metrics


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    y_true, y_pred = np.asarray(y_true, float), np.asarray(y_pred, float)
    ok = np.isfinite(y_true)
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs(y_true[ok] - y_pred[ok])))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    ok = y_true >= 0
    if not ok.any():
        return {"balanced_accuracy": float("nan"), "macro_f1": float("nan"), "n": 0}
    return {"balanced_accuracy": float(balanced_accuracy_score(y_true[ok], y_pred[ok])),
            "macro_f1": float(f1_score(y_true[ok], y_pred[ok], average="macro")),
            "n": int(ok.sum())}


def retrieval_topk(query: np.ndarray, keys: np.ndarray, batch: int = 64, ks=(1, 5),
                   seed: int = 0) -> dict:
    """Paired retrieval within batches of ``batch`` windows.

    query: (N, D) student projections, keys: (N, D) paired teacher embeddings (row i of each
    is the same window). Windows are shuffled (seeded) and cut into batches of ``batch``; in
    each batch every query ranks all ``batch`` keys by cosine similarity, and a hit at k means
    its own key is among the top k. Returns {"top1", "top5", "n_batches", "batch", "chance_top1",
    "chance_top5"} with chance = k / batch. A trailing partial batch is dropped.
    """
    query, keys = np.asarray(query, np.float64), np.asarray(keys, np.float64)
    if query.shape != keys.shape:
        raise DataError(f"query {query.shape} and keys {keys.shape} must match", field="embeddings")
    n_b = len(query) // batch
    if n_b == 0:
        raise DataError(f"{len(query)} windows are fewer than one batch of {batch}", field="batch")
    perm = np.random.default_rng(seed).permutation(len(query))[:n_b * batch].reshape(n_b, batch)
    qn = query / np.maximum(np.linalg.norm(query, axis=1, keepdims=True), 1e-12)
    kn = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
    hits = {k: 0 for k in ks}
    for idx in perm:
        sim = qn[idx] @ kn[idx].T                                   # (batch, batch)
        own = np.diag(sim)[:, None]
        rank = (sim > own).sum(1)                                   # 0 = own key is best
        for k in ks:
            hits[k] += int((rank < k).sum())
    out = {"batch": batch, "n_batches": int(n_b)}
    for k in ks:
        out[f"top{k}"] = hits[k] / (n_b * batch)
        out[f"chance_top{k}"] = min(k, batch) / batch
    return out


# ---------------------------------------------------------------- label efficiency

def label_subset(subject: np.ndarray, y: np.ndarray, fraction: float, seed: int = 0,
                 categorical: bool = False) -> np.ndarray:
    """Indices of a seeded ``fraction`` of the labelled windows of each subject (>= 1 each)."""
    if not 0 < fraction <= 1:
        raise DataError(f"label fraction must be in (0, 1], got {fraction}", field="fraction")
    y = np.asarray(y)
    known = (y >= 0) if categorical else np.isfinite(y.astype(float))
    rng = np.random.default_rng(seed)
    out = []
    for s in np.unique(subject):
        idx = np.flatnonzero((subject == s) & known)
        if not len(idx):
            continue
        k = len(idx) if fraction >= 1 else max(1, int(round(fraction * len(idx))))
        out.append(np.sort(rng.choice(idx, k, replace=False)))
    return np.sort(np.concatenate(out)) if out else np.zeros(0, np.int64)


# ---------------------------------------------------------------- probes

class _Standardise:
    def fit(self, X):
        self.mu = X.mean(0)
        self.sd = np.maximum(X.std(0), 1e-6)
        return self

    def __call__(self, X):
        return (X - self.mu) / self.sd


class RidgeProbe:
    """Linear ridge regression on standardised embeddings, alpha by GCV over a log grid.

    ``alpha``: fixed strength, or None to choose among ``alphas`` by generalised
    cross-validation (closed form via the SVD, so choosing costs one decomposition).
    """

    def __init__(self, alpha: float | None = None, alphas=tuple(10.0 ** np.arange(-3, 5))):
        self.alpha, self.alphas = alpha, tuple(alphas)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "RidgeProbe":
        X, y = np.asarray(X, np.float64), np.asarray(y, np.float64)
        ok = np.isfinite(y)
        X, y = X[ok], y[ok]
        if len(y) < 2:
            raise DataError(f"ridge probe needs at least 2 labelled windows, got {len(y)}", field="labels")
        self.std = _Standardise().fit(X)
        Z = self.std(X)
        self.y_mean = y.mean()
        yc = y - self.y_mean
        U, s, Vt = np.linalg.svd(Z, full_matrices=False)
        Uy = U.T @ yc
        n = len(y)
        cands = [self.alpha] if self.alpha is not None else list(self.alphas)
        best = None
        for a in cands:
            f = s ** 2 / (s ** 2 + a)
            resid = yc - U @ (f * Uy)
            gcv = n * float(resid @ resid) / max((n - f.sum()) ** 2, 1e-12)
            if best is None or gcv < best[0]:
                best = (gcv, a)
        self.alpha_ = best[1]
        self.coef_z = Vt.T @ (s / (s ** 2 + self.alpha_) * Uy)        # on standardised X
        self.coef_ = self.coef_z / self.std.sd                          # on raw X
        self.intercept_ = self.y_mean - float(self.std.mu @ self.coef_)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, np.float64) @ self.coef_ + self.intercept_

    def to_module(self) -> nn.Module:
        """``nn.Linear(E, 1)`` computing the same prediction (standardisation folded in)."""
        lin = nn.Linear(len(self.coef_), 1)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(self.coef_, dtype=torch.float32)[None])
            lin.bias.fill_(float(self.intercept_))
        return lin


class _MLP(nn.Module):
    def __init__(self, d_in: int, hidden: int, d_out: int, mu, sd, y_mu: float = 0.0, y_sd: float = 1.0):
        super().__init__()
        self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
        self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, d_out))
        self.y_mu, self.y_sd = float(y_mu), float(y_sd)

    def forward(self, e):
        return self.net((e - self.mu) / self.sd) * self.y_sd + self.y_mu


class MLPProbe:
    """One hidden ReLU layer on standardised embeddings; Adam, weight decay, early stopping on
    a seeded 20% split of the (subsampled) training labels. ``task``: "regression" (L1 loss on
    standardised targets) or "classification" (class-balanced cross-entropy)."""

    def __init__(self, task: str = "regression", hidden: int = 64, epochs: int = 200, lr: float = 3e-3,
                 weight_decay: float = 1e-3, patience: int = 20, seed: int = 0):
        if task not in ("regression", "classification"):
            raise DataError(f"unknown probe task {task!r}", field="task")
        self.task, self.hidden, self.epochs, self.lr = task, hidden, epochs, lr
        self.weight_decay, self.patience, self.seed = weight_decay, patience, seed

    def fit(self, X: np.ndarray, y: np.ndarray) -> "MLPProbe":
        X = np.asarray(X, np.float32)
        reg = self.task == "regression"
        ok = np.isfinite(y) if reg else (np.asarray(y) >= 0)
        X, y = X[ok], np.asarray(y)[ok]
        if len(y) < 4:
            raise DataError(f"MLP probe needs at least 4 labelled windows, got {len(y)}", field="labels")
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        perm = torch.randperm(len(y), generator=g).numpy()
        n_val = max(1, len(y) // 5)
        vi, ti = perm[:n_val], perm[n_val:]
        std = _Standardise().fit(X[ti])
        if reg:
            y = y.astype(np.float32)
            y_mu, y_sd = float(y[ti].mean()), float(max(y[ti].std(), 1e-6))
            self.model = _MLP(X.shape[1], self.hidden, 1, std.mu, std.sd, y_mu, y_sd)
            yt = torch.tensor((y - y_mu) / y_sd)[:, None]
            loss_fn = nn.L1Loss()
        else:
            y = y.astype(np.int64)
            self.n_classes = int(y.max()) + 1
            cnt = np.bincount(y[ti], minlength=self.n_classes).astype(np.float32)
            w = np.where(cnt > 0, cnt.sum() / np.maximum(cnt, 1) / self.n_classes, 0.0)
            self.model = _MLP(X.shape[1], self.hidden, self.n_classes, std.mu, std.sd)
            yt = torch.tensor(y)
            loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))
        Xt = torch.tensor(X)
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        keeper = BestWeights(self.model, self.patience, min_delta=1e-5)
        bs = 256
        for _ in range(self.epochs):
            self.model.train()
            order = ti[torch.randperm(len(ti), generator=g).numpy()]
            for a in range(0, len(order), bs):
                b = order[a:a + bs]
                out = self.model.net((Xt[b] - self.model.mu) / self.model.sd)
                loss = loss_fn(out, yt[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
            self.model.eval()
            with torch.no_grad():
                v = float(loss_fn(self.model.net((Xt[vi] - self.model.mu) / self.model.sd), yt[vi]))
            if keeper.update(v):
                break
        keeper.restore()
        self.model.eval()
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self.model(torch.tensor(np.asarray(X, np.float32)))
        return out[:, 0].numpy().astype(np.float64) if self.task == "regression" else out.argmax(1).numpy()

    def to_module(self) -> nn.Module:
        if self.task != "regression":
            raise DataError("only a regression probe can become the HR head", field="task")
        return self.model


class LinearClassifierProbe:
    """Multinomial logistic regression (class-balanced) on standardised embeddings."""

    def __init__(self, C: float = 1.0, seed: int = 0):
        self.C, self.seed = C, seed

    def fit(self, X, y):
        y = np.asarray(y).astype(int)
        ok = y >= 0
        if len(np.unique(y[ok])) < 2:
            raise DataError("a classification probe needs at least two classes among its labels",
                            field="labels")
        self.std = _Standardise().fit(np.asarray(X)[ok])
        self.clf = LogisticRegression(C=self.C, max_iter=500, class_weight="balanced")
        self.clf.fit(self.std(np.asarray(X)[ok]), y[ok])
        return self

    def predict(self, X):
        return self.clf.predict(self.std(np.asarray(X)))


def make_probe(kind: str, task: str, seed: int = 0):
    if kind == "linear":
        return RidgeProbe() if task == "regression" else LinearClassifierProbe(seed=seed)
    if kind == "mlp":
        return MLPProbe(task=task, seed=seed)
    raise DataError(f"unknown probe {kind!r} (linear, mlp)", field="probe")
