"""A task's windows from any recordings dataset (``edgefm data import`` / ``data synth`` output).

``load_windows(path, task, channels=...)`` windows every recording with the task's preset and
returns :class:`TaskWindows`: raw-unit windows, their observed mask, the task's label per window,
and for each window its subject, recording and start time (so on-device tracking can run along a
recording, and folds split by subject). Windows whose label is unknown are kept (they still feed
the gate and the simulator) and marked: ``known``.

Splits: :func:`split_subjects` (the dataset's own, a seeded one, or explicit lists) and
:func:`loso_folds` (leave subjects out).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgefm.data.recording import ChannelSpec
from edgefm.data.store import open_manifest, read_recordings, subject_split
from edgefm.data.windows import Preset, window_recording
from edgefm.errors import ConfigError, DataError
from edgefm.tasks.spec import TaskSpec, task_for

# channels each task reads, in order of preference; a dataset offers a subset
ACC = ("acc_x", "acc_y", "acc_z")
CHANNELS = {"hr_led_on": ("ppg", "ppg2") + ACC, "hr_led_off": ACC, "activity": ACC, "freeze": ACC,
            "phase": ACC + ("eda", "temp")}
#: Daphnet's three sensor placements (``edgefm data import daphnet`` names)
PLACEMENTS = {"ankle": ACC, "thigh": ("thigh_acc_x", "thigh_acc_y", "thigh_acc_z"),
              "trunk": ("trunk_acc_x", "trunk_acc_y", "trunk_acc_z")}


@dataclass
class TaskWindows:
    """Windows of one task. ``x``: (N, C, T) float32 raw units (missing samples 0), ``mask``
    (N, C, T) observed, ``y``: (N,) float bpm (NaN unknown) or int class code (-1 unknown)."""

    task: TaskSpec
    x: np.ndarray
    mask: np.ndarray
    y: np.ndarray
    subject: np.ndarray
    recording: np.ndarray
    start_s: np.ndarray
    channels: tuple[str, ...]
    fs_hz: float
    window: int
    hop: int
    classes: tuple[str, ...] = ()
    source: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def known(self) -> np.ndarray:
        return np.isfinite(self.y) if self.task.regression else self.y >= 0

    def evenly(self, n: int) -> "TaskWindows":
        """At most ``n`` of the windows, evenly spaced in order (all of them when there are fewer)."""
        return self.select(np.unique(np.linspace(0, len(self) - 1, min(n, len(self))).round().astype(int)))

    def select(self, idx) -> "TaskWindows":
        idx = np.asarray(idx)
        return replace(self, x=self.x[idx], mask=self.mask[idx], y=self.y[idx], subject=self.subject[idx],
                       recording=self.recording[idx], start_s=self.start_s[idx])

    def of_subjects(self, subjects) -> "TaskWindows":
        return self.select(np.flatnonzero(np.isin(self.subject, list(subjects))))

    def label_counts(self) -> dict[str, int]:
        if self.task.regression:
            return {"known": int(self.known.sum()), "unknown": int((~self.known).sum())}
        out = {c: int((self.y == i).sum()) for i, c in enumerate(self.classes)}
        out["unknown"] = int((self.y < 0).sum())
        return out

    def check_classes(self, where: str) -> None:
        """A classification set whose known labels collapse to one class cannot be learned."""
        if self.task.regression:
            if self.known.sum() < 2:
                raise DataError(f"{where}: fewer than 2 windows with a known {self.task.label}",
                                field=self.task.label, hint=f"label counts: {self.label_counts()}")
            return
        present = np.unique(self.y[self.y >= 0])
        if len(present) < 2:
            raise DataError(f"{where}: the {self.task.label} labels collapse to "
                            f"{len(present)} class(es); label counts {self.label_counts()}",
                            field=self.task.label, hint="use a shorter --window-s or data with more classes")

    def spec(self) -> dict:
        return {"preset": f"{self.task.name}-{self.fs_hz:g}hz", "channels": list(self.channels),
                "fs_hz": self.fs_hz, "window": self.window, "hop": self.hop,
                "window_s": self.window / self.fs_hz, "hop_s": self.hop / self.fs_hz}


def dataset_labels(path: str | Path) -> dict[str, dict]:
    """``{label: {kind, unit, classes}}`` over the recordings of a dataset (from its manifest)."""
    m = open_manifest(path, "recordings")
    out: dict[str, dict] = {}
    for e in m["recordings"]:
        for name, d in e.get("labels", {}).items():
            out.setdefault(name, d)
    return out


def dataset_channels(path: str | Path) -> dict[str, dict]:
    """``{channel: spec}`` over the recordings of a dataset (from its manifest)."""
    m = open_manifest(path, "recordings")
    out: dict[str, dict] = {}
    for e in m["recordings"]:
        for name, d in (e.get("streams") or {}).items():
            out.setdefault(name, d)
    return out


def load_windows(path: str | Path, task: str | TaskSpec | None = None, *, channels=None, fs_hz: float | None = None,
                 window_s: float | None = None, hop_s: float | None = None, min_valid: float = 0.5,
                 subjects=None) -> TaskWindows:
    """Window a recordings dataset for one task (see the module docstring).

    channels: the model's input channels in order (default: the task's, those the data has).
    fs_hz, window_s, hop_s: override the task's preset.
    """
    path = Path(path)
    labels = dataset_labels(path)
    t = task if isinstance(task, TaskSpec) else task_for(labels, task, path)
    have = set(dataset_channels(path))
    if channels is None:
        pref = CHANNELS["hr_led_on" if t.name == "hr" else t.name]
        channels = tuple(c for c in pref if c in have) if have else pref
    channels = tuple(channels)
    if not channels:
        raise DataError(f"the data has none of the channels task {t.name} reads", path=path, field="channels",
                        hint=f"it has {sorted(have)}")
    missing = [c for c in channels if have and c not in have]
    if missing:
        raise DataError(f"the data has no channel {missing[0]!r}", path=path, field="channels",
                        hint=f"it has {sorted(have)}")
    fs = float(fs_hz or t.fs_hz)
    preset = Preset(f"{t.name}-{fs:g}hz", tuple(ChannelSpec(c, _modality(c), "", fs) for c in channels), fs,
                    float(window_s or t.window_s), float(hop_s or t.hop_s), min_valid)
    xs, ms, ys, subj, recs, starts, classes = [], [], [], [], [], [], ()
    for rec in read_recordings(path, subjects=subjects):
        if t.label not in rec.labels:
            continue
        lt = rec.labels[t.label]
        classes = classes or tuple(lt.classes)
        w = window_recording(rec, preset)
        if not len(w):
            continue
        xs.append(w.x); ms.append(w.mask); ys.append(w.labels[t.label])
        subj.append(w.subject); recs.append(np.full(len(w), rec.id)); starts.append(w.start_time - rec.start_time)
    if not xs:
        raise DataError(f"no {preset.window_s:g} s window with a {t.label!r} label in the data", path=path,
                        field=t.label)
    y = np.concatenate(ys).astype(np.float32 if t.regression else np.int16)
    return TaskWindows(t, np.concatenate(xs), np.concatenate(ms), y, np.concatenate(subj).astype(str),
                       np.concatenate(recs).astype(str), np.concatenate(starts), channels, fs,
                       preset.window, preset.hop, classes, {"path": str(path.resolve())})


def _modality(name: str) -> str:
    for m in ("ppg", "acc", "gyro", "eda", "temp", "ecg"):
        if m in name:
            return m
    return "other"


def split_subjects(tw: TaskWindows, how: str | dict = "seeded", seed: int = 0, manifest_split: dict | None = None
                   ) -> dict[str, list[str]]:
    """Subject lists ``{train, val, test}``: ``"manifest"`` (the dataset's own split),
    ``"seeded"`` (70/15/15 by a seeded hash) or an explicit dict."""
    subjects = sorted(set(tw.subject))
    if isinstance(how, dict):
        unknown = sorted(set().union(*map(set, how.values())) - set(subjects))
        if unknown:
            raise ConfigError(f"split names subjects the data does not have: {unknown[:5]}", field="split")
        return {k: sorted(how.get(k, [])) for k in ("train", "val", "test")}
    if how == "manifest" and manifest_split:
        return {k: sorted(s for s in manifest_split.get(k, []) if s in subjects) for k in ("train", "val", "test")}
    if how in ("seeded", "manifest"):
        return subject_split(subjects, seed=seed)
    raise ConfigError(f"unknown split {how!r}", field="split", hint="manifest, seeded, or explicit lists")


def loso_folds(tw: TaskWindows, max_folds: int | None = None) -> list[tuple[list[str], list[str]]]:
    """Leave-one-subject-out: ``[(train subjects, [held-out subject])]`` over subjects with known labels."""
    subs = sorted(set(tw.subject[tw.known]))
    folds = [([s for s in subs if s != h], [h]) for h in subs]
    return folds[:max_folds] if max_folds else folds
