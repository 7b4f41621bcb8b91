"""Getting windows in and out of the distillation code.

Everything here works on :class:`edgefm.data.windows.Windows` holding *normalised* windows
(``WindowDataset.load`` z-scores on read with the manifest's train-split statistics).
The student sees only the ACC channels; the teacher sees the full matrix with everything but
its ``channels`` treated as missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgefm.data.store import WindowDataset
from edgefm.data.windows import Windows
from edgefm.errors import DataError

WRIST_ACC = ("acc_x", "acc_y", "acc_z")


def acc_channels(channel_names) -> tuple[str, ...]:
    """The student's input channels in a dataset: the three wrist axes, or the ACC minute
    features of ``lsm-minutely``."""
    names = tuple(channel_names)
    if all(c in names for c in WRIST_ACC):
        return WRIST_ACC
    from edgefm.data.lsm_signals import ACC_SIGNAL_NAMES
    if all(c in names for c in ACC_SIGNAL_NAMES):
        return tuple(ACC_SIGNAL_NAMES)
    raise DataError(f"no accelerometer channels among {list(names)}", field="channels",
                    hint="the student needs acc_x, acc_y, acc_z (wrist-raw) or the f_* ACC features")


def open_dataset(data) -> WindowDataset:
    if isinstance(data, WindowDataset):
        return data
    if isinstance(data, (str, Path)):
        return WindowDataset(data)
    raise DataError(f"expected a windows dataset path or WindowDataset, got {type(data).__name__}",
                    field="data")


def load_split(data, split: str, max_n: int | None = None) -> Windows:
    """Normalised windows of one split of a dataset (path or WindowDataset), or ``data`` itself
    when it already is :class:`Windows` (then ``split`` is ignored)."""
    if isinstance(data, Windows):
        return data
    return open_dataset(data).load(split, max_n=max_n, normalise=True)


def acc_view(w: Windows, channels: tuple[str, ...] | None = None) -> np.ndarray:
    """(N, C_acc, T) float32: the ACC channels of normalised windows; missing samples read 0."""
    channels = channels or acc_channels(w.channel_names)
    names = list(w.channel_names)
    missing = [c for c in channels if c not in names]
    if missing:
        raise DataError(f"windows lack channels {missing}", field="channels")
    idx = [names.index(c) for c in channels]
    x = np.where(w.mask[:, idx], w.x[:, idx], 0.0).astype(np.float32)
    if not np.isfinite(x).all():
        raise DataError("non-finite values in observed ACC samples", field="x")
    return x


def label(w: Windows, name: str) -> np.ndarray:
    """A window label as float (continuous: NaN = unknown; categorical: -1 = unknown)."""
    if name not in w.labels:
        raise DataError(f"windows have no label {name!r} (have {sorted(w.labels)})", field=name)
    return np.asarray(w.labels[name]).astype(np.float64)


@torch.no_grad()
def embed_student(student: torch.nn.Module, x: np.ndarray, batch_size: int = 512,
                  project: bool = False) -> np.ndarray:
    """(N, E) embeddings (or (N, D_teacher) projections) of ACC windows ``x: (N, C, T)``."""
    was = student.training
    student.eval()
    out = []
    for a in range(0, len(x), batch_size):
        e = student(torch.from_numpy(np.ascontiguousarray(x[a:a + batch_size])))
        out.append((student.project(e) if project else e).numpy())
    student.train(was)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def embed_teacher(teacher, w: Windows, channels=("ppg",), batch_size: int = 256) -> np.ndarray:
    """(N, D) teacher embeddings of windows seen through ``channels`` only (the rest missing)."""
    missing = [c for c in channels if c not in w.channel_names]
    if missing:
        raise DataError(f"windows lack the teacher's channels {missing}", field="channels",
                        hint="the teacher needs the PPG channel; use a wrist-raw dataset with ppg")
    if hasattr(teacher, "eval"):
        teacher.eval()
    out = []
    for a in range(0, len(w), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(w.x[a:a + batch_size], np.float32))
        m = torch.from_numpy(np.ascontiguousarray(w.mask[a:a + batch_size]))
        e = teacher.embed(x, m, channels=list(channels))
        out.append(e.detach().float().cpu().numpy())
    return np.concatenate(out)
