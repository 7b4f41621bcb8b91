"""Device profiles: loading, validation, and the MLPerf Tiny calibration anchor."""

from __future__ import annotations

import pytest

from edgefm.errors import ConfigError
from firmware_sim import available_devices, check_calibration, load_device
from firmware_sim.calibration import calibrate, ds_cnn_kws


def test_profiles_load_and_cite_sources():
    assert {"nrf52840", "stm32u5", "phone-big-core"} <= set(available_devices())
    for name in available_devices():
        d = load_device(name)
        assert d.clock_hz > 0 and d.ram_bytes > 0 and d.flash_bytes > 0
        assert set(d.cycles_per_mac) == {"conv", "depthwise", "dense"}
    nrf = load_device("nrf52840")
    assert nrf.core == "Cortex-M4F" and nrf.clock_hz == 64e6
    assert 125 <= nrf.battery_capacity_mah <= 190
    assert 0.5 <= nrf.acc_current_ua <= 15   # ADXL362: 1.8 uA at 100 Hz; BMA400 < 14.5 uA
    assert load_device("stm32u5").clock_hz == 160e6
    assert "MLPerf Tiny" in nrf.calibration["anchor"]


def test_unknown_device_is_one_line_config_error():
    with pytest.raises(ConfigError) as e:
        load_device("esp32-c3")
    msg = e.value.one_line()
    assert "\n" not in msg and "nrf52840" in msg and "stm32u5" in msg and "phone-big-core" in msg


def test_malformed_profile_names_file_and_field(tmp_path):
    src = (load_device("nrf52840").path)
    text = open(src).read().replace("clock_hz = 64_000_000", "clock_hz = \"fast\"")
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_device(p)
    assert "bad.toml" in e.value.one_line() and "cpu.clock_hz" in e.value.one_line()
    p.write_text("name = [")
    with pytest.raises(ConfigError):
        load_device(p)


def test_ds_cnn_macs_match_hand_count():
    m = ds_cnn_kws()
    # 25x5x64 after the stride-2 10x4 conv; 4 x (dw 3x3 + pw 64x64); dense 64 -> 12
    hand = 25 * 5 * 64 * 40 + 4 * (25 * 5 * 64 * 9 + 25 * 5 * 64 * 64) + 64 * 12
    assert m.macs == hand == 2_656_768


@pytest.mark.parametrize("name", ["nrf52840", "stm32u5"])
def test_calibration_reproduces_mlperf_tiny_anchor(name):
    d = load_device(name)
    c = check_calibration(d)
    assert abs(c["relative_error"]) < 0.01, c
    # the stored cycles per MAC are the fit's, rounded
    for op, v in c["fit"]["cycles_per_mac"].items():
        assert d.cycles_per_mac[op] == pytest.approx(v, abs=2e-3)
    if name == "stm32u5":   # 664 uJ in 29 ms at 160 MHz
        assert c["predicted_energy_uj"] == pytest.approx(664, rel=0.02)
    if name == "nrf52840":  # same M4 cycles at 64 MHz instead of 120 MHz
        assert c["on_device_latency_ms"] == pytest.approx(75 * 120 / 64, rel=0.01)


def test_calibrate_arithmetic_is_consistent():
    r = calibrate(29.0, 160e6, {"conv": 1.0, "depthwise": 2.0, "dense": 1.0}, per_layer_cycles=0,
                  pool_cycles_per_element=0, elementwise_cycles_per_element=0)
    m = ds_cnn_kws().macs_by_op()
    cycles = sum(m[op] * r["cycles_per_mac"][op] for op in m)
    assert cycles == pytest.approx(29e-3 * 160e6)
    assert r["cycles_per_mac"]["depthwise"] == pytest.approx(2 * r["cycles_per_mac"]["conv"])
