"""An int8 heart-rate artifact covers 30-230 bpm whatever its calibration labels span: a window
whose float prediction is 200 bpm comes back as ~200 from every int8 format (it used to be
clipped at the calibration's maximum)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

T = 256


class MeanToBpm(torch.nn.Module):
    """y = 130 + 50 * mean(x) over 3 x 256 samples: N(0, 1) calibration windows give ~125-135 bpm;
    a window of 1.4 everywhere (inside the input's calibrated range) gives 200 bpm."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(3 * T, 1)
        with torch.no_grad():
            self.lin.weight.fill_(50 / (3 * T))
            self.lin.bias.fill_(130)

    def forward(self, x):
        return self.lin(x.reshape(x.shape[0], -1))


def test_every_int8_format_returns_200_bpm(tmp_path):
    import runtime
    from edgefm.export import ArtifactSpec, export
    model = MeanToBpm().eval()
    calib = np.random.default_rng(0).standard_normal((64, 3, T)).astype(np.float32)
    x = np.full((1, 3, T), 1.4, np.float32)
    assert float(model(torch.from_numpy(x))) == pytest.approx(200.0, abs=1e-3)
    assert float(model(torch.from_numpy(calib)).max()) < 140.0        # far below 200: would clip
    spec = ArtifactSpec(source={"checkpoint": "toy.pt", "sha256": "0" * 64},
                        input_spec={"preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"],
                                    "fs_hz": 32.0, "window": T, "hop": 64,
                                    "normalisation": {"mean": [0, 0, 0], "std": [1, 1, 1]}},
                        output_spec={"name": "heart_rate", "unit": "bpm"})
    res = export(model, "all", tmp_path, calib, int8=True, spec=spec)
    assert sorted(r.format for r in res) == ["onnx", "pte", "tflite", "tflm"]
    for r in res:
        m = runtime.load(r.path, backend="tflm" if r.format == "tflm" else None)
        y = float(m.predict(x).reshape(-1)[0])
        # not clipped (that read ~135): within 1.5 output steps (rounding of input, bias and output)
        assert abs(y - 200.0) <= 1.5 * m.output_step, (r.format, y, m.output_step)
        assert m.output_step < 1.0                                     # 30-230 bpm in 256 steps
