"""Baselines with the student's architecture and budget.

* ``train_supervised``: ACC-only, trained end-to-end from the labels alone (student encoder +
  a linear head, L1 loss on standardised targets, early stopping on a labelled val subset).
  At 10% labels it sees only those 10% — it has no other signal to learn from.
* ``pretrain_masked``: ACC-only self-supervised masked autoencoding: spans of the input are
  zeroed, the encoder embeds the corrupted window, a linear decoder reconstructs all samples
  from the embedding, the loss counts masked positions only. Then the same frozen-embedding
  probes as the distilled student.
* The teacher on PPG is the ceiling (see ``distill.evaluate``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from distill._early import BestWeights
from edgefm.errors import ConfigError, DataError


def _check_pos(cfg, ints=(), floats=()):
    for n in ints:
        v = getattr(cfg, n)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise ConfigError(f"must be a positive int, got {v!r}", field=n)
    for n in floats:
        v = getattr(cfg, n)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ConfigError(f"must be a non-negative number, got {v!r}", field=n)


@dataclass(frozen=True)
class SupervisedConfig:
    epochs: int = 60
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 8          # epochs without val-MAE improvement
    noise_std: float = 0.0
    seed: int = 0

    def __post_init__(self):
        _check_pos(self, ints=("epochs", "batch_size", "patience"), floats=("lr", "weight_decay", "noise_std"))


class SupervisedModel(nn.Module):
    """Encoder + linear head: (B, C, T) normalised ACC -> (B, 1) in label units (e.g. bpm)."""

    def __init__(self, encoder: nn.Module, y_mean: float, y_std: float):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(encoder.embed_dim, 1)
        self.y_mean, self.y_std = float(y_mean), float(y_std)

    def forward(self, x):
        return self.head(self.encoder(x)) * self.y_std + self.y_mean


def train_supervised(encoder: nn.Module, x: np.ndarray, y: np.ndarray, x_val: np.ndarray,
                     y_val: np.ndarray, config: SupervisedConfig = SupervisedConfig()) -> SupervisedModel:
    """End-to-end regression from labels alone; x: (N, C, T) normalised ACC, y: (N,) e.g. bpm.

    Unlabelled rows (NaN) are dropped. Keeps the weights with the best val MAE.
    """
    ok, okv = np.isfinite(y), np.isfinite(y_val)
    x, y, x_val, y_val = x[ok], y[ok].astype(np.float32), x_val[okv], y_val[okv].astype(np.float32)
    if len(y) < 2 or len(y_val) < 1:
        raise DataError(f"supervised baseline needs labelled train ({len(y)}) and val ({len(y_val)}) windows",
                        field="labels")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = SupervisedModel(encoder, y.mean(), max(float(y.std()), 1e-3))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    yt = torch.from_numpy((y - model.y_mean) / model.y_std)
    bs = min(config.batch_size, len(y))
    steps = max(1, len(y) // bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)
    keeper = BestWeights(model, config.patience)
    xv = torch.from_numpy(x_val)
    for _ in range(config.epochs):
        model.train()
        perm = rng.permutation(len(y))
        for i in range(steps):
            idx = perm[i * bs:(i + 1) * bs]
            if len(idx) < 2:    # BatchNorm needs two samples
                continue
            xb = torch.from_numpy(x[idx])
            if config.noise_std > 0:
                xb = xb + config.noise_std * torch.randn_like(xb)
            loss = F.l1_loss(model.head(model.encoder(xb))[:, 0], yt[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad():
            pv = torch.cat([model(xv[a:a + 512]) for a in range(0, len(xv), 512)])[:, 0].numpy()
        if keeper.update(float(np.mean(np.abs(pv - y_val)))):
            break
    keeper.restore()
    model.eval()
    model.best_val_mae = keeper.best
    return model


@dataclass(frozen=True)
class MaskedPretrainConfig:
    epochs: int = 20
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    span: int = 16             # masked span length in samples (0.5 s at 32 Hz)
    mask_ratio: float = 0.5    # fraction of spans zeroed
    patience: int = 5
    seed: int = 0

    def __post_init__(self):
        _check_pos(self, ints=("epochs", "batch_size", "span", "patience"), floats=("lr", "weight_decay"))
        if not 0 < self.mask_ratio < 1:
            raise ConfigError(f"must be in (0, 1), got {self.mask_ratio}", field="mask_ratio")


def _span_mask(B: int, C: int, T: int, span: int, ratio: float, g: torch.Generator) -> torch.Tensor:
    """(B, 1, T) bool, True = masked; whole spans of ``span`` samples, all channels together."""
    n = math.ceil(T / span)
    k = max(1, int(round(ratio * n)))
    scores = torch.rand(B, n, generator=g)
    m = torch.zeros(B, n, dtype=torch.bool)
    m.scatter_(1, scores.argsort(1)[:, :k], True)
    return m.repeat_interleave(span, 1)[:, :T][:, None, :]


def pretrain_masked(encoder: nn.Module, x: np.ndarray, config: MaskedPretrainConfig = MaskedPretrainConfig(),
                    x_val: np.ndarray | None = None, callback=None) -> nn.Module:
    """Masked-autoencoding pretraining of ``encoder`` on ACC windows x: (N, C, T); in place.

    Returns the encoder (eval mode) with ``ssl_history``. The decoder is thrown away.
    """
    N, C, T = x.shape
    if N < 2:
        raise DataError("masked pretraining needs at least 2 windows", field="x")
    torch.manual_seed(config.seed)
    g = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    decoder = nn.Sequential(nn.Linear(encoder.embed_dim, 256), nn.ReLU(), nn.Linear(256, C * T))
    params = list(encoder.parameters()) + list(decoder.parameters())
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    bs = min(config.batch_size, N)
    steps = max(1, N // bs)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs * steps)

    def loss_of(xb, gen):
        m = _span_mask(len(xb), C, T, config.span, config.mask_ratio, gen)
        rec = decoder(encoder(xb.masked_fill(m, 0.0))).reshape(len(xb), C, T)
        mm = m.expand_as(xb)
        return ((rec - xb) ** 2)[mm].mean()

    history, keeper = [], BestWeights(encoder, config.patience)
    for epoch in range(config.epochs):
        encoder.train(); decoder.train()
        perm = rng.permutation(N)
        tot = 0.0
        for i in range(steps):
            xb = torch.from_numpy(x[perm[i * bs:(i + 1) * bs]])
            loss = loss_of(xb, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            sched.step()
            tot += float(loss.detach()) / steps
        val = None
        if x_val is not None and len(x_val) >= 2:
            encoder.eval(); decoder.eval()
            gv = torch.Generator().manual_seed(12345)
            with torch.no_grad():
                val = float(np.mean([float(loss_of(torch.from_numpy(x_val[a:a + bs]), gv))
                                     for a in range(0, len(x_val) - 1, bs)]))
        rec = {"epoch": epoch, "train_loss": tot, "val_loss": val}
        history.append(rec)
        if callback:
            callback(rec)
        if keeper.update(val if val is not None else tot, can_stop=val is not None):
            break
    if x_val is not None:
        keeper.restore()
    encoder.eval()
    encoder.ssl_history = history
    return encoder
