"""The 26 LSM minute features (``edgefm.data.lsm_signals``) from raw wearable signals.

One module, the same code a device, the synthetic cohort and the importers run.
``minutely_features(rec)`` turns a raw :class:`Recording` into one at 1/60 Hz with the
channels ``f_*`` of ``LSM_SIGNALS`` (in that order), each with a validity mask: a minute
with too little valid input is invalid (stored as NaN, mask False), never imputed.

Definitions (REFERENCE.md, LSM Table 18), minute m covering [60 m, 60 m + 60) s:

PPG / beats  Inter-beat intervals (RR) from ``rec.events["beats"]`` (seconds from start),
    or, when absent, from beats detected in raw ``ppg`` (:func:`detect_beats`). An RR is
    usable if 0.3 s <= RR <= 2.0 s (30-200 bpm) and within 20 % of the median of its
    5-RR neighbourhood (median-filter outlier removal). ``f_hr`` is the mean of 60/RR over
    the RRs ending in the minute (valid when they cover >= 50 % of it). The HRV statistics
    use a sliding 5-minute window centred on the minute ([60 m - 120, 60 m + 180) s):
    ``f_rr_pct_valid`` = % of the window covered by usable RRs; percentiles p20/p80/median
    and mean of RR (ms); Shannon entropy (nats) of RR in 20 ms bins and of successive RR
    differences in 10 ms bins; ``f_pnn30`` (% of successive differences > 30 ms);
    ``f_rmssd``; ``f_sdnn``. Successive differences only between adjacent usable RRs that
    both end inside the window. HRV
    features are valid when the window holds >= 20 usable RRs covering >= 25 % of it;
    ``f_rr_pct_valid`` is valid wherever the optical sensor was recording.
    ``f_on_wrist`` (0/1): 0 if the optical sensor was off-wrist in either 30 s half of the
    minute, from an ``on_wrist`` stream (1 = on) when present, else from ``ppg`` validity
    (a half with < 50 % valid PPG counts as off-wrist).
ACC  (``acc_x|y|z`` in g, any rate) on a ``ACC_WINDOW_S`` = 51.2 s window centred in each
    minute, valid when >= 90 % of its samples are valid (invalid samples inside are
    bridged linearly as filter input only). Band-passed 3-axis signal bp (0.5-8 Hz,
    2nd-order Butterworth); magnitude |a| and its high-passed version hp (> 0.5 Hz).
    ``f_jerk_ratio``: lag-1 autocorrelation over energy of the jerk (first difference)
    of the first principal component (PC1) of bp; ``f_steps``: steps in the minute
    (:func:`detect_steps`); ``f_log_energy``: log of sum(hp^2)/fs (g^2 s);
    ``f_cov_condition``: log of the condition number of the raw 3-axis covariance;
    ``f_log_energy_ratio``: log of PC1 energy over hp energy; ``f_zc_std``/``f_zc_mean``:
    st.dev./mean of intervals (s) between zero crossings of PC1 (needs >= 3 crossings);
    ``f_arm_tilt``: log of mean sqrt(x^2 + z^2); ``f_kurtosis``: excess kurtosis of |a|;
    ``f_sleep_coef``: sum over axes of (max - min), binned into 16 log-spaced bins from
    0.005 g to 10 g (bin index 0..15).
EDA  ``f_scl_value``/``f_scl_slope``: centre value (uS) and slope (uS/min) of a linear fit
    to the tonic level (EDA low-passed at 0.05 Hz) over the minute's valid samples.
TEMP ``f_skin_temp``: mean (degC). ALT ``f_alt_std``: st.dev. of pressure (hPa).
    EDA, TEMP and ALT features need >= 50 % valid samples in the minute.

Labels are carried over per minute: continuous = mean of known values, categorical =
majority of known codes (NaN / -1 when none).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import signal as sps

from edgefm.data.lsm_signals import LSM_SIGNALS, MINUTE_HZ
from edgefm.data.recording import LabelTrack, Recording, Stream
from edgefm.errors import DataError, ShapeError

ACC_WINDOW_S = 51.2
HRV_WINDOW_S = 300.0
RR_MIN_S, RR_MAX_S = 0.3, 2.0
SLEEP_BINS_G = np.geomspace(0.005, 10.0, 17)


# ---------------------------------------------------------------- helpers

def _check_rate(fs_hz: float, field: str = "fs_hz") -> float:
    fs = float(fs_hz)
    if not (np.isfinite(fs) and fs > 0):
        raise DataError(f"sampling rate must be positive, got {fs_hz!r}", field=field)
    return fs


def _bridge(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear bridging of invalid runs between their valid neighbours (edges: nearest
    valid value). Filter input only; all-invalid -> zeros."""
    x = np.asarray(x)
    if valid.all():
        return x
    if not valid.any():
        return np.zeros(x.shape, np.float64)
    out = np.array(x, dtype=np.float64 if x.dtype == np.float64 else np.float32)
    d = np.diff(np.r_[0, (~valid).astype(np.int8), 0])
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)   # invalid runs [s, e)
    n = len(x)
    if len(starts) > 2000:  # many short gaps: one vectorised interpolation is faster
        idx = np.flatnonzero(valid)
        bad = np.flatnonzero(~valid)
        out[bad] = np.interp(bad, idx, out[idx])
        return out
    for s, e in zip(starts.tolist(), ends.tolist()):
        left = out[s - 1] if s > 0 else None
        right = out[e] if e < n else None
        if left is None:
            out[s:e] = right
        elif right is None:
            out[s:e] = left
        else:
            out[s:e] = left + (right - left) * (np.arange(1, e - s + 1) / (e - s + 1))
    return out


def _gather(n: int, fs: float, starts_s: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Index matrix (M, length) of windows starting at ``starts_s`` and its in-range mask."""
    a = np.round(starts_s * fs).astype(np.int64)
    ix = a[:, None] + np.arange(length)[None, :]
    ok = (ix >= 0) & (ix < n)
    return np.clip(ix, 0, max(n - 1, 0)), ok


def _per_minute(data: np.ndarray, valid: np.ndarray, fs: float, n_min: int) -> tuple[np.ndarray, np.ndarray]:
    """(n_min, S) rows of a stream per minute (S = samples per minute) and their validity."""
    S = max(1, int(round(60 * fs)))
    ix, ok = _gather(data.shape[0], fs, np.arange(n_min) * 60.0, S)
    if data.shape[0] == 0:
        return np.zeros((n_min, S), np.float64), np.zeros((n_min, S), bool)
    return data[ix].astype(np.float64), valid[ix] & ok


# ---------------------------------------------------------------- beats and HRV

def detect_beats(ppg: np.ndarray, fs_hz: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Beat times (s from sample 0) in a raw PPG ``ppg: (n,)`` at ``fs_hz``.

    Band-pass 0.5-5 Hz (2nd-order Butterworth, zero phase), then systolic peaks with
    scipy.signal.find_peaks: at least 0.3 s apart (<= 200 bpm) and a prominence of at
    least 0.3 x the local (10 s) st.dev. Peaks on invalid samples are dropped.
    """
    fs = _check_rate(fs_hz)
    x = np.asarray(ppg, np.float64)
    if x.ndim != 1:
        raise ShapeError(f"ppg must be 1-D, got {x.shape}", field="ppg")
    v = np.isfinite(x) if valid is None else (np.asarray(valid, bool) & np.isfinite(x))
    if x.shape[0] < int(2 * fs) or v.sum() < 2 * fs:
        return np.zeros(0)
    if fs < 10:
        raise DataError(f"PPG at {fs} Hz is too slow for beat detection (need >= 10 Hz)", field="ppg")
    xb = _bridge(np.where(v, x, 0.0), v)
    sos = sps.butter(2, [0.5, min(5.0, 0.45 * fs)], btype="band", fs=fs, output="sos")
    y = sps.sosfiltfilt(sos, xb)
    w = max(3, int(10 * fs))
    sd = np.sqrt(np.maximum(np.convolve(y * y, np.ones(w) / w, mode="same"), 1e-12))
    pk, prop = sps.find_peaks(y, distance=max(1, int(0.3 * fs)), prominence=0.0)
    prom = prop["prominences"]
    keep = prom >= 0.3 * sd[pk]
    pk, prom = pk[keep], prom[keep]
    if len(pk) >= 3:
        # drop secondary (diastolic) waves: a peak must reach half the prominence typical of
        # the beats around it (75th percentile of prominences within +-5 s)
        t_pk = pk / fs
        lo = np.searchsorted(t_pk, t_pk - 5.0)
        hi = np.searchsorted(t_pk, t_pk + 5.0)
        ref = np.array([np.percentile(prom[a:b], 75) for a, b in zip(lo, hi)])
        pk = pk[prom >= 0.5 * ref]
    pk = pk[v[pk]]
    # parabolic refinement of the peak time
    t = pk.astype(np.float64)
    inner = (pk > 0) & (pk < len(y) - 1)
    a, b, c = y[pk[inner] - 1], y[pk[inner]], y[pk[inner] + 1]
    den = a - 2 * b + c
    t[inner] += np.where(np.abs(den) > 1e-12, 0.5 * (a - c) / np.where(den == 0, 1, den), 0.0)
    return t / fs


def clean_rr(beat_times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RR intervals from beat times: ``(rr_s, t_end_s, usable)``.

    usable: 0.3 <= RR <= 2.0 s and within 20 % of the median of its 5-RR neighbourhood.
    """
    b = np.asarray(beat_times_s, np.float64)
    b = b[np.isfinite(b)]
    if b.ndim != 1:
        raise ShapeError("beat times must be 1-D", field="beats")
    if len(b) < 2:
        return np.zeros(0), np.zeros(0), np.zeros(0, bool)
    if (np.diff(b) <= 0).any():
        raise DataError("beat times must be strictly increasing", field="beats")
    rr = np.diff(b)
    ok = (rr >= RR_MIN_S) & (rr <= RR_MAX_S)
    # median of the neighbourhood among plausible RRs
    r = np.where(ok, rr, np.nan)
    pad = np.pad(r, 2, constant_values=np.nan)
    nb = np.lib.stride_tricks.sliding_window_view(pad, 5)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(nb, axis=1)
    ok &= np.isfinite(med) & (np.abs(rr - np.nan_to_num(med)) <= 0.2 * np.nan_to_num(med, nan=1.0))
    return rr, b[1:], ok


def _rows(values: np.ndarray, times: np.ndarray, a_s: np.ndarray, b_s: np.ndarray,
          end_times: np.ndarray | None = None) -> np.ndarray:
    """(M, K) matrix of the values whose span lies in [a_s, b_s) per row, NaN-padded.

    A value spans [times, end_times] (end_times = times when None); both sorted.
    """
    lo = np.searchsorted(times, a_s, side="left")
    hi = np.searchsorted(times if end_times is None else end_times, b_s, side="left")
    hi = np.maximum(hi, lo)
    cnt = hi - lo
    K = int(max(cnt.max(initial=0), 1))
    ix = lo[:, None] + np.arange(K)[None, :]
    inside = np.arange(K)[None, :] < cnt[:, None]
    out = np.full((len(a_s), K), np.nan)
    if len(values):
        out[inside] = values[np.minimum(ix, len(values) - 1)][inside]
    return out


def _row_percentile(sorted_rows: np.ndarray, n: np.ndarray, q: float) -> np.ndarray:
    """Linear-interpolated percentile (numpy's default) of NaN-last sorted rows."""
    pos = q / 100.0 * np.maximum(n - 1, 0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    f = pos - lo
    a = np.take_along_axis(sorted_rows, lo[:, None], 1)[:, 0]
    b = np.take_along_axis(sorted_rows, hi[:, None], 1)[:, 0]
    out = a + (b - a) * f
    out[n == 0] = np.nan
    return out


def _row_entropy(rows: np.ndarray, width: float) -> np.ndarray:
    """Shannon entropy (nats) of each row's values in bins of ``width`` (NaN ignored)."""
    M = rows.shape[0]
    r, c = np.nonzero(np.isfinite(rows))
    if len(r) == 0:
        return np.full(M, np.nan)
    codes = np.floor(rows[r, c] / width).astype(np.int64)
    codes -= codes.min()
    key = r.astype(np.int64) * (int(codes.max()) + 1) + codes
    uk, cnt = np.unique(key, return_counts=True)
    row = uk // (int(codes.max()) + 1)
    n = np.bincount(r, minlength=M).astype(np.float64)
    p = cnt / n[row]
    h = np.bincount(row, weights=-p * np.log(p), minlength=M)
    h[n == 0] = np.nan
    return h


def hrv_features(beat_times_s: np.ndarray, minute_starts_s: np.ndarray,
                 window_s: float = HRV_WINDOW_S) -> dict[str, np.ndarray]:
    """HRV per minute from beat times (s). Returns NaN where the window holds too little.

    Keys (without the ``f_`` prefix): hr, rr_pct_valid, rr_p80, rr_p20, rr_median, rr_mean,
    rr_entropy, rr_diff_entropy, pnn30, rmssd, sdnn; each (M,) float64. Times in the window
    [start + 30 - window_s/2, start + 30 + window_s/2); RR-derived values in ms.
    """
    ms = np.asarray(minute_starts_s, np.float64)
    M = len(ms)
    rr, t, ok = clean_rr(beat_times_s)
    rr_u, t_u = rr[ok], t[ok]
    # successive differences between adjacent usable RRs
    adj = ok[1:] & ok[:-1]
    d = (rr[1:] - rr[:-1])[adj]
    td0, td = t[:-1][adj], t[1:][adj]  # a difference spans the ends of its two RRs
    out: dict[str, np.ndarray] = {}
    # heart rate over the minute itself
    hr_rows = _rows(rr_u, t_u, ms, ms + 60)
    cover_min = np.nansum(hr_rows, 1)
    n_min = np.isfinite(hr_rows).sum(1)
    with np.errstate(all="ignore"):
        hr = np.nansum(60.0 / hr_rows, 1) / np.maximum(n_min, 1)
    out["hr"] = np.where(cover_min >= 30.0, hr, np.nan)
    c = ms + 30.0
    a, b = c - window_s / 2, c + window_s / 2
    R = _rows(rr_u * 1000.0, t_u, a, b)
    n = np.isfinite(R).sum(1)
    cover = np.nansum(R, 1) / 1000.0
    out["rr_pct_valid"] = 100.0 * np.minimum(cover / window_s, 1.0)
    good = (n >= 20) & (cover >= 0.25 * window_s)
    S = np.sort(R, 1)
    with np.errstate(all="ignore"):
        mean = np.nansum(R, 1) / np.maximum(n, 1)
        sdnn = np.sqrt(np.nansum((R - mean[:, None]) ** 2, 1) / np.maximum(n - 1, 1))
    out["rr_p80"] = _row_percentile(S, n, 80)
    out["rr_p20"] = _row_percentile(S, n, 20)
    out["rr_median"] = _row_percentile(S, n, 50)
    out["rr_mean"] = mean
    out["rr_entropy"] = _row_entropy(R, 20.0)
    D = _rows(d * 1000.0, td0, a, b, end_times=td)
    nd = np.isfinite(D).sum(1)
    out["rr_diff_entropy"] = _row_entropy(D, 10.0)
    with np.errstate(all="ignore"):
        out["pnn30"] = 100.0 * (np.abs(np.nan_to_num(D)) > 30).sum(1) / np.maximum(nd, 1)
        out["rmssd"] = np.sqrt(np.nansum(D * D, 1) / np.maximum(nd, 1))
    out["sdnn"] = sdnn
    good_d = good & (nd >= 10)
    for k in ("rr_p80", "rr_p20", "rr_median", "rr_mean", "rr_entropy", "sdnn"):
        out[k] = np.where(good, out[k], np.nan)
    for k in ("rr_diff_entropy", "pnn30", "rmssd"):
        out[k] = np.where(good_d, out[k], np.nan)
    return out


# ---------------------------------------------------------------- ACC

def detect_steps(acc: np.ndarray, fs_hz: float, valid: np.ndarray | None = None) -> np.ndarray:
    """Step times (s) in ``acc: (n, 3)`` g at ``fs_hz``.

    Acceleration magnitude band-passed 1-3.5 Hz (2nd-order Butterworth, zero phase), peaks
    >= 0.04 g at least 0.28 s apart (<= 3.6 steps/s); peaks on invalid samples dropped.
    """
    fs = _check_rate(fs_hz)
    a = np.asarray(acc, np.float64)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ShapeError(f"acc must be (n, 3), got {a.shape}", field="acc")
    v = np.isfinite(a).all(1) if valid is None else (np.asarray(valid, bool) & np.isfinite(a).all(1))
    if a.shape[0] < int(2 * fs) or not v.any():
        return np.zeros(0)
    mag = _bridge(np.sqrt(np.nan_to_num(a) ** 2 @ np.ones(3)), v)
    return _steps(mag, fs, v)


def _steps(mag: np.ndarray, fs: float, v: np.ndarray) -> np.ndarray:
    """Step times (s) from a gap-bridged acceleration magnitude ``mag: (n,)``."""
    sos = sps.butter(2, [1.0, min(3.5, 0.45 * fs)], btype="band", fs=fs, output="sos")
    y = sps.sosfiltfilt(sos, mag)
    pk, _ = sps.find_peaks(y, height=0.04, distance=max(1, int(round(0.28 * fs))))
    pk = pk[v[pk]]
    return pk / fs


def step_count(acc: np.ndarray, fs_hz: float, valid: np.ndarray | None = None) -> int:
    """Number of steps in ``acc: (n, 3)`` g at ``fs_hz`` (see :func:`detect_steps`)."""
    return int(len(detect_steps(acc, fs_hz, valid)))


def acc_window_features(win: np.ndarray, bp: np.ndarray, hp: np.ndarray, fs_hz: float) -> dict[str, np.ndarray]:
    """ACC features of M windows: raw ``win: (M, W, 3)`` g, band-passed ``bp: (M, W, 3)``,
    high-passed magnitude ``hp: (M, W)``; returns (M,) float64 arrays (names without the
    ``f_`` prefix; steps are counted per minute by :func:`acc_features`)."""
    return _window_features(np.moveaxis(np.asarray(win), 2, 0), np.moveaxis(np.asarray(bp), 2, 0),
                            np.asarray(hp), fs_hz)


def _window_features(win: np.ndarray, bp: np.ndarray, hp: np.ndarray, fs_hz: float) -> dict[str, np.ndarray]:
    """As :func:`acc_window_features` with channel-major ``win, bp: (3, M, W)`` (faster)."""
    fs = _check_rate(fs_hz)
    eps = 1e-12
    _, M, W = win.shape
    out: dict[str, np.ndarray] = {}

    def cov3(a):  # (3, M, W) -> centred copy and (M, 3, 3) covariance
        c = a - a.mean(2, keepdims=True)
        cv = np.empty((M, 3, 3), np.float64)
        for i in range(3):
            for j in range(i, 3):
                cv[:, i, j] = cv[:, j, i] = np.einsum("mw,mw->m", c[i], c[j]) / max(W - 1, 1)
        return c, cv

    bpc, cov_bp = cov3(bp)
    _, vec = np.linalg.eigh(cov_bp)
    v1 = vec[:, :, -1].astype(bpc.dtype)               # (M, 3)
    pc1 = bpc[0] * v1[:, 0:1] + bpc[1] * v1[:, 1:2] + bpc[2] * v1[:, 2:3]
    j = np.diff(pc1, axis=1)
    jj = np.einsum("mw,mw->m", j, j).astype(np.float64)
    out["jerk_ratio"] = np.einsum("mw,mw->m", j[:, 1:], j[:, :-1]).astype(np.float64) / (jj + eps)
    e_hp = np.einsum("mw,mw->m", hp, hp).astype(np.float64) / fs
    out["log_energy"] = np.log(e_hp + 1e-10)
    _, cov = cov3(win)
    lam = np.linalg.eigvalsh(cov)
    out["cov_condition"] = np.log((lam[:, -1] + 1e-10) / (np.maximum(lam[:, 0], 0) + 1e-10))
    e_pc = np.einsum("mw,mw->m", pc1, pc1).astype(np.float64) / fs
    out["log_energy_ratio"] = np.log((e_pc + 1e-10) / (e_hp + 1e-10))
    # zero crossings of PC1
    neg = pc1 < 0
    sc = neg[:, :-1] != neg[:, 1:]
    r, c = np.nonzero(sc)
    same = np.r_[False, r[1:] == r[:-1]]
    iv = np.diff(c, prepend=0)[same] / fs
    rv = r[same]
    nz = np.bincount(rv, minlength=M).astype(np.float64)
    s1 = np.bincount(rv, weights=iv, minlength=M)
    s2 = np.bincount(rv, weights=iv * iv, minlength=M)
    with np.errstate(all="ignore"):
        zm = s1 / nz
        zs = np.sqrt(np.maximum(s2 / nz - zm * zm, 0) * nz / np.maximum(nz - 1, 1))
    out["zc_mean"] = np.where(nz >= 2, zm, np.nan)
    out["zc_std"] = np.where(nz >= 2, zs, np.nan)
    x, y, z = win[0], win[1], win[2]
    xz = x * x + z * z
    out["arm_tilt"] = np.log(np.sqrt(xz).mean(1, dtype=np.float64) + 1e-10)
    mag = np.sqrt(xz + y * y)
    mc = mag - mag.mean(1, keepdims=True, dtype=np.float64).astype(mag.dtype)
    mc2 = mc * mc
    m2 = mc2.mean(1, dtype=np.float64)
    m4 = np.einsum("mw,mw->m", mc2, mc2).astype(np.float64) / W
    with np.errstate(all="ignore"):
        out["kurtosis"] = np.where(m2 > 1e-14, m4 / np.maximum(m2 * m2, 1e-28) - 3.0, np.nan)
    rng_sum = (win.max(2) - win.min(2)).astype(np.float64).sum(0)
    out["sleep_coef"] = np.clip(np.digitize(rng_sum, SLEEP_BINS_G[1:-1]), 0, 15).astype(np.float64)
    return out


def _minute_windows(a: np.ndarray, fs: float, M: int, offset_s: float, length: int) -> np.ndarray:
    """(M, length, ...) windows starting ``offset_s`` into each minute (a view when possible)."""
    S = 60 * fs
    off = int(round(offset_s * fs))
    if abs(S - round(S)) < 1e-9 and a.shape[0] >= M * int(round(S)):
        S = int(round(S))
        return a[:M * S].reshape(M, S, *a.shape[1:])[:, off:off + length]
    ix, ok = _gather(a.shape[0], fs, np.arange(M) * 60.0 + offset_s, length)
    return a[ix]


def acc_features(acc: np.ndarray, fs_hz: float, valid: np.ndarray | None = None,
                 n_minutes: int | None = None, min_valid: float = 0.9) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The 10 ACC features per minute from ``acc: (n, 3)`` g at ``fs_hz``.

    Returns {name (no ``f_``): (values (M,), valid (M,))}; M = ``n_minutes`` or n // (60 fs).
    """
    fs = _check_rate(fs_hz)
    a = np.asarray(acc)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ShapeError(f"acc must be (n, 3), got {a.shape}", field="acc")
    n = a.shape[0]
    fin = np.isfinite(a).all(1)
    v = fin if valid is None else (np.asarray(valid, bool) & fin)
    M = int(n // int(round(60 * fs))) if n_minutes is None else int(n_minutes)
    names = ("jerk_ratio", "steps", "log_energy", "cov_condition", "log_energy_ratio", "zc_std",
             "zc_mean", "arm_tilt", "kurtosis", "sleep_coef")
    if M == 0 or n == 0 or not v.any():
        return {k: (np.full(M, np.nan), np.zeros(M, bool)) for k in names}
    need = int(np.ceil(M * 60 * fs))
    if n < need:  # pad the tail as invalid
        a = np.concatenate([a, np.zeros((need - n, 3), a.dtype)])
        v = np.concatenate([v, np.zeros(need - n, bool)])
        n = need
    x = np.empty((3, n), np.float32)   # channel-major: per-window reductions run contiguous
    for i in range(3):
        x[i] = a[:, i] if v.all() else _bridge(np.where(v, a[:, i], 0.0), v)
    sos = sps.butter(2, [0.5, min(8.0, 0.45 * fs)], btype="band", fs=fs, output="sos")
    bp = sps.sosfilt(sos, x, axis=1).astype(np.float32)
    mag = np.sqrt((x * x).sum(0))
    sos_h = sps.butter(2, 0.5, btype="high", fs=fs, output="sos")
    hp = sps.sosfilt(sos_h, mag - mag[:max(1, int(fs))].mean()).astype(np.float32)
    W = int(round(ACC_WINDOW_S * fs))
    off_s = (60.0 - ACC_WINDOW_S) / 2
    vw = _minute_windows(v, fs, M, off_s, W)
    ok = vw.mean(1) >= min_valid
    feats = {k: np.full(M, np.nan) for k in names}
    if ok.any():
        sel = np.flatnonzero(ok)
        allm = len(sel) == M
        win = np.stack([_minute_windows(x[i], fs, M, off_s, W) for i in range(3)])
        bpw = np.stack([_minute_windows(bp[i], fs, M, off_s, W) for i in range(3)])
        hpw = _minute_windows(hp, fs, M, off_s, W)
        f = _window_features(win if allm else win[:, sel], bpw if allm else bpw[:, sel],
                             hpw if allm else hpw[sel], fs)
        for k, val in f.items():
            feats[k][sel] = val
    # steps over the whole minute
    st = _steps(mag, fs, v)
    mi = (st // 60).astype(np.int64)
    feats["steps"] = np.bincount(mi[mi < M], minlength=M).astype(np.float64)
    cover_min = _minute_windows(v, fs, M, 0.0, int(round(60 * fs))).mean(1)
    out = {}
    for k in names:
        val = feats[k]
        good = (cover_min >= min_valid) if k == "steps" else ok
        good = good & np.isfinite(val)
        out[k] = (np.where(good, val, np.nan), good)
    return out


# ---------------------------------------------------------------- EDA, TEMP, ALT

def eda_features(eda: np.ndarray, fs_hz: float, valid: np.ndarray, n_minutes: int) -> dict[str, tuple]:
    """``scl_value`` (uS) and ``scl_slope`` (uS/min) per minute (see module docstring)."""
    fs = _check_rate(fs_hz)
    x = _bridge(np.where(valid, eda, 0.0), valid)
    if fs > 0.2 and len(x) > 3 * int(20 * fs):
        sos = sps.butter(2, min(0.05, 0.4 * fs), btype="low", fs=fs, output="sos")
        x = sps.sosfiltfilt(sos, x)
    rows, ok = _per_minute(x, valid, fs, n_minutes)
    S = rows.shape[1]
    tt = (np.arange(S) / fs - 30.0) / 60.0  # minutes from the minute's centre
    w = ok.astype(np.float64)
    sw = w.sum(1)
    with np.errstate(all="ignore"):
        mt = (w * tt).sum(1) / sw
        my = (w * rows).sum(1) / sw
        cov = (w * (tt - mt[:, None]) * (rows - my[:, None])).sum(1)
        var = (w * (tt - mt[:, None]) ** 2).sum(1)
        slope = np.where(var > 0, cov / var, 0.0)
        centre = my - slope * mt
    good = (sw >= 0.5 * S) & (sw >= 2)
    return {"scl_value": (np.where(good, centre, np.nan), good),
            "scl_slope": (np.where(good, slope, np.nan), good)}


def _minute_stat(data, valid, fs, M, fn, min_n: int = 2):
    rows, ok = _per_minute(np.where(valid, data, 0.0), valid, fs, M)
    S = rows.shape[1]
    n = ok.sum(1)
    good = (n >= 0.5 * S) & (n >= min_n)
    r = np.where(ok, rows, np.nan)
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            val = fn(r)
    good &= np.isfinite(val)
    return np.where(good, val, np.nan), good


# ---------------------------------------------------------------- the recording

def _ppg_available(rec: Recording, M: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sensor recording (M,) bool, on_wrist values (M,), on_wrist valid (M,))."""
    if "on_wrist" in rec.streams:
        s = rec.streams["on_wrist"]
        rows, ok = _per_minute(np.nan_to_num(s.data), s.valid, s.spec.fs_hz, M)
        S = rows.shape[1]
        h = max(1, S // 2)
        on = []
        for part in (slice(0, h), slice(h, S)):
            r, o = rows[:, part], ok[:, part]
            on.append(np.where(o.any(1), (np.where(o, r, 1.0) >= 0.5).all(1), True))
        known = ok.mean(1) >= 0.5
        val = (on[0] & on[1]).astype(np.float64)
        return known, val, known
    if "ppg" in rec.streams:
        s = rec.streams["ppg"]
        rows, ok = _per_minute(np.zeros(s.n), s.valid, s.spec.fs_hz, M)
        _, inr = _gather(s.n, s.spec.fs_hz, np.arange(M) * 60.0, rows.shape[1])
        S = rows.shape[1]
        h = max(1, S // 2)
        halves = [ok[:, :h].mean(1) >= 0.5, ok[:, h:].mean(1) >= 0.5]
        known = inr.mean(1) >= 0.5
        return known & (halves[0] | halves[1]), (halves[0] & halves[1]).astype(np.float64), known
    return np.zeros(M, bool), np.full(M, np.nan), np.zeros(M, bool)


def _carry_labels(rec: Recording, M: int) -> dict[str, LabelTrack]:
    out = {}
    for name, lt in rec.labels.items():
        S = max(1, int(round(60 * lt.fs_hz)))
        ix, ok = _gather(lt.values.shape[0], lt.fs_hz, np.arange(M) * 60.0, S)
        if lt.values.shape[0] == 0:
            ok[:] = False
            ix[:] = 0
            vals = np.zeros_like(ix, dtype=np.float64)
        else:
            vals = lt.values[ix]
        if lt.kind == "continuous":
            v = np.where(ok, vals, np.nan).astype(np.float64)
            cnt = np.isfinite(v).sum(1)
            mean = np.where(cnt > 0, np.nansum(v, 1) / np.maximum(cnt, 1), np.nan)
            out[name] = dataclasses.replace(lt, fs_hz=MINUTE_HZ, values=mean.astype(np.float32))
        else:
            v = np.where(ok, vals, -1).astype(np.int64)
            k = max(len(lt.classes), int(v.max(initial=-1)) + 1, 1)
            counts = np.stack([(v == c).sum(1) for c in range(k)], 1)
            lab = counts.argmax(1).astype(np.int16)
            lab[counts.max(1) == 0] = -1
            out[name] = dataclasses.replace(lt, fs_hz=MINUTE_HZ, values=lab)
    return out


def minutely_features(rec: Recording) -> Recording:
    """The 26 LSM minute features of ``rec`` as a Recording at 1/60 Hz (see module docstring).

    Missing modalities give invalid features; nothing is imputed.
    """
    M = int(np.floor(rec.duration_s / 60.0 + 1e-9))
    if M < 1:
        raise DataError(f"recording {rec.id} is shorter than one minute ({rec.duration_s:.1f} s)",
                        field="duration")
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    # PPG / beats
    sensor_on, on_val, on_known = _ppg_available(rec, M)
    beats = rec.events.get("beats")
    if beats is None and "ppg" in rec.streams:
        s = rec.streams["ppg"]
        beats = detect_beats(s.data, s.spec.fs_hz, s.valid)
    if beats is not None and "ppg" not in rec.streams and "on_wrist" not in rec.streams:
        # beats without any optical-sensor channel: trust them where ACC says the band recorded
        accv = [rec.streams[c] for c in ("acc_x", "acc_y", "acc_z") if c in rec.streams]
        if accv:
            s = accv[0]
            sensor_on = _per_minute(np.zeros(s.n), s.valid, s.spec.fs_hz, M)[1].mean(1) >= 0.5
        else:
            sensor_on = np.ones(M, bool)
    ppg_names = ("hr", "rr_pct_valid", "rr_p80", "rr_p20", "rr_median", "rr_mean", "rr_entropy",
                 "rr_diff_entropy", "pnn30", "rmssd", "sdnn")
    if beats is not None:
        h = hrv_features(beats, np.arange(M) * 60.0)
        for k in ppg_names:
            v = h[k]
            good = np.isfinite(v) & sensor_on
            feats[k] = (np.where(good, v, np.nan), good)
    feats["on_wrist"] = (np.where(on_known, on_val, np.nan), on_known.copy())
    # ACC
    if rec.has("acc_x", "acc_y", "acc_z"):
        sx, sy, sz = (rec.streams[c] for c in ("acc_x", "acc_y", "acc_z"))
        if not (sx.spec.fs_hz == sy.spec.fs_hz == sz.spec.fs_hz) or not (sx.n == sy.n == sz.n):
            raise DataError("acc_x|y|z must share one rate and length", field="acc")
        acc = np.stack([sx.data, sy.data, sz.data], 1)
        feats.update(acc_features(acc, sx.spec.fs_hz, sx.valid & sy.valid & sz.valid, n_minutes=M))
    if "eda" in rec.streams:
        s = rec.streams["eda"]
        feats.update(eda_features(s.data, s.spec.fs_hz, s.valid, M))
    if "temp" in rec.streams:
        s = rec.streams["temp"]
        feats["skin_temp"] = _minute_stat(s.data, s.valid, s.spec.fs_hz, M, lambda r: np.nanmean(r, 1), 1)
    if "alt" in rec.streams:
        s = rec.streams["alt"]
        feats["alt_std"] = _minute_stat(s.data, s.valid, s.spec.fs_hz, M, lambda r: np.nanstd(r, 1, ddof=1), 3)
    streams = {}
    for spec in LSM_SIGNALS:
        k = spec.name[2:]
        if k in feats:
            v, ok = feats[k]
            ok = ok & np.isfinite(v)
            streams[spec.name] = Stream(spec, np.where(ok, v, np.nan).astype(np.float32), ok)
        else:
            streams[spec.name] = Stream(spec, np.full(M, np.nan, np.float32), np.zeros(M, bool))
    meta = dict(rec.meta)
    meta["derived"] = "edgefm.data.features.minutely_features"
    return Recording(rec.subject, rec.start_time, streams, _carry_labels(rec, M), {}, meta, id=rec.id)
