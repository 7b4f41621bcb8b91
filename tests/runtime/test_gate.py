"""The motion gate: features, hysteresis, minimum on-time, wake, streaming == offline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgefm.errors import ConfigError
from runtime.gate import (GateConfig, StreamingGate, block_features, gate_offline, gate_recording,
                          window_decisions)


def _acc_with_std(stds, block=32, seed=0):
    """ACC (n, 3) g whose magnitude has exactly the given std in each block (z-axis only)."""
    rng = np.random.default_rng(seed)
    out = []
    for s in stds:
        e = rng.normal(size=block)
        e = (e - e.mean()) / e.std() * s
        out.append(np.c_[np.zeros(block), np.zeros(block), 1.0 + e])
    return np.concatenate(out)


def test_block_feature_is_std_of_magnitude():
    stds = [0.0, 0.01, 0.2, 0.05]
    f = block_features(_acc_with_std(stds), None, 32)
    np.testing.assert_allclose(f, stds, atol=1e-7)
    rng = np.random.default_rng(1)
    a = rng.normal(size=(64, 3))
    m = np.linalg.norm(a, axis=1).reshape(2, 32)
    np.testing.assert_allclose(block_features(a, None, 32), m.std(1), rtol=1e-9)
    v = np.ones((64, 3), bool)
    v[40, 1] = False
    f = block_features(a, v, 32)
    assert f[0] == pytest.approx(m[0].std()) and f[1] == -np.inf


def _reference_loop(f, cfg):
    """The docstring's algorithm, written out independently."""
    on, since, low, out = False, 0, 0, []
    for b, v in enumerate(f):
        low = low + 1 if v < cfg.off_threshold else 0
        if not on:
            if v >= cfg.on_threshold or (cfg.wake_blocks > 0 and b - since >= cfg.wake_blocks):
                on, since = True, b
        elif low >= cfg.hold_blocks and b - since >= cfg.min_on_blocks:
            on, since = False, b
        out.append(on)
    return np.array(out)


def test_hysteresis_and_min_on_time():
    cfg = GateConfig(on_threshold=0.1, off_threshold=0.05, min_on_s=3.0, block_s=1.0, fs_hz=32.0)
    #      0    1    2     3     4     5     6     7    8    9    10
    f = [0.0, 0.2, 0.07, 0.07, 0.07, 0.01, 0.0, 0.09, 0.2, 0.0, 0.0]
    g = gate_offline(np.array(f), cfg)
    # on at 1; 2-4 above off (hysteresis keeps it on); off at 5 (below off, >= 3 blocks on);
    # 0.09 < on does not wake it; on at 8, min on-time holds it through 9-10
    assert g.tolist() == [False, True, True, True, True, False, False, False, True, True, True]
    cfg0 = GateConfig(on_threshold=0.1, off_threshold=0.1, min_on_s=0.0)
    g0 = gate_offline(np.array([0.0, 0.2, 0.07, 0.2, 0.0]), cfg0)
    assert g0.tolist() == [False, True, False, True, False]
    # min on-time: one spike holds the gate for min_on blocks
    cfg2 = GateConfig(on_threshold=0.1, off_threshold=0.05, min_on_s=4.0)
    g2 = gate_offline(np.array([0.2] + [0.0] * 9), cfg2)
    assert g2.tolist() == [True] * 4 + [False] * 6
    # off-hold: a short pause keeps it on, a long one switches it off after `hold` quiet blocks
    cfg3 = GateConfig(on_threshold=0.1, off_threshold=0.05, min_on_s=0.0, off_hold_s=3.0)
    g3 = gate_offline(np.array([0.2, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0]), cfg3)
    assert g3.tolist() == [True, True, True, True, True, True, False, False, False]
    np.testing.assert_array_equal(g3, _reference_loop(np.array([0.2, 0, 0, 0.2, 0, 0, 0, 0, 0.0]), cfg3))


def test_periodic_wake():
    cfg = GateConfig(on_threshold=0.1, off_threshold=0.05, min_on_s=0.0, wake_every_s=5.0)
    g = gate_offline(np.zeros(20), cfg)
    assert np.flatnonzero(g).tolist() == [5, 11, 17]  # on at 5, off at 6, wake 5 after, ...
    np.testing.assert_array_equal(g, _reference_loop(np.zeros(20), cfg))


def test_window_decision_uses_last_hop():
    cfg = GateConfig(block_s=1.0, fs_hz=32.0)
    g = np.zeros(20, bool)
    g[9] = True
    # window 256 = 8 blocks, hop 64 = 2 blocks; window i covers blocks [2i, 2i+8), decides on [2i+6, 2i+8)
    d = window_decisions(g, 256, 64, cfg)
    assert len(d) == 7 and np.flatnonzero(d).tolist() == [1]
    with pytest.raises(ConfigError):
        window_decisions(g, 256, 48, cfg)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 0.3), min_size=1, max_size=200), st.floats(0.01, 0.2),
       st.floats(0.2, 1.0), st.integers(0, 6), st.integers(0, 9), st.integers(1, 5))
def test_offline_equals_reference(f, on, ratio, min_on, wake, hold):
    cfg = GateConfig(on_threshold=on, off_threshold=on * ratio, min_on_s=float(min_on), wake_every_s=float(wake),
                     off_hold_s=float(hold))
    f = np.array(f)
    f[::7] = -np.inf  # invalid blocks
    np.testing.assert_array_equal(gate_offline(f, cfg), _reference_loop(f, cfg))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.lists(st.integers(1, 300), min_size=1, max_size=40))
def test_streaming_gate_equals_offline(seed, chunks):
    rng = np.random.default_rng(seed)
    n = sum(chunks)
    # bursts of movement on a still background, with a gap
    acc = np.c_[np.zeros(n), np.zeros(n), np.ones(n)] + rng.normal(size=(n, 3)) * 0.004
    for _ in range(3):
        a = rng.integers(0, n)
        acc[a:a + rng.integers(10, 200)] += rng.normal(size=(1, 3)) * rng.normal(size=(1, 1)) * 0.3
    valid = np.ones(n, bool)
    valid[rng.integers(0, n):][:rng.integers(0, 50)] = False
    cfg = GateConfig(on_threshold=0.02, off_threshold=0.01, min_on_s=2.0, wake_every_s=5.0, off_hold_s=3.0)
    sg = StreamingGate(cfg)
    pos, got = 0, []
    for c in chunks:
        got.append(sg.push(acc[pos:pos + c], valid[pos:pos + c]))
        pos += c
    got = np.concatenate(got)
    nb = n // cfg.block
    assert sg.blocks_done == nb == len(got) and sg.samples == n
    ref = gate_offline(block_features(acc[:nb * 32], valid[:nb * 32, None].repeat(3, 1), 32), cfg)
    np.testing.assert_array_equal(got, ref)


def test_config_validation_and_roundtrip():
    cfg = GateConfig(on_threshold=0.04, off_threshold=0.02, min_on_s=6.0, wake_every_s=60.0)
    d = cfg.to_dict()
    assert d["kind"] == "acc-magnitude-std/v1" and GateConfig.from_dict(d) == cfg
    with pytest.raises(ConfigError, match="off_threshold"):
        GateConfig(on_threshold=0.01, off_threshold=0.02)
    with pytest.raises(ConfigError, match="block_s"):
        GateConfig(block_s=0.01)
    with pytest.raises(ConfigError, match="min_on_s"):
        GateConfig(min_on_s=2.5)
    with pytest.raises(ConfigError, match="unknown"):
        GateConfig.from_dict({**d, "threshold": 1})
    c = cfg.cost()
    assert c["ops_per_sample"] == pytest.approx(10 + 13 / 32) and c["state_bytes"] <= 64


def test_gate_recording_on_constructed_signal():
    # 60 s still, 30 s walking-like (1.5 Hz, 0.3 g), 60 s still at 32 Hz
    fs = 32.0
    t = np.arange(int(150 * fs)) / fs
    z = np.ones_like(t)
    walk = (t >= 60) & (t < 90)
    z[walk] += 0.3 * np.sin(2 * np.pi * 1.5 * t[walk])
    acc = np.c_[np.zeros_like(t), np.zeros_like(t), z]
    cfg = GateConfig(on_threshold=0.05, off_threshold=0.03, min_on_s=4.0)
    g, d = gate_recording(acc, None, cfg, 256, 64)
    assert np.flatnonzero(g).min() == 60 and np.flatnonzero(g).max() == 89  # on-time 30 s > min_on: off at once
    assert g.sum() == 30
    # window i decides on seconds [2i+6, 2i+8): those overlapping [60, 90) are i = 27..41
    assert np.flatnonzero(d).tolist() == list(range(27, 42))
