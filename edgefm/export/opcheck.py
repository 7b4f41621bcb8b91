"""Op check before export: which ops of a model a target will not run, named by layer.

    check_ops(model, (x,), "tflm")   # raises UnsupportedOpError listing (layer, op) pairs

Targets: ``tflm`` (int8 kernels of TFLite Micro), ``litert`` (LiteRT builtins: everything but
custom/Flex ops), ``xnnpack`` (ops the XNNPACK partitioner leaves on portable kernels).
"""

from __future__ import annotations

import torch

from edgefm.errors import ConfigError, UnsupportedOpError

TARGETS = ("tflm", "litert", "xnnpack")

# ATen ops (after torch.export) that lower to TFLite Micro int8 kernels.
TFLM_ATEN_OPS = frozenset({
    "conv1d", "conv2d", "convolution", "linear", "addmm", "mm", "t", "add", "sub", "mul", "relu",
    "relu_", "hardtanh", "hardtanh_", "relu6", "clamp", "mean", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "avg_pool1d", "avg_pool2d", "max_pool1d", "max_pool2d", "view",
    "reshape", "flatten", "squeeze", "unsqueeze", "permute", "transpose", "cat", "sigmoid",
    "tanh", "softmax", "_softmax", "hardswish", "pad", "constant_pad_nd", "dropout", "clone",
    "contiguous", "_native_batch_norm_legit_no_training", "batch_norm", "getitem", "alias",
    "slice", "select", "leaky_relu", "prelu", "sum", "_assert_tensor_metadata", "expand",
    "squeeze_copy", "view_copy", "detach", "_guards_fn", "sym_size", "flatten.using_ints",
    "log",            # float32 only in TFLite Micro: a layer kept in float (a DSP front end)
})


def _aten_name(node: torch.fx.Node) -> str:
    t = node.target
    name = getattr(t, "__name__", str(t))
    # aten.conv1d.default -> conv1d ; operator.getitem -> getitem
    parts = str(t).split(".")
    if str(t).startswith("aten."):
        return parts[1]
    return name.split(".")[0]


def unsupported_ops(model: torch.nn.Module, example: tuple[torch.Tensor, ...], target: str) -> list[dict]:
    """``[{layer, op}]`` the target will not run (empty when all is well)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown op-check target {target!r}", field="target",
                          hint=f"choose one of {', '.join(TARGETS)}")
    if target == "xnnpack":
        from edgefm.adapters.executorch import unsupported_ops as xnn
        return xnn(model, example)
    from edgefm.adapters._graph import capture, layer_of
    gm = capture(model, example)
    bad = []
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        name = _aten_name(n)
        if name.startswith("_guards") or name in ("getitem", "sym_size"):
            continue
        if target == "tflm" and name not in TFLM_ATEN_OPS:
            bad.append({"layer": layer_of(n), "op": name})
        if target == "litert" and not str(n.target).startswith(("aten.", "<built-in")):
            bad.append({"layer": layer_of(n), "op": str(n.target)})
    return bad


def check_ops(model: torch.nn.Module, example: tuple[torch.Tensor, ...], target: str) -> None:
    """Raise :class:`UnsupportedOpError` naming every (layer, op) ``target`` will not run."""
    bad = unsupported_ops(model, example, target)
    if bad:
        listed = "; ".join(f"layer '{b['layer']}' op '{b['op']}'" for b in bad[:8])
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        raise UnsupportedOpError(f"{target} cannot run: {listed}{more}", field="ops",
                                 hint="replace these layers (e.g. GELU -> ReLU, LayerNorm -> BatchNorm) "
                                      "or choose another --format")
