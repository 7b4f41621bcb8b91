"""Accounting shared by the students: parameters and multiply-accumulates per window.

MACs are counted by running one window through the model with forward hooks on the layers
that do the arithmetic (``Conv2d``, ``Linear``) plus the two matmuls of attention, which a
student records itself. BatchNorm is not counted: it folds into the preceding conv at export.
"""

from __future__ import annotations

import torch
from torch import nn


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, example: torch.Tensor, fn=None) -> int:
    """MACs of ``fn(example)`` (default ``model(example)``) for ONE window (batch of 1).

    Conv2d: out_elems * (in_ch / groups) * kh * kw; Linear: out_elems * in_features.
    Modules may add extra MACs (e.g. attention matmuls) by setting ``self._extra_macs``
    during forward.
    """
    if example.shape[0] != 1:
        example = example[:1]
    total = [0]

    def conv_hook(m: nn.Conv2d, inp, out):
        kh, kw = m.kernel_size
        total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def lin_hook(m: nn.Linear, inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin_hook))
        if hasattr(m, "_extra_macs"):
            m._extra_macs = 0
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            (fn or model)(example)
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    extra = sum(getattr(m, "_extra_macs", 0) for m in model.modules())
    return int(total[0] + extra)


def make_projector(c) -> nn.Sequential:
    """Distillation only: maps the student's embedding (``c.embed_dim``) into the teacher's
    space (``c.teacher_dim``) through one hidden ReLU layer (``c.proj_hidden``)."""
    return nn.Sequential(nn.Linear(c.embed_dim, c.proj_hidden), nn.ReLU(), nn.Linear(c.proj_hidden, c.teacher_dim))


class StudentAccounting:
    """``project``, ``num_params`` and ``macs`` shared by every student (an ``nn.Module`` with a
    ``projector`` and a ``config`` holding ``in_channels`` and ``window``)."""

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def project(self, e: torch.Tensor) -> torch.Tensor:
        """e: (B, E) -> (B, D_teacher)."""
        return self.projector(e)

    def num_params(self, include_projection: bool = False) -> int:
        """Parameters of the encoder (what ships); the projection only with ``include_projection``."""
        n = count_params(self)
        return n if include_projection else n - count_params(self.projector)

    def macs(self) -> int:
        """Multiply-accumulates of the encoder for one window (B=1)."""
        c = self.config
        return count_macs(self, torch.zeros(1, c.in_channels, c.window))
