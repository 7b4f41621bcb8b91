"""edgefm runtime: load an exported artifact, stream sensor samples through it, gate it.

    import runtime
    m = runtime.load("student_q8.tflite")                 # or .pte / .onnx / backend="tflm"
                                                          # sha256 checked against its manifest, always;
                                                          # no manifest: unverified=True, input_spec=...
    y = m.predict(x)                                      # x: (B, C, T) raw units -> (B, D)
    s = runtime.Streamer(m, gate=runtime.GateConfig(...), fs_hz=m.fs_hz)
"""

from runtime.gate import GateConfig, StreamingGate, block_features, gate_offline, gate_recording, window_decisions
from runtime.model import BACKENDS, InputSpec, Model, TensorDetails, load, load_runner
from runtime.ring import RingBuffer
from runtime.stream import STATUS, StreamOutput, Streamer

__all__ = ["load", "Model", "InputSpec", "TensorDetails", "BACKENDS", "load_runner", "GateConfig",
           "StreamingGate", "block_features", "gate_offline", "gate_recording", "window_decisions",
           "RingBuffer", "Streamer", "StreamOutput", "STATUS"]
