"""Per-layer cost of a model: MACs by op type, element counts, activation sizes.

A model is described by a list of :class:`LayerCost` rows, whatever it came from: a torch
module (forward hooks on one example window), an exported ``.tflite`` (its operator list and
tensor shapes) or an ``.onnx`` graph (shape inference). The simulator prices each row with a
device profile's cycles per MAC for the row's op type.

Op types: ``conv`` (regular and pointwise convolution), ``depthwise`` (groups == channels),
``dense`` (fully connected / matmul), ``pool`` and ``elementwise`` (priced per element).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgefm.errors import ConfigError, DataError

MAC_OPS = ("conv", "depthwise", "dense")
ELEMENT_OPS = ("pool", "elementwise")
OP_TYPES = MAC_OPS + ELEMENT_OPS


@dataclass(frozen=True)
class LayerCost:
    """One operator: ``macs`` multiply-accumulates (MAC ops) or ``elements`` outputs (others);
    ``in_elems``/``out_elems`` activation sizes (batch 1), ``params`` weights."""

    name: str
    op: str
    macs: int = 0
    elements: int = 0
    in_elems: int = 0
    out_elems: int = 0
    params: int = 0

    def __post_init__(self):
        if self.op not in OP_TYPES:
            raise ConfigError(f"unknown op type {self.op!r} (one of {', '.join(OP_TYPES)})", field="op")


@dataclass
class ModelInfo:
    """What the simulator needs to know about a deployable model.

    layers: per-operator costs for one window (batch 1).
    window / hop: samples per window and per hop at ``fs_hz``; ``channels`` the input channels.
    model_bytes: flash taken by the weights (the artifact's size, or int8 params).
    arena_bytes: TFLite Micro arena measured by the export (manifest ``arena_bytes``), or None.
    """

    name: str
    layers: list[LayerCost]
    fs_hz: float = 32.0
    window: int = 256
    hop: int = 64
    channels: tuple[str, ...] = ("acc_x", "acc_y", "acc_z")
    model_bytes: int | None = None
    arena_bytes: int | None = None
    source: str = ""
    meta: dict = field(default_factory=dict)
    arena_estimate: dict | None = None   # breakdown from the graph (see tflite_arena_estimate)

    @property
    def macs(self) -> int:
        return int(sum(l.macs for l in self.layers))

    @property
    def params(self) -> int:
        return int(sum(l.params for l in self.layers))

    def macs_by_op(self) -> dict[str, int]:
        out = {op: 0 for op in MAC_OPS}
        for l in self.layers:
            if l.op in MAC_OPS:
                out[l.op] += l.macs
        return out

    @property
    def window_s(self) -> float:
        return self.window / self.fs_hz

    @property
    def hop_s(self) -> float:
        return self.hop / self.fs_hz

    def estimated_arena_bytes(self, bytes_per_elem: int = 1, align: int = 16) -> int:
        """Our own int8 arena estimate, independent of the TFLite Micro measurement.

        From a ``.tflite`` graph: :func:`tflite_arena_estimate` (tensor liveness + persistent
        per-tensor/op/channel data). Otherwise (a torch model): the largest input+output pair
        live at once over the layer sequence, each tensor aligned to ``align`` bytes, plus 10%
        for scratch buffers and planner fragmentation (no residual liveness: a lower bound)."""
        if self.arena_estimate:
            return int(self.arena_estimate["total_bytes"])

        def a(n):
            return -(-n * bytes_per_elem // align) * align
        peak = max((a(l.in_elems) + a(l.out_elems) for l in self.layers), default=0)
        return int(peak * 1.1)

    def estimated_model_bytes(self) -> int:
        """int8 weights plus ~4 bytes of bias/scale per output channel, when no artifact is known."""
        return int(self.params * 1.05) + 4096

    def to_dict(self) -> dict:
        return {"name": self.name, "macs": self.macs, "params": self.params,
                "macs_by_op": self.macs_by_op(), "fs_hz": self.fs_hz, "window": self.window,
                "hop": self.hop, "channels": list(self.channels), "model_bytes": self.model_bytes,
                "arena_bytes": self.arena_bytes, "estimated_arena_bytes": self.estimated_arena_bytes(),
                "source": self.source, "layers": len(self.layers)}


# ---------------------------------------------------------------- torch

def layers_from_torch(model, example_input) -> list[LayerCost]:
    """Per-leaf-module costs from one forward pass. ``example_input``: (1, C, T) tensor.

    Conv1d/Conv2d -> conv or depthwise (groups == in_channels > 1), Linear -> dense,
    pooling -> pool, activations/norms/dropout-free leaves -> elementwise. Batch is taken as 1.
    """
    import torch
    from torch import nn

    rows: list[LayerCost] = []
    hooks = []

    def numel1(t) -> int:
        if isinstance(t, (tuple, list)):
            t = t[0]
        if not isinstance(t, torch.Tensor):
            return 0
        return int(t[0].numel()) if t.dim() > 0 and t.shape[0] > 0 else int(t.numel())

    def hook(name):
        def fn(mod, inp, out):
            i, o = numel1(inp), numel1(out)
            params = sum(p.numel() for p in mod.parameters(recurse=False))
            if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
                k = int(np.prod(mod.kernel_size))
                macs = o * (mod.in_channels // mod.groups) * k
                op = "depthwise" if mod.groups > 1 and mod.groups == mod.in_channels else "conv"
                rows.append(LayerCost(name, op, macs=macs, in_elems=i, out_elems=o, params=params))
            elif isinstance(mod, nn.Linear):
                rows.append(LayerCost(name, "dense", macs=o * mod.in_features, in_elems=i,
                                      out_elems=o, params=params))
            elif isinstance(mod, (nn.AvgPool1d, nn.AvgPool2d, nn.MaxPool1d, nn.MaxPool2d,
                                  nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
                rows.append(LayerCost(name, "pool", elements=i, in_elems=i, out_elems=o))
            elif isinstance(mod, (nn.Dropout, nn.Identity, nn.Flatten)):
                pass
            else:
                rows.append(LayerCost(name, "elementwise", elements=o, in_elems=i, out_elems=o,
                                      params=params))
        return fn

    for name, mod in model.named_modules():
        if len(list(mod.children())) == 0:
            hooks.append(mod.register_forward_hook(hook(name or type(mod).__name__)))
    try:
        with torch.no_grad():
            model.eval()(example_input)
    finally:
        for h in hooks:
            h.remove()
    if not rows:
        raise DataError("the model has no leaf modules to count", field="model")
    return rows


def model_info_from_torch(model, example_input, *, name: str = "model", fs_hz: float = 32.0,
                          hop: int | None = None, **kw) -> ModelInfo:
    """``example_input``: (1, C, T) at ``fs_hz``; ``hop`` defaults to T/4 (wrist-raw: 8 s / 2 s)."""
    layers = layers_from_torch(model, example_input)
    T = int(example_input.shape[-1])
    return ModelInfo(name=name, layers=layers, fs_hz=fs_hz, window=T, hop=hop or max(1, T // 4),
                     source="torch", **kw)


# ---------------------------------------------------------------- tflite

_TFL_CONV = {"CONV_2D": "conv", "DEPTHWISE_CONV_2D": "depthwise", "FULLY_CONNECTED": "dense",
             "BATCH_MATMUL": "dense"}
_TFL_POOL = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "SUM"}
_TFL_FREE = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE", "DEQUANTIZE", "TRANSPOSE"}


def layers_from_tflite(path: str | Path) -> list[LayerCost]:
    """Per-operator costs of a ``.tflite`` model, read with LiteRT's interpreter (op list and
    tensor shapes; nothing is executed)."""
    from edgefm.errors import ManifestError
    path = Path(path)
    try:
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_path=str(path))
        ops = it._get_ops_details()
        tens = {t["index"]: t for t in it.get_tensor_details()}
    except (ValueError, RuntimeError) as e:
        raise ManifestError(f"cannot read .tflite: {e}", path=path) from e

    def shape(i):
        return tuple(int(s) for s in tens[i]["shape"]) if i >= 0 and i in tens else ()

    rows = []
    for op in ops:
        name = op["op_name"]
        ins = [i for i in op["inputs"] if i >= 0]
        outs = list(op["outputs"])
        o = int(np.prod(shape(outs[0]))) if outs and shape(outs[0]) else 0
        i0 = int(np.prod(shape(ins[0]))) if ins and shape(ins[0]) else 0
        params = sum(int(np.prod(shape(i))) for i in ins[1:] if shape(i))
        label = f"{op['index']}:{name}"
        if name in ("CONV_2D",):
            w = shape(ins[1])  # (O, kh, kw, I)
            rows.append(LayerCost(label, "conv", macs=o * int(np.prod(w[1:])), in_elems=i0,
                                  out_elems=o, params=params))
        elif name == "DEPTHWISE_CONV_2D":
            w = shape(ins[1])  # (1, kh, kw, O)
            rows.append(LayerCost(label, "depthwise", macs=o * int(w[1] * w[2]), in_elems=i0,
                                  out_elems=o, params=params))
        elif name == "FULLY_CONNECTED":
            w = shape(ins[1])  # (O, I)
            rows.append(LayerCost(label, "dense", macs=o * int(w[-1]), in_elems=i0, out_elems=o,
                                  params=params))
        elif name == "BATCH_MATMUL":
            a = shape(ins[0])
            rows.append(LayerCost(label, "dense", macs=o * int(a[-1]), in_elems=i0, out_elems=o,
                                  params=0))
        elif name in _TFL_POOL:
            rows.append(LayerCost(label, "pool", elements=i0, in_elems=i0, out_elems=o))
        elif name in _TFL_FREE:
            rows.append(LayerCost(label, "elementwise", elements=0, in_elems=i0, out_elems=o))
        else:
            rows.append(LayerCost(label, "elementwise", elements=o, in_elems=i0, out_elems=o,
                                  params=params))
    return rows


# TFLite Micro's persistent allocations (from its micro_allocator / kernel OpData), per item
TFLM_BYTES_PER_TENSOR = 24        # TfLiteEvalTensor
TFLM_BYTES_PER_OP = 64            # TfLiteNode + registration pointer + small OpData
TFLM_BYTES_PER_OUT_CHANNEL = 8    # per-channel output multiplier + shift (int32 each) in conv/fc OpData


def tflite_arena_estimate(path: str | Path, align: int = 16) -> dict:
    """Estimate the TFLite Micro arena of a ``.tflite`` from its graph alone.

    Activations: a liveness pass over the operator order (a tensor lives from its producer to its
    last consumer; model inputs from the start, outputs to the end), sizes aligned to ``align``;
    the peak of the live sum is what an ideal planner needs. Persistent: per-tensor, per-op and
    per-output-channel bookkeeping (constants above). Plus 10% for scratch buffers and
    fragmentation.
    """
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    ops = it._get_ops_details()
    tens = {t["index"]: t for t in it.get_tensor_details()}
    ins = [d["index"] for d in it.get_input_details()]
    outs = [d["index"] for d in it.get_output_details()]
    produced = {o: k for k, op in enumerate(ops) for o in op["outputs"]}
    first, last = {i: 0 for i in ins}, {}
    for k, op in enumerate(ops):
        for i in op["inputs"]:
            if i >= 0 and (i in produced or i in ins):
                last[i] = k
        for o in op["outputs"]:
            first[o] = k
            last.setdefault(o, k)
    for o in outs:
        last[o] = len(ops) - 1

    def nbytes(i):
        t = tens[i]
        n = int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize
        return -(-n // align) * align
    peak = max((sum(nbytes(i) for i in first if first[i] <= k <= last.get(i, k)) for k in range(len(ops))),
               default=0)
    out_ch = sum(int(tens[op["outputs"][0]]["shape"][-1]) for op in ops
                 if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    persistent = (TFLM_BYTES_PER_TENSOR * len(tens) + TFLM_BYTES_PER_OP * len(ops)
                  + TFLM_BYTES_PER_OUT_CHANNEL * out_ch)
    total = int((peak + persistent) * 1.1)
    return {"activations_bytes": int(peak), "persistent_bytes": int(persistent), "tensors": len(tens),
            "ops": len(ops), "out_channels": int(out_ch), "total_bytes": total,
            "method": "tensor liveness over the op order + TFLM persistent data, +10%"}


# ---------------------------------------------------------------- onnx

def layers_from_onnx(path: str | Path) -> list[LayerCost]:
    """Per-node costs of an ``.onnx`` graph (fp32 or QDQ int8) from ONNX shape inference."""
    import onnx
    from onnx import numpy_helper, shape_inference
    from edgefm.errors import ManifestError
    path = Path(path)
    try:
        m = shape_inference.infer_shapes(onnx.load(str(path)))
    except Exception as e:  # onnx raises several unrelated types for a corrupt file
        raise ManifestError(f"cannot read .onnx: {e}", path=path) from e
    g = m.graph
    shapes = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        dims = [d.dim_value if d.dim_value > 0 else 1 for d in vi.type.tensor_type.shape.dim]
        shapes[vi.name] = tuple(dims)
    inits = {t.name: tuple(t.dims) for t in g.initializer}
    shapes.update(inits)
    # QDQ graphs: DequantizeLinear(weight) -> Conv; follow the DQ back to the initializer.
    dq_src = {n.output[0]: n.input[0] for n in g.node if n.op_type == "DequantizeLinear"}

    def shp(name):
        return shapes.get(name) or shapes.get(dq_src.get(name, ""), ())

    def n1(s):  # elements at batch 1
        return int(np.prod(s[1:])) if len(s) > 1 else int(np.prod(s)) if s else 0

    rows = []
    for k, n in enumerate(g.node):
        label = f"{k}:{n.op_type}:{n.name}"
        o = n1(shp(n.output[0])) if n.output else 0
        i0 = n1(shp(n.input[0])) if n.input else 0
        if n.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            wi = 3 if n.op_type == "QLinearConv" else 1
            w = shp(n.input[wi])
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            macs = o * int(np.prod(w[1:])) if w else 0
            op = "depthwise" if group > 1 and w and w[1] == 1 else "conv"
            rows.append(LayerCost(label, op, macs=macs, in_elems=i0, out_elems=o,
                                  params=int(np.prod(w)) if w else 0))
        elif n.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            a = shp(n.input[0])
            w = shp(n.input[3] if n.op_type == "QLinearMatMul" else n.input[1])
            kdim = a[-1] if a else 0
            rows.append(LayerCost(label, "dense", macs=o * int(kdim), in_elems=i0, out_elems=o,
                                  params=int(np.prod(w)) if w and (n.input[1] in inits or n.input[1] in dq_src) else 0))
        elif n.op_type in ("AveragePool", "MaxPool", "GlobalAveragePool", "ReduceMean"):
            rows.append(LayerCost(label, "pool", elements=i0, in_elems=i0, out_elems=o))
        elif n.op_type in ("QuantizeLinear", "DequantizeLinear", "Reshape", "Flatten", "Squeeze",
                           "Unsqueeze", "Constant", "Shape", "Gather", "Identity", "Transpose"):
            continue
        else:
            rows.append(LayerCost(label, "elementwise", elements=o, in_elems=i0, out_elems=o))
    return rows


def _tflm_arena_for(path: Path, sha: str | None) -> int | None:
    """The TFLite Micro export beside a ``.tflite`` (``model_data.manifest.json`` whose
    ``tflite_sha256`` is this file's, here, in a sub-folder or a sibling folder) carries the arena
    measured in the tflite-micro interpreter."""
    import json
    if not sha:
        return None
    near = list(path.parent.glob("*.manifest.json")) + list(path.parent.glob("*/*.manifest.json")) \
        + list(path.parent.parent.glob("*/*.manifest.json"))
    for mp in sorted(set(near)):
        try:
            m = json.loads(mp.read_text())
        except (OSError, ValueError):
            continue
        if m.get("tflite_sha256") == sha and m.get("arena_bytes"):
            return int(m["arena_bytes"])
    return None


def _tracker_cost(manifest: dict, path) -> LayerCost | None:
    """The on-device tracker the manifest's ``output_spec.tracker`` describes (heart-rate bins:
    :func:`runtime.track.tracker_macs`; classes: ``K * K + 3K`` when enabled), as one dense layer."""
    from edgefm.errors import ManifestError
    tr = (manifest.get("output_spec") or {}).get("tracker") if isinstance(manifest.get("output_spec"), dict) else None
    if not isinstance(tr, dict):
        return None
    try:
        if tr.get("bins_bpm") is not None:
            bins = np.asarray(tr["bins_bpm"], np.float64).reshape(-1)
            sigma = float(tr["sigma_bpm"])
            if not (2 <= bins.size <= 4096 and np.isfinite(bins).all() and np.isfinite(sigma) and sigma > 0):
                raise ValueError("bins or sigma out of range")
            from runtime.track import tracker_macs
            return LayerCost("tracker", "dense", macs=tracker_macs({"bins_bpm": bins, "sigma_bpm": sigma}),
                             in_elems=bins.size, out_elems=bins.size)
        if tr.get("transition") is not None and tr.get("enabled"):
            k = len(tr["transition"])
            if not 2 <= k <= 4096:
                raise ValueError("transition size out of range")
            return LayerCost("tracker", "dense", macs=k * k + 3 * k, in_elems=k, out_elems=k)
    except (TypeError, ValueError, KeyError) as e:
        raise ManifestError(f"output_spec.tracker is malformed ({e})", path=path, field="output_spec.tracker",
                            hint="re-export the model") from None
    return None


def model_info_from_artifact(path: str | Path, *, verify: bool = True) -> ModelInfo:
    """ModelInfo of an exported ``.tflite`` or ``.onnx`` with its manifest (input spec,
    ``arena_bytes``). Without a manifest the wrist-raw defaults are assumed and said so in
    ``meta['assumed']``."""
    from edgefm.errors import ManifestError
    from edgefm.manifest import manifest_path_for, read_artifact_manifest
    path = Path(path)
    if not path.exists():
        raise ManifestError("artifact not found", path=path)
    ext = path.suffix.lower()
    arena_est = None
    if ext == ".tflite":
        layers = layers_from_tflite(path)
        arena_est = tflite_arena_estimate(path)
    elif ext == ".onnx":
        layers = layers_from_onnx(path)
    else:
        raise ConfigError(f"cannot read per-layer MACs from {ext!r} files", path=path,
                          hint="pass the .tflite or .onnx export, or a torch model through the API")
    meta: dict = {}
    if manifest_path_for(path).exists():
        m = read_artifact_manifest(path, verify=verify)
        spec = m.get("input_spec") or {}
        fs = float(spec.get("fs_hz", 32.0))
        window = int(spec.get("window", round(fs * float(spec.get("window_s", 8.0)))))
        hop = int(spec.get("hop", round(fs * float(spec.get("hop_s", 2.0)))))
        channels = tuple(spec.get("channels", ("acc_x", "acc_y", "acc_z")))
        arena = m.get("arena_bytes") or _tflm_arena_for(path, m.get("sha256"))
        meta["manifest"] = True
        tracker = _tracker_cost(m, path)
        if tracker is not None:            # runs after the model on the device: priced with it
            layers = [*layers, tracker]
            meta["tracker_macs"] = tracker.macs
    else:
        fs, window, hop, channels, arena = 32.0, 256, 64, ("acc_x", "acc_y", "acc_z"), None
        meta["assumed"] = "no manifest: wrist-raw defaults (32 Hz, 256-sample window, 64-sample hop)"
    return ModelInfo(name=path.stem, layers=layers, fs_hz=fs, window=window, hop=hop,
                     channels=channels, model_bytes=path.stat().st_size,
                     arena_bytes=int(arena) if arena else None, source=str(path), meta=meta,
                     arena_estimate=arena_est)
