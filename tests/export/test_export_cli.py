"""The CLI is a thin layer: export a saved model, fail cleanly on an op TFLite Micro lacks."""

from __future__ import annotations

import json

import numpy as np
import torch
from typer.testing import CliRunner

from edgefm.cli.main import app
from edgefm.export.io import save_model
from quantize.testing import GeluHR, TinyHR, fit, toy_hr_data

SPEC = {"preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": 32.0, "window": 64,
        "hop": 16, "normalisation": {"mean": [0, 0, 0], "std": [1, 1, 1]}}


def test_export_onnx_cli(tmp_path):
    torch.manual_seed(0)
    x, y = toy_hr_data(96, t=64, seed=2)
    m = fit(TinyHR(width=8, blocks=1), x, y, epochs=20)
    ck = save_model(tmp_path / "m.pt", m, input_spec=SPEC, source={"config": {}}, meta={})
    np.save(tmp_path / "calib.npy", x[:48].numpy())
    r = CliRunner().invoke(app, ["export", "run", str(ck), "--format", "onnx", "--int8", "--calib",
                                 str(tmp_path / "calib.npy"), "--out", str(tmp_path / "out"), "--json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert rows[0]["path"].endswith("student_qdq.onnx") and rows[0]["sqnr_db"] > 10
    m = json.loads((tmp_path / "out" / "student_qdq.manifest.json").read_text())
    assert m["input_spec"]["channels"] == SPEC["channels"] and m["source"]["checkpoint"] == str(ck)


def test_export_tflm_unsupported_op_cli(tmp_path):
    ck = save_model(tmp_path / "g.pt", GeluHR(width=8, blocks=1), input_spec=SPEC, source={}, meta={})
    np.save(tmp_path / "calib.npy", np.zeros((4, 3, 64), np.float32))
    r = CliRunner().invoke(app, ["export", "run", str(ck), "--format", "tflm", "--calib",
                                 str(tmp_path / "calib.npy"), "--out", str(tmp_path / "out")])
    assert r.exit_code == 1
    assert "UnsupportedOpError" in r.output and "gelu" in r.output and "'act'" in r.output
    assert not (tmp_path / "out" / "model_data.cc").exists()
