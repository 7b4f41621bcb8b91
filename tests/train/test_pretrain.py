"""Pretraining: augmentation, schedule, checkpoints (round trip, resume), DDP."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from edgefm.data.store import WindowDataset
from edgefm.errors import ConfigError, ManifestError, ShapeError
from edgefm.train import TrainConfig, augment, load_checkpoint, load_teacher, pretrain, teacher_for_dataset
from edgefm.train.pretrain import lr_at
from edgefm.train.toydata import write_toy_minutely

MICRO = dict(enc_dim=32, enc_heads=2, enc_depth=1, dec_dim=32, dec_heads=2, dec_depth=1)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "minutely"
    return WindowDataset(write_toy_minutely(out, subjects=6, days=1.0, hop_min=60, shard_size=8))


def cfg(**kw):
    return TrainConfig(**{"steps": 4, "batch_size": 8, "progress": False, "log_every": 1, "val_batches": 1, **kw})


def test_augment_keeps_missing_missing():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 64)
    m = torch.rand(6, 4, 64) > 0.3
    x = x * m
    xa, ma = augment(x, m, TrainConfig(steps=1, flip_p=0.5, stretch=(1.0, 1.3), noise_std=0.1), g)
    assert xa.shape == x.shape and ma.shape == m.shape
    assert (xa[~ma] == 0).all()
    assert ma.float().mean() <= m.float().mean() + 1e-6   # stretching never invents observations
    # disabled augmentation is the identity
    xi, mi = augment(x, m, TrainConfig(steps=1, flip_p=0, stretch=(1.0, 1.0), noise_std=0), g)
    assert torch.equal(xi, x) and torch.equal(mi, m)
    # a flip alone reverses x and mask together
    xf, mf = augment(x, m, TrainConfig(steps=1, flip_p=1.0, stretch=(1.0, 1.0), noise_std=0), g)
    assert torch.equal(xf, x.flip(-1)) and torch.equal(mf, m.flip(-1))


def test_lr_schedule_warmup_then_cosine():
    c = TrainConfig(steps=100, lr=1e-3, warmup_frac=0.1, min_lr_frac=0.0)
    assert lr_at(0, 100, c) == pytest.approx(1e-4)
    assert lr_at(9, 100, c) == pytest.approx(1e-3)
    assert lr_at(55, 100, c) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert lr_at(100, 100, c) == pytest.approx(0.0, abs=1e-12)


def test_config_validation():
    with pytest.raises(ConfigError):
        TrainConfig(steps=None, max_minutes=None)
    with pytest.raises(ConfigError):
        TrainConfig(steps=10, stretch=(0.5, 1.0))
    with pytest.raises(ConfigError, match="span_frac"):
        TrainConfig(steps=10, span_frac=(0.3, 0.2))


def test_parse_mask_mix():
    from edgefm.train import parse_mask_mix
    assert parse_mask_mix("random=0.2, temporal=0.1,interpolate=0.4,extrapolate=0.3") == {
        "random": 0.2, "temporal": 0.1, "interpolate": 0.4, "extrapolate": 0.3}
    assert TrainConfig(steps=1, mask_mix=parse_mask_mix("sensor=1")).mask_mix == {"sensor": 1.0}
    for bad in ("forecast=1", "random", "random=x", "random=-1", "random=inf", "random=nan"):
        with pytest.raises(ConfigError, match=bad.split("=")[0]):
            parse_mask_mix(bad)
    with pytest.raises(ConfigError, match="no positive weight"):
        parse_mask_mix("random=0,interpolate=0")


def test_checkpoint_roundtrip_and_resume(toy, tmp_path):
    torch.manual_seed(0)
    m = teacher_for_dataset(toy, "tiny", **MICRO)
    ck = pretrain(m, toy, cfg(steps=3), tmp_path / "run", size="tiny")
    d = load_checkpoint(ck)
    assert d["step"] == 3 and d["size"] == "tiny"
    assert d["dataset"]["manifest_sha256"] and d["input_spec"]["preset"] == "lsm-minutely"
    assert len(d["input_spec"]["normalisation"]["mean"]) == 26
    assert (tmp_path / "run" / "teacher.manifest.json").exists()
    t = load_teacher(ck)
    x = torch.randn(2, 26, 300)
    mask = torch.rand(2, 26, 300) > 0.2
    art = t.draw_mask(2, generator=torch.Generator().manual_seed(0))
    m.eval()
    with torch.no_grad():
        a, b = m(x, mask, artificial=art), t(x, mask, artificial=art)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(m.embed(x, mask), t.embed(x, mask))
    # resume continues the step count and the history
    m2 = teacher_for_dataset(toy, "tiny", **MICRO)
    pretrain(m2, toy, cfg(steps=5), tmp_path / "run", resume=True, size="tiny")
    d2 = load_checkpoint(ck)
    assert d2["step"] == 5
    assert [h["step"] for h in d2["history"]] == [1, 2, 3, 4, 5]


def test_resume_without_checkpoint_and_bad_checkpoint(toy, tmp_path):
    m = teacher_for_dataset(toy, "tiny", **MICRO)
    with pytest.raises(ConfigError):
        pretrain(m, toy, cfg(), tmp_path / "none", resume=True)
    bad = tmp_path / "teacher.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ManifestError):
        load_teacher(bad)


def test_model_dataset_mismatch(toy, tmp_path):
    from edgefm.models import build_teacher
    with pytest.raises(ShapeError):
        pretrain(build_teacher("tiny", "wrist-raw", **MICRO), toy, cfg(), tmp_path / "x")


def test_training_reduces_heldout_loss(toy, tmp_path):
    torch.manual_seed(0)
    from edgefm.train import heldout_loss
    m = teacher_for_dataset(toy, "tiny", **MICRO)
    c = cfg(steps=60, lr=3e-3, batch_size=16)
    before = heldout_loss(m, toy, c, "val", 2)
    pretrain(m, toy, c, tmp_path / "r")
    after = heldout_loss(m, toy, c, "val", 2)
    assert after < 0.9 * before


def test_time_budget_stops(toy, tmp_path):
    m = teacher_for_dataset(toy, "tiny", **MICRO)
    ck = pretrain(m, toy, cfg(steps=None, max_minutes=0.05), tmp_path / "b")
    d = load_checkpoint(ck)
    assert d["train_seconds"] < 0.05 * 60 + 10 and d["step"] >= 1


def test_ddp_two_processes_matches_one(toy, tmp_path):
    """torchrun with 2 gloo ranks (disjoint shards, same global batch) vs 1 process."""
    from edgefm.train import launch
    c = cfg(steps=40, batch_size=16, lr=3e-3, val_batches=2)
    one = launch(toy.path, tmp_path / "one", c, nproc=1, model_kw=MICRO, timeout_s=240)
    two = launch(toy.path, tmp_path / "two", c, nproc=2, model_kw=MICRO, timeout_s=240)
    l1, l2 = load_checkpoint(one)["val_loss"], load_checkpoint(two)["val_loss"]
    d2 = load_checkpoint(two)
    assert d2["step"] == 40
    untrained = load_checkpoint(one)["history"][0]["loss"]
    assert l1 < untrained and l2 < untrained
    assert abs(l1 - l2) / l1 < 0.15, (l1, l2)


def test_bf16_autocast_trains_the_decoder_baseline_teacher(toy, tmp_path):
    torch.manual_seed(0)
    from edgefm.train import heldout_loss
    m = teacher_for_dataset(toy, "tiny", residual="linear", decoder_sees_baseline=True, loss="l1", **MICRO)
    c = cfg(steps=40, lr=3e-3, batch_size=16, bf16=True)
    before = heldout_loss(m, toy, c, "val", 2)
    d = load_checkpoint(pretrain(m, toy, c, tmp_path / "bf"))
    assert d["train_config"]["bf16"] and all(math.isfinite(h["loss"]) for h in d["history"])
    assert next(iter(d["model"].values())).dtype == torch.float32     # weights stay float32
    assert heldout_loss(m, toy, c, "val", 2) < before
