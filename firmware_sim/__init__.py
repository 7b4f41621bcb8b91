"""Firmware simulator: device profiles, per-layer cost, gated-inference energy and battery life.

    from firmware_sim import load_device, simulate, model_info_from_artifact, load_trace
"""

from firmware_sim.costs import (LayerCost, ModelInfo, layers_from_onnx, layers_from_tflite,
                                layers_from_torch, model_info_from_artifact, model_info_from_torch)
from firmware_sim.device import (DEFAULT_DEVICE, DeviceProfile, available_devices, check_calibration,
                                 load_device)
from firmware_sim.energy import COMPONENTS, EnergyBreakdown
from firmware_sim.gate import GateConfig, always_off
from firmware_sim.simulate import (Policy, PolicyResult, SimConfig, SimResult, Trace, default_policies,
                                   load_trace, simulate)

__all__ = ["LayerCost", "ModelInfo", "layers_from_onnx", "layers_from_tflite", "layers_from_torch",
           "model_info_from_artifact", "model_info_from_torch", "DEFAULT_DEVICE", "DeviceProfile",
           "available_devices", "check_calibration", "load_device", "COMPONENTS", "EnergyBreakdown",
           "GateConfig", "always_off", "Policy", "PolicyResult", "SimConfig", "SimResult", "Trace", "default_policies",
           "load_trace", "simulate"]
