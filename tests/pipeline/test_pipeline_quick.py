"""End to end: `--quick` on the built-in synthetic cohort, then a re-run that skips everything,
then `--from simulate`, then the demo built from the run. Slow (a couple of minutes on 2 cores)."""

from __future__ import annotations

import json
import math

import pytest

from edgefm.pipeline import STAGES, PipelineConfig, run_pipeline

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "run"
    return run_pipeline(PipelineConfig(out=out, quick=True))


def test_quick_run_produces_everything(quick_run):
    res = quick_run
    assert list(res.stages) == list(STAGES)
    for s in STAGES:
        m = json.loads((res.run_dir / s / "stage.json").read_text())
        assert m["stage"] == s and m["seconds"] >= 0 and m["outputs"]
    rep = json.loads((res.run_dir / "report" / "report.json").read_text())
    html = res.report_html.read_text()
    assert "data:image/png;base64," in html and "https://" not in html
    d = res.stages["distil"].summary
    assert math.isfinite(d["hr_mae_test"]) and 0 < d["hr_mae_test"] < 60
    arts = res.stages["export"].summary["artifacts"]
    assert {(a["format"], a["int8"]) for a in arts} >= {("pte", True), ("tflite", True), ("onnx", True), ("tflm", True)}
    sim = rep["sections"]["battery"]["battery_days"]
    assert sim["gated-ppg-off"] > sim["continuous-ppg"] > 0
    g = res.stages["gate"].summary
    assert 0 <= g["skip"] <= 1 and 0 <= g["recall"] <= 1
    assert g["config"]["kind"] == "acc-magnitude-std/v1"
    p = res.stages["prune"].summary
    assert p["after"]["macs"] < p["before"]["macs"] and p["macs_reduction"] > 0.2
    assert all(a["sqnr_db"] > 40 for a in arts if not a["int8"])       # fp32 artifacts match eager
    assert all(a["sqnr_db"] >= 10 for a in arts if a["int8"])          # int8 passed its verification
    lat = {r["variant"]: r for r in res.stages["profile"].summary["latency"]}
    assert lat["teacher.pt"]["p50_ms"] > lat["student_int8.tflite"]["p50_ms"] > 0
    assert rep["sections"]["battery"]["battery_days"] == sim
    assert html.count("data:image/png;base64,") >= 4


def test_rerun_skips_and_from_reruns(quick_run):
    res2 = run_pipeline(PipelineConfig(out=quick_run.run_dir, quick=True))
    assert res2.skipped == list(STAGES)
    res3 = run_pipeline(PipelineConfig(out=quick_run.run_dir, quick=True, from_stage="simulate"))
    assert res3.skipped == list(STAGES[:STAGES.index("simulate")])
    assert set(res3.stages) == set(STAGES)


def test_demo_builds_from_run(quick_run, tmp_path):
    from edgefm.pipeline.demo import ORT_DIST, build_demo
    if not ORT_DIST.is_dir():
        pytest.skip("demo/node_modules missing (cd demo && npm ci)")
    out = build_demo(quick_run.run_dir, tmp_path / "site")
    app = json.loads((out / "app.json").read_text())
    assert (out / app["model"]).exists() and (out / "ort" / "ort-wasm-simd-threaded.wasm").exists()
    assert json.loads((out / "gate.json").read_text()) == quick_run.stages["gate"].summary["config"]
