"""Calibration of a device's int8 cycles-per-MAC against MLPerf Tiny.

The anchor is MLPerf Tiny's keyword-spotting reference model, DS-CNN (mlcommons/tiny,
``benchmark/training/keyword_spotting/keras_model.py``): input 49x10 MFCC; Conv2D 64x(10x4),
stride 2 -> 25x5x64; four blocks of depthwise 3x3 + pointwise 1x1 (64 -> 64); global average
pool; dense 64 -> 12. Its MACs, layer by layer (computed here, not quoted):

    conv 10x4      25*5*64*40       =   320,000
    4 x dw 3x3     4*25*5*64*9      =   288,000
    4 x pw 1x1     4*25*5*64*64     = 2,048,000
    dense          64*12            =       768
    total                           = 2,656,768   (~2.7 M, as MLPerf Tiny's paper states)

A device's measured latency L at clock f is L*f cycles. We fix the relative cost of op types
(``relative_cost``, e.g. depthwise 1.6x a regular conv per MAC) and solve for the scale s:

    L*f = s * sum_op(MACs_op * rel_op) + overheads
    cycles_per_mac[op] = s * rel_op
"""

from __future__ import annotations

from firmware_sim.costs import LayerCost, ModelInfo


def ds_cnn_kws() -> ModelInfo:
    """MLPerf Tiny KWS DS-CNN as per-layer costs (batch 1, int8). ReLU is fused into convs."""
    H, W, C = 25, 5, 64
    layers = [LayerCost("conv1", "conv", macs=H * W * C * 10 * 4, in_elems=49 * 10, out_elems=H * W * C,
                        params=C * 40)]
    for b in range(4):
        layers.append(LayerCost(f"dw{b}", "depthwise", macs=H * W * C * 9, in_elems=H * W * C,
                                out_elems=H * W * C, params=C * 9))
        layers.append(LayerCost(f"pw{b}", "conv", macs=H * W * C * C, in_elems=H * W * C,
                                out_elems=H * W * C, params=C * C))
    layers.append(LayerCost("avgpool", "pool", elements=H * W * C, in_elems=H * W * C, out_elems=C))
    layers.append(LayerCost("dense", "dense", macs=C * 12, in_elems=C, out_elems=12, params=C * 12))
    return ModelInfo(name="ds-cnn-kws", layers=layers, fs_hz=16000.0, window=16000, hop=16000,
                     channels=("audio",), source="mlcommons/tiny keyword_spotting keras_model.py")


ANCHOR_MODELS = {"ds-cnn-kws": ds_cnn_kws}


def calibrate(anchor_latency_ms: float, anchor_clock_hz: float, relative_cost: dict[str, float],
              *, per_layer_cycles: float = 2000, pool_cycles_per_element: float = 2,
              elementwise_cycles_per_element: float = 4, model: ModelInfo | None = None) -> dict:
    """Solve for cycles per MAC by op type; returns the numbers and the arithmetic as text lines."""
    model = model or ds_cnn_kws()
    total_cycles = anchor_latency_ms * 1e-3 * anchor_clock_hz
    overhead = (per_layer_cycles * len(model.layers)
                + sum(l.elements * (pool_cycles_per_element if l.op == "pool" else elementwise_cycles_per_element)
                      for l in model.layers if l.op in ("pool", "elementwise")))
    by_op = model.macs_by_op()
    weighted = sum(by_op[op] * relative_cost.get(op, 1.0) for op in by_op)
    s = (total_cycles - overhead) / weighted
    cpm = {op: s * relative_cost.get(op, 1.0) for op in by_op}
    lines = [
        f"anchor model {model.name}: {model.macs:,} MACs "
        + ", ".join(f"{op} {m:,}" for op, m in by_op.items()),
        f"anchor cycles = {anchor_latency_ms} ms x {anchor_clock_hz / 1e6:g} MHz = {total_cycles:,.0f}",
        f"overheads = {len(model.layers)} layers x {per_layer_cycles:g} + pool/elementwise = {overhead:,.0f} cycles",
        "weighted MACs = " + " + ".join(f"{by_op[op]:,} x {relative_cost.get(op, 1.0):g}" for op in by_op)
        + f" = {weighted:,.0f}",
        f"scale s = ({total_cycles:,.0f} - {overhead:,.0f}) / {weighted:,.0f} = {s:.4f}",
        "cycles per MAC: " + ", ".join(f"{op} {v:.3f}" for op, v in cpm.items()),
        f"blended: {total_cycles / model.macs:.3f} cycles per MAC overall",
    ]
    return {"scale": s, "cycles_per_mac": cpm, "anchor_cycles": total_cycles, "overhead_cycles": overhead,
            "macs": model.macs, "lines": lines}
