"""``distill(student, teacher, data, config) -> student``: PPG -> ACC embedding distillation.

The frozen teacher sees the PPG channel only (ACC hidden as missing): its embedding of each
window is the target. The student sees the ACC channels only and learns, through its
projection head, to land on the paired teacher embedding:

    loss = w_cos * (1 - cos(p, t)) + w_mse * |p - t|^2 + w_nce * InfoNCE(p, t; tau)

with ``p = student.project(student(acc))`` and ``t`` the teacher embedding standardised per
dimension with train-split statistics (so that no single large, shared direction dominates
the cosine and MSE terms). InfoNCE is the symmetric cross-modal contrastive loss over the
batch: each ACC window must pick out its own PPG window among the batch's others (Abbaspourazad
et al. 2024). Why this helps with few labels: the teacher's embedding carries what PPG sees
(heart rate, HRV), and every *unlabelled* window teaches the student to find it in ACC.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distill._early import BestWeights
from distill.data import acc_channels, acc_view, embed_teacher, load_split
from edgefm.data.windows import Windows
from edgefm.errors import ConfigError, DataError


@dataclass(frozen=True)
class DistillConfig:
    epochs: int = 20                 # passes over the train split (upper bound; early stopping)
    batch_size: int = 128            # also the InfoNCE negatives pool (batch_size - 1 negatives)
    lr: float = 2e-3                 # AdamW peak learning rate (cosine decay after warm-up)
    weight_decay: float = 1e-4
    warmup_frac: float = 0.05        # fraction of steps with linear warm-up
    cosine_weight: float = 1.0       # weight of (1 - cosine similarity)
    mse_weight: float = 0.5          # weight of MSE to the standardised teacher embedding
    infonce_weight: float = 1.0      # weight of the symmetric cross-modal InfoNCE
    temperature: float = 0.1         # InfoNCE temperature tau
    teacher_channels: tuple[str, ...] = ("ppg",)   # what the teacher sees; all else is missing
    noise_std: float = 0.0           # Gaussian noise added to normalised ACC during training
    patience: int = 5                # epochs without val-loss improvement before stopping
    max_train_windows: int | None = None  # subsample the train split (seeded) for speed
    seed: int = 0
    verbose: bool = False            # progress lines on stderr

    def __post_init__(self):
        def pos_int(name):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                raise ConfigError(f"must be a positive int, got {v!r}", field=name)
        for n in ("epochs", "batch_size", "patience"):
            pos_int(n)
        if self.batch_size < 2 and self.infonce_weight > 0:
            raise ConfigError("InfoNCE needs batch_size >= 2", field="batch_size")
        for n in ("lr", "temperature"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"must be a positive number, got {v!r}", field=n)
        for n in ("weight_decay", "cosine_weight", "mse_weight", "infonce_weight", "noise_std"):
            v = getattr(self, n)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"must be a non-negative number, got {v!r}", field=n)
        if self.cosine_weight + self.mse_weight + self.infonce_weight <= 0:
            raise ConfigError("at least one loss weight must be positive",
                              field="cosine_weight/mse_weight/infonce_weight")
        if not 0 <= self.warmup_frac < 1:
            raise ConfigError(f"must be in [0, 1), got {self.warmup_frac}", field="warmup_frac")
        object.__setattr__(self, "teacher_channels", tuple(self.teacher_channels))
        if not self.teacher_channels:
            raise ConfigError("the teacher must see at least one channel", field="teacher_channels")
        if self.max_train_windows is not None and self.max_train_windows < self.batch_size:
            raise ConfigError("max_train_windows must be >= batch_size", field="max_train_windows")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- losses

def info_nce(p: torch.Tensor, t: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric cross-modal InfoNCE.

    p: (B, D) student projections, t: (B, D) paired teacher embeddings. Both are L2-normalised;
    ``logits[i, j] = <p_i, t_j> / tau``; the loss is the mean of the cross-entropy of rows
    (ACC -> PPG) and of columns (PPG -> ACC) against the diagonal.
    """
    p = F.normalize(p, dim=-1)
    t = F.normalize(t, dim=-1)
    logits = p @ t.T / temperature
    target = torch.arange(p.shape[0], device=p.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def distill_loss(p: torch.Tensor, t: torch.Tensor, config: DistillConfig) -> dict[str, torch.Tensor]:
    """The weighted loss and its parts; p, t: (B, D) (t standardised teacher embeddings)."""
    parts = {"cos": 1 - F.cosine_similarity(p, t, dim=-1).mean(),
             "mse": F.mse_loss(p, t),
             "nce": info_nce(p, t, config.temperature) if config.infonce_weight > 0 else p.new_zeros(())}
    parts["loss"] = (config.cosine_weight * parts["cos"] + config.mse_weight * parts["mse"]
                     + config.infonce_weight * parts["nce"])
    return parts


# ---------------------------------------------------------------- the call

@dataclass
class TeacherTargets:
    """Teacher embeddings of a split, standardised with the train split's per-dim statistics."""
    raw: np.ndarray          # (N, D)
    mean: np.ndarray         # (D,)
    std: np.ndarray          # (D,)

    @property
    def z(self) -> np.ndarray:
        return ((self.raw - self.mean) / self.std).astype(np.float32)


def _standardiser(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return t.mean(0), np.maximum(t.std(0), 1e-6)


def _lr_at(step: int, total: int, cfg: DistillConfig) -> float:
    warm = max(1, int(cfg.warmup_frac * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    q = (step - warm) / max(1, total - warm)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(q, 1.0)))


def _eval_loss(student, x: np.ndarray, t: np.ndarray, cfg: DistillConfig) -> float:
    student.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for a in range(0, len(x) - cfg.batch_size + 1 if len(x) >= cfg.batch_size else 1, cfg.batch_size):
            xb = torch.from_numpy(x[a:a + cfg.batch_size])
            tb = torch.from_numpy(t[a:a + cfg.batch_size])
            if len(xb) < 2:
                continue
            loss = distill_loss(student.project(student(xb)), tb, cfg)["loss"]
            tot += float(loss) * len(xb)
            n += len(xb)
    return tot / max(n, 1)


def distill(student: nn.Module, teacher, data, config: DistillConfig = DistillConfig(), *,
            val=None, callback: Callable[[dict], None] | None = None) -> nn.Module:
    """Train ``student`` (in place) to reproduce the frozen ``teacher``'s PPG-only embedding from ACC.

    Args:
        student: a student (``forward(x: (B, C_acc, T)) -> (B, E)``, ``project``); its
            ``config.teacher_dim`` must equal the teacher's embedding width.
        teacher: has ``embed(x: (B, C, T), mask: (B, C, T) bool, channels=[...]) -> (B, D)``;
            frozen (never updated, evaluated without gradients).
        data: a windows dataset (path or ``WindowDataset``; its ``train`` split is used and its
            ``val`` split for early stopping) or normalised :class:`Windows` (all used to train).
        config: :class:`DistillConfig`.
        val: optional normalised :class:`Windows` for early stopping when ``data`` is Windows.
        callback: called with ``{"epoch", "step", "train_loss", "val_loss", ...}`` each epoch.

    Returns:
        the student, in eval mode, with the best-on-validation weights (the last ones without a
        validation split), and ``student.distill_info`` holding the history and the teacher
        target statistics (``target_mean``/``target_std``, needed to compare projections with
        teacher embeddings later).
    """
    if not isinstance(config, DistillConfig):
        raise ConfigError(f"expected DistillConfig, got {type(config).__name__}", field="config")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    train_w = load_split(data, "train")
    if val is None and not isinstance(data, Windows):
        try:
            val = load_split(data, "val")
        except DataError:
            val = None
    if config.max_train_windows and len(train_w) > config.max_train_windows:
        train_w = train_w.select(np.sort(rng.choice(len(train_w), config.max_train_windows, replace=False)))
    if len(train_w) < 2:
        raise DataError(f"only {len(train_w)} train windows; distillation needs a batch of at least 2",
                        field="train")
    chans = acc_channels(train_w.channel_names)
    cin = getattr(getattr(student, "config", None), "in_channels", len(chans))
    if cin != len(chans):
        raise ConfigError(f"student takes {cin} channels, data has {len(chans)} ACC channels {chans}",
                          field="in_channels")

    t0 = time.time()
    t_train = embed_teacher(teacher, train_w, config.teacher_channels)
    D = getattr(getattr(student, "config", None), "teacher_dim", t_train.shape[1])
    if D != t_train.shape[1]:
        raise ConfigError(f"student projects to {D} dims but the teacher embeds to {t_train.shape[1]}",
                          field="teacher_dim", hint=f"build the student with teacher_dim={t_train.shape[1]}")
    mean, std = _standardiser(t_train)
    tz = ((t_train - mean) / std).astype(np.float32)
    x = acc_view(train_w, chans)
    xv = tv = None
    if val is not None and len(val) >= 2:
        xv = acc_view(val, chans)
        tv = ((embed_teacher(teacher, val, config.teacher_channels) - mean) / std).astype(np.float32)
    if config.verbose:
        print(f"distill: teacher targets for {len(x)} train / {0 if xv is None else len(xv)} val windows "
              f"in {time.time() - t0:.1f}s", file=sys.stderr)

    params = list(student.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    bs = min(config.batch_size, len(x))
    steps_per_epoch = max(1, len(x) // bs)
    total = config.epochs * steps_per_epoch
    keeper, history, step = BestWeights(student, config.patience), [], 0
    for epoch in range(config.epochs):
        student.train()
        perm = rng.permutation(len(x))
        run = {"loss": 0.0, "cos": 0.0, "mse": 0.0, "nce": 0.0}
        for i in range(steps_per_epoch):
            idx = perm[i * bs:(i + 1) * bs]
            xb = torch.from_numpy(x[idx])
            if config.noise_std > 0:
                xb = xb + config.noise_std * torch.randn_like(xb)
            parts = distill_loss(student.project(student(xb)), torch.from_numpy(tz[idx]), config)
            for g in opt.param_groups:
                g["lr"] = _lr_at(step, total, config)
            opt.zero_grad(set_to_none=True)
            parts["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            for k in run:
                run[k] += float(parts[k].detach()) / steps_per_epoch
        val_loss = _eval_loss(student, xv, tv, config) if xv is not None else None
        rec = {"epoch": epoch, "step": step, "train_loss": run["loss"], "train_cos": run["cos"],
               "train_mse": run["mse"], "train_nce": run["nce"], "val_loss": val_loss,
               "elapsed_s": time.time() - t0}
        history.append(rec)
        if callback:
            callback(rec)
        if config.verbose:
            print(f"distill: epoch {epoch + 1}/{config.epochs} loss {run['loss']:.4f} "
                  f"val {val_loss if val_loss is None else round(val_loss, 4)} "
                  f"({rec['elapsed_s']:.0f}s)", file=sys.stderr)
        score = val_loss if val_loss is not None else run["loss"]
        if not math.isfinite(score):
            raise DataError(f"distillation loss became {score} at epoch {epoch}", field="loss",
                            hint="lower lr or check the data for extreme values")
        if keeper.update(score, can_stop=val_loss is not None):
            break
    if xv is not None:
        keeper.restore()
    student.eval()
    student.distill_info = {"config": config.to_dict(), "history": history,
                            "target_mean": mean.astype(np.float32), "target_std": std.astype(np.float32),
                            "acc_channels": list(chans), "n_train": int(len(x)),
                            "n_val": 0 if xv is None else int(len(xv)), "best_val_loss": keeper.best}
    return student
