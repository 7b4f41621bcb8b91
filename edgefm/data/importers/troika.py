"""TROIKA (IEEE SP Cup 2015 training set) ``.mat`` files -> recordings.

``Training_data/DATA_<NN>_TYPE0<k>.mat`` (+ ``..._BPMtrace.mat``) and
``Extra_TrainingData/DATA_S04_T01.mat`` (+ ``BPM_S04_T01.mat``): ``sig`` is 6 x N at 125 Hz,
rows 0 ECG, 1-2 wrist PPG, 3-5 wrist ACC x, y, z (already in g: |acc| is ~1 at rest);
``BPM0`` is the ECG-derived heart rate, one value per 8 s window with a 2 s hop (window i
covers [2i, 2i + 8) s).

Channels: ``ecg`` (a.u.), ``ppg``, ``ppg2`` (a.u.), ``acc_x|y|z`` (g), all at 125 Hz.

Label ``hr`` (bpm): a step track at 0.5 Hz (one value per 2 s block). A windowed label is the
mean of the track over the window, and an 8 s window starting on a 2 s boundary spans four
blocks, so a track holding BPM0 itself would come back smoothed. Instead the blocks ``s``
solve ``(s[i] + s[i+1] + s[i+2] + s[i+3]) / 4 == BPM0[i]`` for every window i exactly, and of
all such solutions the smoothest (least squared second difference) is taken: windowing with
the ``wrist-raw`` preset (8 s, 2 s hop) then reproduces BPM0 per window to float precision
(checked at import: ``meta["hr_reference"]["max_abs_error_bpm"]``). The track covers
``len(BPM0) + 3`` blocks = exactly the span of the reference windows; outside it, NaN.
Caveat: exactness has a price at the 2 s scale. Single blocks can sit up to ~10 bpm from the
nearest window's BPM0 and step by up to ~30 bpm between blocks (measured on the 13 recordings),
so read the track through 8 s / 2 s window means (what ``wrist-raw`` does), not block by
block; the original values are in ``meta["hr_reference"]["bpm0"]``.

Subjects: each training recording is its own subject ``troika-NN``. The extra recording
``S04_T01`` is a second session of subject 4, so it gets subject ``troika-04`` (recording id
``troika-04-extra``): a subject-level split keeps both sessions on one side, never leaking.

Test set (as published): ``TestData/TEST_S0<k>_T0<j>.mat`` holds ``sig`` 5 x N at 125 Hz with
no ECG row (rows 0-1 wrist PPG, 2-4 wrist ACC x, y, z in g), its reference is
``TrueBPM/True_S0<k>_T0<j>.mat`` (``BPM0``, same 8 s / 2 s windows). Both are found anywhere
under the source folder; the True file is looked up beside the TEST file, then in a sibling
``TrueBPM/`` folder, then anywhere under the source (more than one candidate there is an
error). Test subjects are other people than the training twelve, so they get their own ids:
subject ``troika-test-S0<k>``, recording ``troika-test-S0<k>-T0<j>`` (two sessions of one
test subject share the subject). Channels: ``ppg``, ``ppg2``, ``acc_x|y|z`` (no ``ecg``);
the ``hr`` label is built exactly as for the training set. A TEST file without its True file,
or whose ``sig`` does not have 5 rows, is a :class:`DataError` naming the file and field.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.errors import DataError

FS_HZ = 125.0
#: most values one .mat variable may declare: 6 channels x 1 day at 125 Hz (MAX_DURATION_S["troika"])
MAX_ELEMENTS = int(6 * 86400 * FS_HZ)
WINDOW_S, HOP_S = 8.0, 2.0
ROWS = [("ecg", "ecg", "a.u."), ("ppg", "ppg", "a.u."), ("ppg2", "ppg", "a.u."),
        ("acc_x", "acc", "g"), ("acc_y", "acc", "g"), ("acc_z", "acc", "g")]
#: rows of a test-set ``sig``: the training rows without ECG
TEST_ROWS = ROWS[1:]
TEST_STEM = re.compile(r"TEST_S(\d+)_T(\d+)", re.IGNORECASE)


def find_pairs(src: Path, include_extra: bool = True) -> list[tuple[Path, Path, str, str]]:
    """[(data.mat, bpm.mat, subject, recording id)] under ``src``: training, extra and test files."""
    src = Path(src)
    if not src.is_dir():
        raise DataError("source folder not found", path=src)
    out = []
    for f in sorted(src.rglob("DATA_*.mat")):
        if f.stem.endswith("_BPMtrace"):
            continue
        m = re.fullmatch(r"DATA_(\d+)_TYPE\d+", f.stem)
        if m:
            bpm = f.with_name(f.stem + "_BPMtrace.mat")
            num = int(m.group(1))
            out.append((f, bpm, f"troika-{num:02d}", f"troika-{num:02d}"))
            continue
        m = re.fullmatch(r"DATA_S(\d+)_T(\d+)", f.stem)
        if m:
            if not include_extra:
                continue
            bpm = f.with_name(f"BPM_S{m.group(1)}_T{m.group(2)}.mat")
            num = int(m.group(1))
            out.append((f, bpm, f"troika-{num:02d}", f"troika-{num:02d}-extra" if m.group(2) == "01"
                        else f"troika-{num:02d}-t{int(m.group(2)):02d}"))
    out += find_test_pairs(src)
    if not out:
        raise DataError("no TROIKA DATA_*.mat or TEST_*.mat files found", path=src,
                        hint="point at the folder holding Training_data/ (and Extra_TrainingData/) "
                             "or TestData/ + TrueBPM/")
    for f, bpm, _, _ in out:
        if not bpm.is_file():
            raise DataError("heart-rate reference file is missing", path=bpm, field="BPM0")
    ids = [r for *_, r in out]
    if len(set(ids)) != len(ids):
        dup = next(r for r in ids if ids.count(r) > 1)
        files = [str(f) for f, _, _, r in out if r == dup]
        raise DataError(f"two files give recording {dup!r}: {', '.join(files)}", path=src, field="sig",
                        hint="the source holds two copies of one recording; point at one of them")
    return out


def find_test_pairs(src: Path) -> list[tuple[Path, Path, str, str]]:
    """Test-set ``TEST_S<k>_T<j>.mat`` files under ``src`` with their ``True_S<k>_T<j>.mat``.

    The True file is taken from beside the TEST file, else from a sibling ``TrueBPM/`` folder,
    else from anywhere under ``src`` (exactly one candidate). None found: a DataError naming
    the TEST file and ``BPM0``.
    """
    mats = sorted(p for p in src.rglob("*.mat") if p.is_file())
    out = []
    for f in mats:
        m = TEST_STEM.fullmatch(f.stem)
        if not m:
            continue
        k, j = int(m.group(1)), int(m.group(2))
        true = _find_true(f, k, j, mats)
        out.append((f, true, f"troika-test-S{k:02d}", f"troika-test-S{k:02d}-T{j:02d}"))
    return out


def _find_true(test: Path, k: int, j: int, mats: list[Path]) -> Path:
    """The reference file of test recording S<k>_T<j> (see :func:`find_test_pairs`)."""
    want = re.compile(rf"True_S0*{k}_T0*{j}", re.IGNORECASE)
    for folder in (test.parent, test.parent.parent / "TrueBPM"):  # TrueBPM/ may sit beside src
        near = sorted(p for p in folder.glob("*.mat") if p.is_file() and want.fullmatch(p.stem)) \
            if folder.is_dir() else []
        if len(near) == 1:
            return near[0]
    found = [p for p in mats if want.fullmatch(p.stem)]
    if len(found) == 1:
        return found[0]
    name = f"True_S{k:02d}_T{j:02d}.mat"
    if not found:
        raise DataError(f"heart-rate reference {name} not found (looked beside the file, in ../TrueBPM/ "
                        "and under the source folder)", path=test, field="BPM0",
                        hint="a test-set recording needs its TrueBPM/True_*.mat file")
    raise DataError(f"{len(found)} candidate references {name}: {', '.join(str(p) for p in found)}",
                    path=test, field="BPM0", hint="keep one copy of the TrueBPM folder under the source")


def _loadmat(path: Path, key: str) -> np.ndarray:
    import scipy.io as sio

    try:
        sizes = {name: int(np.prod(shape, dtype=np.float64)) for name, shape, _ in sio.whosmat(str(path))}
        if sizes.get(key, 0) > MAX_ELEMENTS:  # declared size, read before anything is decompressed
            raise DataError(f"declares {sizes[key]} values, more than {MAX_ELEMENTS} (a day of 6 channels "
                            f"at {FS_HZ:g} Hz)", path=path, field=key, hint="the file is corrupt")
        m = sio.loadmat(str(path))
    except DataError:
        raise
    except Exception as e:  # scipy raises ValueError, TypeError, MatReadError, OSError, ...
        raise DataError(f"cannot read MATLAB file: {type(e).__name__}: {str(e)[:120]}", path=path,
                        hint="the file is truncated or not a MATLAB v5 .mat") from e
    if key not in m:
        raise DataError(f"variable missing (has: {', '.join(k for k in m if not k.startswith('__'))})",
                        path=path, field=key)
    a = np.asarray(m[key])
    if not np.issubdtype(a.dtype, np.number):
        raise DataError(f"variable is not numeric ({a.dtype})", path=path, field=key)
    return a.astype(np.float64)


def block_track(bpm0: np.ndarray, k: int = int(WINDOW_S / HOP_S)) -> np.ndarray:
    """Blocks ``s`` (len(bpm0) + k - 1,) with ``mean(s[i:i+k]) == bpm0[i]`` exactly, smoothest.

    Solves min ||D2 s||^2 subject to A s = b (KKT system); NaN entries of ``bpm0`` are left
    unconstrained.
    """
    b = np.asarray(bpm0, np.float64)
    n = b.size
    m = n + k - 1
    rows = np.flatnonzero(np.isfinite(b))
    A = np.zeros((rows.size, m))
    for r, i in enumerate(rows):
        A[r, i:i + k] = 1.0 / k
    D = np.zeros((max(m - 2, 0), m))
    for i in range(m - 2):
        D[i, i:i + 3] = (1.0, -2.0, 1.0)
    # small ridge towards the nearest window's BPM keeps the system regular at the edges
    near = b[np.clip(np.arange(m) - (k - 1) // 2 - 1, 0, n - 1)]
    near = np.where(np.isfinite(near), near, np.nanmean(b) if rows.size else 0.0)
    lam = 1e-6
    H = D.T @ D + lam * np.eye(m)
    K = np.block([[H, A.T], [A, np.zeros((rows.size, rows.size))]])
    rhs = np.r_[lam * near, b[rows]]
    sol = np.linalg.lstsq(K, rhs, rcond=None)[0]
    return sol[:m]


def is_test_file(path: Path) -> bool:
    """True for a test-set ``TEST_S<k>_T<j>.mat`` (5-row ``sig``, no ECG)."""
    return TEST_STEM.fullmatch(Path(path).stem) is not None


def load_recording(data_mat: Path, bpm_mat: Path, subject: str, rec_id: str) -> Recording:
    """One TROIKA recording with its BPM0 reference (see the module docstring).

    The layout follows the file name: ``TEST_*`` is a 5-row test-set file (no ECG), any other a
    6-row training file.
    """
    test = is_test_file(data_mat)
    rows = TEST_ROWS if test else ROWS
    nr = len(rows)
    sig = _loadmat(data_mat, "sig")
    if sig.ndim != 2 or sig.shape[0] != nr:
        if sig.ndim == 2 and sig.shape[1] == nr and sig.shape[0] != nr:
            sig = sig.T
        else:
            what = "2 PPG + 3 ACC rows, no ECG (test set)" if test else "ECG + 2 PPG + 3 ACC rows (training set)"
            raise DataError(f"expected {nr} x N ({what}), got shape {sig.shape}", path=data_mat, field="sig",
                            hint="TEST_*.mat files are the test set's 5-row layout; DATA_*.mat the training "
                                 "set's 6-row one")
    n = sig.shape[1]
    if n < WINDOW_S * FS_HZ:
        raise DataError(f"only {n} samples ({n / FS_HZ:.1f} s), shorter than one {WINDOW_S:g} s window",
                        path=data_mat, field="sig")
    bpm0 = _loadmat(bpm_mat, "BPM0").ravel()
    n_win = int(np.floor((n / FS_HZ - WINDOW_S) / HOP_S)) + 1
    if bpm0.size == 0 or bpm0.size > n_win + 1:
        raise DataError(f"{bpm0.size} reference values for a recording with {n_win} windows of "
                        f"{WINDOW_S:g} s / {HOP_S:g} s", path=bpm_mat, field="BPM0",
                        hint="reference and signal files do not belong together")
    bad = np.isfinite(bpm0) & ((bpm0 < 20) | (bpm0 > 250))
    if bad.any():
        raise DataError(f"heart rate {bpm0[bad][0]:g} bpm is outside 20-250", path=bpm_mat, field="BPM0")
    streams = {name: Stream(ChannelSpec(name, mod, unit, FS_HZ), sig[i])
               for i, (name, mod, unit) in enumerate(rows)}
    acc = slice(nr - 3, nr)
    acc_norm = np.nanmedian(np.linalg.norm(sig[acc], axis=0))
    if not 0.3 < acc_norm < 3.0:
        raise DataError(f"median |acc| is {acc_norm:.3g}, not ~1 g", path=data_mat,
                        field=f"sig[{acc.start}:{acc.stop}]", hint="the accelerometer rows are not in g")
    blocks = block_track(bpm0)
    # windowed means of the track, exactly as window_recording computes them, to report the error
    k = int(WINDOW_S / HOP_S)
    back = np.convolve(blocks, np.ones(k) / k, "valid")[:bpm0.size]
    ok = np.isfinite(bpm0)
    err = float(np.max(np.abs(back[ok] - bpm0[ok]))) if ok.any() else float("nan")
    label = LabelTrack("hr", "continuous", 1.0 / HOP_S, blocks.astype(np.float32), unit="bpm")
    err32 = float(np.max(np.abs(np.convolve(label.values.astype(np.float64), np.ones(k) / k, "valid")
                                [:bpm0.size][ok] - bpm0[ok]))) if ok.any() else float("nan")
    meta = {"dataset": f"TROIKA (IEEE SP Cup 2015{' test set' if test else ''})", "source_file": data_mat.name,
            "set": "test" if test else "training",
            "cite": "Zhang, Pi, Liu, IEEE TBME 2015",
            "start_time_known": False,
            "hr_reference": {"source": bpm_mat.name, "kind": "ECG-derived BPM0",
                             "n_windows": int(bpm0.size), "n_known": int(ok.sum()),
                             "window_s": WINDOW_S, "hop_s": HOP_S, "label_block_s": HOP_S,
                             "max_abs_error_bpm": max(err, err32),
                             "bpm0": [round(float(v), 4) for v in bpm0]}}
    return Recording(subject=subject, start_time=0.0, streams=streams, labels={"hr": label},
                     meta=meta, id=rec_id)
