"""Quantization-aware training (PT2E): fake-quantize with the shared int8 quantizer, fine-tune on
labelled windows — used by :func:`quantize.ptq.quantize_` when ``qat=True`` (which converts)."""

from __future__ import annotations

import numpy as np
import torch

from edgefm.errors import DataError


def qat_finetune(gm: torch.fx.GraphModule, quantizer, config) -> torch.fx.GraphModule:
    """gm: ``torch.export``-ed model; quantizer: the PT2E quantizer built with ``qat=True``;
    config: :class:`quantize.ptq.QuantConfig` with ``qat_data=(x (N, C, T), y (N,) or (N, D))``.
    Calibrates, trains ``config.qat_epochs`` epochs (MSE, Adam 1e-4, batch 1 because the exported
    graph has a fixed batch), returns the trained fake-quantized graph in eval mode (not yet
    converted: ``convert_pt2e`` of a copy gives each backend's form)."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    x, y = config.qat_data
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y = torch.as_tensor(np.asarray(y, dtype=np.float32)).reshape(len(x), -1)
    if x.ndim != 3 or not torch.isfinite(x).all() or not torch.isfinite(y).all():
        raise DataError("qat_data must be finite (x (N, C, T), y (N,))", field="qat_data")
    torch.manual_seed(0)
    p = prepare_qat_pt2e(gm, quantizer)
    move_exported_model_to_eval(p)
    with torch.no_grad():
        for c in torch.from_numpy(config.calibration):
            p(c[None])
    move_exported_model_to_train(p)
    opt = torch.optim.Adam([q for q in p.parameters() if q.requires_grad], lr=1e-4)
    for _ in range(config.qat_epochs):
        for i in torch.randperm(len(x)).tolist():
            loss = torch.nn.functional.mse_loss(p(x[i:i + 1]), y[i:i + 1])
            opt.zero_grad()
            loss.backward()
            opt.step()
    move_exported_model_to_eval(p)
    return p
