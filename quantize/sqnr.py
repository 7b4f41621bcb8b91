"""Quantization error in dB: SQNR = 10 log10(sum(ref^2) / sum((ref - test)^2)).

``layer_sqnr`` explains an accuracy drop layer by layer: it runs the float graph and the
PT2E-quantized graph on the same inputs and compares every layer's output.
"""

from __future__ import annotations

import numpy as np
import torch

SQNR_CAP_DB = 120.0   # identical outputs report this instead of +inf (JSON has no inf)


def sqnr_db(ref, test) -> float:
    """SQNR of ``test`` against ``ref`` (same shape), in dB; ``SQNR_CAP_DB`` when identical."""
    ref = np.asarray(ref, dtype=np.float64).ravel()
    test = np.asarray(test, dtype=np.float64).ravel()
    if ref.shape != test.shape:
        raise ValueError(f"shapes differ: {ref.shape} vs {test.shape}")
    noise = float(np.sum((ref - test) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return SQNR_CAP_DB
    if signal == 0.0:
        return -SQNR_CAP_DB
    return float(min(SQNR_CAP_DB, 10.0 * np.log10(signal / noise)))


_LAYER_OPS = ("conv", "linear", "addmm", "add", "mean", "adaptive_avg_pool", "avg_pool",
              "hardtanh", "relu", "mul", "gelu", "layer_norm", "softmax", "matmul", "bmm")


def _record(gm: torch.fx.GraphModule, xs: list[torch.Tensor]) -> dict[str, list[np.ndarray]]:
    """Outputs of the compute nodes of ``gm`` (by node name) for each input in ``xs``."""
    from torch.fx import Interpreter
    keep = {n.name for n in gm.graph.nodes if n.op == "call_function"
            and any(k in str(n.target) for k in _LAYER_OPS)}
    out: dict[str, list[np.ndarray]] = {k: [] for k in keep}

    class Rec(Interpreter):
        def run_node(self, n):
            r = super().run_node(n)
            if n.name in keep and isinstance(r, torch.Tensor):
                out[n.name].append(r.detach().float().numpy().copy())
            return r

    with torch.no_grad():
        for x in xs:
            Rec(gm).run(x)
    return out


def layer_sqnr(float_gm: torch.fx.GraphModule, quant_gm: torch.fx.GraphModule,
               xs: list[torch.Tensor]) -> list[dict]:
    """Per-layer SQNR (dB) of a PT2E-converted graph against the float graph it came from.

    float_gm: ``torch.export``-ed float model; quant_gm: its ``convert_pt2e`` result (node names
    are kept through prepare/convert); xs: inputs of the example's shape.
    Returns ``[{layer, op, node, sqnr_db}]`` in graph order; the lowest is the layer to blame.
    """
    from edgefm.adapters._graph import layer_of
    f, q = _record(float_gm, xs), _record(quant_gm, xs)
    rows = []
    for n in float_gm.graph.nodes:
        if n.name in f and n.name in q and f[n.name] and len(q[n.name]) == len(f[n.name]):
            a, b = np.concatenate([v.ravel() for v in f[n.name]]), np.concatenate([v.ravel() for v in q[n.name]])
            if a.shape == b.shape:
                rows.append({"layer": layer_of(n), "op": str(n.target).replace(".default", ""),
                             "node": n.name, "sqnr_db": round(sqnr_db(a, b), 2)})
    return rows
