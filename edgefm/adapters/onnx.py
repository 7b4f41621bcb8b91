"""ONNX adapter: ``torch.onnx`` export (fp32 from the eager module; int8 QDQ from a PT2E-quantized
graph, so the ONNX carries the same scales and zero points as the .pte and .tflite) and running
with ONNX Runtime.

Runner contract (see :mod:`edgefm.adapters`): ``load_runner(path_or_bytes) -> Runner`` with
``run(x: np.ndarray) -> np.ndarray`` in the model's raw dtypes (QDQ models built here keep
float32 input and output; the int8 work happens between QuantizeLinear/DequantizeLinear) and
``input_details`` / ``output_details``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from edgefm.adapters import TensorDetails, read_model_bytes
from edgefm.errors import ExportError

LIBRARY = "onnxruntime"
OPSET = 17            # fp32 (TorchScript exporter)
QDQ_OPSET = 18        # int8 QDQ (dynamo exporter; onnxscript's quantized_decomposed functions)
INPUT_NAME, OUTPUT_NAME = "x", "y"


def export(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> bytes:
    """fp32 ONNX bytes (opset 17, dynamic batch) of an eager module. Deterministic: the
    TorchScript exporter writes no timestamps or random names."""
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model.eval(), tuple(example), buf, input_names=[INPUT_NAME],
                              output_names=[OUTPUT_NAME], opset_version=OPSET, dynamo=False,
                              dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                              do_constant_folding=True)
    except Exception as e:
        raise ExportError(f"ONNX export failed: {str(e).splitlines()[0]}",
                          hint="run `edgefm export --check-only` to list unsupported ops") from e
    return buf.getvalue()


def export_qdq(qgm: torch.fx.GraphModule, example: tuple[torch.Tensor, ...]) -> bytes:
    """QDQ ONNX bytes (opset :data:`QDQ_OPSET`) of a PT2E int8 GraphModule
    (``convert_pt2e(..., fold_quantize=True)``): the dynamo exporter (torch.onnx + onnxscript's
    torchlib) maps ``quantized_decomposed.quantize/dequantize_per_tensor`` to
    QuantizeLinear/DequantizeLinear and ``dequantize_per_channel`` of the int8 weights to a
    per-axis DequantizeLinear, so ONNX Runtime runs the very scales and zero points the other
    int8 artifacts carry (it fuses the QDQ pairs into QLinearConv / QGemm). Float32 input and
    output; the batch is the example's (the quantized graph is traced at batch 1). Deterministic:
    per-node metadata (stack traces, fx node text) is dropped."""
    try:
        with _quiet(), contextlib.redirect_stdout(io.StringIO()):
            prog = torch.onnx.export(qgm, tuple(example), dynamo=True, input_names=[INPUT_NAME],
                                     output_names=[OUTPUT_NAME], opset_version=QDQ_OPSET, verbose=False)
        proto = prog.model_proto
    except Exception as e:
        raise ExportError(f"ONNX export of the int8 graph failed: {str(e).splitlines()[0]}",
                          hint="run `edgefm export --check-only` to list unsupported ops") from e
    ops = {n.op_type for n in proto.graph.node}
    if not {"QuantizeLinear", "DequantizeLinear"} <= ops:
        raise ExportError("the int8 ONNX graph has no QuantizeLinear/DequantizeLinear nodes: the "
                          "exporter decomposed the quantize ops", hint="check the torch/onnxscript versions")
    for n in proto.graph.node:
        del n.metadata_props[:]
        n.doc_string = ""
    for v in list(proto.graph.input) + list(proto.graph.output) + list(proto.graph.value_info):
        del v.metadata_props[:]
    del proto.metadata_props[:]
    proto.doc_string = proto.graph.doc_string = ""
    return proto.SerializeToString()


def qdq_params(model: bytes) -> list[dict]:
    """Scale / zero point of every QuantizeLinear and DequantizeLinear of an ONNX model, in
    graph order: ``[{op, scale, zero_point}]`` (lists for per-axis nodes)."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load_from_string(model).graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    out = []
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            s = consts.get(n.input[1])
            z = consts.get(n.input[2]) if len(n.input) > 2 else None
            out.append({"op": n.op_type, "scale": None if s is None else s.tolist(),
                        "zero_point": None if z is None else z.tolist()})
    return out


@contextlib.contextmanager
def _quiet():
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    root = logging.getLogger()
    old = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(old)


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
              "tensor(double)": np.float64, "tensor(int32)": np.int32, "tensor(int64)": np.int64}


class OnnxRunner:
    """Runs an ONNX model with ONNX Runtime's CPU execution provider, one thread."""

    def __init__(self, model: bytes):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self._s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise ExportError(f"ONNX Runtime could not load the model: {str(e).splitlines()[0]}",
                              hint="re-export the .onnx") from e

        def det(v):
            return TensorDetails(v.name, np.dtype(_ORT_TYPES.get(v.type, np.float32)),
                                 tuple(s if isinstance(s, int) else -1 for s in v.shape))
        self.input_details = [det(v) for v in self._s.get_inputs()]
        self.output_details = [det(v) for v in self._s.get_outputs()]
        # hot path, built once: the output list, the feed dict (its one value replaced per call)
        self._in_name, self._in_dtype = self.input_details[0].name, self.input_details[0].dtype
        self._outs = [self.output_details[0].name]
        self._feed: dict = {}
        self._run = self._s.run

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: raw input (N, ...) in ``input_details[0].dtype`` -> raw output."""
        x = np.ascontiguousarray(x, dtype=self._in_dtype)
        return self._run(self._outs, {self._in_name: x})[0]

    def run_from(self, z: np.ndarray) -> np.ndarray:
        """Runner contract hot path: ONNX Runtime reads z in place (float inputs: no copy)."""
        feed = self._feed
        feed[self._in_name] = z if z.dtype == self._in_dtype else z.astype(self._in_dtype)
        return self._run(self._outs, feed)[0]


def load_runner(path_or_bytes: str | Path | bytes) -> OnnxRunner:
    return OnnxRunner(read_model_bytes(path_or_bytes))
