"""Real exports of a small ACC->HR conv model to the four runtimes, with manifests.

Used by the runtime tests and benchmarks/bench_runtime.py until (and besides) the export
module: every file here is made by the real exporter (torch.onnx, ExecuTorch XNNPACK,
litert-torch) and runs in the real runtime. The int8 ONNX variant wraps the float graph in
QuantizeLinear/DequantizeLinear so that its input and output are int8 tensors, the way a
full-integer artifact presents itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from edgefm.manifest import write_artifact_manifest

CHANNELS = ("acc_x", "acc_y", "acc_z")
FS_HZ, WINDOW, HOP = 32.0, 256, 64
MEAN = [0.01, -0.02, 0.98]
STD = [0.25, 0.2, 0.3]


class TinyHR(torch.nn.Module):
    """(B, 3, T) normalised ACC -> (B, 1) bpm. ``width`` sets the size (the student is ~10-50k params)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.c1 = torch.nn.Conv1d(3, width, 7, stride=2, padding=3)
        self.c2 = torch.nn.Conv1d(width, 2 * width, 5, stride=2, padding=2)
        self.c3 = torch.nn.Conv1d(2 * width, 2 * width, 5, stride=2, padding=2)
        self.fc = torch.nn.Linear(2 * width, 1)

    def forward(self, x):
        h = torch.relu(self.c1(x))
        h = torch.relu(self.c2(h))
        h = torch.relu(self.c3(h))
        return 70.0 + 10.0 * self.fc(h.mean(-1))


def input_spec() -> dict:
    return {"preset": "wrist-acc", "fs_hz": FS_HZ, "window": WINDOW, "hop": HOP,
            "window_s": WINDOW / FS_HZ, "hop_s": HOP / FS_HZ,
            "channels": [{"name": c, "modality": "acc", "unit": "g", "fs_hz": FS_HZ} for c in CHANNELS],
            "normalisation": {"mean": MEAN, "std": STD}}


def _manifest(path: Path, fmt: str, quant: dict, backends=()):
    write_artifact_manifest(path, {
        "format": fmt, "source": {"checkpoint": None, "config": {"model": "TinyHR"}},
        "input_spec": input_spec(), "output_spec": {"name": "hr", "unit": "bpm"},
        "quantization": quant}, backends)


def _quiet(fn):
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn()


def export_all(out: Path, width: int = 16, seed: int = 0, int8: bool = True,
               model: torch.nn.Module | None = None) -> dict[str, Path]:
    """Export ``TinyHR(width)`` (or ``model``: (B, 3, WINDOW) -> (B, 1)) to ``out``; returns
    {variant: path} (variants: onnx, pte, tflite, tflm (C array), onnx_int8). Also saves the
    eager TinyHR as ``model.pt``."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    m = TinyHR(width).eval() if model is None else model.eval()
    x = torch.randn(1, 3, WINDOW)
    if model is None:
        torch.save(m.state_dict(), out / "model.pt")
    paths = {}

    p = out / "tiny_fp32_ort.onnx"
    _quiet(lambda: torch.onnx.export(m, (x,), str(p), input_names=["x"], output_names=["y"], dynamo=False))
    _manifest(p, "onnx", {"dtype": "float32"}, ("onnxruntime",))
    paths["onnx"] = p

    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    p = out / "tiny_xnnpack.pte"
    ep = torch.export.export(m, (x,))
    prog = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()]).to_executorch()
    p.write_bytes(prog.buffer)
    _manifest(p, "pte", {"dtype": "float32"}, ("executorch",))
    paths["pte"] = p

    import litert_torch
    p = out / "tiny_fp32_litert.tflite"
    _quiet(lambda: litert_torch.convert(m, (x,)).export(str(p)))
    _manifest(p, "tflite", {"dtype": "float32"}, ("ai-edge-litert",))
    paths["tflite"] = p

    data = p.read_bytes()
    cc = out / "tiny_fp32_model_data.cc"
    body = ",".join(f"0x{b:02x}" for b in data)
    cc.write_text(f"// TFLite Micro model\nalignas(16) const unsigned char g_model[] = {{{body}}};\n"
                  f"const unsigned int g_model_len = {len(data)};\n")
    _manifest(cc, "tflm", {"dtype": "float32"}, ("tflite-micro",))
    paths["tflm"] = cc

    if int8:
        paths["onnx_int8"] = _onnx_int8_io(paths["onnx"], out / "tiny_q8io.onnx", m)
    return paths


def _onnx_int8_io(src: Path, dst: Path, m: torch.nn.Module) -> Path:
    """Float ONNX graph with int8 input (DequantizeLinear) and int8 output (QuantizeLinear)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = onnx.load(str(src))
    # input: normalised ACC, N(0,1)-ish -> scale 8/255 covers +-4 sigma
    in_scale, in_zp = 8.0 / 255.0, 0
    out_scale, out_zp = 0.5, -128       # bpm: (q + 128) * 0.5 covers 0..127.5 bpm
    graph = g.graph
    x_f, y_f = graph.input[0].name, graph.output[0].name
    graph.initializer.extend([
        numpy_helper.from_array(np.array(in_scale, np.float32), "in_scale"),
        numpy_helper.from_array(np.array(in_zp, np.int8), "in_zp"),
        numpy_helper.from_array(np.array(out_scale, np.float32), "out_scale"),
        numpy_helper.from_array(np.array(out_zp, np.int8), "out_zp")])
    for node in graph.node:
        node.input[:] = [("x_deq" if i == x_f else i) for i in node.input]
        node.output[:] = [("y_float" if o == y_f else o) for o in node.output]
    graph.node.insert(0, helper.make_node("DequantizeLinear", ["x_q", "in_scale", "in_zp"], ["x_deq"]))
    graph.node.append(helper.make_node("QuantizeLinear", ["y_float", "out_scale", "out_zp"], ["y_q"]))
    shp_in = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    shp_out = [d.dim_value for d in graph.output[0].type.tensor_type.shape.dim]
    del graph.input[:]
    del graph.output[:]
    graph.input.append(helper.make_tensor_value_info("x_q", TensorProto.INT8, shp_in))
    graph.output.append(helper.make_tensor_value_info("y_q", TensorProto.INT8, shp_out))
    onnx.checker.check_model(g)
    onnx.save(g, str(dst))
    _manifest(dst, "onnx", {"dtype": "int8", "input": {"scale": in_scale, "zero_point": in_zp},
                            "output": {"scale": out_scale, "zero_point": out_zp}}, ("onnxruntime",))
    return dst


def eager(out: Path, width: int = 16) -> torch.nn.Module:
    m = TinyHR(width).eval()
    m.load_state_dict(torch.load(Path(out) / "model.pt"))
    return m
