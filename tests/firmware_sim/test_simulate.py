"""Energy bookkeeping, gate behaviour, memory and latency of the firmware simulator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgefm.errors import ConfigError, DataError
from firmware_sim import (COMPONENTS, GateConfig, Policy, SimConfig, Trace, always_off, default_policies,
                          load_device, model_info_from_torch, simulate)
from firmware_sim.costs import layers_from_onnx

FS = 32.0


def tiny_student():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(3, 16, 7, 2, 3), nn.ReLU(),
        nn.Conv1d(16, 16, 5, 2, 2, groups=16), nn.ReLU(), nn.Conv1d(16, 32, 1), nn.ReLU(),
        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 1))


@pytest.fixture(scope="module")
def info():
    return model_info_from_torch(tiny_student(), torch.zeros(1, 3, 256), name="tiny", fs_hz=FS, hop=64)


def make_trace(hours: float, motion: str, seed: int = 0) -> Trace:
    rng = np.random.default_rng(seed)
    n = int(hours * 3600 * FS)
    acc = rng.normal(0, 0.003, (3, n)).astype(np.float32)
    acc[2] += 1.0
    if motion == "all":
        t = np.arange(n) / FS
        acc[2] += 0.3 * np.sin(2 * np.pi * 1.8 * t)   # vertical arm swing
    return Trace(acc, np.ones(n, bool), FS, id=f"{motion}-{seed}")


def test_torch_macs_match_hand_count(info):
    # conv 3->16 k7 on 128 outputs; dw k5 on 64x16; pw 16->32 on 64; dense 32->1
    hand = {"conv": 128 * 16 * 3 * 7 + 64 * 32 * 16, "depthwise": 64 * 16 * 5, "dense": 32}
    assert info.macs_by_op() == hand
    assert info.params == sum(p.numel() for p in tiny_student().parameters())


def test_components_sum_and_battery_days_formula(info):
    dev = load_device("nrf52840")
    res = simulate(info, make_trace(1, "rest"), dev)
    for p in res.policies:
        assert set(p.energy.joules) == set(COMPONENTS)
        assert sum(p.energy.joules.values()) == pytest.approx(p.energy.total_j)
        avg_w = p.energy.total_j / res.duration_s
        days = dev.battery_capacity_mah * 3.6 * dev.battery_voltage_v / avg_w / 86400
        assert p.battery_days == pytest.approx(days)
        assert p.battery_days <= res.ceiling_days
    # an independent hand count of one policy: ACC always on, no gate, PPG off
    p = res.policy("acc-always")
    n_hops = int(3600 * FS) // 64
    n_win = n_hops - 3                        # 8 s window = 4 hops of 2 s
    assert p.inferences == n_win and p.skipped == 0
    t_inf = sum(dev.layer_cycles(l) for l in info.layers) / dev.clock_hz
    assert p.energy.joules["inference"] == pytest.approx(n_win * t_inf * dev.active_power_w)
    assert p.energy.joules["acc"] == pytest.approx(3600 * dev.acc_current_ua * 1e-6 * dev.supply_v)
    assert p.energy.joules["ppg"] == 0 and p.energy.joules["gate"] == 0
    assert res.policy("continuous-ppg").energy.joules["ppg"] == pytest.approx(3600 * dev.ppg_power_mw * 1e-3)


def test_always_off_gate_skips_everything(info):
    res = simulate(info, make_trace(0.5, "all"), "nrf52840", [Policy("never", gate=always_off(), ppg="gated")])
    p = res.policies[0]
    assert p.inferences == 0 and p.skipped == p.windows - p.windows_invalid > 0
    assert p.energy.joules["inference"] == 0 and p.energy.joules["ppg"] == 0


def test_gate_rest_vs_motion(info):
    pols = [Policy("gated", gate=GateConfig(), ppg="gated")]
    rest = simulate(info, make_trace(0.5, "rest"), "nrf52840", pols).policies[0]
    move = simulate(info, make_trace(0.5, "all"), "nrf52840", pols).policies[0]
    assert rest.inferences == 0 and rest.skipped_fraction == 1.0
    assert move.skipped == 0 and move.inferences == move.windows
    assert rest.energy.joules["ppg"] == 0
    # PPG switched on by the gate: on for the whole moving half hour (1 s gate blocks)
    assert move.energy.joules["ppg"] == pytest.approx(1800 * 0.6e-3)
    # periodic wake on a resting trace: a few windows around each wake, nothing else
    w = simulate(info, make_trace(0.5, "rest"), "nrf52840",
                 [Policy("wake", gate=GateConfig(wake_every_s=60.0))]).policies[0]
    assert 1800 / 70 <= w.inferences <= w.windows / 5


def test_gated_ppg_off_beats_continuous_ppg_by_3x(info):
    # a day that is mostly rest (the synthetic cohort's sleep/sedentary hours)
    tr = [make_trace(2, "all", 1), make_trace(10, "rest", 2)]
    res = simulate(info, tr, "nrf52840", default_policies())
    d = res.battery_days()
    assert d["gated-ppg-off"] >= 3 * d["continuous-ppg"]
    assert d["gated-ppg-off"] > d["acc-always"] > d["continuous-ppg"]
    assert res.policy("gated-ppg-off").skipped_fraction == pytest.approx(10 / 12, abs=0.02)


def test_invalid_windows_do_not_run(info):
    tr = make_trace(0.5, "all")
    tr.acc[:, : int(600 * FS)] = np.nan           # 10 minutes off-wrist
    tr = Trace(tr.acc, tr.valid, FS)
    p = simulate(info, tr, "nrf52840", [Policy("always")]).policies[0]
    assert p.windows_invalid >= 600 / 2 - 1
    assert p.inferences == p.windows - p.windows_invalid


def test_latency_and_memory_vs_limits(info):
    res = simulate(info, make_trace(0.2, "rest"), "nrf52840")
    dev = load_device("nrf52840")
    assert res.inference_ms == pytest.approx(dev.inference_seconds(info) * 1e3)
    assert res.worst_case_latency_ms > res.inference_ms and res.deadline_ms == 2000
    assert res.latency_ok
    assert res.ram["arena_source"] == "estimated" and res.ram["ok"] and res.flash["ok"]
    assert res.ram["total_bytes"] == (res.ram["arena_bytes_used"] + res.ram["buffers_bytes"]
                                      + dev.reserved_ram_bytes)
    info2 = model_info_from_torch(tiny_student(), torch.zeros(1, 3, 256), fs_hz=FS, hop=64,
                                  arena_bytes=10_000_000)
    r2 = simulate(info2, make_trace(0.2, "rest"), "nrf52840")
    assert r2.ram["arena_source"] == "measured" and not r2.ram["ok"]


def test_bad_inputs():
    with pytest.raises(DataError):
        Trace(np.zeros((2, 100)), np.ones(100, bool), FS)
    with pytest.raises(ConfigError):
        Policy("p", ppg="sometimes")
    with pytest.raises(ConfigError):
        Policy("p", ppg="gated")
    with pytest.raises(ConfigError):
        Policy("p", gate={"on_threshold": 0.1})
    with pytest.raises(ConfigError):
        SimConfig(min_valid=2)


def test_onnx_layers_match_torch(info, tmp_path):
    p = tmp_path / "m.onnx"
    torch.onnx.export(tiny_student(), (torch.zeros(1, 3, 256),), str(p), dynamo=False)
    rows = layers_from_onnx(p)
    by = {}
    for r in rows:
        by[r.op] = by.get(r.op, 0) + r.macs
    assert {k: by.get(k, 0) for k in ("conv", "depthwise", "dense")} == info.macs_by_op()


def test_synthetic_cohort_traces(info, request):
    pytest.importorskip("edgefm.data.synth", reason="synthetic cohort (issue 2) not landed yet")
    from firmware_sim import load_trace
    traces = load_trace(request.getfixturevalue("tiny_cohort"))
    res = simulate(info, traces[:2], "nrf52840")
    assert res.duration_s > 3600
    assert res.policy("gated-ppg-off").skipped > 0
