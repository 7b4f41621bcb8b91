"""Device profiles: TOML data files in ``firmware_sim/devices/`` with their sources cited.

``load_device("nrf52840")`` (or a path to a ``.toml``) -> :class:`DeviceProfile`. An unknown
name raises :class:`ConfigError` listing the available profiles; a malformed file raises
``ConfigError`` naming the file and the field.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from edgefm.errors import ConfigError
from firmware_sim.costs import MAC_OPS, LayerCost, ModelInfo

DEVICES_DIR = Path(__file__).resolve().parent / "devices"
DEFAULT_DEVICE = "nrf52840"


@dataclass(frozen=True)
class DeviceProfile:
    """A target device. Units are in the field names (Hz, mA, uA, V, bytes, uC, mAh, mW)."""

    name: str
    description: str
    kind: str
    core: str
    clock_hz: float
    supply_v: float
    active_current_ma: float
    sleep_current_ua: float
    wake_cycles: float
    gate_cycles_per_sample: float
    cycles_per_mac: dict[str, float]
    per_layer_cycles: float
    elementwise_cycles_per_element: float
    pool_cycles_per_element: float
    ram_bytes: int
    flash_bytes: int
    reserved_ram_bytes: int
    reserved_flash_bytes: int
    runtime_flash_bytes: int
    acc_current_ua: float
    acc_part: str
    ppg_power_mw: float
    ppg_part: str
    radio_event_charge_uc: float
    radio_interval_s: float
    battery_capacity_mah: float
    battery_voltage_v: float
    calibration: dict = field(default_factory=dict)
    path: str = ""

    # ------------------------------------------------------------ derived figures (SI units)
    @property
    def active_power_w(self) -> float:
        return self.active_current_ma * 1e-3 * self.supply_v

    @property
    def sleep_power_w(self) -> float:
        return self.sleep_current_ua * 1e-6 * self.supply_v

    @property
    def acc_power_w(self) -> float:
        return self.acc_current_ua * 1e-6 * self.supply_v

    @property
    def ppg_power_w(self) -> float:
        return self.ppg_power_mw * 1e-3

    @property
    def radio_event_energy_j(self) -> float:
        return self.radio_event_charge_uc * 1e-6 * self.supply_v

    @property
    def battery_energy_j(self) -> float:
        """capacity (mAh) x 3.6 (C per mAh) x nominal voltage (V)."""
        return self.battery_capacity_mah * 3.6 * self.battery_voltage_v

    @property
    def floor_power_w(self) -> float:
        """The unavoidable floor: accelerometer on + MCU asleep."""
        return self.acc_power_w + self.sleep_power_w

    @property
    def ceiling_days(self) -> float:
        return self.battery_energy_j / self.floor_power_w / 86400.0

    def layer_cycles(self, l: LayerCost) -> float:
        if l.op in MAC_OPS:
            return l.macs * self.cycles_per_mac[l.op] + self.per_layer_cycles
        per = self.pool_cycles_per_element if l.op == "pool" else self.elementwise_cycles_per_element
        return l.elements * per + (self.per_layer_cycles if l.elements else 0.0)

    def inference_cycles(self, model: ModelInfo) -> float:
        return float(sum(self.layer_cycles(l) for l in model.layers))

    def inference_seconds(self, model: ModelInfo) -> float:
        return self.inference_cycles(model) / self.clock_hz

    def to_dict(self) -> dict:
        import dataclasses
        return dataclasses.asdict(self)


def available_devices() -> list[str]:
    return sorted(p.stem for p in DEVICES_DIR.glob("*.toml"))


def _get(d: dict, key: str, path: Path, typ=float, default=None):
    cur = d
    for part in key.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if default is not None:
                return default
            raise ConfigError("missing field in device profile", path=path, field=key)
        cur = cur[part]
    try:
        v = typ(cur)
    except (TypeError, ValueError):
        raise ConfigError(f"expected {typ.__name__}, got {cur!r}", path=path, field=key) from None
    if typ in (float, int) and not (v >= 0):
        raise ConfigError(f"must be a non-negative number, got {cur!r}", path=path, field=key)
    return v


def load_device(name_or_path: str | Path = DEFAULT_DEVICE) -> DeviceProfile:
    """Load a profile by name (``nrf52840``, ``stm32u5``, ``phone-big-core``) or ``.toml`` path."""
    s = str(name_or_path)
    p = Path(s)
    if not (s.endswith(".toml") and p.exists()):
        p = DEVICES_DIR / f"{s}.toml"
    if not p.exists():
        raise ConfigError(f"unknown device profile {s!r} (available: {', '.join(available_devices())})",
                          field="device", hint="pick one of those or pass a path to a .toml profile")
    try:
        d = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"not valid TOML ({e})", path=p) from e
    cpm = d.get("cpu", {}).get("cycles_per_mac")
    if not isinstance(cpm, dict):
        raise ConfigError("missing table", path=p, field="cpu.cycles_per_mac")
    for op in MAC_OPS:
        _get(cpm, op, p)
        if not cpm[op] > 0:
            raise ConfigError("must be > 0", path=p, field=f"cpu.cycles_per_mac.{op}")
    g = lambda k, typ=float, default=None: _get(d, k, p, typ, default)  # noqa: E731
    dev = DeviceProfile(
        name=g("name", str), description=g("description", str, ""), kind=g("kind", str, "mcu"),
        core=g("cpu.core", str), clock_hz=g("cpu.clock_hz"), supply_v=g("cpu.supply_v"),
        active_current_ma=g("cpu.active_current_ma"), sleep_current_ua=g("cpu.sleep_current_ua"),
        wake_cycles=g("cpu.wake_cycles"), gate_cycles_per_sample=g("cpu.gate_cycles_per_sample"),
        cycles_per_mac={op: float(cpm[op]) for op in MAC_OPS},
        per_layer_cycles=g("cpu.overhead.per_layer_cycles"),
        elementwise_cycles_per_element=g("cpu.overhead.elementwise_cycles_per_element"),
        pool_cycles_per_element=g("cpu.overhead.pool_cycles_per_element"),
        ram_bytes=g("memory.ram_bytes", int), flash_bytes=g("memory.flash_bytes", int),
        reserved_ram_bytes=g("memory.reserved_ram_bytes", int),
        reserved_flash_bytes=g("memory.reserved_flash_bytes", int),
        runtime_flash_bytes=g("memory.runtime_flash_bytes", int),
        acc_current_ua=g("sensors.acc.current_ua"), acc_part=g("sensors.acc.part", str),
        ppg_power_mw=g("sensors.ppg.power_mw"), ppg_part=g("sensors.ppg.part", str),
        radio_event_charge_uc=g("radio.event_charge_uc"), radio_interval_s=g("radio.interval_s"),
        battery_capacity_mah=g("battery.capacity_mah"), battery_voltage_v=g("battery.voltage_v"),
        calibration=dict(d.get("calibration", {})), path=str(p))
    for f in ("clock_hz", "supply_v", "battery_capacity_mah", "battery_voltage_v"):
        if not getattr(dev, f) > 0:
            raise ConfigError("must be > 0", path=p, field=f)
    if dev.name != p.stem and p.parent == DEVICES_DIR:
        raise ConfigError(f"name {dev.name!r} differs from the file name", path=p, field="name")
    return dev


def check_calibration(dev: DeviceProfile) -> dict | None:
    """Re-run the device's anchor with its stored cycles per MAC: predicted vs measured latency
    (and energy where the anchor has one). None for profiles without an anchor."""
    from firmware_sim.calibration import ANCHOR_MODELS, calibrate
    c = dev.calibration
    if not c or "anchor_model" not in c:
        return None
    model = ANCHOR_MODELS[c["anchor_model"]]()
    cycles = dev.inference_cycles(model)
    pred_ms = cycles / float(c["anchor_clock_hz"]) * 1e3
    out = {"anchor": c.get("anchor", ""), "model": model.name, "macs": model.macs,
           "anchor_latency_ms": float(c["anchor_latency_ms"]), "predicted_latency_ms": pred_ms,
           "relative_error": pred_ms / float(c["anchor_latency_ms"]) - 1.0,
           "on_device_latency_ms": dev.inference_seconds(model) * 1e3}
    if "anchor_energy_uj" in c:
        out["anchor_energy_uj"] = float(c["anchor_energy_uj"])
        out["predicted_energy_uj"] = cycles / float(c["anchor_clock_hz"]) * dev.active_power_w * 1e6
    fit = calibrate(float(c["anchor_latency_ms"]), float(c["anchor_clock_hz"]),
                    dict(c.get("relative_cost", {})), per_layer_cycles=dev.per_layer_cycles,
                    pool_cycles_per_element=dev.pool_cycles_per_element,
                    elementwise_cycles_per_element=dev.elementwise_cycles_per_element, model=model)
    out["fit"] = {k: fit[k] for k in ("scale", "cycles_per_mac", "anchor_cycles", "overhead_cycles")}
    out["lines"] = fit["lines"]
    return out
