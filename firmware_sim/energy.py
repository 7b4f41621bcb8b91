"""Energy bookkeeping: one policy over one trace on one device, component by component.

Every component is energy in joules over the trace's duration; average power is their sum
over the duration; battery life is the battery's energy (capacity x nominal voltage) over the
average power. Active MCU time is taken out of sleep time, so nothing is counted twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMPONENTS = ("mcu_sleep", "wake", "gate", "inference", "acc", "ppg", "radio")


@dataclass
class EnergyBreakdown:
    """Joules per component over ``duration_s``."""

    duration_s: float
    joules: dict[str, float] = field(default_factory=dict)

    @property
    def total_j(self) -> float:
        return float(sum(self.joules.values()))

    @property
    def average_power_w(self) -> float:
        return self.total_j / self.duration_s

    def battery_days(self, battery_energy_j: float) -> float:
        return battery_energy_j / self.average_power_w / 86400.0

    def power_w(self) -> dict[str, float]:
        return {k: v / self.duration_s for k, v in self.joules.items()}


def account(*, device, duration_s: float, n_hops: int, n_inferences: int, gate_samples: int,
            inference_s: float, ppg_on_s: float, n_radio_events: float) -> EnergyBreakdown:
    """Energy of one policy. ``gate_samples``: ACC samples the gate processed (0 if ungated)."""
    wake_s = n_hops * device.wake_cycles / device.clock_hz
    gate_s = gate_samples * device.gate_cycles_per_sample / device.clock_hz
    infer_s = n_inferences * inference_s
    active_s = wake_s + gate_s + infer_s
    if active_s > duration_s:
        # The device cannot keep up; callers report the deadline miss. Energy is still the
        # work asked for (sleep clamps at zero).
        pass
    pa = device.active_power_w
    j = {
        "mcu_sleep": max(duration_s - active_s, 0.0) * device.sleep_power_w,
        "wake": wake_s * pa,
        "gate": gate_s * pa,
        "inference": infer_s * pa,
        "acc": duration_s * device.acc_power_w,
        "ppg": ppg_on_s * device.ppg_power_w,
        "radio": n_radio_events * device.radio_event_energy_j,
    }
    return EnergyBreakdown(duration_s=duration_s, joules=j)
