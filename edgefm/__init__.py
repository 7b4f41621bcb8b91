"""edgefm: wearable foundation models from the lab to the wrist.

Packages of the distribution:
  edgefm        core: data model, synthetic cohort, importers, teacher, training, CLI, reports
  distill       PPG -> ACC knowledge distillation into microcontroller-sized students
  quantize      structured pruning and int8 quantization
  runtime       one streaming runtime over ExecuTorch, LiteRT, ONNX Runtime, TFLite Micro
  firmware_sim  energy, latency, memory and battery projection on named wristband targets
"""

__version__ = "0.1.0"
