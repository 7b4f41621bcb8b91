"""The report: self-contained HTML with embedded plots, Markdown and JSON, honest about gaps."""

from __future__ import annotations

import base64
import json
import re

from edgefm.pipeline.core import StageRecord
from edgefm.report import write_report


def rec(tmp_path, name, summary, seconds=1.0):
    d = tmp_path / name
    d.mkdir(exist_ok=True)
    return StageRecord(name, d, {"summary": summary, "seconds": seconds, "output_hash": "x"})


def test_report_sections_and_plots(tmp_path):
    stages = {
        "data": rec(tmp_path, "data", {"cohort": "cohort", "info": {"subjects": 6, "hours": 14.4},
                                       "raw": {"n_windows": 900, "channels": ["ppg", "acc_x", "acc_y", "acc_z"],
                                               "split": {"train": ["a", "b"], "val": ["c"], "test": ["d"]},
                                               "labels": ["hr", "activity"]}}),
        "gate": rec(tmp_path, "gate", {"skip": 0.64, "recall": 0.96, "delay_s": 3.0, "target_recall": 0.95,
                                       "config": {"on_threshold": 0.03},
                                       "curve": [{"recall": r, "skip": 1 - r} for r in (0.5, 0.8, 0.96, 1.0)]}),
        "simulate": rec(tmp_path, "simulate", {"device": "nrf52840", "ceiling_days": 90.0, "inference_ms": 12.0,
                                               "inference_energy_uj": 80.0, "policies": [
            {"policy": "continuous-ppg", "battery_days": 5.0}, {"policy": "gated-ppg-off", "battery_days": 40.0}]}),
        "profile": rec(tmp_path, "profile", {"latency": [{"variant": "a.onnx", "p50_ms": 0.2},
                                                         {"variant": "teacher.pt", "p50_ms": 30.0}],
                                             "budget": [{"row": "p99_latency_ms", "measured": 0.3, "limit": 1.0, "pass": True},
                                                        {"row": "battery_days", "measured": 4.0, "limit": 7.0, "pass": False}]}),
    }
    files = write_report(stages, tmp_path / "report")
    html = (tmp_path / "report" / "report.html").read_text()
    md = (tmp_path / "report" / "report.md").read_text()
    js = json.loads((tmp_path / "report" / "report.json").read_text())
    # self-contained: no external URLs, every image inline and a valid PNG
    assert not re.search(r"(src|href)=['\"]https?://", html)
    imgs = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(imgs) == 3          # gate curve, battery, latency
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in imgs)
    assert {p.name for p in files} >= {"report.html", "report.md", "report.json", "gate_tradeoff.png"}
    # stages that did not run are reported as such, never filled in
    assert js["sections"]["teacher"]["status"] == "unavailable"
    assert "not available" in md and "the distil stage did not run" in md
    # numbers carried through
    assert js["sections"]["battery"]["battery_days"] == {"continuous-ppg": 5.0, "gated-ppg-off": 40.0}
    assert js["sections"]["budget"]["pass"] is False
    assert "Budget FAILED: battery_days" in md
    assert "| subjects | 6 |" in md
    assert "<td class='FAIL'>FAIL</td>" in html and ">yes<" not in html
