"""Helpers shared by adapters: capture a module as an ATen graph, name its layers, and annotate
the int8-capable ops a PT2E quantizer left in float."""

from __future__ import annotations

import torch

from edgefm.errors import ExportError


def capture(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> torch.fx.GraphModule:
    """``torch.export`` (strict, so quantizers see each op's source module) -> GraphModule.

    example: the model's example inputs, e.g. ``(torch.zeros(1, 3, 256),)``.
    """
    model = model.eval()
    try:
        return torch.export.export(model, tuple(example), strict=True).module()
    except Exception as e:  # torch raises many types here; say which model and what to do
        raise ExportError(f"torch.export could not capture {type(model).__name__}: {e}".split("\n")[0],
                          hint="make forward() traceable (no data-dependent control flow)") from e


def layer_of(node: torch.fx.Node) -> str:
    """The module path (``blocks.0.dw.0``) that produced ``node``, or its name if unknown."""
    stack = node.meta.get("nn_module_stack") or {}
    if stack:
        path = list(stack.values())[-1][0]
        # strict export prefixes paths with "L['self']." style names in some versions
        return path.replace("L['self'].", "").replace("L__self___", "") or node.name
    return node.name


def op_name(node: torch.fx.Node) -> str:
    t = node.target
    return getattr(t, "__name__", str(t)).replace(".default", "")


# ops that run in int8 in XNNPACK, LiteRT and TFLite Micro alike but that some PT2E quantizers
# leave unannotated (hence in float, which breaks a full-integer .tflite)
PASSTHROUGH_OPS = frozenset({"aten.mean.dim", "aten.adaptive_avg_pool1d.default", "aten.avg_pool1d.default",
                             "aten.avg_pool2d.default", "aten.hardtanh.default", "aten.relu.default",
                             "aten.relu6.default", "aten.clamp.default"})


def annotate_passthrough(gm: torch.fx.GraphModule, config) -> None:
    """Give every op of :data:`PASSTHROUGH_OPS` that the quantizer left unannotated int8 input and
    output (``config``: the quantizer's ``QuantizationConfig``), so the graph is integer end to end."""
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation
    act = config.input_activation
    for n in gm.graph.nodes:
        if n.op != "call_function" or str(n.target) not in PASSTHROUGH_OPS:
            continue
        ann = n.meta.get("quantization_annotation")
        if ann is not None and getattr(ann, "_annotated", False):
            continue
        n.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={n.args[0]: act}, output_qspec=config.output_activation, _annotated=True)
