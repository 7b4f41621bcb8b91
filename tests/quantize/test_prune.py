"""Structured pruning removes channels (params and MACs drop by the expected amount)."""

from __future__ import annotations

import copy

import pytest
import torch

from edgefm.errors import ConfigError, DataError
from quantize.prune import PruneConfig, model_stats, prune_, recover_
from quantize.testing import TinyHR, fit, toy_hr_data


def _macs_params(width: int) -> tuple[int, int]:
    """Independent count for TinyHR(width, blocks=1) on a 64-sample window (T' = 32)."""
    w, t = width, 32
    macs = 3 * w * 5 * t + w * 5 * t + w * w * t + w * w + w    # stem, dw, pw, fc, head
    params = (3 * w * 5 + w * 5 + w * w + w * w + w + w + 1      # conv/linear weights and biases
              + 2 * 3 * w)                                        # 3 BatchNorms (weight, bias)
    return macs, params


def test_structured_halves_channels():
    torch.manual_seed(0)
    m = TinyHR(width=16, blocks=1).eval()
    ex = (torch.randn(1, 3, 64),)
    r = prune_(m, PruneConfig(ratio=0.5), ex)
    assert r.channels["stem.0"] == [16, 8] and r.channels["blocks.0.pw.0"] == [16, 8]
    assert r.channels["fc"] == [16, 8] and r.channels["head"] == [1, 1]
    assert m.stem[0].out_channels == 8 and m.head.in_features == 8
    s16, s8 = model_stats(TinyHR(width=16, blocks=1), ex, latency=False), model_stats(m, ex, latency=False)
    assert r.before.params == s16.params == _macs_params(16)[1]
    assert r.after.params == s8.params == _macs_params(8)[1]
    assert r.before.macs == _macs_params(16)[0] and r.after.macs == _macs_params(8)[0]
    assert r.macs_reduction > 0.5
    assert m(ex[0]).shape == (1, 1)


def test_iterative_with_recovery_keeps_accuracy():
    x, y = toy_hr_data(128, t=64, seed=1)
    torch.manual_seed(0)
    m = fit(TinyHR(width=16, blocks=1), x, y, epochs=10)
    ref = copy.deepcopy(m)
    r = prune_(m, PruneConfig(ratio=0.5, schedule="iterative", steps=2, recover_epochs=3, recover_lr=3e-3),
               (x[:1],), data=x)
    assert len(r.recovery_loss) == 2 and r.channels["stem.0"] == [16, 8]
    with torch.no_grad():
        mae_ref = (ref(x).squeeze() - y).abs().mean()
        mae = (m(x).squeeze() - y).abs().mean()
    assert mae < 2.0 * mae_ref + 1.0


def test_unstructured_zeroes_weights_keeps_shape():
    m = TinyHR(width=16, blocks=1).eval()
    r = prune_(m, PruneConfig(ratio=0.5, method="unstructured"), (torch.randn(1, 3, 64),))
    assert r.after.params == r.before.params
    assert r.after.sparsity == pytest.approx(0.5, abs=0.06)
    assert not hasattr(m.stem[0], "weight_orig")            # pruning made permanent


def test_bad_configs():
    with pytest.raises(ConfigError):
        PruneConfig(ratio=1.5)
    with pytest.raises(ConfigError):
        PruneConfig(method="random")
    with pytest.raises(ConfigError):
        prune_(TinyHR(), PruneConfig(recover_epochs=1), (torch.zeros(1, 3, 64),))
    with pytest.raises(DataError):
        recover_(TinyHR(), TinyHR(), torch.full((4, 3, 64), float("nan")))
