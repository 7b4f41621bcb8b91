"""build_deployable: recordings -> trained model -> int8 in all four runtimes, verified, with
per-window |int8 - fp32| in bpm, and an int8 output that reaches 200 bpm."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from edgefm.errors import ConfigError
from edgefm.tasks import DeployConfig, FitConfig, build_deployable

SPLIT = {"train": ["s0", "s1", "s2"], "val": ["s3"], "test": ["s4"]}


@pytest.fixture(scope="module")
def hr_run(hr_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy") / "run"
    return build_deployable(hr_data, out, DeployConfig(task="hr", split=SPLIT, fit=FitConfig(epochs=6)))


def test_all_four_runtimes_verified_with_per_window_error(hr_run):
    res = hr_run
    assert [a["format"] for a in res.artifacts] == ["pte", "tflite", "onnx", "tflm"]
    for a in res.artifacts:
        man = json.loads((res.out / (a["path"].rsplit("/", 1)[1].rsplit(".", 1)[0] + ".manifest.json"))
                         .read_text())
        assert man["output_spec"]["unit"] == "bpm" and man["output_spec"]["kind"] == "bins"
        assert man["quantization"]["dtype"] == "int8" and man["quantization"]["keep_float"] == ["frontend", "cnn.0", "cnn.9"]
        v = man["verification"]
        assert v["abs_err"]["p99"] <= 1.0 and v["abs_err"]["p50"] <= v["abs_err"]["p99"] <= v["abs_err"]["max"]
    m = json.loads((res.out / "metrics.json").read_text())
    assert m["split"]["test"] == ["s4"] and m["test"]["int8"]["abs_err_vs_fp32_tracked"]["p99"] <= 1.0
    assert abs(m["test"]["int8"]["hr_mae"] - m["test"]["fp32"]["hr_mae"]) < 0.5
    assert (res.out / "report.md").read_text().count("| tflm |") == 1


def test_every_int8_format_returns_200_bpm(hr_run, tmp_path, make_hr_recording):
    """Windows whose pulse is at 200 bpm, above every training label: each runtime's bins give ~200."""
    from edgefm.adapters import executorch as et, litert, onnx as ox, tflm
    from edgefm.export.verify import run_float, to_units
    from edgefm.tasks import load_windows
    from edgefm.data.store import write_recordings
    tm = hr_run.model
    assert hr_run.metrics["train"]["fp32"]["n"] > 0
    p = write_recordings([make_hr_recording("fast", 99, dur_s=40, hr0=200, hr1=200, motion_hz=2.2)], tmp_path / "f",
                         provenance={})
    tw = load_windows(p, "hr")
    z = tm.normalise(tw.x, tw.mask)
    # what the device shows: the bin scores tracked along the recording (runtime.track)
    fp32 = tm.decode(tm.model(torch.from_numpy(z)).detach().numpy(), tw, tracked=True)
    assert np.all(np.abs(fp32[3:] - 200) < 4), fp32
    out = hr_run.out
    runners = {"pte": et.ExecuTorchRunner((out / "model_xnnpack_q8.pte").read_bytes()),
               "tflite": litert.LiteRTRunner((out / "model_int8.tflite").read_bytes()),
               "onnx": ox.OnnxRunner((out / "model_qdq.onnx").read_bytes()),
               "tflm": tflm.load_runner(out / "model_data.cc")}
    for fmt, r in runners.items():
        got = tm.decode(run_float(r, z), tw, tracked=True)
        assert np.max(np.abs(got - fp32)) < 1.0, (fmt, got, fp32)


def test_refuses_to_overwrite_and_writes_nothing_on_bad_input(hr_data, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / "mine.txt").write_text("user data")
    with pytest.raises(ConfigError, match="not empty"):
        build_deployable(hr_data, out, DeployConfig(task="hr", split=SPLIT))
    assert (out / "mine.txt").read_text() == "user data"
    with pytest.raises(ConfigError, match="does not have"):
        build_deployable(hr_data, tmp_path / "n", DeployConfig(task="hr", split={"train": ["x"], "test": ["s4"]}))
    assert not (tmp_path / "n").exists()
    with pytest.raises(ConfigError):
        DeployConfig(formats=("tflm", "coreml"))


def test_the_simulator_prices_the_tracker_with_the_model(hr_run):
    from firmware_sim.costs import model_info_from_artifact
    from runtime.track import tracker_macs
    info = model_info_from_artifact(hr_run.out / "model_int8.tflite")
    assert info.meta["tracker_macs"] == tracker_macs(hr_run.model.tracker) == hr_run.metrics["macs"]["tracker"]
    assert info.layers[-1].name == "tracker"
