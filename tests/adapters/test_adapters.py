"""Each adapter exports and runs its artifact; runners follow the contract (raw dtypes,
details with scale / zero point)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgefm.adapters import TensorDetails, get_adapter, load_runner
from edgefm.errors import ConfigError, ExportError
from quantize.testing import TinyHR


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyHR(width=8, blocks=1).eval()


def _x(n=4):
    return np.random.default_rng(0).normal(size=(n, 3, 64)).astype(np.float32)


def test_onnx_roundtrip(model, tmp_path):
    from edgefm.adapters import onnx as ox
    data = ox.export(model, (torch.zeros(1, 3, 64),))
    assert data == ox.export(model, (torch.zeros(1, 3, 64),))        # deterministic bytes
    p = tmp_path / "m.onnx"
    p.write_bytes(data)
    r = load_runner(p)
    x = _x()
    assert r.input_details[0] == TensorDetails("x", np.dtype(np.float32), (-1, 3, 64))
    np.testing.assert_allclose(r.run(x), model(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-4)


def test_litert_fp32_and_int8_io(model):
    from edgefm.adapters import litert
    ex = (torch.zeros(1, 3, 64),)
    r = litert.load_runner(litert.convert(model, ex))
    x = _x(1)
    np.testing.assert_allclose(r.run(x), model(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-3)
    assert r.input_details[0].dtype == np.float32 and not r.input_details[0].quantized
    assert "CONV_2D" in litert.list_ops(litert.convert(model, ex))


def test_tflm_c_source_roundtrip(tmp_path):
    from edgefm.adapters import tflm
    blob = bytes(range(40))
    cc, h = tflm.c_source(blob, arena_bytes=1234)
    assert "alignas(16)" in cc and "g_model_data_len = 40" in cc and "kTensorArenaSize = 1234" in h
    assert tflm._from_c_source(cc.encode()) == blob


def test_unknown_backend_and_missing_file(tmp_path):
    with pytest.raises(ConfigError):
        get_adapter("tvm")
    with pytest.raises(ConfigError):
        load_runner(tmp_path / "model.bin")
    with pytest.raises(ExportError):
        load_runner(tmp_path / "missing.onnx")


def test_garbage_model_is_typed_error(tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ExportError):
        load_runner(p)
