"""Train a task's deployable model on training subjects only; predict and score it.

``fit(train, config) -> TaskModel``: the student for the task (heart rate: the spectral student of
:mod:`distill.students.spectral`, scoring heart-rate bins; classes: the depthwise-separable CNN
encoder + a dense head scoring the classes), trained on ``train`` (its subjects only: the
normalisation, the tracker's step size and early stopping all come from them).

A :class:`TaskModel`'s ``model`` is the graph that is quantized and exported: normalised windows
``(B, C, T)`` -> ``(B, F)`` heart-rate-bin scores or ``(B, K)`` class scores. For heart rate the
scores go through :func:`runtime.track.track` along each recording (on the device, after the model;
counted in :meth:`TaskModel.macs`), which gives bpm.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from edgefm.errors import ConfigError
from edgefm.tasks.data import TaskWindows
from edgefm.tasks.spec import HR_RANGE_BPM, TaskSpec


@dataclass(frozen=True)
class FitConfig:
    """epochs: passes over the training windows (classes: the best epoch on validation subjects,
    held out of the training subjects, is kept when there are at least 4 training subjects).
    student: ``spectral_hr`` for heart rate; ``cnn1d_tiny`` / ``cnn1d_small`` for classes.
    label_sigma_bpm: width of the soft heart-rate target over the bins (the ECG reference's own
        window-to-window jitter is a few bpm)."""

    epochs: int = 25
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-3
    seed: int = 0
    student: str = "auto"
    label_sigma_bpm: float = 3.0
    width: int = 16
    threads: int = 2

    def __post_init__(self):
        for k in ("epochs", "batch_size", "width", "threads"):
            v = getattr(self, k)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{k} must be a positive int, got {v!r}", field=k)
        for k in ("lr", "label_sigma_bpm"):
            if not (np.isfinite(getattr(self, k)) and getattr(self, k) > 0):
                raise ConfigError(f"{k} must be positive", field=k)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class TaskModel:
    task: TaskSpec
    model: nn.Module              # normalised (B, C, T) -> (B, F) bin scores | (B, K) class scores
    input_spec: dict              # channels, fs_hz, window, hop, normalisation {mean, std}
    output_spec: dict
    tracker: dict | None = None   # heart rate: {bins_bpm, sigma_bpm, floor}
    info: dict = field(default_factory=dict)

    def normalise(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        n = self.input_spec["normalisation"]
        mu = np.asarray(n["mean"], np.float32)[None, :, None]
        sd = np.asarray(n["std"], np.float32)[None, :, None]
        z = (np.asarray(x, np.float32) - mu) / sd
        if mask is not None:
            z = np.where(mask, z, 0.0).astype(np.float32)
        return z

    def scores(self, tw: TaskWindows, batch: int = 512) -> np.ndarray:
        """Raw model outputs for every window of ``tw`` (fp32, eager)."""
        z = self.normalise(tw.x, tw.mask)
        self.model.eval()
        with torch.no_grad():
            return np.concatenate([self.model(torch.from_numpy(z[i:i + batch])).numpy()
                                   for i in range(0, len(z), batch)]) if len(z) else np.zeros((0, 1))

    def decode(self, scores: np.ndarray, tw: TaskWindows, tracked: bool = True) -> np.ndarray:
        """Outputs -> bpm (tracked along each recording, or per window) or class codes (filtered
        along each recording when the tracker is enabled: chosen on validation subjects)."""
        if not self.task.regression:
            if tracked and self.tracker and self.tracker.get("enabled"):
                from runtime.track import track_classes
                return track_classes(scores, tw.recording, tw.start_s, transition=self.tracker["transition"],
                                     floor=self.tracker["floor"]).argmax(1)
            return scores.argmax(1)
        from runtime.track import expected_bpm, track
        if not tracked:
            return expected_bpm(scores, self.tracker["bins_bpm"])
        return track(scores, tw.recording, tw.start_s, **self.tracker)

    def predict(self, tw: TaskWindows, tracked: bool = True) -> np.ndarray:
        return self.decode(self.scores(tw), tw, tracked)

    def num_params(self) -> int:
        return int(sum(p.numel() for p in self.model.parameters()))

    def macs(self) -> dict:
        from distill.students._common import count_macs
        c = len(self.input_spec["channels"])
        m = int(count_macs(self.model, torch.zeros(1, c, self.input_spec["window"])))
        out = {"model": m}
        if self.tracker and self.task.regression:
            from runtime.track import tracker_macs
            out["tracker"] = tracker_macs(self.tracker)
        elif self.tracker and self.tracker.get("enabled"):
            k = len(self.tracker["transition"])
            out["tracker"] = k * k + 3 * k
        out["total"] = sum(out.values())
        return out


def normalisation(tw: TaskWindows) -> dict:
    """Per-channel mean and std over the observed samples of ``tw`` (the training subjects')."""
    x = tw.x.transpose(1, 0, 2).reshape(len(tw.channels), -1)
    m = tw.mask.transpose(1, 0, 2).reshape(len(tw.channels), -1)
    mean, std = [], []
    for c in range(len(tw.channels)):
        v = x[c][m[c]]
        mean.append(float(v.mean()) if v.size else 0.0)
        s = float(v.std()) if v.size else 1.0
        std.append(s if s > 1e-8 else 1.0)
    return {"mean": mean, "std": std}


def tracker_sigma(tw: TaskWindows, step_bpm: float) -> float:
    """The tracker's per-hop step size: the 99th percentile of the hop-to-hop change of the
    training labels along each recording, at least one bin."""
    d = []
    for r in np.unique(tw.recording):
        i = np.flatnonzero(tw.recording == r)
        i = i[np.argsort(tw.start_s[i])]
        y = tw.y[i]
        dd = np.abs(np.diff(y))
        d.append(dd[np.isfinite(dd)])
    d = np.concatenate(d) if d else np.zeros(0)
    return float(max(step_bpm, np.percentile(d, 99) if d.size else step_bpm))


def _student(tw: TaskWindows, cfg: FitConfig) -> nn.Module:
    C, T = len(tw.channels), tw.window
    if tw.task.regression:
        from distill.students.spectral import SpectralHRConfig, SpectralHRStudent
        if cfg.student not in ("auto", "spectral_hr"):
            raise ConfigError(f"heart rate uses the spectral_hr student, not {cfg.student!r}", field="student")
        return SpectralHRStudent(SpectralHRConfig(in_channels=C, window=T, fs_hz=tw.fs_hz,
                                                  f_min_bpm=HR_RANGE_BPM[0], f_max_bpm=HR_RANGE_BPM[1],
                                                  width=cfg.width))
    from distill.deploy import Deployable
    from distill.students import build_student
    enc = build_student("cnn1d_tiny" if cfg.student == "auto" else cfg.student, in_channels=C, window=T)
    enc.projector = nn.Identity()
    return Deployable(enc, nn.Linear(enc.config.embed_dim, len(tw.classes)))


def _head(model: nn.Module) -> nn.Module:
    """The layer a head-only refit trains: the class head, or the heart-rate student's scoring conv."""
    return model.head if hasattr(model, "head") else model.cnn[-1]


def fit(train: TaskWindows, config: FitConfig = FitConfig(), val: TaskWindows | None = None,
        log=None, *, init: TaskModel | None = None, head_only: bool = False) -> TaskModel:
    """Train the task's deployable model on ``train`` (see the module docstring).

    init: a trained model to start from (a refit on the user's own recordings): its weights,
    normalisation and output spec are kept (``train`` must have its channels, rate and window,
    and for classes its class names); ``head_only`` trains only its head."""
    torch.set_num_threads(config.threads)
    train.check_classes("training windows")
    keep = train.known
    torch.manual_seed(config.seed)
    if init is None:
        spec = {**train.spec(), "normalisation": normalisation(train)}
        model = _student(train, config)
    else:
        _check_refit(init, train)
        spec = dict(init.input_spec)
        model = copy.deepcopy(init.model)
    tm = TaskModel(train.task, model, spec, {}, info={"fit": config.to_dict(), "train_subjects":
                                                     sorted(set(train.subject.tolist())),
                                                     **({"refit_of": init.info.get("source"), "head_only": head_only}
                                                        if init is not None else {})})
    z = torch.from_numpy(tm.normalise(train.x[keep], train.mask[keep]))
    y = train.y[keep]
    if train.task.regression:
        bins = model.config.bins_bpm
        tm.output_spec = {"name": "heart_rate", "unit": "bpm", "kind": "bins", "bins_bpm": bins.tolist(),
                          "range": list(HR_RANGE_BPM)}
        tm.tracker = {"bins_bpm": bins.tolist(), "sigma_bpm": tracker_sigma(train, float(bins[1] - bins[0])),
                      "floor": 1e-3} if init is None or not init.tracker else dict(init.tracker)
        target = torch.softmax(-0.5 * ((torch.tensor(bins, dtype=torch.float32)[None]
                                        - torch.tensor(y, dtype=torch.float32)[:, None]) / config.label_sigma_bpm) ** 2, -1)
        loss_fn = lambda out, idx: -(target[idx] * torch.log_softmax(out, -1)).sum(-1).mean()  # noqa: E731
        forward = model.logits
    else:
        tm.output_spec = {"name": train.task.label, "kind": "classes", "classes": list(train.classes)}
        if init is not None and init.tracker:
            tm.tracker = dict(init.tracker)
        else:
            from runtime.track import class_transitions
            tm.tracker = {"transition": class_transitions(train.y, train.recording, train.start_s,
                                                          len(train.classes)).tolist(),
                          "floor": 1e-3, "enabled": False}
        counts = np.bincount(y.astype(int), minlength=len(train.classes)).astype(np.float64)
        w = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / (counts > 0).sum(), 0.0)
        ce = nn.CrossEntropyLoss(weight=torch.tensor(w, dtype=torch.float32))
        yt = torch.tensor(y.astype(np.int64))
        loss_fn = lambda out, idx: ce(out, yt[idx])  # noqa: E731
        forward = model
    if head_only:
        for p in model.parameters():
            p.requires_grad_(False)
        for p in _head(model).parameters():
            p.requires_grad_(True)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, config.epochs)
    g = torch.Generator().manual_seed(config.seed)
    best = (np.inf, None, -1)
    for ep in range(config.epochs):
        model.train()
        perm = torch.randperm(len(z), generator=g)
        for i in range(0, len(perm), config.batch_size):
            idx = perm[i:i + config.batch_size]
            if len(idx) < 2:
                continue
            loss = loss_fn(forward(z[idx]), idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if val is not None and len(val) and val.known.any():
            err = score(tm, val)["error"]
            if err < best[0]:
                best = (err, copy.deepcopy(model.state_dict()), ep)
    if best[1] is not None:
        model.load_state_dict(best[1])
        tm.info["best_epoch"] = best[2]
    model.eval()
    if not train.task.regression and val is not None and len(val) and val.known.any() and init is None:
        # filter classes along each recording only if it helps on the validation subjects
        s = tm.scores(val)
        ok = val.known
        f1 = {}
        for on in (False, True):
            tm.tracker["enabled"] = on
            f1[on] = class_metrics(val.y[ok], tm.decode(s, val)[ok], list(train.classes))["macro_f1"]
        tm.tracker["enabled"] = bool(f1[True] > f1[False])
        tm.info["val_macro_f1"] = {"per_window": f1[False], "tracked": f1[True]}
    return tm


def _check_refit(init: TaskModel, train: TaskWindows) -> None:
    """A refit's data must feed the model what it was built for."""
    from edgefm.errors import DataError
    s = init.input_spec
    if list(train.channels) != list(s["channels"]) or abs(train.fs_hz - float(s["fs_hz"])) > 1e-9 \
            or train.window != int(s["window"]):
        raise DataError(f"the model reads {', '.join(s['channels'])} at {float(s['fs_hz']):g} Hz in "
                        f"{int(s['window'])}-sample windows; the data gives {', '.join(train.channels)} at "
                        f"{train.fs_hz:g} Hz in {train.window}-sample windows", field="channels",
                        hint="refit on recordings with the model's channels (they are resampled to its rate)")
    if init.task.name != train.task.name:
        raise DataError(f"the model is a {init.task.name} model; the data was windowed for {train.task.name}",
                        field="task")
    if not train.task.regression and list(init.output_spec.get("classes", [])) != list(train.classes):
        raise DataError(f"the model's classes {init.output_spec.get('classes')} differ from the data's "
                        f"{list(train.classes)}", field="classes",
                        hint="refit on data labelled with the model's classes, or build a new model")


def score(tm: TaskModel, tw: TaskWindows, pred: np.ndarray | None = None, scores: np.ndarray | None = None) -> dict:
    """Figures on ``tw``'s known windows: heart rate MAE (tracked and per window); classes
    macro-F1, balanced accuracy, accuracy, confusion matrix. ``error`` is what early stopping
    minimises (MAE, or 1 - macro-F1). ``scores``: the model's outputs on ``tw`` when already computed."""
    ok = tw.known
    if tm.task.regression:
        s = tm.scores(tw) if scores is None else scores
        trk = tm.decode(s, tw, tracked=True) if pred is None else pred
        per = tm.decode(s, tw, tracked=False)
        mae = float(np.mean(np.abs(trk[ok] - tw.y[ok])))
        return {"n": int(ok.sum()), "hr_mae": mae, "hr_mae_per_window": float(np.mean(np.abs(per[ok] - tw.y[ok]))),
                "error": mae}
    classes = list(tm.output_spec["classes"])
    s = (tm.scores(tw) if scores is None else scores) if pred is None else None
    p = tm.decode(s, tw) if pred is None else pred
    m = class_metrics(tw.y[ok], p[ok], classes)
    out = {**m, "error": 1.0 - m["macro_f1"]}
    if s is not None:
        out["macro_f1_per_window"] = class_metrics(tw.y[ok], s.argmax(1)[ok], classes)["macro_f1"]
        out["tracked"] = bool(tm.tracker and tm.tracker.get("enabled"))
    return out


def class_metrics(y: np.ndarray, p: np.ndarray, classes: list[str]) -> dict:
    """macro-F1 over the classes present in ``y``, balanced accuracy, accuracy, confusion matrix."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, f1_score
    y = np.asarray(y, int)
    p = np.asarray(p, int)
    labels = sorted(set(y.tolist()))
    return {"n": int(len(y)), "macro_f1": float(f1_score(y, p, labels=labels, average="macro", zero_division=0)),
            "balanced_accuracy": float(balanced_accuracy_score(y, p)) if len(y) else float("nan"),
            "accuracy": float(np.mean(y == p)) if len(y) else float("nan"),
            "confusion": confusion_matrix(y, p, labels=list(range(len(classes)))).tolist(),
            "classes": list(classes)}
