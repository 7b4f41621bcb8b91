"""Static int8 post-training quantization through each backend's own quantizer.

    qm = quantize_(model, QuantConfig(backend="tflite", calibration=calib))   # calib: (N, C, T)
    qm.module        # PT2E-converted GraphModule (pte, tflite): runs in eager with int8 numerics
    qm.onnx          # QDQ ONNX bytes (onnx)
    qm.layer_sqnr    # [{layer, op, sqnr_db}] against float on the calibration windows

``backend``: ``pte`` (ExecuTorch XNNPACK quantizer), ``tflite`` (litert-torch PT2E quantizer,
full integer), ``onnx`` (ONNX Runtime static QDQ). PT2E produces a new graph, so
``quantize_`` returns the quantized model rather than editing ``model`` in place; ``model`` is
left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from edgefm.errors import ConfigError, DataError

BACKENDS = ("pte", "tflite", "onnx")
_ALIASES = {"executorch": "pte", "xnnpack": "pte", "litert": "tflite", "tflm": "tflite",
            "onnxruntime": "onnx"}


@dataclass(frozen=True)
class QuantConfig:
    """int8 static PTQ settings.

    backend: ``pte`` | ``tflite`` | ``onnx`` (aliases: executorch, litert, tflm, onnxruntime).
    calibration: (N, C, T) float32 windows, normalised as the model expects (N >= 1).
    per_channel: per-output-channel symmetric weight scales (else per-tensor).
    qat: quantization-aware fine-tuning after calibration (see :mod:`quantize.qat`); needs
        ``qat_data`` (x, y) and runs ``qat_epochs``.
    keep_float: module paths (``blocks.3.pw``) or ONNX node names to leave in float, e.g. the
        layers chosen by :func:`quantize.tune.tune`.
    max_calibration: at most this many calibration windows are used (first ones, in order).
    """

    backend: str
    calibration: np.ndarray | torch.Tensor | None = None
    per_channel: bool = True
    qat: bool = False
    qat_data: tuple | None = None
    qat_epochs: int = 2
    keep_float: tuple[str, ...] = ()
    max_calibration: int = 256

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


@dataclass
class QuantizedModel:
    backend: str
    config: QuantConfig
    module: torch.fx.GraphModule | None = None      # pte / tflite
    float_module: torch.fx.GraphModule | None = None
    quantizer: object = None                         # the backend quantizer that made `module`
    onnx: bytes | None = None                        # onnx (QDQ)
    onnx_float: bytes | None = None
    layer_sqnr: list[dict] = field(default_factory=list)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.module is not None:
            with torch.no_grad():
                return self.module(x)
        from edgefm.adapters.onnx import OnnxRunner
        return torch.from_numpy(OnnxRunner(self.onnx).run(x.numpy()))


def _backend_quantizer(backend: str, per_channel: bool, qat: bool):
    if backend == "pte":
        from edgefm.adapters.executorch import quantizer
    else:
        from edgefm.adapters.litert import quantizer
    return quantizer(per_channel=per_channel, qat=qat)


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


def quantize_(model: torch.nn.Module, config: QuantConfig) -> QuantizedModel:
    """int8-quantize ``model`` (eval mode; input ``(B, C, T)``) with ``config.backend``'s quantizer,
    calibrated on ``config.calibration``; reports per-layer SQNR against float."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from edgefm.adapters._graph import capture
    from quantize.sqnr import layer_sqnr
    torch.manual_seed(0)
    model = model.eval()
    calib = torch.from_numpy(config.calibration)
    example = (calib[:1],)
    xs = [calib[i:i + 1] for i in range(min(len(calib), 32))]
    if config.backend == "onnx":
        from edgefm.adapters import onnx as ox
        fp32 = ox.export(model, example)
        qdq = ox.quantize_qdq(fp32, config.calibration, per_channel=config.per_channel,
                              exclude_nodes=ox.nodes_of_layers(fp32, config.keep_float))
        rows = ox.layer_rows(fp32, ox.tensor_sqnr(fp32, qdq, config.calibration[:16]))
        return QuantizedModel("onnx", config, onnx=qdq, onnx_float=fp32, layer_sqnr=rows)

    q = _backend_quantizer(config.backend, config.per_channel, config.qat)
    gm = capture(model, example)
    fgm = capture(model, example)
    from torchao.quantization.pt2e.utils import _fuse_conv_bn_
    _fuse_conv_bn_(fgm)          # compare like with like: PT2E folds BatchNorm into the conv
    _keep_float(q, gm, config.keep_float)
    if config.qat:
        from quantize.qat import qat_finetune
        qgm = qat_finetune(gm, q, config)
    else:
        p = prepare_pt2e(gm, q)
        with torch.no_grad():
            for i in range(len(calib)):
                p(calib[i:i + 1])
        qgm = convert_pt2e(p, fold_quantize=config.backend == "pte")
    return QuantizedModel(config.backend, config, module=qgm, float_module=fgm, quantizer=q,
                          layer_sqnr=layer_sqnr(fgm, qgm, xs))
