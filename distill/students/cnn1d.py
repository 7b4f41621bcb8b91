"""Depthwise-separable 1-D CNN student: the default accelerometer-only encoder.

Input ``x: (B, C, T)`` normalised ACC at 32 Hz (``wrist-raw``: C=3 axes ``acc_x|y|z``, T=256,
i.e. 8 s) or the ACC minute features (``lsm-minutely``: C=10, T=300 minutes).
Output: an embedding ``(B, E)``; ``project(e) -> (B, D_teacher)`` maps it to the teacher's
space during distillation only (the projection is not part of the deployable model).

Every 1-D convolution is written as a ``Conv2d`` with a ``(1, k)`` kernel on ``(B, C, 1, T)``:
that is the layout TFLite/LiteRT, XNNPACK and TFLite Micro run natively in int8 (their
``CONV_2D`` / ``DEPTHWISE_CONV_2D``), so the export needs no conv1d rewrite. The op set is
the int8-friendly one only: conv, depthwise conv, BatchNorm (folded at export), ReLU6,
residual add, mean over time, reshape, dense. No GELU, no LayerNorm.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from distill.students._common import StudentAccounting, make_projector
from edgefm.errors import ConfigError


@dataclass(frozen=True)
class CNN1DConfig:
    in_channels: int = 3            # ACC axes (wrist-raw) or ACC minute features (lsm-minutely)
    window: int = 256               # T, samples per window (8 s at 32 Hz)
    stem_width: int = 24            # channels after the stem conv
    stem_kernel: int = 7
    stem_stride: int = 2            # 32 Hz -> 16 Hz after the stem (HR lives below 4 Hz)
    # (out_channels, stride) per depthwise-separable block; a block with stride 1 and equal
    # widths gets a residual add
    blocks: tuple[tuple[int, int], ...] = ((32, 2), (48, 1), (64, 2), (64, 1), (96, 2), (96, 1),
                                           (128, 2), (128, 1))
    kernel: int = 7                 # depthwise kernel length (samples)
    embed_dim: int = 128            # E
    teacher_dim: int = 192          # D_teacher (the projection's output)
    proj_hidden: int = 256          # hidden width of the distillation projection head

    def __post_init__(self):
        for name in ("in_channels", "window", "stem_width", "stem_kernel", "stem_stride", "kernel",
                     "embed_dim", "teacher_dim", "proj_hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"must be a positive int, got {v!r}", field=name)
        if not self.blocks:
            raise ConfigError("needs at least one block", field="blocks")
        object.__setattr__(self, "blocks", tuple(tuple(int(a) for a in b) for b in self.blocks))
        for w, s in self.blocks:
            if w <= 0 or s not in (1, 2):
                raise ConfigError(f"block ({w}, {s}): width must be > 0 and stride 1 or 2",
                                  field="blocks")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CNN1DConfig":
        d = dict(d)
        d["blocks"] = tuple(tuple(b) for b in d["blocks"])
        return cls(**d)


class ConvBNReLU(nn.Sequential):
    """Conv2d (1, k) + BatchNorm2d + ReLU6 on (B, C, 1, T); BN folds into the conv at export."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: bool = True):
        layers = [nn.Conv2d(c_in, c_out, (1, k), stride=(1, stride), padding=(0, k // 2),
                            groups=groups, bias=False),
                  nn.BatchNorm2d(c_out)]
        if act:
            layers.append(nn.ReLU6())
        super().__init__(*layers)


class DSBlock(nn.Module):
    """Depthwise (1, k) conv -> pointwise 1x1 conv, each with BN; residual add when shapes match."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int):
        super().__init__()
        self.dw = ConvBNReLU(c_in, c_in, k, stride, groups=c_in)
        self.pw = ConvBNReLU(c_in, c_out, 1, act=True)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.residual else y


class CNN1DStudent(StudentAccounting, nn.Module):
    """``forward(x: (B, C, T)) -> (B, E)``; ``project(e: (B, E)) -> (B, D_teacher)``."""

    arch = "cnn1d"

    def __init__(self, config: CNN1DConfig):
        super().__init__()
        self.config = c = config
        self.stem = ConvBNReLU(c.in_channels, c.stem_width, c.stem_kernel, c.stem_stride)
        blocks, w = [], c.stem_width
        for out, s in c.blocks:
            blocks.append(DSBlock(w, out, c.kernel, s))
            w = out
        self.blocks = nn.Sequential(*blocks)
        self.embed = nn.Linear(w, c.embed_dim)
        self.projector = make_projector(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) normalised ACC -> (B, E)."""
        B, C, T = x.shape
        h = self.blocks(self.stem(x.reshape(B, C, 1, T)))   # (B, W, 1, T')
        h = h.mean(dim=(2, 3)).reshape(B, -1)                # global mean over (1, T') -> (B, W); one op XNNPACK delegates
        return self.embed(h)



def cnn1d_tiny(**kw) -> CNN1DStudent:
    """~12k params: for the smallest MCUs (Cortex-M0+ class)."""
    return CNN1DStudent(CNN1DConfig(stem_width=16, blocks=((24, 2), (32, 2), (48, 2), (64, 2)),
                                    embed_dim=64, **kw))


def cnn1d_small(**kw) -> CNN1DStudent:
    """The default student: < 100k params, < 5M MACs on a 256-sample window."""
    return CNN1DStudent(CNN1DConfig(**kw))


def cnn1d_base(**kw) -> CNN1DStudent:
    """Wider, for comparison (exceeds the MCU parameter target)."""
    return CNN1DStudent(CNN1DConfig(stem_width=32, blocks=((48, 2), (64, 1), (96, 2), (96, 1),
                                                           (160, 2), (160, 1), (256, 2), (256, 1)),
                                    embed_dim=192, **kw))
