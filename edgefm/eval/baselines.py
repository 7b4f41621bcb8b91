"""Imputation baselines of LSM's Table 3: mean fill, nearest neighbour, linear, MICE.

Every function takes ``x: (N, C, T)`` (normalised; values at unavailable positions are
ignored) and ``avail: (N, C, T)`` bool (True = the method may read this sample) and returns
a filled copy ``(N, C, T)`` float32. A channel with nothing available in a window is filled
with 0 (the train mean in normalised units).
"""

from __future__ import annotations

import warnings

import numpy as np


def _rows(x: np.ndarray, avail: np.ndarray):
    N, C, T = x.shape
    return x.reshape(N * C, T), avail.reshape(N * C, T)


def mean_fill(x: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Each window's channel mean over its available samples."""
    cnt = avail.sum(-1, keepdims=True)
    mu = np.where(avail, x, 0.0).sum(-1, keepdims=True) / np.maximum(cnt, 1)
    mu = np.where(cnt > 0, mu, 0.0)
    return np.where(avail, x, mu).astype(np.float32)


def nearest_fill(x: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """The nearest available sample in time of the same channel (ties: the earlier one)."""
    xr, ar = _rows(x, avail)
    out = np.where(ar, xr, 0.0).astype(np.float32)
    T = xr.shape[1]
    t = np.arange(T)
    for i in range(xr.shape[0]):
        idx = np.flatnonzero(ar[i])
        if idx.size == 0 or idx.size == T:
            continue
        j = np.searchsorted(idx, t).clip(1, idx.size - 1) if idx.size > 1 else np.zeros(T, int)
        if idx.size > 1:
            left, right = idx[j - 1], idx[j]
            pick = np.where(np.abs(t - left) <= np.abs(right - t), left, right)
        else:
            pick = np.full(T, idx[0])
        out[i] = np.where(ar[i], xr[i], xr[i, pick])
    return out.reshape(x.shape)


def linear_fill(x: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Linear interpolation between available samples; the edges hold the nearest value."""
    xr, ar = _rows(x, avail)
    out = np.where(ar, xr, 0.0).astype(np.float32)
    t = np.arange(xr.shape[1])
    for i in range(xr.shape[0]):
        idx = np.flatnonzero(ar[i])
        if idx.size == 0 or idx.size == xr.shape[1]:
            continue
        out[i] = np.interp(t, idx, xr[i, idx])
    return out.reshape(x.shape)


def fit_mice(x: np.ndarray, avail: np.ndarray, *, max_fit_rows: int = 6000, max_iter: int = 5, seed: int = 0):
    """Fit scikit-learn's IterativeImputer (MICE) on time steps of ``x`` as rows, channels as columns.

    Fit it on training windows (every observed sample available) so that a channel hidden in
    every evaluation window can still be predicted from the others. At most ``max_fit_rows``
    rows (a seeded subsample) keep it fast.
    """
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    X = _to_rows(x, avail)
    rng = np.random.default_rng(seed)
    if X.shape[0] > max_fit_rows:
        X = X[rng.choice(X.shape[0], max_fit_rows, replace=False)]
    imp = IterativeImputer(max_iter=max_iter, random_state=seed, keep_empty_features=True, tol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at small max_iter is expected
        imp.fit(X)
    return imp


def _to_rows(x, avail):
    N, C, T = x.shape
    return np.where(avail, x, np.nan).transpose(0, 2, 1).reshape(N * T, C).astype(np.float64)


def mice_fill(x: np.ndarray, avail: np.ndarray, *, imputer=None, max_fit_rows: int = 6000, max_iter: int = 5,
              seed: int = 0) -> np.ndarray:
    """Multiple imputation by chained equations across channels at each time step.

    ``imputer``: a fitted one from :func:`fit_mice` (e.g. on the train split); without it the
    imputer is fitted on the available samples of ``x`` itself. Where every channel is hidden
    at a time step it reverts to the fitted column means.
    """
    N, C, T = x.shape
    imp = imputer if imputer is not None else fit_mice(x, avail, max_fit_rows=max_fit_rows,
                                                       max_iter=max_iter, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Y = imp.transform(_to_rows(x, avail))
    Y = np.nan_to_num(Y, nan=0.0).reshape(N, T, C).transpose(0, 2, 1)
    return np.where(avail, x, Y).astype(np.float32)


def smooth_fill(x: np.ndarray, avail: np.ndarray, k) -> np.ndarray:
    """Linear interpolation between local means: each unavailable sample is the distance-
    weighted blend of the mean of the ``k`` available samples before it and the ``k`` after it
    (at an edge, the one side's mean). ``k`` is an int or one per channel (C,). ``k = 1`` is
    :func:`linear_fill`; a large ``k`` tends to the window mean. Noisy channels want a large k.
    """
    N, C, T = x.shape
    ks = np.broadcast_to(np.asarray(k, np.int64), (C,))
    out = np.where(avail, x, 0.0).astype(np.float32)
    for n in range(N):
        for c in range(C):
            idx = np.flatnonzero(avail[n, c])
            if idx.size == 0 or idx.size == T:
                continue
            kk = int(max(1, ks[c]))
            miss = np.flatnonzero(~avail[n, c])
            v = x[n, c, idx].astype(np.float64)
            cv = np.concatenate([[0.0], np.cumsum(v)])
            ct = np.concatenate([[0.0], np.cumsum(idx, dtype=np.float64)])
            r = np.searchsorted(idx, miss)          # first available index after each hidden one
            l0 = np.maximum(r - kk, 0)
            r1 = np.minimum(r + kk, idx.size)
            nl, nr = r - l0, r1 - r
            lm = np.where(nl > 0, (cv[r] - cv[l0]) / np.maximum(nl, 1), 0.0)
            rm = np.where(nr > 0, (cv[r1] - cv[r]) / np.maximum(nr, 1), 0.0)
            dl = miss - (ct[r] - ct[l0]) / np.maximum(nl, 1)   # distance to the left mean's centre
            dr = (ct[r1] - ct[r]) / np.maximum(nr, 1) - miss
            both = (nl > 0) & (nr > 0)
            val = np.where(both, (lm * dr + rm * dl) / np.where(both, dl + dr, 1.0), np.where(nl > 0, lm, rm))
            out[n, c, miss] = val
    return out


SMOOTH_KS = (1, 2, 4, 8, 16, 32, 64, 150)


def fit_smooth(x: np.ndarray, avail: np.ndarray, hide: np.ndarray, ks=SMOOTH_KS) -> np.ndarray:
    """Per channel, the ``k`` of :func:`smooth_fill` with the lowest MAE on ``hide`` (N, C, T)
    in training windows ``x``/``avail`` (True = observed). Returns (C,) int."""
    score = hide & avail
    see = avail & ~hide
    errs = np.stack([np.where(score, np.abs(smooth_fill(x, see, k) - x), 0.0).sum((0, 2)) for k in ks])
    return np.asarray(ks)[errs.argmin(0)]


BASELINES = {"mean": mean_fill, "nearest": nearest_fill, "linear": linear_fill, "mice": mice_fill,
             "smooth": smooth_fill}
