"""ONNX adapter: ``torch.onnx`` export (fp32), ONNX Runtime static QDQ int8 quantization
(per-channel weights), per-tensor quantization error, and running with ONNX Runtime.

Runner contract (see :mod:`edgefm.adapters`): ``load_runner(path_or_bytes) -> Runner`` with
``run(x: np.ndarray) -> np.ndarray`` in the model's raw dtypes (QDQ models built here keep
float32 input and output; the int8 work happens between QuantizeLinear/DequantizeLinear) and
``input_details`` / ``output_details``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from edgefm.adapters import TensorDetails, read_model_bytes
from edgefm.errors import ExportError

LIBRARY = "onnxruntime"
OPSET = 17
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


class _Reader:
    """ONNX Runtime calibration reader over (N, C, T) float32 windows, one window at a time."""

    def __init__(self, calib: np.ndarray):
        self._it = iter([{INPUT_NAME: calib[i:i + 1].astype(np.float32)} for i in range(len(calib))])

    def get_next(self):
        return next(self._it, None)


def quantize_qdq(model: bytes, calib: np.ndarray, per_channel: bool = True,
                 exclude_nodes: list[str] | None = None) -> bytes:
    """Static int8 QDQ quantization with ONNX Runtime's own quantizer (MinMax calibration on
    ``calib`` (N, C, T) float32, symmetric int8 per-channel weights, int8 activations).
    ``exclude_nodes`` stay in float (e.g. the most sensitive layers)."""
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = type("Reader", (_Reader, CalibrationDataReader), {})(calib)
    with tempfile.TemporaryDirectory() as d, _quiet():
        src, pre, dst = Path(d) / "f.onnx", Path(d) / "pre.onnx", Path(d) / "q.onnx"
        src.write_bytes(model)
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(str(pre), str(dst), reader, quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                            nodes_to_exclude=list(exclude_nodes or []),
                            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        except Exception as e:
            raise ExportError(f"ONNX Runtime static quantization failed: {str(e).splitlines()[0]}") from e
        return dst.read_bytes()


def tensor_sqnr(fp32: bytes, qdq: bytes, x: np.ndarray) -> dict[str, float]:
    """Per-tensor SQNR (dB) of the QDQ model's activations against the float model's on ``x``,
    with ONNX Runtime's ``qdq_loss_debug`` tools. Keys are the float model's tensor names."""
    from onnxruntime.quantization.qdq_loss_debug import (collect_activations, compute_activation_error,
                                                         create_activation_matching,
                                                         modify_model_output_intermediate_tensors)
    with tempfile.TemporaryDirectory() as d, _quiet():
        f, q = Path(d) / "f.onnx", Path(d) / "q.onnx"
        f.write_bytes(fp32)
        q.write_bytes(qdq)
        fa, qa = Path(d) / "fa.onnx", Path(d) / "qa.onnx"
        modify_model_output_intermediate_tensors(str(f), str(fa))
        modify_model_output_intermediate_tensors(str(q), str(qa))
        feeds = [{INPUT_NAME: x[i:i + 1].astype(np.float32)} for i in range(len(x))]
        f_act = collect_activations(str(fa), iter(feeds))
        q_act = collect_activations(str(qa), iter(feeds))
        err = compute_activation_error(create_activation_matching(q_act, f_act))
    return {k: float(v["xmodel_err"]) for k, v in sorted(err.items()) if "xmodel_err" in v}


def _module_path(tensor: str) -> tuple[str, str]:
    """'/blocks/blocks.0/dw/dw.2/Clip_output_0' -> ('blocks.0.dw.2', 'Clip')."""
    parts = tensor.strip("/").split("/")
    op = parts[-1].split("_output")[0] if parts else tensor
    path: list[str] = []
    for p in parts[:-1]:
        if path and p.startswith(".".join(path) + "."):
            path = p.split(".")
        elif path and p.startswith(path[-1] + "."):
            path[-1:] = p.split(".")
        else:
            path.append(p)
    return ".".join(path) or op, op


def layer_rows(fp32: bytes, sqnr: dict[str, float]) -> list[dict]:
    """Per-tensor SQNR as ``[{layer, op, node, sqnr_db}]`` in graph order (module paths where the
    exporter scoped the names)."""
    import onnx
    g = onnx.load_from_string(fp32).graph
    rows = []
    for n in g.node:
        for t in n.output:
            if t in sqnr:
                layer, op = _module_path(t)
                rows.append({"layer": layer, "op": n.op_type or op, "node": t,
                             "sqnr_db": round(min(sqnr[t], 120.0), 2)})
    return rows


def nodes_of_layers(model: bytes, layers) -> list[str]:
    """ONNX node names belonging to module paths ``layers`` (or given directly as node names)."""
    out = []
    for name, _ in node_names(model):
        path = _module_path(name + "_output_0")[0]
        if name in layers or any(path == k or path.startswith(k + ".") for k in layers):
            out.append(name)
    return out


def node_names(model: bytes) -> list[tuple[str, str]]:
    """``[(node name, op type)]`` of an ONNX model, in graph order."""
    import onnx
    g = onnx.load_from_string(model).graph
    return [(n.name, n.op_type) for n in g.node]


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
