"""Helpers shared by adapters: capture a module as an ATen graph and name its layers."""

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
