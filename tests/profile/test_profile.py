"""edgefm profile: latency statistics, budgets, exit codes, reports."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from edgefm.cli.profile import app   # the `edgefm profile` group (independent of other groups)
from edgefm.errors import ConfigError, IntegrityError
from edgefm.manifest import write_artifact_manifest
from edgefm.profile import (KNOWN_KEYS, LatencyStats, load_budget, profile, to_html, to_markdown,
                            variant_for, write_reports)

SPEC = {"input_spec": {"preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": 32.0,
                       "window": 256, "hop": 64}}


def tiny():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv1d(3, 8, 5, 2, 2), nn.ReLU(), nn.Conv1d(8, 8, 5, 2, 2, groups=8),
                         nn.Conv1d(8, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                         nn.Linear(16, 1)).eval()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    m = tiny()
    from edgefm.export.io import save_model           # code-free: state dict + module tree as data
    save_model(d / "student.pt", m, input_spec=SPEC["input_spec"], source={}, meta={})
    torch.onnx.export(m, (torch.zeros(1, 3, 256),), str(d / "student_fp32.onnx"), dynamo=False,
                      input_names=["x"])
    write_artifact_manifest(d / "student_fp32.onnx", {"format": "onnx", "quantization": {"dtype": "float32"},
                                                      **SPEC, "verification": {"hr_mae_bpm": 5.0}})
    return d


def test_latency_stats_order_and_values():
    rng = np.random.default_rng(0)
    t = rng.lognormal(0, 0.5, 1000)
    s = LatencyStats.from_times(t)
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    srt = np.sort(t)
    assert srt[489] <= s.p50_ms <= srt[510]
    assert srt[980] <= s.p99_ms <= srt[995]
    assert s.throughput_per_s == pytest.approx(1000 / t.mean())


def test_budget_parsing(tmp_path):
    p = tmp_path / "b.toml"
    p.write_text('device = "nrf52840"\np99_latency_ms = 5\nbattery_days = 7\n')
    b = load_budget(p)
    assert b.p99_latency_ms == 5 and b.battery_days == 7 and b.needs_device
    p.write_text('[budget]\nram_kb = 100\n')
    assert load_budget(p).ram_kb == 100
    p.write_text('p99_latency_ms = 5\nbatery_days = 7\n')
    with pytest.raises(ConfigError) as e:
        load_budget(p)
    msg = e.value.one_line()
    assert "\n" not in msg and "batery_days" in msg and "battery_days" in msg
    p.write_text('p99_latency_ms = "fast"\n')
    with pytest.raises(ConfigError, match="p99_latency_ms"):
        load_budget(p)
    assert "min_accuracy" in KNOWN_KEYS and "flash_kb" in KNOWN_KEYS


def test_profile_measures_and_reports(run_dir, tmp_path):
    res = profile([run_dir], device="nrf52840", runs=20, warmup=2)
    rows = {r["name"]: r for r in res.rows}
    assert set(rows) == {"student.pt", "student_fp32.onnx"}
    for r in rows.values():
        assert r["ok"], r["error"]
        assert 0 < r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["rss_peak_mb"] > 10 and r["bytes"] > 0
    params = sum(p.numel() for p in tiny().parameters())
    assert rows["student.pt"]["params"] == params
    hand_macs = 128 * 8 * 3 * 5 + 64 * 8 * 5 + 64 * 16 * 8 + 16
    assert rows["student.pt"]["macs"] == hand_macs == rows["student_fp32.onnx"]["macs"]
    key = "ratio_onnx_fp32_vs_student_eager"
    assert res.ratios[key] == pytest.approx(rows["student.pt"]["p50_ms"] / rows["student_fp32.onnx"]["p50_ms"])
    assert res.per_layer["student_fp32.onnx"]["rows"]          # ONNX Runtime profiling
    assert res.sim["device"] == "nrf52840" and res.sim_model == "student_fp32.onnx"
    out = write_reports(res, tmp_path / "rep")
    html = (out / "profile.html").read_text()
    assert "data:image/png;base64," in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html)   # no external resources
    assert "http://" not in html and "https://" not in html
    assert json.loads((out / "profile.json").read_text())["variants"]
    assert "battery" in to_markdown(res).lower()


def test_budget_failure_exits_1_naming_rows(run_dir, tmp_path):
    b = tmp_path / "b.toml"
    b.write_text('device = "nrf52840"\np99_latency_ms = 0.000001\nbattery_days = 1\nmax_error = 8\n')
    r = CliRunner().invoke(app, ["run", str(run_dir / "student_fp32.onnx"), "--budget", str(b),
                                 "--runs", "5", "--warmup", "1", "--no-per-layer"])
    assert r.exit_code == 1, r.output
    assert "BudgetExceeded" in r.output and "p99_latency_ms" in r.output
    assert "battery_days" not in r.output.split("BudgetExceeded")[1]      # passing rows are not named
    b.write_text('device = "nrf52840"\np99_latency_ms = 100000\nbattery_days = 1\nmax_error = 8\n')
    r = CliRunner().invoke(app, ["run", str(run_dir / "student_fp32.onnx"), "--budget", str(b),
                                 "--runs", "5", "--warmup", "1", "--no-per-layer"])
    assert r.exit_code == 0, r.output


def test_bad_budget_or_device_fails_before_running(run_dir, tmp_path):
    b = tmp_path / "b.toml"
    b.write_text("p99_latency_ms = 5\nwhatever = 1\n")
    r = CliRunner().invoke(app, ["run", str(run_dir), "--budget", str(b)])
    assert r.exit_code == 1 and "whatever" in r.output and "measuring" not in r.output
    assert len([l for l in r.output.splitlines() if l.strip()]) == 1
    r = CliRunner().invoke(app, ["run", str(run_dir), "--device", "nrf9999"])
    assert r.exit_code == 1 and "nrf52840" in r.output and "measuring" not in r.output
    assert len([l for l in r.output.splitlines() if l.strip()]) == 1


def test_tampered_artifact_is_refused(run_dir, tmp_path):
    import shutil
    p = tmp_path / "m.onnx"
    shutil.copy(run_dir / "student_fp32.onnx", p)
    write_artifact_manifest(p, {"format": "onnx"})
    with open(p, "ab") as f:
        f.write(b"x")
    with pytest.raises(IntegrityError):
        variant_for(p)


def test_failed_variant_is_a_row_not_a_crash(tmp_path):
    p = tmp_path / "broken_int8.onnx"
    p.write_bytes(b"not an onnx file")
    res = profile([p], runs=2, warmup=0, per_layer=False)
    assert res.rows[0]["ok"] is False and res.rows[0]["error"] and res.rows[0]["dtype"] == "int8"
    assert "failed" in to_html(res)
