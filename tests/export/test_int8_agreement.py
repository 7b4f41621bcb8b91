"""One int8 model, four runtimes: the .pte (ExecuTorch), .tflite (LiteRT), TFLite Micro array
and QDQ .onnx (ONNX Runtime) of a model are made from one PT2E calibration, carry one set of
scales and zero points, and give the same held-out windows the same outputs within one step of
the shared int8 output scale, through runtime.load(...).predict."""

from __future__ import annotations

import numpy as np

from edgefm.manifest import read_artifact_manifest

INT8 = [("pte", True), ("tflite", True), ("onnx", True), ("tflm", True)]


def _load(res):
    import runtime
    return runtime.load(res.path, backend="tflm" if res.format == "tflm" else None)


def test_int8_artifacts_share_one_set_of_qparams(exported):
    from edgefm.adapters import onnx as ox
    from edgefm.adapters.litert import LiteRTRunner
    q = {k: read_artifact_manifest(exported[k].path)["quantization"] for k in INT8}
    assert len({v["qparams_sha256"] for v in q.values()}) == 1
    assert len({(v["input"]["scale"], v["input"]["zero_point"]) for v in q.values()}) == 1
    assert len({(v["output"]["scale"], v["output"]["zero_point"]) for v in q.values()}) == 1
    # independently of the manifests: the ONNX's first QuantizeLinear and last DequantizeLinear
    # hold the .tflite's int8 input and output scale / zero point
    r = LiteRTRunner(exported[("tflite", True)].path.read_bytes())
    i, o = r.input_details[0], r.output_details[0]
    qdq = ox.qdq_params(exported[("onnx", True)].path.read_bytes())
    first_q = next(p for p in qdq if p["op"] == "QuantizeLinear")
    last_dq = [p for p in qdq if p["op"] == "DequantizeLinear"][-1]
    np.testing.assert_allclose(first_q["scale"], i.scale, rtol=1e-6)
    assert first_q["zero_point"] == i.zero_point
    np.testing.assert_allclose(last_dq["scale"], o.scale, rtol=1e-6)
    assert last_dq["zero_point"] == o.zero_point


def test_int8_outputs_agree_within_one_step(exported, toy):
    _, _, (hx, _) = toy
    models = {k: _load(exported[k]) for k in INT8}
    step = models[("tflite", True)].out_details.scale
    assert step > 0
    for k, m in models.items():             # float-output artifacts report the shared step too
        assert abs(m.output_step - step) <= 1e-9 * step, k
    ys = {k: m.predict(hx) for k, m in models.items()}
    # the outputs really vary across windows (else agreement would be trivial)
    assert np.ptp(ys[("tflite", True)]) > 10 * step
    worst = max(float(np.abs(ys[a] - ys[b]).max()) for a in ys for b in ys)
    assert worst <= step * (1 + 1e-3), f"max pairwise difference {worst / step:.3f} steps"
    # the int8-output backends give whole steps of the shared scale
    for k in (("tflite", True), ("tflm", True)):
        codes = ys[k] / step
        np.testing.assert_allclose(codes - np.round(codes), 0, atol=1e-3)
