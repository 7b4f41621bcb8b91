"""`edgefm simulate ...` through Typer's CliRunner."""

from __future__ import annotations

import json

import torch
from torch import nn
from typer.testing import CliRunner

from edgefm.cli.simulate import app
from edgefm.manifest import write_artifact_manifest


def test_calibrate_and_devices():
    r = CliRunner().invoke(app, ["calibrate", "stm32u5"])
    assert r.exit_code == 0 and "2,656,768 MACs" in r.output and "664" in r.output
    r = CliRunner().invoke(app, ["devices", "--json"])
    assert r.exit_code == 0 and {d["name"] for d in json.loads(r.output)} >= {"nrf52840", "stm32u5", "phone-big-core"}


def test_unknown_device_one_line():
    r = CliRunner().invoke(app, ["calibrate", "nrf0"])
    assert r.exit_code == 1 and "available: nrf52840" in r.output
    assert len([l for l in r.output.splitlines() if l.strip()]) == 1


def test_run_on_onnx_artifact(tmp_path):
    m = nn.Sequential(nn.Conv1d(3, 8, 5, 2, 2), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 1))
    p = tmp_path / "s.onnx"
    torch.onnx.export(m.eval(), (torch.zeros(1, 3, 256),), str(p), dynamo=False)
    write_artifact_manifest(p, {"input_spec": {"channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": 32.0,
                                               "window": 256, "hop": 64}})
    r = CliRunner().invoke(app, ["run", str(p), "--days", "0.25", "--json", "--out", str(tmp_path / "sim")])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output[r.output.index("{"):])
    assert d["model"]["macs"] == 128 * 8 * 15 + 8
    assert set(d["battery_days"]) == {"continuous-ppg", "acc-always", "acc-gated", "gated-ppg-off"}
    assert (tmp_path / "sim" / "battery.png").stat().st_size > 1000
