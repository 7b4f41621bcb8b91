"""`edgefm demo build/serve` without a browser: files, MIME types, HTTPS, bad input."""

from __future__ import annotations

import json
import shutil
import ssl
import urllib.request

import numpy as np
import pytest

from edgefm.errors import ConfigError
from edgefm.pipeline.demo import ORT_DIST, build_demo, serve_demo, trace_to_json

pytestmark = pytest.mark.skipif(not ORT_DIST.is_dir(), reason="demo/node_modules missing (cd demo && npm ci)")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import torch
    from edgefm.manifest import write_artifact_manifest
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("_demo_tb", Path(__file__).with_name("test_browser.py"))
    tb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tb)
    d = tmp_path_factory.mktemp("m")
    model = torch.nn.Sequential(torch.nn.Conv1d(3, 4, 5), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool1d(1),
                                torch.nn.Flatten(), torch.nn.Linear(4, 1)).eval()
    p = d / "student_fp32.onnx"
    torch.onnx.export(model, (torch.zeros(1, 3, 256),), str(p), input_names=["acc"], output_names=["hr"], dynamo=False)
    write_artifact_manifest(p, {"format": "onnx", "input_spec": {
        "preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": 32.0, "window": 256, "hop": 64,
        "normalisation": {"mean": [0, 0, 1], "std": [.2, .2, .2]}}, "output_spec": {"name": "hr", "unit": "bpm"},
        "gate": tb.GATE})
    return build_demo(p, d / "site", device=tb.DEVICE, trace=trace_to_json(tb.fixed_trace()[:, :1024], tb.FS_HZ))


def test_build_layout_and_precache(site):
    app = json.loads((site / "app.json").read_text())
    pre = json.loads((site / "precache.json").read_text())
    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    assert set(pre["files"]) - {"./"} == files - {"precache.json"}      # the service worker caches all
    assert app["model"] in files and "ort/ort-wasm-simd-threaded.wasm" in files
    assert (site / "icon-192.png").read_bytes()[:4] == b"\x89PNG"
    man = json.loads((site / "manifest.webmanifest").read_text())
    assert man["display"] == "standalone" and {i["sizes"] for i in man["icons"]} == {"192x192", "512x512"}


def test_https_serve_and_mime(site, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    srv = serve_demo(site, port=0, https=True, background=True)
    try:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE      # self-signed
        base = f"https://127.0.0.1:{srv.server_address[1]}/"
        with urllib.request.urlopen(base, context=ctx) as r:
            assert b"edgefm" in r.read()
        for path, mime in (("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
                           ("ort/ort.wasm.min.mjs", "text/javascript"), ("engine.js", "text/javascript")):
            with urllib.request.urlopen(base + path, context=ctx) as r:
                assert r.headers["Content-Type"].startswith(mime), (path, r.headers["Content-Type"])
                assert len(r.read()) == (site / path).stat().st_size
    finally:
        srv.shutdown()
        srv.server_close()
    assert srv.server_address[0] == "127.0.0.1"


def test_serve_refuses_unbuilt_folder(tmp_path):
    with pytest.raises(ConfigError, match="not a built demo folder"):
        serve_demo(tmp_path)


def test_trace_json_rejects_nan_and_shape():
    from edgefm.errors import DataError
    a = np.zeros((3, 10))
    a[1, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        trace_to_json(a, 32.0)
    with pytest.raises(DataError, match=r"\(3, n\)"):
        trace_to_json(np.zeros((2, 10)), 32.0)
