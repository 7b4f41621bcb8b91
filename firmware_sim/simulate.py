"""Simulate a deployed model on a device over a continuous ACC trace, policy by policy.

    from firmware_sim import load_device, load_trace, model_info_from_artifact, simulate
    res = simulate(model_info_from_artifact("run/export/student_int8.tflite"),
                   load_trace("cohort/traces"), load_device("nrf52840"))
    print(res.table())

For every policy: the gate's decisions over the trace (if gated), inference time and energy
from the model's per-layer MACs priced with the device's cycles per MAC, PPG energy under the
policy's PPG mode, ACC, wake-ups, radio and sleep; average power and battery days; beside
them the physical ceiling (battery energy over ACC + MCU sleep) and each policy's share of it.
Latency (worst case per hop vs the hop deadline), RAM and flash are checked against the device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from edgefm.errors import ConfigError, DataError
from firmware_sim.costs import ModelInfo
from firmware_sim.device import DeviceProfile, load_device
from firmware_sim.energy import COMPONENTS, EnergyBreakdown, account
from firmware_sim.gate import GateConfig, window_gate

PPG_MODES = ("on", "off", "duty", "gated")
ACC_CHANNELS = ("acc_x", "acc_y", "acc_z")


@dataclass(frozen=True)
class Policy:
    """How the device spends energy.

    run_model: whether the network runs at all.
    gate: None = the network runs on every valid window; a GateConfig = only when it fires.
    ppg: "on" (always), "off", "duty" (on ``ppg_duty`` of the time), "gated" (on while the gate is on).
    """

    name: str
    run_model: bool = True
    gate: GateConfig | None = None
    ppg: str = "off"
    ppg_duty: float = 0.0

    def __post_init__(self):
        if self.ppg not in PPG_MODES:
            raise ConfigError(f"unknown PPG mode {self.ppg!r} (one of {', '.join(PPG_MODES)})",
                              field=f"policy.{self.name}.ppg")
        if not 0.0 <= self.ppg_duty <= 1.0:
            raise ConfigError("ppg_duty must be in [0, 1]", field=f"policy.{self.name}.ppg_duty")
        if self.ppg == "duty" and self.ppg_duty == 0.0:
            raise ConfigError("ppg='duty' needs ppg_duty > 0", field=f"policy.{self.name}.ppg_duty")
        if self.ppg == "gated" and self.gate is None:
            raise ConfigError("ppg='gated' needs a gate", field=f"policy.{self.name}.gate")
        if self.gate is not None and not isinstance(self.gate, GateConfig):
            raise ConfigError(f"gate must be a runtime.gate.GateConfig, got {type(self.gate).__name__}",
                              field=f"policy.{self.name}.gate")


def default_policies(gate: GateConfig | None = None) -> list[Policy]:
    """The four sensor policies, side by side."""
    g = gate or GateConfig()
    return [
        Policy("continuous-ppg", run_model=True, gate=None, ppg="on"),
        Policy("acc-always", run_model=True, gate=None, ppg="off"),
        Policy("acc-gated", run_model=True, gate=g, ppg="gated"),
        Policy("gated-ppg-off", run_model=True, gate=g, ppg="off"),
    ]


@dataclass(frozen=True)
class SimConfig:
    """min_valid: a window runs only if at least this fraction of its ACC samples is valid.
    radio_interval_s: one BLE event this often (None: the device profile's).
    ring_buffer_bytes_per_sample: raw ACC sample storage per channel (int16 = 2)."""

    min_valid: float = 0.9
    radio_interval_s: float | None = None
    ring_buffer_bytes_per_sample: int = 2

    def __post_init__(self):
        if not 0.0 <= self.min_valid <= 1.0:
            raise ConfigError("min_valid must be in [0, 1]", field="min_valid")
        if self.radio_interval_s is not None and not self.radio_interval_s > 0:
            raise ConfigError("radio_interval_s must be > 0", field="radio_interval_s")


@dataclass
class Trace:
    """Continuous raw ACC: ``acc: (3, n)`` in g at ``fs_hz``, ``valid: (n,)`` True = observed."""

    acc: np.ndarray
    valid: np.ndarray
    fs_hz: float
    id: str = "trace"

    def __post_init__(self):
        self.acc = np.asarray(self.acc, dtype=np.float32)
        if self.acc.ndim != 2 or self.acc.shape[0] != 3:
            raise DataError(f"ACC must be (3, n), got {self.acc.shape}", field=f"{self.id}.acc")
        self.valid = np.asarray(self.valid, dtype=bool) & np.isfinite(self.acc).all(0)
        if self.valid.shape != (self.acc.shape[1],):
            raise DataError("validity mask length differs from the data", field=f"{self.id}.valid")
        if not (np.isfinite(self.fs_hz) and self.fs_hz > 0):
            raise DataError(f"bad sampling rate {self.fs_hz}", field=f"{self.id}.fs_hz")

    @property
    def duration_s(self) -> float:
        return self.acc.shape[1] / self.fs_hz

    @classmethod
    def from_recording(cls, rec) -> "Trace":
        missing = [c for c in ACC_CHANNELS if c not in rec.streams]
        if missing:
            raise DataError(f"recording {rec.id} has no {', '.join(missing)} "
                            f"(has: {', '.join(rec.streams)})", field=missing[0])
        rates = {rec.streams[c].spec.fs_hz for c in ACC_CHANNELS}
        if len(rates) != 1:
            raise DataError(f"ACC axes of {rec.id} have different rates {sorted(rates)}", field="acc_x.fs_hz")
        n = min(rec.streams[c].n for c in ACC_CHANNELS)
        acc = np.stack([np.asarray(rec.streams[c].data[:n]) for c in ACC_CHANNELS])
        valid = np.logical_and.reduce([np.asarray(rec.streams[c].valid[:n]) for c in ACC_CHANNELS])
        return cls(acc, valid, rates.pop(), id=rec.id)


def load_model_info(path: str | Path, *, unverified: bool = False) -> ModelInfo:
    """:class:`ModelInfo` of an exported ``.tflite``/``.onnx``, its sha256 checked against its
    manifest *before* the graph is parsed. A file without a manifest is refused unless
    ``unverified``; then the wrist-raw defaults are assumed and ``meta['integrity']`` (and every
    simulation report) says "unverified".

    Raises:
        IntegrityError: the file differs from its manifest.
        ManifestError: no manifest (without ``unverified``), or the artifact is missing.
    """
    from edgefm.errors import ManifestError
    from edgefm.manifest import manifest_path_for
    from firmware_sim.costs import model_info_from_artifact
    from runtime.model import verified_manifest
    path = Path(path)
    if not path.is_file():
        raise ManifestError("artifact not found", path=path)
    mp = manifest_path_for(path)
    if mp.exists() or mp.is_symlink():
        verified_manifest(path)
        integrity = "verified"
    elif unverified:
        integrity = "unverified"
    else:
        raise ManifestError(f"no manifest {mp.name} beside it: its sha256 cannot be checked", path=path,
                            field="manifest", hint="re-export it, or pass --unverified to simulate it anyway "
                                                   "(the report then says 'unverified')")
    try:
        info = model_info_from_artifact(path)
    except (ValueError, IndexError, KeyError, TypeError, AttributeError, OverflowError) as e:
        raise ManifestError(f"cannot read the model graph or its manifest's input_spec "
                            f"({type(e).__name__}: {str(e)[:120]})", path=path, hint="re-export it") from e
    _check_model_timing(info, mp)
    info.meta["integrity"] = integrity
    return info


MAX_FS_HZ = 1000.0          # an ACC rate beyond any wearable's
MAX_WINDOW_SAMPLES = 10**6


def _check_model_timing(info: ModelInfo, manifest: Path) -> None:
    """The rate, window and hop that size every trace array: finite and in range (a manifest
    with ``fs_hz = 1e9`` would otherwise allocate terabytes)."""
    from edgefm.errors import ManifestError
    fs = info.fs_hz
    if not (isinstance(fs, (int, float)) and np.isfinite(fs) and 0 < fs <= MAX_FS_HZ):
        raise ManifestError(f"must be a rate in (0, {MAX_FS_HZ:g}] Hz, got {fs!r}", path=manifest,
                            field="input_spec.fs_hz")
    for k in ("window", "hop"):
        v = getattr(info, k)
        if not (isinstance(v, (int, np.integer)) and 0 < v <= MAX_WINDOW_SAMPLES):
            raise ManifestError(f"must be a sample count in [1, {MAX_WINDOW_SAMPLES}], got {v!r}", path=manifest,
                                field=f"input_spec.{k}")


def load_trace(path: str | Path, subjects: Iterable[str] | None = None) -> list[Trace]:
    """Traces from a recordings store, or a cohort directory (its ``traces/``)."""
    from edgefm.data.store import read_recordings
    path = Path(path)
    if (path / "traces" / "manifest.json").exists():
        path = path / "traces"
    traces = [Trace.from_recording(r) for r in read_recordings(path, subjects=subjects)]
    if not traces:
        raise DataError("no recordings with ACC found", path=path, hint="pass a cohort's traces/ directory")
    return traces


@dataclass
class PolicyResult:
    policy: Policy
    energy: EnergyBreakdown
    battery_days: float
    ceiling_fraction: float
    windows: int
    windows_invalid: int
    inferences: int
    skipped: int

    @property
    def skipped_fraction(self) -> float:
        valid = self.windows - self.windows_invalid
        return self.skipped / valid if valid else 0.0

    def to_dict(self) -> dict:
        return {"policy": dataclasses.asdict(self.policy), "energy_j": dict(self.energy.joules),
                "total_j": self.energy.total_j, "average_power_mw": self.energy.average_power_w * 1e3,
                "power_uw": {k: v * 1e6 for k, v in self.energy.power_w().items()},
                "battery_days": self.battery_days, "ceiling_fraction": self.ceiling_fraction,
                "windows": self.windows, "windows_invalid": self.windows_invalid,
                "inferences": self.inferences, "skipped": self.skipped,
                "skipped_fraction": self.skipped_fraction}


@dataclass
class SimResult:
    device: DeviceProfile
    model: ModelInfo
    duration_s: float
    policies: list[PolicyResult]
    inference_ms: float
    inference_energy_uj: float
    worst_case_latency_ms: float
    deadline_ms: float
    ram: dict
    flash: dict
    floor_power_uw: float
    ceiling_days: float
    traces: list[str] = field(default_factory=list)

    @property
    def latency_ok(self) -> bool:
        return self.worst_case_latency_ms <= self.deadline_ms

    def layer_times_ms(self) -> list[dict]:
        """Per-layer time on the device, slowest first: where the inference time goes."""
        rows = [{"name": l.name, "op": l.op, "macs": l.macs,
                 "ms": self.device.layer_cycles(l) / self.device.clock_hz * 1e3} for l in self.model.layers]
        return sorted(rows, key=lambda r: -r["ms"])

    def policy(self, name: str) -> PolicyResult:
        for p in self.policies:
            if p.policy.name == name:
                return p
        raise ConfigError(f"no policy {name!r} (have: {', '.join(p.policy.name for p in self.policies)})",
                          field="policy")

    def battery_days(self) -> dict[str, float]:
        return {p.policy.name: p.battery_days for p in self.policies}

    def to_dict(self) -> dict:
        return {"device": self.device.name, "model": self.model.to_dict(),
                "model_integrity": _integrity(self.model),
                "duration_s": self.duration_s,
                "duration_days": self.duration_s / 86400, "traces": self.traces,
                "inference_ms": self.inference_ms, "inference_energy_uj": self.inference_energy_uj,
                "worst_case_latency_ms": self.worst_case_latency_ms, "deadline_ms": self.deadline_ms,
                "latency_ok": self.latency_ok, "ram": self.ram, "flash": self.flash,
                "floor_power_uw": self.floor_power_uw, "ceiling_days": self.ceiling_days,
                "battery_days": self.battery_days(), "layers_ms": self.layer_times_ms()[:20],
                "policies": [p.to_dict() for p in self.policies]}

    def table(self) -> str:
        """A plain-text side-by-side table (the CLI renders a rich one)."""
        head = f"{'policy':16s} {'avg uW':>9s} {'days':>7s} {'of ceiling':>10s} {'inferences':>10s} {'skipped':>8s}"
        rows = [head] + [
            f"{p.policy.name:16s} {p.energy.average_power_w * 1e6:9.1f} {p.battery_days:7.1f} "
            f"{p.ceiling_fraction:9.0%} {p.inferences:10d} {p.skipped_fraction:7.0%}" for p in self.policies]
        rows.append(f"{'ceiling (floor)':16s} {self.floor_power_uw:9.1f} {self.ceiling_days:7.1f} {'100%':>10s}")
        return "\n".join(rows)


def _integrity(model: ModelInfo) -> str:
    """verified / unverified for an artifact (see :func:`load_model_info`); a torch model has none."""
    if "integrity" in model.meta:
        return str(model.meta["integrity"])
    if model.meta.get("manifest"):
        return "verified"
    return "unverified" if model.meta.get("assumed") else "not an artifact (a torch model)"


def _window_validity(tr: Trace, model: ModelInfo, cfg: SimConfig) -> tuple[np.ndarray, int]:
    """Valid flag per model window (windows start at ``i * hop``) and hops per hop (H).

    A window is valid when at least ``cfg.min_valid`` of its ACC samples are observed.
    """
    hop = int(round(model.hop_s * tr.fs_hz))
    w = max(1, int(round(model.window_s / model.hop_s)))
    H = tr.acc.shape[1] // hop
    if H < w:
        raise DataError(f"trace {tr.id} is shorter ({tr.duration_s:.0f} s) than one window "
                        f"({model.window_s:g} s)", field=f"{tr.id}.duration")
    vfrac = tr.valid[:H * hop].reshape(H, hop).mean(1)
    c = np.concatenate([[0.0], np.cumsum(vfrac)])
    return (c[w:] - c[:-w]) / w >= cfg.min_valid, H


def simulate(model: ModelInfo, trace: Trace | Sequence[Trace] | str | Path,
             device: DeviceProfile | str = "nrf52840", policies: Sequence[Policy] | None = None,
             config: SimConfig = SimConfig()) -> SimResult:
    """Project energy, battery life, latency and memory of ``model`` on ``device`` over ``trace``
    for each policy (default: :func:`default_policies`)."""
    if isinstance(device, str):
        device = load_device(device)
    if isinstance(trace, (str, Path)):
        traces = load_trace(trace)
    elif isinstance(trace, Trace):
        traces = [trace]
    else:
        traces = list(trace)
    if not traces:
        raise DataError("no traces to simulate", field="trace")
    policies = list(policies or default_policies())
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ConfigError(f"duplicate policy names in {names}", field="policies")

    t_inf = device.inference_seconds(model)
    radio_interval = config.radio_interval_s or device.radio_interval_s
    validity = [(_window_validity(tr, model, config), tr) for tr in traces]
    duration = sum(tr.duration_s for tr in traces)
    results = []
    for pol in policies:
        n_hops = n_inf = n_win = n_invalid = gate_samples = 0
        ppg_on_s = 0.0
        for (win_valid, H), tr in validity:
            n_hops += H
            n_win += len(win_valid)
            n_invalid += int((~win_valid).sum())
            if pol.gate is not None:
                on, on_s = window_gate(tr.acc, tr.valid, tr.fs_hz, model.window_s, model.hop_s, pol.gate)
                if len(on) < len(win_valid):   # trailing partial gate block: no decision, no run
                    on = np.concatenate([on, np.zeros(len(win_valid) - len(on), bool)])
                on = on[:len(win_valid)]
                gate_samples += int(tr.acc.shape[1])
            else:
                on, on_s = np.ones(len(win_valid), dtype=bool), tr.duration_s
            run = on & win_valid
            if pol.run_model:
                n_inf += int(run.sum())
            if pol.ppg == "on":
                ppg_on_s += tr.duration_s
            elif pol.ppg == "duty":
                ppg_on_s += pol.ppg_duty * tr.duration_s
            elif pol.ppg == "gated":
                ppg_on_s += on_s
        e = account(device=device, duration_s=duration, n_hops=n_hops, n_inferences=n_inf,
                    gate_samples=gate_samples, inference_s=t_inf, ppg_on_s=ppg_on_s,
                    n_radio_events=duration / radio_interval)
        days = e.battery_days(device.battery_energy_j)
        results.append(PolicyResult(pol, e, days, days / device.ceiling_days, n_win, n_invalid, n_inf,
                                    (n_win - n_invalid - n_inf) if pol.run_model else n_win - n_invalid))

    hop_samples = model.hop_s * device_fs(traces)
    worst_s = (device.wake_cycles + hop_samples * device.gate_cycles_per_sample) / device.clock_hz + t_inf
    return SimResult(device=device, model=model, duration_s=duration, policies=results,
                     inference_ms=t_inf * 1e3, inference_energy_uj=t_inf * device.active_power_w * 1e6,
                     worst_case_latency_ms=worst_s * 1e3, deadline_ms=model.hop_s * 1e3,
                     ram=memory_budget(model, device, config), flash=flash_budget(model, device),
                     floor_power_uw=device.floor_power_w * 1e6, ceiling_days=device.ceiling_days,
                     traces=[tr.id for tr in traces])


def device_fs(traces: Sequence[Trace]) -> float:
    return max(tr.fs_hz for tr in traces)


def memory_budget(model: ModelInfo, device: DeviceProfile, config: SimConfig = SimConfig()) -> dict:
    """RAM: TFLite Micro arena (measured, from the manifest; else our estimate) + ring buffer
    (raw ACC, window + hop samples per channel) + output queue + the device's reserved RAM."""
    est = model.estimated_arena_bytes()
    arena = model.arena_bytes if model.arena_bytes is not None else est
    ring = len(model.channels) * (model.window + model.hop) * config.ring_buffer_bytes_per_sample
    outq = 32 * 8   # 32 timestamped float outputs awaiting the radio
    total = arena + ring + outq + device.reserved_ram_bytes
    return {"arena_bytes_measured": model.arena_bytes, "arena_bytes_estimated": est,
            "arena_estimate": model.arena_estimate,
            "arena_bytes_used": arena, "arena_source": "measured" if model.arena_bytes is not None else "estimated",
            "buffers_bytes": ring + outq, "reserved_bytes": device.reserved_ram_bytes,
            "total_bytes": total, "limit_bytes": device.ram_bytes, "ok": total <= device.ram_bytes}


def flash_budget(model: ModelInfo, device: DeviceProfile) -> dict:
    mb = model.model_bytes if model.model_bytes is not None else model.estimated_model_bytes()
    total = mb + device.runtime_flash_bytes + device.reserved_flash_bytes
    return {"model_bytes": mb, "model_bytes_source": "artifact" if model.model_bytes is not None else "estimated",
            "runtime_bytes": device.runtime_flash_bytes, "reserved_bytes": device.reserved_flash_bytes,
            "total_bytes": total, "limit_bytes": device.flash_bytes, "ok": total <= device.flash_bytes}
