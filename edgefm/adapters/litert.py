"""LiteRT adapter: litert-torch conversion (fp32, and full-int8 ``.tflite`` from a PT2E-quantized
graph), int8 model I/O, op listing, and running with the LiteRT interpreter (``ai_edge_litert``;
``tflite_runtime`` only if that is absent).

Runner contract (see :mod:`edgefm.adapters`): ``load_runner(path_or_bytes) -> Runner`` with
``run(x: np.ndarray) -> np.ndarray`` in the model's raw dtypes (int8 in and out for the
full-integer models built here) and ``input_details`` / ``output_details`` carrying
``(scale, zero_point)`` for quantized tensors.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgefm.adapters import TensorDetails, read_model_bytes
from edgefm.errors import ExportError

LIBRARY = "litert-torch"
_TFLITE_INT8 = 9   # tflite::TensorType_INT8


# ------------------------------------------------------------------ conversion

def convert(model: torch.nn.Module, example: tuple[torch.Tensor, ...], int8: bool = False) -> bytes:
    """``.tflite`` bytes of ``model``: an eager fp32 module, or (``int8=True``) a static PT2E
    int8 GraphModule (``convert_pt2e(..., fold_quantize=False)``), converted with the scales and
    zero points its quantize/dequantize ops carry (whichever PT2E quantizer annotated it)."""
    import litert_torch
    kw = {}
    if int8:
        from litert_torch.quantize import pt2e_quantizer as pq
        from litert_torch.quantize import quant_config as qc
        # litert-torch reads only static-vs-dynamic from this quantizer: the graph is already
        # quantized, nothing is re-annotated or re-calibrated
        static = pq.PT2EQuantizer().set_global(pq.get_symmetric_quantization_config())
        kw["quant_config"] = qc.QuantConfig(pt2e_quantizer=static)
    try:
        with _quiet():
            if not isinstance(model, torch.fx.GraphModule):
                model = model.eval()       # PT2E graphs refuse .eval(); they are already in eval
            edge = litert_torch.convert(model, tuple(example), **kw)
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "m.tflite"
                edge.export(str(p))
                return p.read_bytes()
    except Exception as e:
        msg = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
        raise ExportError(f"litert-torch conversion failed: {msg}",
                          hint="run `edgefm export --check-only` to list unsupported ops") from e


def int8_io(model: bytes) -> bytes:
    """Make a quantized model's float input/output int8 by removing the boundary QUANTIZE /
    DEQUANTIZE ops (LiteRT's ``modify_model_interface``, what TFLite's converter does for
    ``inference_input_type=int8``)."""
    from ai_edge_litert import _pywrap_modify_model_interface as mmi
    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "in.tflite", Path(d) / "out.tflite"
        src.write_bytes(model)
        rc = mmi.modify_model_interface(str(src), str(dst), _TFLITE_INT8, _TFLITE_INT8)
        if rc != 0 or not dst.exists():
            raise ExportError("could not give the model int8 input and output",
                              hint="the first and last ops must be quantized; see the SQNR report")
        out = dst.read_bytes()
    r = LiteRTRunner(out)
    if r.input_details[0].dtype != np.int8 or r.output_details[0].dtype != np.int8:
        raise ExportError(
            f"model I/O is {r.input_details[0].dtype}/{r.output_details[0].dtype} after conversion, not int8",
            hint="the model's first or last op was left in float by the quantizer")
    return out


def strip_names(model: bytes) -> bytes:
    """Shorten internal tensor names (litert-torch writes each tensor's full module stack,
    often more bytes than the int8 weights) to ``t<index>``; graph inputs/outputs and signatures
    keep theirs. Numerics are untouched; flash use on an MCU drops by about half."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as s
    m = s.ModelT.InitFromPackedBuf(bytearray(model), 0)
    for sg in m.subgraphs:
        keep = set(int(i) for i in list(sg.inputs) + list(sg.outputs))
        for k, t in enumerate(sg.tensors):
            if k not in keep:
                t.name = f"t{k}".encode()
    b = flatbuffers.Builder(len(model))
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def list_ops(model: bytes) -> list[str]:
    """Builtin op names of a ``.tflite`` model, in execution order (e.g. ``CONV_2D``)."""
    from ai_edge_litert import schema_py_generated as s
    m = s.ModelT.InitFromPackedBuf(bytearray(model), 0)
    names = {v: k for k, v in vars(s.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for sg in m.subgraphs:
        for op in sg.operators:
            oc = m.operatorCodes[op.opcodeIndex]
            code = max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))
            name = names.get(code, str(code))
            if name == "CUSTOM":
                name = f"CUSTOM:{(oc.customCode or b'').decode(errors='replace') if isinstance(oc.customCode, bytes) else oc.customCode}"
            out.append(name)
    return out


@contextlib.contextmanager
def _quiet():
    """litert-torch prints progress bars on stdout; keep stdout for results."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield


# ------------------------------------------------------------------ runner

def _details(d: dict) -> TensorDetails:
    qp = d.get("quantization_parameters", {})
    sc, zp = qp.get("scales", np.zeros(0)), qp.get("zero_points", np.zeros(0))
    return TensorDetails(str(d.get("name", "")), np.dtype(d["dtype"]),
                         tuple(int(s) for s in d["shape"]),
                         float(sc[0]) if len(sc) else 0.0, int(zp[0]) if len(zp) else 0)


def _interpreter_cls():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - fallback only where ai-edge-litert is absent
        from tflite_runtime.interpreter import Interpreter
    return Interpreter


class LiteRTRunner:
    """Runs a ``.tflite`` model with the LiteRT interpreter (one thread)."""

    def __init__(self, model: bytes, xnnpack: bool = True):
        """xnnpack=False runs LiteRT's builtin kernels only (bit-exact with TFLite Micro's
        reference kernels; XNNPACK's int8 kernels may round differently by one step)."""
        kw = {}
        if not xnnpack:
            from ai_edge_litert.interpreter import OpResolverType
            kw["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self._it = _interpreter_cls()(model_content=model, num_threads=1, **kw)
            self._it.allocate_tensors()
        except Exception as e:
            raise ExportError(f"LiteRT could not load the model: {str(e).splitlines()[0]}",
                              hint="re-export the .tflite") from e
        i, o = self._it.get_input_details()[0], self._it.get_output_details()[0]
        self._ii, self._oi = i["index"], o["index"]
        self.input_details = [_details(i)]
        self.output_details = [_details(o)]
        # hot path, bound once. An int8 input is cast straight into a numpy view of the
        # interpreter's input buffer, fetched per call and dropped before invoke() (LiteRT refuses
        # to invoke while one is held); a float32 one goes through set_tensor (one memcpy, which
        # measures cheaper than making the view).
        self._in_view = self._it.tensor(self._ii)
        self._in_shape = tuple(int(s) for s in i["shape"])
        self._in_dtype = self.input_details[0].dtype
        self._set, self._invoke, self._get = self._it.set_tensor, self._it.invoke, self._it.get_tensor

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: raw input (shape and dtype of ``input_details[0]``) -> raw output (a copy)."""
        self._set(self._ii, np.ascontiguousarray(x, dtype=self._in_dtype))
        self._invoke()
        return self._get(self._oi)          # get_tensor returns a copy

    def run_from(self, z: np.ndarray) -> np.ndarray:
        """Runner contract hot path (see the class's comment on views vs set_tensor)."""
        if z.dtype is self._in_dtype:
            self._set(self._ii, z)
        elif z.shape == self._in_shape:
            np.copyto(self._in_view(), z, casting="unsafe")
        else:
            return self.run(z)
        self._invoke()
        return self._get(self._oi)


def load_runner(path_or_bytes: str | Path | bytes) -> LiteRTRunner:
    return LiteRTRunner(read_model_bytes(path_or_bytes))
