"""Device profiles: TOML data files in ``firmware_sim/devices/`` with their sources cited.

``load_device("nrf52840")`` (or a path to a ``.toml``) -> :class:`DeviceProfile`. An unknown
name raises :class:`ConfigError` listing the available profiles; a malformed file (not TOML,
an unknown or missing key, a wrong type, a number that is not finite or out of its range)
raises ``ConfigError`` naming the file and the dotted field (see :data:`SCHEMA`).
"""

from __future__ import annotations

import math
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


# The profile's schema: every key a profile may hold, its type and its range. A key that is not
# here is refused (a typo would otherwise silently fall back to nothing); a number must be
# finite and inside its range. ("num", lo, hi, lo_open): lo < v (lo_open) or lo <= v, and v <= hi.
_POS = ("num", 0.0, 1e12, True)           # > 0
_NONNEG = ("num", 0.0, 1e12, False)       # >= 0
_BYTES_POS = ("int", 1, 2 ** 50)
_BYTES = ("int", 0, 2 ** 50)
_STR, _OPT_STR = ("str", True), ("str", False)
SCHEMA: dict = {
    "name": _STR, "description": _OPT_STR, "kind": _OPT_STR,
    "cpu": {"core": _STR, "clock_hz": ("num", 0.0, 1e11, True), "supply_v": ("num", 0.0, 100.0, True),
            "active_current_ma": _NONNEG, "sleep_current_ua": _NONNEG, "wake_cycles": _NONNEG,
            "gate_cycles_per_sample": _NONNEG,
            "cycles_per_mac": {op: ("num", 0.0, 1e6, True) for op in MAC_OPS},
            "overhead": {"per_layer_cycles": _NONNEG, "elementwise_cycles_per_element": _NONNEG,
                         "pool_cycles_per_element": _NONNEG}},
    "memory": {"ram_bytes": _BYTES_POS, "flash_bytes": _BYTES_POS, "reserved_ram_bytes": _BYTES,
               "reserved_flash_bytes": _BYTES, "runtime_flash_bytes": _BYTES},
    "sensors": {"acc": {"part": _STR, "current_ua": _NONNEG, "fs_hz": ("num", 0.0, 1e6, True, False)},
                "ppg": {"part": _STR, "power_mw": _NONNEG, "source": _OPT_STR}},
    "radio": {"part": _OPT_STR, "event_charge_uc": _NONNEG, "interval_s": ("num", 0.0, 1e9, True)},
    "battery": {"capacity_mah": ("num", 0.0, 1e7, True), "voltage_v": ("num", 0.0, 100.0, True)},
}
# [calibration] is optional; when present its anchor must be complete
CALIBRATION_SCHEMA: dict = {
    "anchor": _STR, "anchor_source": _OPT_STR, "anchor_model": _STR,
    "anchor_clock_hz": ("num", 0.0, 1e11, True), "anchor_latency_ms": ("num", 0.0, 1e9, True),
    "anchor_energy_uj": ("num", 0.0, 1e12, True, False), "note": _OPT_STR,
    "relative_cost": {op: ("num", 0.0, 1e6, True) for op in MAC_OPS},
}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_value(v, rule: tuple, path: Path, key: str):
    """``v`` checked against one schema rule; returns it as float/int/str."""
    kind = rule[0]
    if kind == "str":
        if not isinstance(v, str):
            raise ConfigError(f"expected a string, got {v!r}", path=path, field=key)
        return v
    if not _is_number(v):
        raise ConfigError(f"expected a number, got {v!r}", path=path, field=key)
    if not math.isfinite(v):
        raise ConfigError(f"must be a finite number, got {v!r}", path=path, field=key)
    if kind == "int":
        lo, hi = rule[1], rule[2]
        if v != int(v):
            raise ConfigError(f"must be a whole number of bytes, got {v!r}", path=path, field=key)
        if not lo <= v <= hi:
            raise ConfigError(f"must be in [{lo}, {hi}], got {v!r}", path=path, field=key)
        return int(v)
    lo, hi, lo_open = rule[1], rule[2], rule[3]
    if (v <= lo if lo_open else v < lo) or v > hi:
        raise ConfigError(f"must be {'>' if lo_open else '>='} {lo:g} and <= {hi:g}, got {v!r}",
                          path=path, field=key)
    return float(v)


def _validate(d: dict, schema: dict, path: Path, prefix: str = "") -> dict:
    """``d`` checked against ``schema``: unknown keys, missing required keys, types, finiteness
    and ranges are :class:`ConfigError` naming the file and the dotted field."""
    unknown = sorted(set(d) - set(schema))
    if unknown:
        raise ConfigError(f"unknown key (known here: {', '.join(schema)})", path=path, field=prefix + unknown[0])
    out = {}
    for k, rule in schema.items():
        key = prefix + k
        if isinstance(rule, dict):
            if k not in d:
                raise ConfigError("missing table in device profile", path=path, field=key)
            if not isinstance(d[k], dict):
                raise ConfigError(f"expected a table, got {d[k]!r}", path=path, field=key)
            out[k] = _validate(d[k], rule, path, key + ".")
            continue
        required = rule[1] if rule[0] == "str" else (rule[4] if len(rule) > 4 else True)
        if k not in d:
            if required:
                raise ConfigError("missing field in device profile", path=path, field=key)
            continue
        out[k] = _check_value(d[k], rule, path, key)
    return out


def _read_profile(name_or_path: str | Path) -> tuple[Path, dict]:
    """The profile file for a name (``firmware_sim/devices/NAME.toml``) or a path, parsed."""
    s = str(name_or_path)
    if s.endswith(".toml") or "/" in s or "\\" in s:
        p = Path(s)
        if not p.is_file():
            raise ConfigError("device profile file not found" if not p.exists() else "not a file", path=p,
                              field="device", hint=f"pass a .toml profile or one of {', '.join(available_devices())}")
    else:
        p = DEVICES_DIR / f"{s}.toml"
        if not (s and s[0] != "." and p.is_file()):
            raise ConfigError(f"unknown device profile {s!r} (available: {', '.join(available_devices())})",
                              field="device", hint="pick one of those or pass a path to a .toml profile")
    try:
        return p, tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"not valid TOML ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                          path=p) from e
    except OSError as e:
        raise ConfigError(f"cannot read ({e.strerror or type(e).__name__})", path=p) from e


def load_device(name_or_path: str | Path = DEFAULT_DEVICE) -> DeviceProfile:
    """Load a profile by name (``nrf52840``, ``stm32u5``, ``phone-big-core``) or ``.toml`` path.

    Raises:
        ConfigError: unknown name; a file that is missing, unreadable or not TOML (naming the
            file); an unknown or missing key, a wrong type, a non-finite or out-of-range number
            (naming the file and the dotted field, e.g. ``cpu.clock_hz``).
    """
    p, d = _read_profile(name_or_path)
    cal_raw = d.pop("calibration", None)
    v = _validate(d, SCHEMA, p)
    cal = {}
    if cal_raw is not None:
        if not isinstance(cal_raw, dict):
            raise ConfigError(f"expected a table, got {cal_raw!r}", path=p, field="calibration")
        cal = _validate(cal_raw, CALIBRATION_SCHEMA, p, "calibration.")
        from firmware_sim.calibration import ANCHOR_MODELS
        if cal["anchor_model"] not in ANCHOR_MODELS:
            raise ConfigError(f"unknown anchor model {cal['anchor_model']!r} (known: {', '.join(ANCHOR_MODELS)})",
                              path=p, field="calibration.anchor_model")
    cpu, mem, acc, ppg = v["cpu"], v["memory"], v["sensors"]["acc"], v["sensors"]["ppg"]
    if acc["current_ua"] + cpu["sleep_current_ua"] <= 0:
        raise ConfigError("the floor power (ACC current + MCU sleep current) must be > 0, or battery life "
                          "is infinite", path=p, field="sensors.acc.current_ua")
    for k in ("reserved_ram_bytes",):
        if mem[k] > mem["ram_bytes"]:
            raise ConfigError(f"exceeds memory.ram_bytes ({mem['ram_bytes']})", path=p, field=f"memory.{k}")
    if mem["reserved_flash_bytes"] + mem["runtime_flash_bytes"] > mem["flash_bytes"]:
        raise ConfigError(f"reserved + runtime flash exceed memory.flash_bytes ({mem['flash_bytes']})",
                          path=p, field="memory.reserved_flash_bytes")
    ov = cpu["overhead"]
    dev = DeviceProfile(
        name=v["name"], description=v.get("description", ""), kind=v.get("kind", "mcu"),
        core=cpu["core"], clock_hz=cpu["clock_hz"], supply_v=cpu["supply_v"],
        active_current_ma=cpu["active_current_ma"], sleep_current_ua=cpu["sleep_current_ua"],
        wake_cycles=cpu["wake_cycles"], gate_cycles_per_sample=cpu["gate_cycles_per_sample"],
        cycles_per_mac=dict(cpu["cycles_per_mac"]),
        per_layer_cycles=ov["per_layer_cycles"],
        elementwise_cycles_per_element=ov["elementwise_cycles_per_element"],
        pool_cycles_per_element=ov["pool_cycles_per_element"],
        ram_bytes=mem["ram_bytes"], flash_bytes=mem["flash_bytes"],
        reserved_ram_bytes=mem["reserved_ram_bytes"], reserved_flash_bytes=mem["reserved_flash_bytes"],
        runtime_flash_bytes=mem["runtime_flash_bytes"],
        acc_current_ua=acc["current_ua"], acc_part=acc["part"],
        ppg_power_mw=ppg["power_mw"], ppg_part=ppg["part"],
        radio_event_charge_uc=v["radio"]["event_charge_uc"], radio_interval_s=v["radio"]["interval_s"],
        battery_capacity_mah=v["battery"]["capacity_mah"], battery_voltage_v=v["battery"]["voltage_v"],
        calibration=cal, path=str(p))
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
