"""Static int8 post-training quantization: one PT2E scheme and one calibration for every backend.

    qm = quantize_(model, QuantConfig(backend="tflite", calibration=calib))   # calib: (N, C, T)
    qm.module          # PT2E-converted GraphModule in the backend's form: int8 numerics in eager
    qm.onnx            # QDQ ONNX bytes (backend "onnx")
    qm.converted(fold) / qm.onnx_qdq()   # the other backends' forms, from the same calibration
    qm.qparams_sha256  # fingerprint of every scale and zero point (written to each manifest)
    qm.layer_sqnr      # [{layer, op, sqnr_db}] against float on the calibration windows

Every int8 artifact (.pte, .tflite, TFLite Micro, .onnx) is made from one quantized graph, so
all of them carry the same scales and zero points and agree within one output quantization
step. The scheme is ExecuTorch's XNNPACK PT2E quantizer (int8 symmetric per-channel weights,
int8 affine activations, min/max calibration), extended to the int8-capable ops it leaves in
float so that the graph is full integer for LiteRT and TFLite Micro too. ``backend`` only picks
the form: ``pte`` (quantize ops folded into int8 weights: what XNNPACK lowering takes),
``tflite`` (unfolded: what litert-torch converts), ``onnx`` (QDQ ONNX exported from the folded
graph). PT2E produces a new graph, so ``quantize_`` returns the quantized model rather than
editing ``model`` in place; ``model`` is left untouched.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import numpy as np
import torch

from edgefm.errors import ConfigError, DataError

BACKENDS = ("pte", "tflite", "onnx")
_ALIASES = {"executorch": "pte", "xnnpack": "pte", "litert": "tflite", "tflm": "tflite",
            "onnxruntime": "onnx"}


HR_RANGE_BPM = (30.0, 230.0)   # resting bradycardia to maximal exercise heart rate: what an HR output must represent


def output_range_for(output_spec: dict | None) -> tuple[float, float] | None:
    """The range an int8 output must cover for a model's ``output_spec``: its own ``range`` if it
    states one, :data:`HR_RANGE_BPM` for a heart rate in bpm, else None (the calibration's)."""
    spec = output_spec or {}
    if spec.get("range") is not None:
        lo, hi = spec["range"]
        return float(lo), float(hi)
    if spec.get("unit") == "bpm":
        return HR_RANGE_BPM
    return None


@dataclass(frozen=True)
class QuantConfig:
    """int8 static PTQ settings.

    backend: ``pte`` | ``tflite`` | ``onnx`` (aliases: executorch, litert, tflm, onnxruntime): the
        form of the result; the quantization itself is the same for all three.
    calibration: (N, C, T) float32 windows, normalised as the model expects (N >= 1).
    per_channel: per-output-channel symmetric weight scales (else per-tensor).
    qat: quantization-aware fine-tuning after calibration (see :mod:`quantize.qat`); needs
        ``qat_data`` (x, y) and runs ``qat_epochs``.
    keep_float: module paths (``blocks.3.pw``) to leave in float, e.g. the layers chosen by
        :func:`quantize.tune.tune`.
    max_calibration: at most this many calibration windows are used (first ones, in order).
    output_range: (lo, hi) in output units that the int8 output must represent whatever the
        calibration windows produced, e.g. (30, 230) bpm for heart rate: the output observer's
        range is widened to include it, so a prediction outside the training labels' span is
        not clipped at the calibration's extreme. None: the calibration's range alone.
    """

    backend: str
    calibration: np.ndarray | torch.Tensor | None = None
    per_channel: bool = True
    qat: bool = False
    qat_data: tuple | None = None
    qat_epochs: int = 2
    keep_float: tuple[str, ...] = ()
    max_calibration: int = 256
    output_range: tuple[float, float] | None = None

    def __post_init__(self):
        b = _ALIASES.get(self.backend, self.backend)
        if b not in BACKENDS:
            raise ConfigError(f"unknown quantization backend {self.backend!r}", field="backend",
                              hint=f"choose one of {', '.join(BACKENDS)}")
        object.__setattr__(self, "backend", b)
        if self.calibration is None:
            raise ConfigError("static int8 quantization needs calibration windows", field="calibration",
                              hint="pass --calib DATA (a few hundred held-in windows)")
        c = np.asarray(self.calibration.detach().cpu() if isinstance(self.calibration, torch.Tensor)
                       else self.calibration, dtype=np.float32)
        if c.ndim != 3 or len(c) == 0:
            raise DataError(f"calibration must be (N, C, T) with N >= 1, got shape {c.shape}",
                            field="calibration")
        if not np.isfinite(c).all():
            raise DataError("calibration windows contain NaN or inf", field="calibration",
                            hint="fill missing samples (normalised 0) before calibrating")
        object.__setattr__(self, "calibration", c[: self.max_calibration])
        if self.qat and self.qat_data is None:
            raise ConfigError("qat=True needs qat_data=(x, y)", field="qat_data")
        object.__setattr__(self, "keep_float", tuple(self.keep_float))
        if self.output_range is not None:
            r = tuple(float(v) for v in self.output_range)
            if len(r) != 2 or not all(np.isfinite(r)) or not r[0] < r[1]:
                raise ConfigError(f"output_range must be two finite numbers lo < hi, got {self.output_range!r}",
                                  field="output_range")
            object.__setattr__(self, "output_range", r)


@dataclass
class QuantizedModel:
    """The calibrated int8 model. ``module``/``onnx`` are the form ``backend`` asked for;
    :meth:`converted` and :meth:`onnx_qdq` give the others from the same calibration."""

    backend: str
    config: QuantConfig
    module: torch.fx.GraphModule | None = None      # pte: folded, tflite: unfolded, onnx: folded
    float_module: torch.fx.GraphModule | None = None
    quantizer: object = None                         # the PT2E quantizer that annotated the graph
    onnx: bytes | None = None                        # onnx (QDQ)
    layer_sqnr: list[dict] = field(default_factory=list)
    qparams: list[dict] = field(default_factory=list, repr=False)
    observed: torch.fx.GraphModule | None = field(default=None, repr=False)   # calibrated, not converted
    example: tuple = field(default=(), repr=False)
    _forms: dict = field(default_factory=dict, repr=False)

    @property
    def qparams_sha256(self) -> str:
        """sha256 of every scale and zero point of the quantized graph (order-independent)."""
        from edgefm.manifest import sha256_bytes
        rows = sorted(json.dumps(r, sort_keys=True) for r in self.qparams)
        return sha256_bytes("\n".join(rows).encode())

    def converted(self, fold: bool) -> torch.fx.GraphModule:
        """The int8 GraphModule, quantize ops folded into int8 weights (``fold=True``, for
        ExecuTorch/ONNX) or not (for litert-torch); converted from a copy of the one calibration."""
        if fold not in self._forms:
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e
            if self.observed is None:
                raise ConfigError("this QuantizedModel keeps no calibrated graph to convert", field="observed")
            self._forms[fold] = convert_pt2e(copy.deepcopy(self.observed), fold_quantize=fold)
        return self._forms[fold]

    def onnx_qdq(self) -> bytes:
        """QDQ ONNX bytes of the quantized graph (same scales and zero points as every other form)."""
        if "onnx" not in self._forms:
            from edgefm.adapters.onnx import export_qdq
            self._forms["onnx"] = export_qdq(self.converted(fold=True), self.example)
        return self._forms["onnx"]

    def io_qparams(self) -> dict:
        """``{"input": {scale, zero_point}, "output": {...}}``: the graph's first quantize and
        last dequantize, i.e. what an int8-I/O artifact takes and returns."""
        return pt2e_io(self.converted(fold=True))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, T) -> (B, D): the quantized graph in eager, or (backend ``onnx``) the QDQ
        ONNX in ONNX Runtime, one window at a time (the graph is traced at batch 1)."""
        if self.backend == "onnx" and self.onnx is not None:
            from edgefm.adapters.onnx import OnnxRunner
            if "onnx_runner" not in self._forms:
                self._forms["onnx_runner"] = OnnxRunner(self.onnx)
            run = self._forms["onnx_runner"].run
            xn = x.detach().cpu().numpy().astype(np.float32)
            return torch.from_numpy(np.concatenate([run(xn[i:i + 1]) for i in range(len(xn))]))
        with torch.no_grad():
            if x.shape[0] == 1:
                return self.module(x)
            return torch.cat([self.module(x[i:i + 1]) for i in range(x.shape[0])])


def int8_quantizer(per_channel: bool = True, qat: bool = False):
    """The one PT2E quantizer behind every int8 artifact (see the module docstring)."""
    from edgefm.adapters.executorch import quantizer
    return quantizer(per_channel=per_channel, qat=qat, full_integer=True)


def pt2e_qparams(gm: torch.fx.GraphModule) -> list[dict]:
    """Scale / zero point of every dequantize op of a converted PT2E graph (per-channel ones as
    lists with their axis), in graph order. The same for the folded and unfolded forms."""
    def val(a):
        if isinstance(a, torch.fx.Node) and a.op == "get_attr":
            t = gm
            for part in a.target.split("."):
                t = getattr(t, part)
            return t.detach().cpu().double().tolist() if isinstance(t, torch.Tensor) else t
        return a.item() if isinstance(a, torch.Tensor) else a
    out = []
    for n in gm.graph.nodes:
        if n.op == "call_function" and "dequantize_per" in str(n.target):
            per_channel = "per_channel" in str(n.target)
            row = {"scale": val(n.args[1]), "zero_point": val(n.args[2]),
                   "dtype": str(n.args[6 if per_channel else 5])}
            if per_channel:
                row["axis"] = int(n.args[3])
            out.append(row)
    return out


_SHAPE_OPS = ("reshape", "view", "unsqueeze", "squeeze", "permute", "transpose", "flatten", "expand",
              "contiguous", "clone", "_assert_tensor_metadata")


def _through_shape_ops(n, to_input: bool) -> bool:
    """Whether ``n`` reaches the graph's input (``to_input``) or output only through shape ops."""
    seen = 0
    while seen < 32:
        seen += 1
        if to_input:
            if getattr(n, "op", None) == "placeholder":
                return True
            if getattr(n, "op", None) != "call_function" or not any(k in str(n.target) for k in _SHAPE_OPS):
                return False
            n = n.args[0]
        else:
            users = list(n.users)
            if any(u.op == "output" for u in users):
                return True
            if len(users) != 1 or users[0].op != "call_function" or \
                    not any(k in str(users[0].target) for k in _SHAPE_OPS):
                return False
            n = users[0]
    return False


def pt2e_io(gm: torch.fx.GraphModule) -> dict:
    """Scale / zero point of the quantize that takes the graph's input and of the dequantize that
    gives its output (through shape ops only), in a converted PT2E graph. A side whose boundary
    layer was left in float (``keep_float`` on the first or last layer) is absent: an artifact
    keeps that side float32."""
    q = [n for n in gm.graph.nodes if n.op == "call_function" and "quantize_per_tensor" in str(n.target)
         and "dequantize" not in str(n.target)]
    d = [n for n in gm.graph.nodes if n.op == "call_function" and "dequantize_per_tensor" in str(n.target)]
    out = {}
    qi = [n for n in q if _through_shape_ops(n.args[0], True)]
    if qi and isinstance(qi[0].args[1], float):
        out["input"] = {"scale": float(qi[0].args[1]), "zero_point": int(qi[0].args[2])}
    do = [n for n in d if _through_shape_ops(n, False)]
    if do and isinstance(do[-1].args[1], float):
        out["output"] = {"scale": float(do[-1].args[1]), "zero_point": int(do[-1].args[2])}
    return out


def _keep_float(q, gm: torch.fx.GraphModule, names: tuple[str, ...]) -> None:
    """Strip the quantizer's annotations from nodes of the named layers (they stay float)."""
    if not names:
        return
    from edgefm.adapters._graph import layer_of
    orig = q.annotate

    def annotate(model):
        model = orig(model)
        stripped = set()
        for n in model.graph.nodes:
            lay = layer_of(n)
            if any(lay == k or lay.startswith(k + ".") for k in names):
                if n.meta.pop("quantization_annotation", None) is not None:
                    stripped.add(n)
        # annotations that share qparams with a stripped node must go too (fixpoint)
        changed = True
        while changed:
            changed = False
            for n in model.graph.nodes:
                ann = n.meta.get("quantization_annotation")
                if ann is None:
                    continue
                specs = list(ann.input_qspec_map.values()) + [ann.output_qspec]
                refs = [getattr(s, "edge_or_node", None) for s in specs if s is not None]
                flat = [r for ref in refs for r in (ref if isinstance(ref, tuple) else (ref,))]
                if any(r in stripped for r in flat) or any(a in stripped for a in ann.input_qspec_map):
                    n.meta.pop("quantization_annotation")
                    stripped.add(n)
                    changed = True
        return model
    q.annotate = annotate


def _output_observers(gm: torch.fx.GraphModule) -> list:
    """The observer / fake-quantize modules whose result the graph returns (its output's qparams)."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    found = []
    for a in _flat_nodes(out.args):
        if a.op == "call_module" and "activation_post_process" in str(a.target):
            found.append(gm.get_submodule(a.target))
    return found


def _flat_nodes(args) -> list:
    nodes = []
    torch.fx.node.map_arg(args, lambda n: nodes.append(n) or n)
    return nodes


def widen_output_range(observed: torch.fx.GraphModule, lo: float, hi: float) -> int:
    """Make the calibrated graph's output observers cover ``[lo, hi]`` (their min/max are
    extended by observing those two values); returns how many observers were widened."""
    obs = _output_observers(observed)
    if not obs:
        raise ConfigError("cannot find the quantized output of the graph to set its range",
                          field="output_range", hint="the model's last op must be quantized")
    with torch.no_grad():
        for o in obs:
            target = getattr(o, "activation_post_process", o)    # FakeQuantize wraps an observer
            target(torch.tensor([lo, hi], dtype=torch.float32))
            if hasattr(o, "calculate_qparams") and hasattr(o, "scale") and o is not target:
                s, z = o.calculate_qparams()
                o.scale.resize_(s.shape).copy_(s)
                o.zero_point.resize_(z.shape).copy_(z)
    return len(obs)


def quantize_(model: torch.nn.Module, config: QuantConfig) -> QuantizedModel:
    """int8-quantize ``model`` (eval mode; input ``(B, C, T)``) with the shared PT2E scheme,
    calibrated on ``config.calibration``; returns it in ``config.backend``'s form with the
    per-layer SQNR against float."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
    from torchao.quantization.pt2e.utils import _fuse_conv_bn_
    from edgefm.adapters._graph import capture
    from quantize.sqnr import layer_sqnr
    torch.manual_seed(0)
    model = model.eval()
    calib = torch.from_numpy(config.calibration)
    example = (calib[:1],)
    xs = [calib[i:i + 1] for i in range(min(len(calib), 32))]
    q = int8_quantizer(config.per_channel, config.qat)
    gm = capture(model, example)
    fgm = capture(model, example)
    _fuse_conv_bn_(fgm)          # compare like with like: PT2E folds BatchNorm into the conv
    _keep_float(q, gm, config.keep_float)
    if config.qat:
        from quantize.qat import qat_finetune
        observed = qat_finetune(gm, q, config)
    else:
        observed = prepare_pt2e(gm, q)
        with torch.no_grad():
            for i in range(len(calib)):
                observed(calib[i:i + 1])
    if config.output_range is not None:
        widen_output_range(observed, *config.output_range)
    qm = QuantizedModel(config.backend, config, float_module=fgm, quantizer=q, observed=observed,
                        example=example)
    folded = qm.converted(fold=True)
    qm.module = folded if config.backend in ("pte", "onnx") else qm.converted(fold=False)
    qm.qparams = pt2e_qparams(folded)
    if config.backend == "onnx":
        qm.onnx = qm.onnx_qdq()
    qm.layer_sqnr = layer_sqnr(fgm, qm.module, xs)
    return qm
