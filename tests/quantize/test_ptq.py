"""int8 PTQ (one PT2E quantization in each backend's form), per-layer SQNR, keep-float, QAT, INC tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgefm.errors import ConfigError, DataError
from quantize.ptq import QuantConfig, pt2e_qparams, quantize_
from quantize.sqnr import sqnr_db
from quantize.testing import TinyHR, fit, toy_hr_data


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    x, y = toy_hr_data(160, t=64, seed=4)
    return fit(TinyHR(width=8, blocks=1), x[:96], y[:96], epochs=20), x, y


def test_config_validation():
    with pytest.raises(ConfigError):
        QuantConfig(backend="tensorrt", calibration=np.zeros((1, 3, 8), np.float32))
    with pytest.raises(ConfigError):
        QuantConfig(backend="pte")
    with pytest.raises(DataError):
        QuantConfig(backend="pte", calibration=np.full((2, 3, 8), np.nan, np.float32))
    with pytest.raises(DataError):
        QuantConfig(backend="pte", calibration=np.zeros((3, 8), np.float32))
    assert QuantConfig(backend="litert", calibration=np.zeros((1, 3, 8))).backend == "tflite"


@pytest.mark.parametrize("backend", ["pte", "tflite"])
def test_pt2e_quantize_layer_report(trained, backend):
    m, x, _ = trained
    qm = quantize_(m, QuantConfig(backend=backend, calibration=x[:48].numpy()))
    layers = [r["layer"] for r in qm.layer_sqnr]
    assert "stem.0" in layers and "head" in layers
    # the simulated int8 model is close to float, and the reported output SQNR is the real one
    with torch.no_grad():
        f, q = m(x[96:]).numpy(), torch.cat([qm(x[i:i + 1]) for i in range(96, 160)]).numpy()
    assert sqnr_db(f - f.mean(), q - f.mean()) > 15
    final = qm.layer_sqnr[-1]
    assert final["sqnr_db"] > 20
    # keeping everything but the head in float makes the stem exact
    keep = tuple(n for n, mod in m.named_modules() if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)) and n != "head")
    qk = quantize_(m, QuantConfig(backend=backend, calibration=x[:48].numpy(), keep_float=keep))
    stem = next(r for r in qk.layer_sqnr if r["layer"] == "stem.0")
    assert stem["sqnr_db"] >= 100


def test_onnx_qdq_layer_report(trained):
    m, x, _ = trained
    qm = quantize_(m, QuantConfig(backend="onnx", calibration=x[:48].numpy()))
    assert qm.onnx[:2] != b"" and len(qm.layer_sqnr) > 3
    assert any(r["layer"].startswith("blocks.0") for r in qm.layer_sqnr)
    f = m(x[96:]).detach().numpy()
    q = qm(x[96:]).numpy()
    assert sqnr_db(f - f.mean(), q - f.mean()) > 15


def test_one_quantization_for_every_backend(trained):
    """pte, tflite and onnx forms carry identical scales and zero points; the QDQ ONNX in ONNX
    Runtime matches the quantized graph in eager within one output step."""
    m, x, _ = trained
    cal = x[:48].numpy()
    qs = {b: quantize_(m, QuantConfig(backend=b, calibration=cal)) for b in ("pte", "tflite", "onnx")}
    assert len({q.qparams_sha256 for q in qs.values()}) == 1
    q = qs["onnx"]
    rows = pt2e_qparams(q.converted(fold=True))
    assert rows == pt2e_qparams(q.converted(fold=False)) and rows
    assert any("axis" in r for r in rows)                       # per-channel int8 weights
    step = q.io_qparams()["output"]["scale"]
    eager = qs["tflite"](x[96:]).numpy()                        # unfolded graph, in torch
    ort = q(x[96:]).numpy()                                     # QDQ ONNX, in ONNX Runtime
    assert ort.shape == eager.shape == (64, 1)
    assert np.abs(ort - eager).max() <= step * (1 + 1e-3)
    # a different calibration gives different parameters (the fingerprint is not constant)
    other = quantize_(m, QuantConfig(backend="pte", calibration=x[48:96].numpy()))
    assert other.qparams_sha256 != q.qparams_sha256


@pytest.mark.slow
def test_qat_runs_and_stays_close(trained):
    m, x, y = trained
    qm = quantize_(m, QuantConfig(backend="tflite", calibration=x[:8].numpy(), qat=True,
                                  qat_data=(x[:16].numpy(), y[:16].numpy()), qat_epochs=1))
    with torch.no_grad():
        q = torch.cat([qm(x[i:i + 1]) for i in range(96, 128)])[:, 0]
    assert float((q - y[96:128]).abs().mean()) < 3 * float((m(x[96:128])[:, 0] - y[96:128]).abs().mean()) + 2


def test_inc_tune_finds_float_layers(trained):
    from quantize.tune import TuneConfig, tune
    m, x, y = trained
    # a zero tolerance forces the INC loop past the all-int8 trial
    r = tune(m, TuneConfig(backend="tflite", calibration=x[:32].numpy(), tolerable_loss=0.0, max_float_layers=2),
             x[96:].numpy(), y[96:].numpy())
    assert r.trials[0]["keep_float"] == [] and len(r.trials) >= 2
    assert [t["keep_float"] for t in r.trials][1] == [r.ranking[0]["layer"]]
    assert r.ranking == sorted(r.ranking, key=lambda d: (d["sqnr_db"], d["layer"]))
    best = min(r.trials, key=lambda t: t["mae"])
    assert r.mae == best["mae"]
    r2 = tune(m, TuneConfig(backend="tflite", calibration=x[:32].numpy(), tolerable_loss=0.5), x[96:].numpy(), y[96:].numpy())
    assert r2.met and r2.keep_float == [] and len(r2.trials) == 1


class _MeanToBpm(torch.nn.Module):
    """y = 130 + 50 * mean(x): calibration windows of N(0, 1) give 115-149 bpm; a window of 1.4
    everywhere (inside the input's calibrated range) gives 200 bpm in float."""

    def __init__(self, t: int = 64):
        super().__init__()
        self.lin = torch.nn.Linear(t, 1)
        with torch.no_grad():
            self.lin.weight.fill_(50 / t)
            self.lin.bias.fill_(130)

    def forward(self, x):
        return self.lin(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize("backend", ["pte", "tflite", "onnx"])
def test_output_range_is_not_clipped_at_the_calibration_extreme(backend):
    m = _MeanToBpm().eval()
    cal = np.random.default_rng(0).standard_normal((64, 1, 64)).astype(np.float32)
    x = torch.full((1, 1, 64), 1.4)
    assert float(m(x)) == pytest.approx(200.0, abs=1e-4)
    cal_max = float(m(torch.from_numpy(cal)).max())
    clipped = quantize_(m, QuantConfig(backend=backend, calibration=cal))
    assert float(clipped(x)) == pytest.approx(cal_max, abs=0.6)        # the old behaviour: clipped
    qm = quantize_(m, QuantConfig(backend=backend, calibration=cal, output_range=(30.0, 230.0)))
    out = qm.io_qparams()["output"]
    top = (127 - out["zero_point"]) * out["scale"]
    assert top >= 230.0 - out["scale"]                                   # 230 bpm is representable
    assert abs(float(qm(x)) - 200.0) <= out["scale"] / 2 + 1e-3         # within half an output step


def test_output_range_validation():
    cal = np.zeros((1, 1, 8), np.float32)
    for bad in ((230.0, 30.0), (float("nan"), 1.0), (0.0, float("inf")), (1.0,)):
        with pytest.raises(ConfigError, match="output_range"):
            QuantConfig(backend="pte", calibration=cal, output_range=bad)
