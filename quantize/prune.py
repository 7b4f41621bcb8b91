"""Pruning: structured channel pruning with Torch-Pruning's dependency graph (channels are
really removed, so parameters, MACs and latency drop), or unstructured magnitude pruning;
one-shot or iterative, with a recovery fine-tune that distils from the unpruned model.

    report = prune_(model, PruneConfig(ratio=0.5), example=(torch.zeros(1, 3, 256),),
                    data=x_train)          # x_train: (N, 3, 256) normalised windows, for recovery
    report.before, report.after            # params, MACs, bytes, latency_ms
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn as nn

from edgefm.errors import ConfigError, DataError


@dataclass(frozen=True)
class PruneConfig:
    """ratio: fraction of output channels removed from every prunable layer (structured), or of
        all conv/linear weights zeroed (unstructured), in (0, 1).
    method: ``structured`` (Torch-Pruning, channels removed) | ``unstructured`` (magnitude, zeros).
    schedule: ``oneshot`` | ``iterative`` (``steps`` equal increments, recovery after each).
    importance: ``l1`` | ``l2`` norm of each channel's weights (group-summed over coupled layers).
    ignore: module paths never pruned; the last conv/linear (the output head) always is kept.
    round_to: keep channel counts multiples of this (SIMD widths, e.g. 4 or 8); None = any.
    recover_epochs: distillation epochs from the unpruned model after each step (0 = none; needs
        ``data``); recover_lr: its Adam learning rate.
    """

    ratio: float = 0.5
    method: str = "structured"
    schedule: str = "oneshot"
    steps: int = 1
    importance: str = "l2"
    ignore: tuple[str, ...] = ()
    round_to: int | None = None
    recover_epochs: int = 0
    recover_lr: float = 1e-3
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.ratio < 1.0:
            raise ConfigError(f"ratio must be in (0, 1), got {self.ratio}", field="ratio")
        if self.method not in ("structured", "unstructured"):
            raise ConfigError(f"unknown method {self.method!r}", field="method",
                              hint="choose structured or unstructured")
        if self.schedule not in ("oneshot", "iterative"):
            raise ConfigError(f"unknown schedule {self.schedule!r}", field="schedule",
                              hint="choose oneshot or iterative")
        if self.schedule == "oneshot" and self.steps != 1:
            object.__setattr__(self, "steps", 1)
        if self.schedule == "iterative" and self.steps < 2:
            raise ConfigError("an iterative schedule needs steps >= 2", field="steps")
        if self.importance not in ("l1", "l2"):
            raise ConfigError(f"unknown importance {self.importance!r}", field="importance",
                              hint="choose l1 or l2")
        if self.recover_epochs < 0:
            raise ConfigError("recover_epochs must be >= 0", field="recover_epochs")
        object.__setattr__(self, "ignore", tuple(self.ignore))


@dataclass
class ModelStats:
    """params: count; macs: multiply-accumulates for one example; bytes: fp32 weights;
    latency_ms: median eager forward time (batch of the example, one thread); sparsity: zero
    fraction of conv/linear weights."""

    params: int
    macs: int
    bytes: int
    latency_ms: float
    sparsity: float


@dataclass
class PruneReport:
    config: PruneConfig
    before: ModelStats
    after: ModelStats
    channels: dict = field(default_factory=dict)      # layer -> [out channels before, after]
    recovery_loss: list = field(default_factory=list)  # last-epoch distillation MSE per step

    @property
    def macs_reduction(self) -> float:
        return 1.0 - self.after.macs / self.before.macs

    @property
    def params_reduction(self) -> float:
        return 1.0 - self.after.params / self.before.params

    def to_dict(self) -> dict:
        return {"config": asdict(self.config), "before": asdict(self.before), "after": asdict(self.after),
                "macs_reduction": round(self.macs_reduction, 4),
                "params_reduction": round(self.params_reduction, 4),
                "channels": self.channels, "recovery_loss": self.recovery_loss}


def _weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def measure_latency_ms(model: nn.Module, example: tuple[torch.Tensor, ...], repeats: int = 30) -> float:
    """Median eager forward time in ms (no grad, after 3 warm-up calls)."""
    model = model.eval()
    ts = []
    with torch.no_grad():
        for i in range(repeats + 3):
            t = time.perf_counter()
            model(*example)
            if i >= 3:
                ts.append((time.perf_counter() - t) * 1e3)
    return float(statistics.median(ts))


def count_macs(model: nn.Module, example: tuple[torch.Tensor, ...]) -> int:
    """Multiply-accumulates of the conv and linear layers for one call on ``example`` (the
    usual definition; BatchNorm folds into the conv, elementwise ops are not counted)."""
    total = [0]

    def conv(m, inp, out):
        k = int(np.prod(m.kernel_size))
        total[0] += out.numel() * (m.in_channels // m.groups) * k

    def lin(m, inp, out):
        total[0] += out.numel() * m.in_features

    hs = [m.register_forward_hook(lin if isinstance(m, nn.Linear) else conv) for _, m in _weight_layers(model)]
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for h in hs:
            h.remove()
    return int(total[0])


def model_stats(model: nn.Module, example: tuple[torch.Tensor, ...], latency: bool = True) -> ModelStats:
    model = model.eval()
    macs = count_macs(model, example)
    ws = [m.weight for _, m in _weight_layers(model)]
    total = sum(w.numel() for w in ws)
    zeros = sum(int((w == 0).sum()) for w in ws)
    n_params = sum(p.numel() for p in model.parameters())
    return ModelStats(params=int(n_params), macs=int(macs), bytes=int(n_params * 4),
                      latency_ms=round(measure_latency_ms(model, example), 4) if latency else 0.0,
                      sparsity=round(zeros / total, 4) if total else 0.0)


def _check_data(data) -> torch.Tensor:
    x = data[0] if isinstance(data, (tuple, list)) else data
    x = torch.as_tensor(np.asarray(x, dtype=np.float32)) if not isinstance(x, torch.Tensor) else x.float()
    if x.ndim != 3 or len(x) == 0:
        raise DataError(f"recovery data must be (N, C, T) windows, got shape {tuple(x.shape)}", field="data")
    if not torch.isfinite(x).all():
        raise DataError("recovery data contain NaN or inf", field="data")
    return x


def recover_(pruned: nn.Module, teacher: nn.Module, data, epochs: int = 3, lr: float = 1e-3,
             batch_size: int = 64, seed: int = 0) -> list[float]:
    """Fine-tune ``pruned`` in place to match ``teacher``'s outputs (MSE) on ``data`` windows
    (N, C, T) — distillation from the unpruned model, so no labels are needed. Returns the mean
    loss of each epoch."""
    x = _check_data(data)
    torch.manual_seed(seed)
    teacher = teacher.eval()
    with torch.no_grad():
        target = torch.cat([teacher(x[i:i + 256]) for i in range(0, len(x), 256)])
    opt = torch.optim.Adam(pruned.parameters(), lr=lr)
    # keep BatchNorm statistics fixed: they were estimated on far more data than we tune on
    hist = []
    for _ in range(epochs):
        pruned.train()
        for m in pruned.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        perm = torch.randperm(len(x))
        tot, n = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = nn.functional.mse_loss(pruned(x[idx]), target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            n += len(idx)
        hist.append(round(tot / n, 6))
    pruned.eval()
    return hist


def _ignored(model: nn.Module, cfg: PruneConfig) -> list[nn.Module]:
    layers = _weight_layers(model)
    if not layers:
        raise ConfigError("model has no conv or linear layers to prune", field="model")
    names = dict(model.named_modules())
    missing = [k for k in cfg.ignore if k not in names]
    if missing:
        raise ConfigError(f"ignore names unknown modules: {', '.join(missing)}", field="ignore")
    return [layers[-1][1]] + [names[k] for k in cfg.ignore]


def prune_(model: nn.Module, config: PruneConfig, example: tuple[torch.Tensor, ...], data=None) -> PruneReport:
    """Prune ``model`` in place (see :class:`PruneConfig`); ``example``: inputs for tracing and
    MACs (e.g. ``(torch.zeros(1, 3, 256),)``); ``data``: (N, C, T) windows for recovery."""
    import torch_pruning as tp
    if config.recover_epochs and data is None:
        raise ConfigError("recover_epochs > 0 needs data (N, C, T) windows", field="data")
    torch.manual_seed(config.seed)
    model.eval()
    example = tuple(example)
    teacher = copy.deepcopy(model).eval() if config.recover_epochs else None
    before = model_stats(model, example)
    widths0 = {n: (m.out_channels if hasattr(m, "out_channels") else m.out_features)
               for n, m in _weight_layers(model)}
    losses = []
    if config.method == "structured":
        imp = tp.importance.GroupMagnitudeImportance(p=1 if config.importance == "l1" else 2)
        pruner = tp.pruner.MetaPruner(model, example, importance=imp, pruning_ratio=config.ratio,
                                      iterative_steps=config.steps, ignored_layers=_ignored(model, config),
                                      round_to=config.round_to)
        for _ in range(config.steps):
            pruner.step()
            if config.recover_epochs:
                losses.append(recover_(model, teacher, data, config.recover_epochs, config.recover_lr,
                                       config.batch_size, config.seed)[-1])
    else:
        import torch.nn.utils.prune as tprune
        keep = set(map(id, _ignored(model, config)[1:]))
        params = [(m, "weight") for _, m in _weight_layers(model) if id(m) not in keep]
        for s in range(1, config.steps + 1):
            amount = config.ratio * s / config.steps
            tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=amount)
            if config.recover_epochs:
                losses.append(recover_(model, teacher, data, config.recover_epochs, config.recover_lr,
                                       config.batch_size, config.seed)[-1])
            for m, n in params:
                tprune.remove(m, n)
    model.eval()
    after = model_stats(model, example)
    widths1 = {n: (m.out_channels if hasattr(m, "out_channels") else m.out_features)
               for n, m in _weight_layers(model)}
    channels = {n: [widths0[n], widths1[n]] for n in widths0 if n in widths1}
    return PruneReport(config, before, after, channels, losses)
