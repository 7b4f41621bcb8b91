"""One adapter module per backend library; each exports AND loads/runs an artifact.

Runner contract (the runtime, profiler and verifier build on it; keep it stable):

    runner = edgefm.adapters.<backend>.load_runner(path_or_bytes)
    y = runner.run(x)     # x: np.ndarray in the model's raw input dtype (float32, or int8 for
                          # full-integer models), shape as in input_details; returns raw output
    runner.input_details / runner.output_details: list[TensorDetails]
                          # name, dtype, shape, (scale, zero_point) where quantized (scale 0.0 = float)
    y = runner.run_from(z)
                          # the runtime's hot path: z is C-contiguous, shaped as input_details[0]
                          # (any size in a dynamic dimension), float32 or the input dtype, with
                          # values the input dtype holds exactly (already rounded and clipped for
                          # int8); it is cast straight into the model's input (into the
                          # interpreter's own buffer where the library allows) and not read after
                          # the call. Returns the raw output as a fresh array the caller owns.
                          # No other checks: the caller has made z right.

Backends: ``executorch`` (.pte), ``litert`` (.tflite), ``onnx`` (.onnx), ``tflm`` (.tflite run by
the TFLite Micro interpreter). Only these modules import the backend libraries, so an upgrade
changes one file.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from edgefm.errors import ConfigError, ExportError

BACKENDS = ("executorch", "litert", "onnx", "tflm")
SUFFIX_BACKEND = {".pte": "executorch", ".tflite": "litert", ".onnx": "onnx"}


@dataclass(frozen=True)
class TensorDetails:
    """One input or output tensor as stored in the artifact."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]          # -1 for a dynamic dimension
    scale: float = 0.0              # 0.0 = not quantized
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.scale > 0.0

    def to_dict(self) -> dict:
        return {"name": self.name, "dtype": np.dtype(self.dtype).name, "shape": list(self.shape),
                "scale": self.scale, "zero_point": self.zero_point}


class Runner(Protocol):
    input_details: list[TensorDetails]
    output_details: list[TensorDetails]

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def run_from(self, z: np.ndarray) -> np.ndarray: ...


def read_model_bytes(path_or_bytes: str | Path | bytes | bytearray) -> bytes:
    """The artifact's bytes from a path or the bytes themselves."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    p = Path(path_or_bytes)
    if not p.is_file():
        raise ExportError("artifact not found", path=p)
    return p.read_bytes()


def get_adapter(backend: str):
    """The adapter module for ``backend`` (``executorch``, ``litert``, ``onnx``, ``tflm``)."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}", field="backend",
                          hint=f"choose one of {', '.join(BACKENDS)}")
    return importlib.import_module(f"edgefm.adapters.{backend}")


def load_runner(path: str | Path, backend: str | None = None) -> Runner:
    """A runner for an artifact file, the backend chosen by ``backend`` or the file suffix."""
    p = Path(path)
    backend = backend or SUFFIX_BACKEND.get(p.suffix)
    if backend is None:
        raise ConfigError(f"cannot tell the backend of {p.name!r} from its suffix", path=p,
                          hint="pass backend= one of " + ", ".join(BACKENDS))
    return get_adapter(backend).load_runner(p)
