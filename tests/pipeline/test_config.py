"""Bad input fails at the start with one line, before any stage runs."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgefm.cli.main import app
from edgefm.errors import ConfigError, DataError, ManifestError
from edgefm.pipeline import PipelineConfig, build_stages, run_pipeline
from edgefm.pipeline.config import PRESETS, STAGES


def _no_stage_ran(out):
    return not out.exists() or not any((out / s).exists() for s in STAGES)


@pytest.mark.parametrize("setup,err", [
    (lambda p: None, "does not exist"),
    (lambda p: p.mkdir(), "is empty"),
    (lambda p: (p.mkdir(), (p / "x.txt").write_text("hi")), "no manifest.json"),
])
def test_bad_data_dir(tmp_path, setup, err):
    d = tmp_path / "data"
    setup(d)
    out = tmp_path / "run"
    with pytest.raises((DataError, ManifestError), match=err):
        run_pipeline(PipelineConfig(out=out, data=d, quick=True))
    assert _no_stage_ran(out)


def test_data_dir_without_ppg(tmp_path):
    d = tmp_path / "data"
    (d / "raw").mkdir(parents=True)
    (d / "traces").mkdir()
    (d / "manifest.json").write_text(json.dumps({"kind": "cohort"}))
    (d / "traces" / "manifest.json").write_text(json.dumps({"kind": "recordings"}))
    (d / "raw" / "manifest.json").write_text(json.dumps({"kind": "windows", "n_windows": 5,
                                                         "channels": [{"name": "acc_x"}]}))
    with pytest.raises(DataError, match=r"lack channels \['ppg', 'acc_y', 'acc_z'\]"):
        run_pipeline(PipelineConfig(out=tmp_path / "run", data=d, quick=True))


def test_unknown_device(tmp_path):
    with pytest.raises(ConfigError, match="unknown device profile 'nrf99'.*available: .*nrf52840"):
        run_pipeline(PipelineConfig(out=tmp_path / "run", quick=True, device="nrf99"))
    assert _no_stage_ran(tmp_path / "run")


def test_budget_unknown_key(tmp_path):
    b = tmp_path / "budget.toml"
    b.write_text("p99_latency_ms = 5.0\nbattery_dayz = 7\n")
    with pytest.raises(ConfigError, match="battery_dayz"):
        run_pipeline(PipelineConfig(out=tmp_path / "run", quick=True, budget=b))
    assert _no_stage_ran(tmp_path / "run")


def test_cli_bad_input_is_one_line_exit_1(tmp_path):
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(app, ["pipeline", "run", "--quick", "--data", str(tmp_path / "empty"),
                                 "--out", str(tmp_path / "run")])
    assert r.exit_code == 1
    lines = [l for l in r.output.splitlines() if l.strip()]
    assert len(lines) == 1 and "empty" in lines[0] and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["pipeline", "run", "--quick", "--device", "nope", "--out", str(tmp_path / "run")])
    assert r.exit_code == 1 and "unknown device profile" in r.output


def test_presets_and_overrides():
    assert set(PRESETS["quick"]) == set(PRESETS["default"])
    cfg = PipelineConfig(quick=True, overrides={"teacher": {"steps": 7}})
    st = {s.name: s for s in build_stages(cfg)}
    assert [s.name for s in build_stages(cfg)] == list(STAGES)
    assert st["teacher"].params["steps"] == 7 and st["teacher"].params["size"] == "tiny"
    with pytest.raises(ConfigError, match="unknown teacher parameters"):
        PipelineConfig(overrides={"teacher": {"stepz": 7}})
    with pytest.raises(ConfigError, match="unknown stage"):
        PipelineConfig(from_stage="train")
    # changing the preset changes the stage inputs (so a re-run re-trains)
    assert st["distil"].params != {s.name: s for s in build_stages(PipelineConfig())}["distil"].params


def test_presets_train_the_teacher_to_a_fixed_step_count():
    """A wall-clock budget would make the teacher, and every figure after it, depend on machine load."""
    for name, preset in PRESETS.items():
        assert preset["teacher"]["max_minutes"] is None and preset["teacher"]["steps"] > 0, name
