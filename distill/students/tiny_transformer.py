"""Tiny transformer student: patch tokens over time, a few attention blocks, mean pooling.

Input ``x: (B, C, T)`` normalised ACC; output ``(B, E)``; ``project(e) -> (B, D_teacher)``.

Kept to ops the int8 backends run: the patch embedding is a ``Conv2d`` with a ``(1, p)``
kernel and stride on ``(B, C, 1, T)``; attention is dense layers, two batched matmuls and a
softmax; the MLP uses ReLU (not GELU). Instead of LayerNorm (a poor fit for int8 on
microcontrollers), each residual branch is scaled by a learnable scalar initialised at a small
value (ReZero-style), which keeps the tiny stack stable without normalisation.
Not the default: softmax and batched matmul cost more on an MCU than the CNN's convolutions.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from distill.students._common import StudentAccounting, make_projector
from edgefm.errors import ConfigError


@dataclass(frozen=True)
class TinyTransformerConfig:
    in_channels: int = 3
    window: int = 256           # T samples
    patch: int = 16             # samples per token (0.5 s at 32 Hz) -> T / patch tokens
    dim: int = 64               # token width
    depth: int = 2
    heads: int = 4
    mlp_ratio: int = 2
    embed_dim: int = 64         # E
    teacher_dim: int = 192      # D_teacher
    proj_hidden: int = 256
    residual_init: float = 0.1  # initial scale of each residual branch (ReZero-style)

    def __post_init__(self):
        for name in ("in_channels", "window", "patch", "dim", "depth", "heads", "mlp_ratio",
                     "embed_dim", "teacher_dim", "proj_hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"must be a positive int, got {v!r}", field=name)
        if self.window % self.patch:
            raise ConfigError(f"window {self.window} is not a multiple of patch {self.patch}",
                              field="patch")
        if self.dim % self.heads:
            raise ConfigError(f"dim {self.dim} is not divisible by heads {self.heads}", field="heads")

    @property
    def tokens(self) -> int:
        return self.window // self.patch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TinyTransformerConfig":
        return cls(**d)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.scale = self.hd ** -0.5
        self._extra_macs = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, D) -> (B, L, D)."""
        B, L, D = x.shape
        q, k, v = self.qkv(x).reshape(B, L, 3, self.heads, self.hd).permute(2, 0, 3, 1, 4)
        att = torch.softmax((q * self.scale) @ k.transpose(-2, -1), dim=-1)   # (B, H, L, L)
        y = (att @ v).transpose(1, 2).reshape(B, L, D)
        self._extra_macs = 2 * self.heads * L * L * self.hd   # the two matmuls, per window
        return self.out(y)


class Block(nn.Module):
    def __init__(self, c: TinyTransformerConfig):
        super().__init__()
        self.attn = Attention(c.dim, c.heads)
        self.mlp = nn.Sequential(nn.Linear(c.dim, c.mlp_ratio * c.dim), nn.ReLU(),
                                 nn.Linear(c.mlp_ratio * c.dim, c.dim))
        self.g1 = nn.Parameter(torch.tensor(c.residual_init))
        self.g2 = nn.Parameter(torch.tensor(c.residual_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.g1 * self.attn(x)
        return x + self.g2 * self.mlp(x)


class TinyTransformerStudent(StudentAccounting, nn.Module):
    """``forward(x: (B, C, T)) -> (B, E)``; ``project(e: (B, E)) -> (B, D_teacher)``."""

    arch = "tiny_transformer"

    def __init__(self, config: TinyTransformerConfig):
        super().__init__()
        self.config = c = config
        self.patch_embed = nn.Conv2d(c.in_channels, c.dim, (1, c.patch), stride=(1, c.patch))
        self.pos = nn.Parameter(torch.randn(1, c.tokens, c.dim) * 0.02)
        self.blocks = nn.Sequential(*[Block(c) for _ in range(c.depth)])
        self.embed = nn.Linear(c.dim, c.embed_dim)
        self.projector = make_projector(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) normalised ACC -> (B, E)."""
        B, C, T = x.shape
        h = self.patch_embed(x.reshape(B, C, 1, T))              # (B, D, 1, L)
        h = h.reshape(B, self.config.dim, -1).transpose(1, 2)    # (B, L, D)
        h = self.blocks(h + self.pos)
        return self.embed(h.mean(dim=1))



def tiny_transformer_tiny(**kw) -> TinyTransformerStudent:
    return TinyTransformerStudent(TinyTransformerConfig(dim=32, depth=2, heads=2, embed_dim=64, **kw))


def tiny_transformer_small(**kw) -> TinyTransformerStudent:
    return TinyTransformerStudent(TinyTransformerConfig(**kw))
