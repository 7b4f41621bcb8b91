"""Op check: a layer TFLite Micro cannot run fails early, naming op and layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgefm.errors import UnsupportedOpError
from edgefm.export.opcheck import check_ops, unsupported_ops
from quantize.testing import GeluHR, TinyHR


def test_supported_model_passes():
    assert unsupported_ops(TinyHR(width=8, blocks=1), (torch.zeros(1, 3, 64),), "tflm") == []


def test_gelu_fails_tflm_naming_op_and_layer(tmp_path):
    m = GeluHR(width=8, blocks=1).eval()
    bad = unsupported_ops(m, (torch.zeros(1, 3, 64),), "tflm")
    assert bad == [{"layer": "act", "op": "gelu"}]
    with pytest.raises(UnsupportedOpError) as e:
        check_ops(m, (torch.zeros(1, 3, 64),), "tflm")
    assert "gelu" in str(e.value) and "'act'" in str(e.value)
    from edgefm.export import export_tflm
    with pytest.raises(UnsupportedOpError):
        export_tflm(m, tmp_path, np.zeros((4, 3, 64), np.float32))
    assert not list(tmp_path.iterdir())                  # failed before writing anything


def test_layernorm_named():
    class LN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = torch.nn.LayerNorm(64)
            self.head = torch.nn.Linear(3 * 64, 1)

        def forward(self, x):
            return self.head(self.norm(x).flatten(1))
    bad = unsupported_ops(LN().eval(), (torch.zeros(1, 3, 64),), "tflm")
    assert {"layer": "norm", "op": "layer_norm"} in bad


def test_tflite_op_list_check():
    from edgefm.adapters.tflm import check_ops as tflm_check
    tflm_check(["CONV_2D", "ADD", "MEAN"])
    with pytest.raises(UnsupportedOpError, match="GELU"):
        tflm_check(["CONV_2D", "GELU"])
