"""Masked-autoencoder pretraining of the LSM teacher (single process or DDP under torchrun).

>>> ds = WindowDataset("runs/x/data/minutely")
>>> model = teacher_for_dataset(ds, "tiny")
>>> ckpt = pretrain(model, ds, TrainConfig(max_minutes=5), "runs/x/teacher")

Optimiser and schedule follow MAE/LSM: AdamW (beta 0.9/0.95, weight decay 1e-4), linear
warm-up then cosine decay, gradient clipping at 1.0. Augmentations are applied to ``x`` and
``mask`` together so a missing sample stays missing: temporal flip, stretch-then-crop
(linear interpolation; a stretched sample is observed only if both its neighbours were) and
Gaussian noise on observed samples only.

With ``max_minutes`` the run measures its own mean step time (re-fitted every 10 steps) and
sets the cosine schedule's length to fit the budget (capped by ``steps``), then stops at the
budget.
Under ``torchrun`` each rank reads disjoint shards (``WindowDataset.iter_batches(rank=,
world=)``; with fewer shards than ranks, a disjoint stride of the in-memory split) and the
global batch ``batch_size`` is split across ranks.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from edgefm.data.store import WindowDataset
from edgefm.errors import ConfigError, DataError, ShapeError
from edgefm.manifest import sha256_file
from edgefm.models.lsm_mae import MaskedAutoencoder, build_teacher
from edgefm.train.checkpoint import load_checkpoint, save_checkpoint

CKPT_NAME = "teacher.pt"


@dataclass(frozen=True)
class TrainConfig:
    steps: int | None = 2000           # optimiser steps (upper bound when max_minutes is set)
    max_minutes: float | None = None   # wall-clock budget; the schedule is fitted to it
    batch_size: int = 64               # global batch, split evenly across DDP ranks
    lr: float = 1e-3                   # peak learning rate (after warm-up)
    min_lr_frac: float = 0.05          # cosine floor as a fraction of lr
    warmup_frac: float = 0.05          # fraction of the steps spent in linear warm-up
    weight_decay: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    mask_ratio: float = 0.8            # ratio of random / structured-temporal / sensor masks
    # mix of mask kinds (LSM's ablation set), one kind drawn per sample; interpolation/extrapolation spans are
    # drawn in [span_frac[0], span_frac[1]] of the window (at least one patch)
    mask_mix: dict = field(default_factory=lambda: {"random": 0.4, "temporal": 0.2,
                                                    "interpolate": 0.2, "extrapolate": 0.2})
    span_frac: tuple[float, float] = (0.0, 0.4)
    flip_p: float = 0.0                # temporal flip probability (0: off; breaks forecasting cues)
    stretch: tuple[float, float] = (1.0, 1.2)   # stretch-then-crop factor range (1, 1) = off
    noise_std: float = 0.02            # Gaussian noise on observed samples, normalised units
    seed: int = 0
    log_every: int = 10
    ckpt_every: int = 500              # steps between checkpoints (also written at the end)
    val_batches: int = 4               # batches of the val split for the final held-out loss
    device: str = "auto"               # auto: cuda when present, else cpu
    bf16: bool = False                 # bfloat16 autocast of the forward pass (CUDA, or CPUs with
                                       # AVX512-BF16/AMX: ~1.2-1.3x more steps per minute there)
    progress: bool = True

    def __post_init__(self):
        if self.steps is None and self.max_minutes is None:
            raise ConfigError("give steps or max_minutes (or both)", field="steps/max_minutes")
        if self.steps is not None and self.steps < 1:
            raise ConfigError("steps must be >= 1", field="steps")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError("max_minutes must be positive", field="max_minutes")
        if self.batch_size < 1:
            raise ConfigError("batch_size must be >= 1", field="batch_size")
        if not 0 <= self.mask_ratio < 1:
            raise ConfigError("mask_ratio must be in [0, 1)", field="mask_ratio")
        from edgefm.models.masking import MASK_KINDS
        bad = [k for k in self.mask_mix if k not in MASK_KINDS]
        if bad or not any(v > 0 for v in self.mask_mix.values()):
            raise ConfigError(f"mask_mix {self.mask_mix} needs positive weights on {', '.join(MASK_KINDS)}",
                              field="mask_mix")
        if not 0 <= self.span_frac[0] <= self.span_frac[1] <= 1:
            raise ConfigError(f"span_frac {self.span_frac} must be a range (lo, hi) with 0 <= lo <= hi <= 1",
                              field="span_frac", hint="e.g. (0.0, 0.2): gaps of one patch up to a fifth of the window")
        if self.stretch[0] < 1 or self.stretch[1] < self.stretch[0]:
            raise ConfigError("stretch must be a range (lo, hi) with 1 <= lo <= hi", field="stretch")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        d = {k: (tuple(v) if k in ("betas", "stretch", "span_frac") else v) for k, v in d.items() if k in known}
        return cls(**d)


def parse_mask_mix(text: str) -> dict[str, float]:
    """``"random=0.2,temporal=0.1,interpolate=0.4,extrapolate=0.3"`` -> ``TrainConfig.mask_mix``
    (weights need not sum to 1; they are drawn in proportion)."""
    from edgefm.models.masking import MASK_KINDS
    mix = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, eq, val = part.partition("=")
        try:
            w = float(val)
        except ValueError:
            w = float("nan")
        if not eq or kind.strip() not in MASK_KINDS or not 0 <= w < float("inf"):
            raise ConfigError(f"mask mix entry {part!r} is not KIND=WEIGHT", field="mask_mix",
                              hint=f"KIND is one of {', '.join(MASK_KINDS)}, WEIGHT a finite number >= 0; "
                                   "e.g. random=0.4,interpolate=0.6")
        mix[kind.strip()] = w
    if not any(v > 0 for v in mix.values()):
        raise ConfigError(f"mask mix {text!r} has no positive weight", field="mask_mix",
                          hint="e.g. random=0.4,temporal=0.2,interpolate=0.2,extrapolate=0.2")
    return mix


# ---------------------------------------------------------------- model for a dataset

def teacher_for_dataset(ds: WindowDataset | str | Path, size: str = "tiny", **kw) -> MaskedAutoencoder:
    """A teacher whose geometry (channels, window, rate, patches) fits ``ds``'s preset."""
    ds = ds if isinstance(ds, WindowDataset) else WindowDataset(ds)
    preset = ds.manifest["preset"]["preset"]
    geo = {"n_channels": len(ds.channels), "seq_len": ds.window, "fs_hz": ds.fs_hz,
           "channel_names": ds.channel_names}
    if preset == "lsm-minutely":
        geo.update(patch_t=10, patch_c=5)
    else:
        pt = next((p for p in (16, 10, 8, 5, 4, 2, 1) if ds.window % p == 0), 1)
        geo.update(patch_t=pt, patch_c=1)
    geo.update(kw)
    return build_teacher(size, **geo)


# ---------------------------------------------------------------- augmentation

def augment(x: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig, gen: torch.Generator):
    """x, mask: (B, C, T) -> augmented copies (same shapes); missing stays missing."""
    B, C, T = x.shape
    dev = x.device
    if cfg.flip_p > 0:
        f = (torch.rand(B, generator=gen) < cfg.flip_p).to(dev)[:, None, None]
        x = torch.where(f, x.flip(-1), x)
        mask = torch.where(f, mask.flip(-1), mask)
    lo, hi = cfg.stretch
    if hi > 1.0:
        s = lo + torch.rand(B, generator=gen) * (hi - lo)                       # (B,)
        off = torch.rand(B, generator=gen) * (T - 1) * (1 - 1 / s)              # crop start
        u = (off[:, None] + torch.arange(T)[None] / s[:, None]).clamp(0, T - 1).to(dev)
        u0 = u.floor().long().clamp(max=T - 2)
        w = (u - u0)[:, None, :]
        i0 = u0[:, None, :].expand(B, C, T)
        x0, x1 = x.gather(2, i0), x.gather(2, i0 + 1)
        m0, m1 = mask.gather(2, i0), mask.gather(2, i0 + 1)
        x = x0 * (1 - w) + x1 * w
        mask = m0 & (m1 | (w < 1e-6))
        x = x * mask
    if cfg.noise_std > 0:
        x = x + cfg.noise_std * torch.randn(x.shape, generator=gen).to(dev) * mask
    return x, mask


# ---------------------------------------------------------------- data

def _rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def batches(ds: WindowDataset, split: str, batch: int, seed: int, rank: int = 0, world: int = 1) -> Iterator[dict]:
    """Endless shuffled batches of ``batch`` windows for this rank (disjoint across ranks)."""
    n_shards = len(ds.shards(split))
    if n_shards == 0:
        raise DataError(f"split {split!r} has no windows", path=ds.path, field="split")
    if n_shards >= world:
        n_mine = sum(s["n"] for s in ds.shards(split)[rank::world])
        if n_mine < batch:
            raise DataError(f"rank {rank} has {n_mine} {split} windows, fewer than its batch of {batch}",
                            path=ds.path, field="batch_size", hint="lower --batch-size or use more data")
        epoch, buf = 0, None
        while True:  # re-cut the store's batches (which may straddle shards) to exactly `batch`
            for b in ds.iter_batches(split, batch, shuffle=True, seed=seed + 1000 * epoch, rank=rank,
                                     world=world, drop_last=False):
                b = {"x": b["x"], "mask": b["mask"]}
                buf = b if buf is None else {k: np.concatenate([buf[k], b[k]]) for k in b}
                while len(buf["x"]) >= batch:
                    yield {k: v[:batch] for k, v in buf.items()}
                    buf = {k: v[batch:] for k, v in buf.items()}
            epoch += 1
    # fewer shards than ranks: a disjoint stride of the in-memory split
    w = ds.load(split)
    idx = np.arange(len(w))[rank::world]
    if len(idx) < batch:
        raise DataError(f"rank {rank} has {len(idx)} {split} windows, fewer than its batch of {batch}",
                        path=ds.path, field="batch_size", hint="lower --batch-size or use more data")
    rng = np.random.default_rng(seed + rank)
    while True:
        p = rng.permutation(idx)
        for a in range(0, len(p) - batch + 1, batch):
            sel = p[a:a + batch]
            yield {"x": w.x[sel], "mask": w.mask[sel]}


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    warm = max(1, int(round(cfg.warmup_frac * total)))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    p = min(1.0, (step - warm) / max(1, total - warm))
    return cfg.lr * (cfg.min_lr_frac + (1 - cfg.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def _span(model: MaskedAutoencoder, cfg: TrainConfig) -> tuple[int, int]:
    gt = model.cfg.grid[1]
    lo = max(1, int(round(cfg.span_frac[0] * gt)))
    return lo, max(lo, int(round(cfg.span_frac[1] * gt)))


@torch.no_grad()
def heldout_loss(model: MaskedAutoencoder, ds: WindowDataset, cfg: TrainConfig, split: str = "val",
                 n_batches: int | None = None, batch_size: int = 64) -> float | None:
    """Mean masked-reconstruction loss on ``split`` with fixed masks (seeded; no augmentation)."""
    if ds.n(split) == 0:
        return None
    model.eval()
    dev = next(model.parameters()).device
    gen = torch.Generator().manual_seed(1234)
    tot, n = 0.0, 0
    for i, b in enumerate(ds.iter_batches(split, batch_size)):
        if n_batches is not None and i >= n_batches:
            break
        x, m = torch.from_numpy(b["x"]).to(dev), torch.from_numpy(b["mask"]).to(dev)
        loss, _, _ = model(x, m, mix=cfg.mask_mix, mask_ratio=cfg.mask_ratio, span=_span(model, cfg), generator=gen)
        tot += float(loss) * len(x)
        n += len(x)
    return tot / max(n, 1)


# ---------------------------------------------------------------- the loop

def _device(cfg: TrainConfig) -> torch.device:
    if cfg.device != "auto":
        return torch.device(cfg.device)
    if torch.cuda.is_available():
        lr = int(os.environ.get("LOCAL_RANK", 0))
        return torch.device(f"cuda:{lr % torch.cuda.device_count()}")
    return torch.device("cpu")


def pretrain(model: MaskedAutoencoder, dataset: WindowDataset | str | Path, cfg: TrainConfig,
             out_dir: str | Path, *, resume: bool = False, size: str = "custom") -> Path:
    """Pretrain ``model`` on ``dataset``'s train split; returns the checkpoint path.

    Writes ``out_dir/teacher.pt`` (+ ``teacher.manifest.json``) every ``ckpt_every`` steps and
    at the end. With ``resume`` the run continues from that checkpoint's step and optimiser.
    """
    ds = dataset if isinstance(dataset, WindowDataset) else WindowDataset(dataset)
    if model.cfg.n_channels != len(ds.channels) or model.cfg.seq_len != ds.window:
        raise ShapeError(f"model expects (C={model.cfg.n_channels}, T={model.cfg.seq_len}) windows, dataset has "
                         f"(C={len(ds.channels)}, T={ds.window})", path=ds.path,
                         hint="build the model with teacher_for_dataset(ds, size)")
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CKPT_NAME
    rank, world = _rank_world()
    if cfg.batch_size % world:
        raise ConfigError(f"batch_size {cfg.batch_size} does not split over {world} ranks", field="batch_size")
    dev = _device(cfg)
    torch.manual_seed(cfg.seed)
    model.to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    step, history, total = 0, [], cfg.steps
    if resume:
        if not ckpt_path.exists():
            raise ConfigError("nothing to resume", path=ckpt_path, field="resume",
                              hint="drop --resume to start a new run")
        ck = load_checkpoint(ckpt_path, map_location=dev)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, history = int(ck["step"]), list(ck.get("history", []))
        total = cfg.steps if cfg.steps is not None else ck.get("total_steps")
    ddp = model
    if world > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank + 7919 * step)
    it = batches(ds, "train", cfg.batch_size // world, cfg.seed + 17 * step, rank, world)
    span = _span(model, cfg)
    # one mask kind per batch: the encoder's token count is the batch's largest visible count,
    # so mixing an 80% random mask with a short gap in one batch would cost as much as the gap
    kinds = [k for k, v in cfg.mask_mix.items() if v > 0]
    kind_w = torch.tensor([float(cfg.mask_mix[k]) for k in kinds])
    meta = {"size": size, "model_config": model.cfg.to_dict(), "train_config": cfg.to_dict(),
            "input_spec": {**ds.manifest["preset"], "channels": ds.manifest["channels"],
                           "normalisation": {"mean": ds.manifest["normalisation"]["mean"],
                                             "std": ds.manifest["normalisation"]["std"]}},
            "dataset": {"path": str(ds.path), "manifest_sha256": sha256_file(ds.path / "manifest.json"),
                        "n_train": ds.n("train")}}

    def save():
        if rank == 0:
            save_checkpoint(ckpt_path, {**meta, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                        "step": step, "total_steps": total, "history": history})

    budget_s = None if cfg.max_minutes is None else cfg.max_minutes * 60.0
    planned = total if total is not None else 10 ** 9    # refined from the measured step time
    t0 = time.perf_counter()
    t_probe = None
    ema = None
    bar = _Bar(enabled=cfg.progress and rank == 0, total=planned if total else None, start=step)
    model.train()
    with bar:
        while step < planned:
            b = next(it)
            x = torch.from_numpy(np.asarray(b["x"], np.float32)).to(dev)
            m = torch.from_numpy(np.asarray(b["mask"], bool)).to(dev)
            x, m = augment(x, m, cfg, gen)
            lr = lr_at(step, planned, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            kind = kinds[int(torch.multinomial(kind_w, 1, generator=gen))]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                loss, _, _ = ddp(x, m, kind=kind, mask_ratio=cfg.mask_ratio, span=span, generator=gen)
            loss = loss.float()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            step += 1
            lv = float(loss.detach())
            if not math.isfinite(lv):
                raise DataError(f"loss became {lv} at step {step}", path=ds.path,
                                hint="lower --lr, or check the data for extreme values")
            ema = lv if ema is None else 0.95 * ema + 0.05 * lv
            el = time.perf_counter() - t0
            if step % cfg.log_every == 0 or step == planned:
                history.append({"step": step, "loss": round(ema, 6), "lr": lr, "seconds": round(el, 2)})
            # fit the schedule to the time budget once the step time is known
            if budget_s is not None:
                if t_probe is None and step >= 5:
                    t_probe = (time.perf_counter(), step)
                elif t_probe is not None and step >= t_probe[1] + 10 and (step - t_probe[1]) % 10 == 0:
                    # re-fitted every 10 steps from the mean step time so far (mask kinds and a
                    # shared CPU make single steps vary a lot)
                    sps_ = (time.perf_counter() - t_probe[0]) / (step - t_probe[1])
                    fit = step + int(max(0.0, budget_s * 0.97 - el) / sps_)
                    planned = fit if total is None else min(total, fit)
                    planned = _agree(planned, dev)
                    bar.set_total(planned)
                stop = _agree(int(el >= budget_s), dev, op="max")
                if stop:
                    planned = step
            bar.update(step, ema, lr)
            if cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < planned:
                save()
    total = planned if total is None else total
    meta["val_loss"] = heldout_loss(model, ds, cfg, "val", cfg.val_batches) if rank == 0 else None
    meta["train_seconds"] = round(time.perf_counter() - t0, 2)
    save()
    if world > 1:
        torch.distributed.barrier()
    model.eval()
    return ckpt_path


def _agree(v: int, dev, op: str = "min") -> int:
    """All ranks agree on an int (min or max); identity in one process."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return v
    t = torch.tensor([v], dtype=torch.long, device=dev)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MIN if op == "min" else torch.distributed.ReduceOp.MAX)
    return int(t.item())


class _Bar:
    """A rich progress bar on stderr: step, loss, lr, elapsed, ETA (no-op when disabled)."""

    def __init__(self, enabled: bool, total: int | None, start: int = 0):
        self.enabled = enabled
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)
        self.p = Progress(TextColumn("teacher"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"),
                          TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                          transient=False)
        self.task = self.p.add_task("train", total=total if total and total < 10 ** 9 else None,
                                    completed=start, loss="-", lr="-")

    def __enter__(self):
        if self.enabled:
            self.p.start()
        return self

    def __exit__(self, *a):
        if self.enabled:
            self.p.stop()

    def set_total(self, total: int):
        if self.enabled:
            self.p.update(self.task, total=total)

    def update(self, step: int, loss: float, lr: float):
        if self.enabled:
            self.p.update(self.task, completed=step, loss=f"{loss:.4f}", lr=f"{lr:.2e}")
