"""A tiny trained HR model and its exports, made once per test session (exports are slow)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def toy():
    from quantize.testing import TinyHR, fit, toy_hr_data
    torch.manual_seed(0)
    x, y = toy_hr_data(192, seed=3)
    model = fit(TinyHR(width=8, blocks=1), x[:128], y[:128], epochs=25)
    return model, x[:64].numpy(), (x[128:].numpy(), y[128:].numpy())


@pytest.fixture(scope="session")
def exported(toy, tmp_path_factory):
    """{(format, int8): ExportResult} for every format, written to one directory."""
    from edgefm.export import ArtifactSpec, export_onnx, export_pte, export_tflite, export_tflm
    model, calib, held = toy
    out = tmp_path_factory.mktemp("export")
    spec = ArtifactSpec(source={"checkpoint": "toy.pt", "sha256": "0" * 64, "config": {"width": 8}},
                        input_spec={"preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"],
                                    "fs_hz": 32.0, "window": 256, "hop": 64,
                                    "normalisation": {"mean": [0, 0, 0], "std": [1, 1, 1]}})
    res = {}
    for fn, fmt in ((export_onnx, "onnx"), (export_tflite, "tflite"), (export_pte, "pte")):
        for int8 in (False, True):
            res[(fmt, int8)] = fn(model, out, calib, int8=int8, heldout=held, spec=spec)
    res[("tflm", True)] = export_tflm(model, out, calib, heldout=held, spec=spec)
    return res
