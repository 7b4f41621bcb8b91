"""The whole path on imported recordings: `edgefm task fit`, `edgefm task refit` and
`edgefm pipeline run --data` (tiny recordings, quick settings)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefm.cli.main import app

runner = CliRunner()


def _ok(res):
    assert res.exit_code == 0, res.output
    return res


def test_task_fit_then_refit_on_new_people(hr_data, tmp_path, make_hr_recording):
    from edgefm.data.store import write_recordings
    out = tmp_path / "fit"
    _ok(runner.invoke(app, ["task", "fit", str(hr_data), "-o", str(out), "--task", "hr", "--epochs", "4",
                            "--formats", "tflite,onnx", "--train-subjects", "s0,s1,s2", "--val-subjects", "s3",
                            "--test-subjects", "s4", "--json"]))
    m = json.loads((out / "metrics.json").read_text())
    assert m["split"]["test"] == ["s4"] and [a["format"] for a in m["artifacts"]] == ["tflite", "onnx"]
    # the user's own recordings: two new people, with a different motion frequency
    mine = write_recordings([make_hr_recording(f"me{i}", 50 + i, hr0=70, hr1=120, motion_hz=3.1) for i in range(3)],
                            tmp_path / "mine", provenance={"test": "mine"})
    r = _ok(runner.invoke(app, ["task", "refit", str(out), str(mine), "-o", str(tmp_path / "refit"), "--epochs", "2",
                                "--train-subjects", "me0,me1", "--test-subjects", "me2", "--json"]))
    rep = json.loads(r.stdout)
    assert rep["split"]["test"] == ["me2"] and len(rep["artifacts"]) == 4
    rm = json.loads((tmp_path / "refit" / "metrics.json").read_text())
    assert "before" in rm and rm["notes"][0].startswith("refit of ")
    assert all(a["abs_err"]["p99"] <= 1.0 for a in rep["artifacts"])
    # refused: an output that exists, a model for another task
    r = runner.invoke(app, ["task", "refit", str(out), str(mine), "-o", str(tmp_path / "refit"), "--train-subjects",
                            "me0", "--test-subjects", "me2"])
    assert r.exit_code == 1 and "not empty" in r.output


def test_task_fit_refuses_one_class_with_the_counts(tmp_path, make_activity_recording):
    from edgefm.data.store import write_recordings
    one = write_recordings([make_activity_recording(f"z{i}", i, one_class=1) for i in range(3)], tmp_path / "one",
                           provenance={})
    r = runner.invoke(app, ["task", "fit", str(one), "-o", str(tmp_path / "o"), "--split", "seeded"])
    assert r.exit_code == 1 and "collapse to 1 class" in r.output and "'walk'" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o").exists()


def test_pipeline_runs_every_stage_on_imported_recordings(activity_data, tmp_path):
    out = tmp_path / "run"
    r = _ok(runner.invoke(app, ["pipeline", "run", "--quick", "--data", str(activity_data), "-o", str(out),
                                "--split", "seeded", "--json"]))
    summary = json.loads(r.stdout)
    assert sorted(summary["stages"]) == sorted(["data", "teacher", "model", "gate", "simulate", "profile", "report"])
    md = (out / "report" / "report.md").read_text()
    assert "no PPG in the data" in md and "int8 macro-F1" in md and "## Artifacts" in md
    assert (out / "report" / "confusion.png").stat().st_size > 1000
    st = json.loads((out / "model" / "stage.json").read_text())["summary"]
    assert st["output_spec"]["classes"] == ["sit", "walk", "run"] and len(st["artifacts"]) == 4
    # the fixture's classes are not the gate's event activities: the gate says so, the simulator runs
    g = json.loads((out / "gate" / "stage.json").read_text())["summary"]
    assert g["calibrated"] is False and "gate" in md
    sim = json.loads((out / "simulate" / "stage.json").read_text())["summary"]
    assert sim["ran"] and {p["policy"] for p in sim["policies"]} == {"continuous-ppg", "acc-always"}
