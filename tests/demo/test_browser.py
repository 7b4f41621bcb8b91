"""End-to-end: the demo app in headless Chromium (Playwright) replays a fixed trace; the page's
gate decisions and heart-rate outputs must match an independent Python computation (the same
windows through onnxruntime, the gate's equations in numpy) within tolerance.

Needs Debian's ``chromium`` and ``demo/node_modules`` (``npm ci`` in demo/); skips otherwise.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgefm.pipeline.demo import DEMO_SRC, ORT_DIST, build_demo, serve_demo, trace_to_json

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = REPO / "demo" / "node_modules" / "playwright-core"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed (apt-get install -y chromium)"),
    pytest.mark.skipif(not (PLAYWRIGHT.is_dir() and ORT_DIST.is_dir()),
                       reason="demo/node_modules missing (cd demo && npm ci)"),
    pytest.mark.skipif(shutil.which("node") is None, reason="node not installed"),
]

FS_HZ, WINDOW, HOP = 32.0, 256, 64
GATE = {"kind": "acc-magnitude-std/v1", "on_threshold": 0.05, "off_threshold": 0.03, "min_on_s": 4.0,
        "off_hold_s": 3.0, "wake_every_s": 30.0, "block_s": 1.0, "fs_hz": FS_HZ}   # runtime.gate.GateConfig.to_dict()
DEVICE = {"name": "nrf52840", "battery_j": 0.15 * 3.7 * 3600, "floor_w": 3.7 * 5e-6,
          "gate_j_per_sample": 2e-9, "inference_j": 1.2e-4, "ppg_w": 5e-4}


def fixed_trace(seed: int = 0) -> np.ndarray:
    """(3, n) ACC in g: 60 s still, 60 s walking-like 1.8 Hz swing, 60 s still."""
    rng = np.random.default_rng(seed)
    n = int(180 * FS_HZ)
    t = np.arange(n) / FS_HZ
    acc = np.zeros((3, n))
    acc[2] = 1.0
    acc += rng.normal(0, 0.004, acc.shape)
    walk = (t >= 60) & (t < 120)
    acc[0, walk] += 0.35 * np.sin(2 * np.pi * 1.8 * t[walk])
    acc[2, walk] += 0.25 * np.sin(2 * np.pi * 3.6 * t[walk] + 0.4)
    return acc


def gate_reference(acc: np.ndarray, cfg: dict, window: int, hop: int) -> list[bool]:
    """Window decisions of the runtime's own gate (runtime.gate, offline evaluator) on the trace."""
    from runtime.gate import GateConfig, gate_recording
    _, dec = gate_recording(acc.T, None, GateConfig.from_dict(cfg), window, hop)
    return dec.tolist()


@pytest.fixture(scope="module")
def student_onnx(tmp_path_factory) -> Path:
    """A real ``torch.onnx.export`` of a small conv model of the student's shape (1,3,256)->(1,1)."""
    import torch
    from edgefm.manifest import write_artifact_manifest
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv1d(3, 8, 9, padding=4), torch.nn.ReLU(),
        torch.nn.Conv1d(8, 8, 9, padding=4, groups=8), torch.nn.Conv1d(8, 16, 1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool1d(1), torch.nn.Flatten(), torch.nn.Linear(16, 1)).eval()
    with torch.no_grad():
        model[-1].bias.fill_(75.0)
        model[-1].weight.mul_(40.0)
    d = tmp_path_factory.mktemp("student")
    path = d / "student_fp32.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, WINDOW),), str(path), input_names=["acc"], output_names=["hr"],
                      dynamo=False)
    write_artifact_manifest(path, {
        "format": "onnx", "source": {"checkpoint": None, "note": "test fixture model"},
        "input_spec": {"preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": FS_HZ,
                       "window": WINDOW, "hop": HOP,
                       "normalisation": {"mean": [0.0, 0.0, 1.0], "std": [0.2, 0.2, 0.2]}},
        "output_spec": {"name": "hr", "unit": "bpm"}, "quantization": {"dtype": "float32"},
        "gate": GATE}, backends=("onnxruntime",))
    return path


def python_outputs(model: Path, acc: np.ndarray, mean, std) -> np.ndarray:
    import onnxruntime as ort
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    starts = range(0, acc.shape[1] - WINDOW + 1, HOP)
    x = np.stack([(acc[:, s:s + WINDOW] - np.array(mean)[:, None]) / np.array(std)[:, None] for s in starts])
    return np.array([sess.run(None, {"acc": xi[None].astype(np.float32)})[0].item() for xi in x])


def test_browser_replay_matches_python(student_onnx, tmp_path):
    acc = fixed_trace()
    trace = trace_to_json(acc, FS_HZ)
    acc_sent = np.array(trace["data"])         # what the page receives (rounded to 1e-6 g)
    out = build_demo(student_onnx, tmp_path / "site", device=DEVICE, trace=trace)
    srv = serve_demo(out, port=0, background=True)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/?mode=replay&speed=max"
        res_json, png = tmp_path / "result.json", REPO / "runs" / "demo-test" / "screenshot.png"   # runs/ is git-ignored
        png.parent.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["node", str(Path(__file__).with_name("browser_driver.mjs")), str(REPO / "demo"), url,
                            str(res_json), str(png)], capture_output=True, text=True, timeout=150)
        assert r.returncode == 0, r.stderr[-3000:]
    finally:
        srv.shutdown()
        srv.server_close()
    res = json.loads(res_json.read_text())
    state = res["state"]
    assert state["error"] is None, (state["error"], res["logs"])
    assert res["external"] == [], f"page fetched from outside the machine: {res['external']}"

    # same windows, same gate decisions
    n_windows = (acc.shape[1] - WINDOW) // HOP + 1
    ran_ref = gate_reference(acc_sent, GATE, WINDOW, HOP)
    assert state["windows"] == n_windows == len(ran_ref)
    ran_page = [r["ran"] for r in state["results"]]
    assert ran_page == ran_ref
    assert 0 < state["skipped"] < n_windows and state["skipped"] == ran_ref.count(False)

    # same outputs as the Python runtime for every window the page ran
    ref = python_outputs(student_onnx, acc_sent, [0.0, 0.0, 1.0], [0.2, 0.2, 0.2])
    got = np.array([r["output"] if r["ran"] else np.nan for r in state["results"]])
    ran = np.array(ran_ref)
    np.testing.assert_allclose(got[ran], ref[ran], rtol=1e-4, atol=1e-3)
    assert np.ptp(ref[ran]) > 0.5, "fixture model gives a constant output; the comparison would be weak"
    lat = [r["latency_ms"] for r in state["results"] if r["ran"]]
    assert all(0 <= x < 1000 for x in lat) and max(lat) > 0  # performance.now() is coarse (0.1 ms) without cross-origin isolation

    # the page shows live values, not placeholders
    shown = state["shown"]
    assert float(shown["hr"]) == pytest.approx(got[ran][-1], abs=0.06)
    assert shown["windows"] == str(n_windows)
    assert "days" in shown["battery"] and "ms" in shown["latency"]
    assert png.exists() and png.stat().st_size > 10_000

    # installable and offline after first load: service worker cached everything
    assert res["cached"] >= 1
    assert res["offline"] == {"ready": True, "error": None}, res["offline"]


def test_build_refuses_bad_inputs(student_onnx, tmp_path):
    from edgefm.errors import ConfigError, IntegrityError
    with pytest.raises(ConfigError, match="gate config lacks"):
        build_demo(student_onnx, tmp_path / "a", gate={"on_threshold": 1.0}, device=DEVICE,
                   trace=trace_to_json(fixed_trace()[:, :512], FS_HZ))
    with pytest.raises(ConfigError, match="device summary lacks"):
        build_demo(student_onnx, tmp_path / "b", device={"name": "x"}, trace=trace_to_json(fixed_trace()[:, :512], FS_HZ))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    bad = tmp_path / "m" / student_onnx.name
    bad.parent.mkdir()
    shutil.copy(student_onnx, bad)
    shutil.copy(student_onnx.with_name("student_fp32.manifest.json"), bad.with_name("student_fp32.manifest.json"))
    with open(bad, "ab") as f:
        f.write(b"x")
    with pytest.raises(IntegrityError):
        build_demo(bad, tmp_path / "c", device=DEVICE, trace=trace_to_json(fixed_trace()[:, :512], FS_HZ))


def test_app_sources_fetch_nothing_external():
    for f in DEMO_SRC.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text, f"{f.name} references an external URL"
