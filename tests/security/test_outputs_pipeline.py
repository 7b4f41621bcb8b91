"""Pipeline, demo build and gate outputs never destroy user data, and debris is never a result.

The pipeline tests swap the real stages for two tiny fake ones (``build_stages`` is patched), so
they exercise the run-directory checks, ``--overwrite`` and the stale-temporary sweep in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import edgefm.pipeline as P
from edgefm.cli.main import app
from edgefm.errors import ConfigError, ManifestError
from edgefm.pipeline.core import Stage

STALE = ".{}.tmp-99999999-x"          # a temporary of a writer that no longer runs (no such PID)


def _fake_stages(calls: list):
    """Two stages carrying real stage names (so ``--from`` accepts them)."""
    def a(ctx, inputs):
        calls.append("a")
        (ctx.dir / "a.txt").write_text("A")
        return {"v": 1}

    def b(ctx, inputs):
        calls.append("b")
        (ctx.dir / "b.txt").write_text((inputs["data"].dir / "a.txt").read_text() * 2)
        return {"v": 2}

    return [Stage("data", a, (), {"v": 1}, eta_s=1), Stage("teacher", b, ("data",), {}, eta_s=1)]


@pytest.fixture
def calls(monkeypatch):
    """Run the pipeline with two tiny stages instead of the real ones; records which ran."""
    seen: list = []
    monkeypatch.setattr(P, "build_stages", lambda config, context=None: _fake_stages(seen))
    return seen


def _keep(tmp_path: Path) -> Path:
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "a.txt").write_text("precious")
    return keep


def _siblings(p: Path) -> list[str]:
    return sorted(x.name for x in p.parent.iterdir() if x.name.startswith(f".{p.name}."))


# ---------------------------------------------------------------- pipeline run --out


def test_cli_refuses_non_empty_folder_that_is_not_a_run(tmp_path, calls):
    keep = _keep(tmp_path)
    r = CliRunner().invoke(app, ["pipeline", "run", "--quick", "--out", str(keep)])
    assert r.exit_code == 1, r.output
    assert "keep" in r.output and "--overwrite" in r.output and "Traceback" not in r.output
    assert (keep / "a.txt").read_text() == "precious" and sorted(x.name for x in keep.iterdir()) == ["a.txt"]
    assert calls == []


def test_cli_overwrite_replaces_the_folder_not_merges(tmp_path, calls):
    keep = _keep(tmp_path)
    r = CliRunner().invoke(app, ["pipeline", "run", "--quick", "--out", str(keep), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert calls == ["a", "b"]
    assert not (keep / "a.txt").exists()                       # replaced, not merged
    assert (keep / "teacher" / "b.txt").read_text() == "AA" and (keep / "pipeline.json").is_file()
    assert _siblings(keep) == []                               # no temporary or old copy left beside it


def test_api_refuses_non_empty_folder(tmp_path, calls):
    keep = _keep(tmp_path)
    with pytest.raises(ConfigError, match="not empty") as e:
        P.run_pipeline(P.PipelineConfig(out=keep, quick=True))
    assert str(e.value.path) == str(keep) and e.value.field == "--out"
    assert (keep / "a.txt").read_text() == "precious"


def test_resume_of_an_earlier_run_still_works(tmp_path, calls):
    run = tmp_path / "run"
    P.run_pipeline(P.PipelineConfig(out=run, quick=True))
    (run / "demo").mkdir()                                      # `make run` builds the demo inside the run
    (run / "demo" / "app.json").write_text("{}")
    calls.clear()
    res = P.run_pipeline(P.PipelineConfig(out=run, quick=True))
    assert calls == [] and res.skipped == ["data", "teacher"]
    assert (run / "demo" / "app.json").read_text() == "{}"     # the resume leaves other files alone
    res = P.run_pipeline(P.PipelineConfig(out=run, quick=True, from_stage="teacher"))
    assert calls == ["b"] and res.skipped == ["data"]


def test_a_file_named_pipeline_json_does_not_make_a_run(tmp_path, calls):
    keep = _keep(tmp_path)
    (keep / "pipeline.json").write_text("not json")
    with pytest.raises(ConfigError, match="not empty"):
        P.run_pipeline(P.PipelineConfig(out=keep, quick=True))
    assert (keep / "pipeline.json").read_text() == "not json"


def _fake_cohort(d: Path) -> Path:
    """Enough of a cohort layout to pass the pipeline's up-front data check."""
    (d / "raw").mkdir(parents=True)
    (d / "traces").mkdir()
    (d / "manifest.json").write_text(json.dumps({"kind": "cohort"}))
    (d / "traces" / "manifest.json").write_text(json.dumps({"kind": "recordings"}))
    (d / "raw" / "manifest.json").write_text(json.dumps({
        "kind": "windows", "n_windows": 5,
        "channels": [{"name": c} for c in ("ppg", "acc_x", "acc_y", "acc_z")]}))
    return d


@pytest.mark.parametrize("where", ["same", "inside", "contains"])
def test_data_may_not_be_the_output(tmp_path, calls, where):
    if where == "contains":
        data = _fake_cohort(tmp_path / "run" / "data")
        out = tmp_path / "run"
    else:
        data = _fake_cohort(tmp_path / "data")
        out = data if where == "same" else data / "run"
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match="input") as e:
        P.run_pipeline(P.PipelineConfig(out=out, data=data, quick=True, overwrite=True))
    assert e.value.field == "--out"
    assert calls == []
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_stale_stage_temporary_is_swept_and_never_read(tmp_path, calls):
    run = tmp_path / "run"
    P.run_pipeline(P.PipelineConfig(out=run, quick=True))
    for name in ("data", "teacher", "export"):
        junk = run / STALE.format(name)
        junk.mkdir()
        (junk / "student_int8_qdq.onnx").write_bytes(b"debris")
    calls.clear()
    P.run_pipeline(P.PipelineConfig(out=run, quick=True))
    assert calls == []                                           # every stage skipped ...
    assert [p.name for p in run.iterdir() if p.name.startswith(".")] == []   # ... and every stale one swept


def test_stage_outputs_never_record_a_nested_temporary(tmp_path, calls, monkeypatch):
    def a(ctx, inputs):
        (ctx.dir / "a.txt").write_text("A")
        junk = ctx.dir / ".model.onnx.tmp-99999999-x"
        junk.mkdir()
        (junk / "model.onnx").write_bytes(b"debris")
        return {}
    monkeypatch.setattr(P, "build_stages", lambda config, context=None: [Stage("data", a, (), {}, eta_s=1)])
    res = P.run_pipeline(P.PipelineConfig(out=tmp_path / "run", quick=True))
    assert set(res.stages["data"].manifest["outputs"]) == {"a.txt"}


# ---------------------------------------------------------------- demo: which .onnx is the student


def test_find_onnx_never_picks_a_temporary(tmp_path):
    from edgefm.pipeline.demo import _find_onnx
    run = tmp_path / "run"
    junk = run / STALE.format("export")                        # export killed mid-stage: no export/ yet
    junk.mkdir(parents=True)
    (junk / "student_int8_qdq.onnx").write_bytes(b"debris")
    with pytest.raises(ManifestError, match="no exported .onnx"):
        _find_onnx(run)


def test_find_onnx_prefers_the_recorded_export_outputs(tmp_path):
    from edgefm.pipeline.demo import _find_onnx
    run = tmp_path / "run"
    (run / "export").mkdir(parents=True)
    (run / "export" / "student_fp32.onnx").write_bytes(b"fp32")
    (run / "export" / "stage.json").write_text(json.dumps({"schema": 1, "output_hash": "x", "summary": {
        "artifacts": [{"artifact": "student_fp32.onnx", "format": "onnx", "int8": False}]}}))
    inner = run / "export" / ".student_int8_qdq.onnx.tmp-99999999-x"    # debris inside the stage folder
    inner.mkdir()
    (inner / "student_int8_qdq.onnx").write_bytes(b"debris")
    assert _find_onnx(run) == run / "export" / "student_fp32.onnx"


# ---------------------------------------------------------------- demo build --out


@pytest.fixture(scope="module")
def onnx_run(tmp_path_factory):
    """A run directory whose export stage holds a tiny ACC student .onnx with its manifest."""
    import torch

    from edgefm.manifest import write_artifact_manifest
    run = tmp_path_factory.mktemp("demo") / "run"
    (run / "export").mkdir(parents=True)
    model = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 5), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 1)).eval()
    p = run / "export" / "student_fp32.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 256),), str(p), input_names=["acc"], output_names=["hr"],
                      dynamo=False)
    gate = {"on_threshold": 0.05, "off_threshold": 0.03, "min_on_s": 8.0, "off_hold_s": 4.0,
            "wake_every_s": 0.0, "block_s": 1.0, "fs_hz": 32.0}
    write_artifact_manifest(p, {"format": "onnx", "input_spec": {
        "preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": 32.0, "window": 256, "hop": 64,
        "normalisation": {"mean": [0, 0, 1], "std": [.2, .2, .2]}}, "output_spec": {"name": "hr", "unit": "bpm"},
        "gate": gate})
    (run / "pipeline.json").write_text(json.dumps({"config": {}, "stages": ["export"], "code_version": "x"}))
    device = {"name": "d", "battery_j": 1000.0, "floor_w": 1e-5, "gate_j_per_sample": 1e-9,
              "inference_j": 1e-4, "ppg_w": 1e-3}
    trace = {"fs_hz": 32.0, "unit": "g", "channels": ["acc_x", "acc_y", "acc_z"], "data": [[0.0] * 64] * 3}
    (run / "device.json").write_text(json.dumps(device))
    (run / "trace.json").write_text(json.dumps(trace))
    return run


def _tree(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _demo_args(run: Path) -> list[str]:
    return ["--device-json", str(run / "device.json"), "--trace", str(run / "trace.json")]


needs_ort = pytest.mark.skipif(not __import__("edgefm.pipeline.demo", fromlist=["ORT_DIST"]).ORT_DIST.is_dir(),
                               reason="demo/node_modules missing (cd demo && npm ci)")


@needs_ort
@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_demo_build_out_equal_to_source_refused(onnx_run, flags):
    before = _tree(onnx_run)
    r = CliRunner().invoke(app, ["demo", "build", str(onnx_run), "--out", str(onnx_run), *_demo_args(onnx_run),
                                 *flags])
    assert r.exit_code == 1, r.output
    assert "input" in r.output and "Traceback" not in r.output
    assert _tree(onnx_run) == before


@needs_ort
def test_demo_build_out_containing_source_refused(onnx_run):
    before = _tree(onnx_run)
    with pytest.raises(ConfigError, match="input"):
        from edgefm.pipeline.demo import build_demo
        build_demo(onnx_run / "export" / "student_fp32.onnx", onnx_run.parent, overwrite=True,
                   device=onnx_run / "device.json", trace=onnx_run / "trace.json")
    assert _tree(onnx_run) == before


@needs_ort
def test_demo_build_out_onto_a_stage_folder_of_the_source_refused(onnx_run):
    before = _tree(onnx_run)
    r = CliRunner().invoke(app, ["demo", "build", str(onnx_run), "--out", str(onnx_run / "export"),
                                 *_demo_args(onnx_run), "--overwrite"])
    assert r.exit_code == 1, r.output
    assert _tree(onnx_run) == before


@needs_ort
def test_demo_build_existing_out_needs_overwrite(onnx_run, tmp_path):
    keep = _keep(tmp_path)
    r = CliRunner().invoke(app, ["demo", "build", str(onnx_run), "--out", str(keep), *_demo_args(onnx_run)])
    assert r.exit_code == 1, r.output
    assert "--overwrite" in r.output and (keep / "a.txt").read_text() == "precious"
    r = CliRunner().invoke(app, ["demo", "build", str(onnx_run), "--out", str(keep), *_demo_args(onnx_run),
                                 "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not (keep / "a.txt").exists() and (keep / "app.json").is_file()


@needs_ort
def test_demo_build_inside_the_run_like_make_run(onnx_run):
    """`make run` builds RUN/demo from RUN: a new folder inside the run, not one of its stages."""
    from edgefm.pipeline.demo import build_demo
    out = build_demo(onnx_run, onnx_run / "demo", device=onnx_run / "device.json", trace=onnx_run / "trace.json")
    try:
        assert (out / "app.json").is_file() and (onnx_run / "export" / "student_fp32.onnx").is_file()
        with pytest.raises(ConfigError, match="not empty"):
            build_demo(onnx_run, onnx_run / "demo", device=onnx_run / "device.json",
                       trace=onnx_run / "trace.json")
    finally:
        import shutil
        shutil.rmtree(onnx_run / "demo", ignore_errors=True)


# ---------------------------------------------------------------- gate calibrate --out


@pytest.fixture
def fake_calibrate(monkeypatch):
    """What runtime.calibrate.calibrate does to its --out, without the calibration (fast)."""
    import runtime.calibrate as rc
    seen = []

    def fake(data, target_recall=0.95, *, out=None, **kw):
        seen.append(out)
        out = Path(out)
        out.with_suffix(".png").write_bytes(b"png")
        out.write_text(json.dumps({"new": True}))
        return {"gate": {"on_threshold": 0.1, "off_threshold": 0.05, "min_on_s": 8, "off_hold_s": 4,
                         "wake_every_s": 0.0}, "cost": {"ops_per_sample": 1.0},
                "calibration": None, "held_out": None, "met_target": True}
    monkeypatch.setattr(rc, "calibrate", fake)
    return seen


@pytest.mark.parametrize("existing", ["g.json", "g.png"])
def test_gate_calibrate_refuses_to_replace_a_file(tmp_path, fake_calibrate, existing):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / existing).write_text("precious")
    r = CliRunner().invoke(app, ["gate", "calibrate", str(data), "--out", str(tmp_path / "g.json")])
    assert r.exit_code == 1, r.output
    assert existing in r.output and "--overwrite" in r.output and "Traceback" not in r.output
    assert (tmp_path / existing).read_text() == "precious" and fake_calibrate == []
    r = CliRunner().invoke(app, ["gate", "calibrate", str(data), "--out", str(tmp_path / "g.json"), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "g.json").read_text()) == {"new": True}


def test_gate_calibrate_out_inside_the_data_refused(tmp_path, fake_calibrate):
    data = tmp_path / "data"
    data.mkdir()
    r = CliRunner().invoke(app, ["gate", "calibrate", str(data), "--out", str(data / "g.json")])
    assert r.exit_code == 1, r.output
    assert "input" in r.output and not (data / "g.json").exists() and fake_calibrate == []
