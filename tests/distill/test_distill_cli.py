"""CLI and end-to-end runs on the tiny synthetic cohort with a tiny (untrained, real) teacher."""

import json

import pytest
import torch
from typer.testing import CliRunner

from edgefm.cli.main import app


@pytest.fixture(scope="module")
def teacher_ckpt(tmp_path_factory, tiny_teacher):
    from edgefm.train.checkpoint import save_checkpoint
    p = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_checkpoint(p, {"model_config": tiny_teacher.cfg.to_dict(), "model": tiny_teacher.state_dict(),
                        "size": "custom", "step": 0})
    return p


@pytest.mark.slow
def test_run_info_eval(tiny_cohort, teacher_ckpt, tmp_path):
    raw = tiny_cohort / "raw"
    r = CliRunner().invoke(app, ["distill", "run", str(raw), "--teacher", str(teacher_ckpt), "--out",
                                 str(tmp_path / "s.pt"), "--student", "cnn1d_tiny", "--epochs", "1",
                                 "--batch-size", "32", "--max-train", "256", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["params"] < 100_000 and res["hr_mae_val_bpm"] > 0
    r = CliRunner().invoke(app, ["distill", "info", str(tmp_path / "s.pt"), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["input_spec"]["channels"] == ["acc_x", "acc_y", "acc_z"]
    assert info["teacher"]["sha256"] and len(info["input_spec"]["normalisation"]["mean"]) == 3
    r = CliRunner().invoke(app, ["distill", "eval", str(tmp_path / "s.pt"), str(raw), "--teacher", str(teacher_ckpt),
                                 "--out", str(tmp_path / "rep"), "--no-baselines", "--fractions", "0.5,1",
                                 "--seeds", "1", "--probes", "linear"])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    ds = rep["datasets"]["raw"]
    assert ds["probes"]["student"]["hr"]["100%"]["selected"]["mae"] > 0
    assert "teacher" in ds["probes"] and ds["retrieval"][0]["batch"] == 64
    assert (tmp_path / "rep" / "label_efficiency.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "bland_altman.png").exists()


def test_bad_inputs_fail_with_one_line(tmp_path, tiny_cohort, teacher_ckpt):
    r = CliRunner().invoke(app, ["distill", "info", str(tmp_path / "nope.pt")])
    assert r.exit_code == 1 and "not found" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(app, ["distill", "run", str(tiny_cohort / "raw"), "--teacher", str(tmp_path / "no.pt"),
                                 "--out", str(tmp_path / "s.pt")])
    assert r.exit_code == 1 and "teacher checkpoint not found" in r.output
    r = CliRunner().invoke(app, ["distill", "run", str(tiny_cohort / "raw"), "--teacher", str(teacher_ckpt),
                                 "--out", str(tmp_path / "s.pt"), "--temperature", "0"])
    assert r.exit_code == 1 and "temperature" in r.output
    assert not (tmp_path / "s.pt").exists()
