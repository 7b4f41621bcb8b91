"""Tiny models for tests and examples: the deployable student's op set at toy size.

``TinyHR``: ``(B, 3, T)`` normalised ACC -> ``(B, 1)`` bpm, built like the default student
(Conv2d (1, k) + BatchNorm + ReLU6 on ``(B, C, 1, T)``, depthwise-separable blocks with a
residual add, mean over time, dense head).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _cbr(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, (1, k), stride=(1, stride), padding=(0, k // 2),
                                   groups=groups, bias=False), nn.BatchNorm2d(c_out), nn.ReLU6())


class TinyBlock(nn.Module):
    def __init__(self, c: int, k: int = 5):
        super().__init__()
        self.dw = _cbr(c, c, k, groups=c)
        self.pw = _cbr(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.pw(self.dw(x))


class TinyHR(nn.Module):
    """x: (B, 3, T) -> (B, 1) heart rate in bpm (``hr_mean + hr_std * head``)."""

    def __init__(self, width: int = 16, blocks: int = 2, hr_mean: float = 75.0, hr_std: float = 15.0):
        super().__init__()
        self.stem = _cbr(3, width, 5, stride=2)
        self.blocks = nn.Sequential(*[TinyBlock(width) for _ in range(blocks)])
        self.fc = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.head = nn.Linear(width, 1)
        self.hr_mean, self.hr_std = float(hr_mean), float(hr_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T = x.shape
        h = self.blocks(self.stem(x.reshape(B, C, 1, T)))        # (B, W, 1, T/2)
        h = h.mean(dim=3).reshape(B, -1)                           # (B, W)
        return self.head(self.act(self.fc(h))) * self.hr_std + self.hr_mean


class GeluHR(TinyHR):
    """TinyHR with a GELU in ``fc``'s activation: TFLite Micro has no int8 GELU kernel."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.act = nn.GELU()


def toy_hr_data(n: int = 256, t: int = 256, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (n, 3, t) float32, hr (n,) bpm): ACC-like oscillation whose frequency is the HR/2-ish
    cadence, plus noise, so a small CNN can learn it in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    hr = 60.0 + 60.0 * torch.rand(n, generator=g)
    tt = torch.arange(t, dtype=torch.float32) / 32.0
    f = (hr / 60.0)[:, None, None]
    phase = 2 * torch.pi * torch.rand(n, 3, 1, generator=g)
    x = torch.sin(2 * torch.pi * f * tt[None, None, :] + phase) + 0.3 * torch.randn(n, 3, t, generator=g)
    return x.float(), hr.float()


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int = 30, lr: float = 3e-3,
        seed: int = 0, teacher: nn.Module | None = None) -> nn.Module:
    """Supervised (MSE to ``y``) or, with ``teacher``, distillation (MSE to its outputs) training."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    target = y.reshape(-1, 1) if teacher is None else None
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            if teacher is not None:
                with torch.no_grad():
                    tgt = teacher.eval()(x[idx])
            else:
                tgt = target[idx]
            loss = torch.nn.functional.mse_loss(model(x[idx]), tgt)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
