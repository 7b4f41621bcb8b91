"""The gate's decisions over a whole trace, from the runtime's own gate (``runtime/gate.py``).

The simulator replays exactly the decisions the streaming runtime (and firmware, and the
phone demo) would make: ``runtime.gate.gate_recording`` over the trace, then one decision per
model window. Only the glue lives here: axis order, the trace's rate, and on-time in seconds.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgefm.errors import ConfigError
from runtime.gate import GateConfig, gate_recording

__all__ = ["GateConfig", "window_gate", "always_off"]


def always_off() -> GateConfig:
    """A gate that never fires (thresholds far above any wrist motion, no periodic wake)."""
    return GateConfig(on_threshold=1e9, off_threshold=1e9, wake_every_s=0.0)


def window_gate(acc: np.ndarray, valid: np.ndarray, fs_hz: float, window_s: float, hop_s: float,
                cfg: GateConfig) -> tuple[np.ndarray, float]:
    """``acc: (3, n)`` g at ``fs_hz`` -> (per-window decision ``(N,)`` bool for windows starting
    at ``i * hop``, seconds the gate was on). The gate runs at the trace's rate."""
    if not isinstance(cfg, GateConfig):
        raise ConfigError(f"expected runtime.gate.GateConfig, got {type(cfg).__name__}", field="gate")
    if abs(cfg.fs_hz - fs_hz) > 1e-9:
        cfg = dataclasses.replace(cfg, fs_hz=float(fs_hz))   # validates block_s at the new rate
    window, hop = int(round(window_s * fs_hz)), int(round(hop_s * fs_hz))
    blocks, win = gate_recording(np.ascontiguousarray(np.asarray(acc).T), np.asarray(valid, bool), cfg,
                                 window, hop)
    return win, float(blocks.sum()) * cfg.block_s
