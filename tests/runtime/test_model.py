"""runtime.load over the four backends: agreement, integrity, input-spec errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import runtime
from artifacts import MEAN, STD, WINDOW, eager
from edgefm.errors import ConfigError, InputSpecError, IntegrityError, ManifestError

FLOAT = ["onnx", "pte", "tflite", "tflm"]


def _x(n=6, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 3, WINDOW)) * 0.3 + np.array(MEAN)[:, None]).astype(np.float32)


def _load(artifacts, k):
    return runtime.load(artifacts[k], backend="tflm" if k == "tflm" else None)


def _reference(artifacts, x):
    """Eager torch on the manifest's normalisation, computed independently of the runtime."""
    m = eager(artifacts["dir"])
    z = (x - np.array(MEAN, np.float32)[:, None]) / np.array(STD, np.float32)[:, None]
    with torch.no_grad():
        return m(torch.from_numpy(z)).numpy()


@pytest.mark.parametrize("k", FLOAT)
def test_backend_matches_eager(artifacts, k):
    x = _x()
    m = _load(artifacts, k)
    assert m.backend == {"onnx": "onnx", "pte": "executorch", "tflite": "litert", "tflm": "tflm"}[k]
    assert m.channels == ("acc_x", "acc_y", "acc_z") and m.fs_hz == 32.0
    y = m.predict(x)
    assert y.shape == (6, 1) and y.dtype == np.float32
    np.testing.assert_allclose(y, _reference(artifacts, x), atol=1e-3)
    # batch of one and batch of many agree (fixed-batch artifacts are looped)
    np.testing.assert_allclose(m.predict(x[2]), y[2:3], atol=1e-5)


def test_all_backends_agree_and_tflite_runs_in_tflm(artifacts):
    x = _x(8, seed=3)
    ys = {k: _load(artifacts, k).predict(x) for k in FLOAT}
    ys["tflite_in_tflm"] = runtime.load(artifacts["tflite"], backend="tflm").predict(x)
    for k, y in ys.items():
        np.testing.assert_allclose(y, ys["onnx"], atol=1e-3, err_msg=k)


def test_int8_io_quantizes_and_dequantizes(artifacts):
    x = _x(8, seed=4)
    m = runtime.load(artifacts["onnx_int8"])
    assert m.quantized and m.in_details.dtype == np.int8
    step = m.output_step
    assert step == 0.5
    y = m.predict(x)
    # independent: quantize the normalised input by hand, run the float graph, quantize output
    s_in = m.in_details.scale
    z = (x - np.array(MEAN, np.float32)[:, None]) / np.array(STD, np.float32)[:, None]
    zq = np.clip(np.rint(z / s_in), -128, 127) * s_in
    ref = _reference_from_normalised(artifacts, zq)
    assert np.abs(y - ref).max() <= step + 1e-4
    # bare runner gives int8 codes; the model dequantizes them exactly
    q = m.prepare(m.check_input(x))
    assert q.dtype == np.int8
    raw = np.concatenate([m.runner.run(q[i:i + 1]) for i in range(len(q))])
    np.testing.assert_array_equal(y, (raw.astype(np.float32) + 128) * 0.5)


def _reference_from_normalised(artifacts, z):
    m = eager(artifacts["dir"])
    with torch.no_grad():
        return m(torch.from_numpy(z.astype(np.float32))).numpy()


@pytest.mark.parametrize("k", ["onnx", "pte", "tflite", "tflm"])
def test_tampered_artifact_refused_naming_file(artifacts, tmp_path, k):
    src = artifacts[k]
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_name(src.stem + ".manifest.json"), tmp_path)
    data = bytearray(dst.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as e:
        runtime.load(dst, backend="tflm" if k == "tflm" else None)
    assert str(dst) in str(e.value) and e.value.field == "sha256"


def test_missing_manifest_and_bad_backend(artifacts, tmp_path):
    dst = tmp_path / "lonely.onnx"
    shutil.copy(artifacts["onnx"], dst)
    with pytest.raises(ManifestError, match="lonely.manifest.json"):
        runtime.load(dst)
    with pytest.raises(ConfigError):
        runtime.load(artifacts["onnx"], backend="tflm")
    with pytest.raises(ConfigError):
        runtime.load(artifacts["onnx"], backend="coreml")


def test_manifest_inconsistent_with_model(artifacts, tmp_path):
    src = artifacts["onnx"]
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    man = json.loads(src.with_name(src.stem + ".manifest.json").read_text())
    man["input_spec"]["window"] = 128
    dst.with_name(dst.stem + ".manifest.json").write_text(json.dumps(man))
    with pytest.raises(ManifestError, match="input_spec"):
        runtime.load(dst)


def test_wrong_shapes_rates_channels_nan(artifacts):
    m = _load(artifacts, "onnx")
    x = _x(2)
    with pytest.raises(InputSpecError, match=r"\(B, 3, 256\)"):
        m.predict(x[:, :, :200])
    with pytest.raises(InputSpecError):
        m.predict(x[:, :2])
    with pytest.raises(InputSpecError, match="64"):
        m.predict(x, fs_hz=64.0)
    with pytest.raises(InputSpecError, match="channels"):
        m.predict(x, channels=("acc_z", "acc_y", "acc_x"))
    x[0, 1, 5] = np.nan
    with pytest.raises(InputSpecError, match="NaN"):
        m.predict(x)


@pytest.mark.parametrize("k", FLOAT + ["onnx_int8"])
def test_hot_path_matches_the_general_path_and_returns_fresh_arrays(artifacts, k):
    """One float32 window takes the short path (reused buffers, runner.run_from); its results
    equal the general path's and the public pieces', and are never overwritten by a later call."""
    m = _load(artifacts, k)
    x = _x(3, seed=5)
    y0 = m.predict(x[0:1])
    kept = y0.copy()
    y1 = m.predict(x[1:2])
    np.testing.assert_array_equal(y0, kept)                 # not a view of a reused buffer
    assert y0 is not y1 and not np.shares_memory(y0, y1)
    # general path: float64 input goes through check_input; batch of three loops fixed-batch models
    np.testing.assert_array_equal(m.predict(x[0:1].astype(np.float64)), y0)
    np.testing.assert_allclose(m.predict(x)[:2], np.concatenate([y0, y1]), atol=1e-5)   # batch kernels may round differently
    # the documented pieces: prepare -> runner.run -> finish
    np.testing.assert_array_equal(m.finish(m.runner.run(m.prepare(m.check_input(x[1])))), y1)
    # a NaN still raises the typed error on the short path, and the next call is unaffected
    bad = x[2:3].copy()
    bad[0, 0, 7] = np.inf
    with pytest.raises(InputSpecError, match="NaN or infinite"):
        m.predict(bad)
    np.testing.assert_array_equal(m.predict(x[1:2]), y1)
    # wrong shapes and dtypes still get typed errors
    with pytest.raises(InputSpecError):
        m.predict(x[0:1, :, :100])
    with pytest.raises(InputSpecError, match="not numeric"):
        m.predict(np.zeros((1, 3, WINDOW), dtype=object))


def test_output_step_of_an_artifact_that_dequantizes_inside(artifacts, tmp_path):
    """A float-I/O int8 artifact (.pte / QDQ .onnx) reports the shared int8 output scale its
    manifest records; a float artifact reports 0."""
    from edgefm.manifest import read_artifact_manifest, write_artifact_manifest
    assert _load(artifacts, "onnx").output_step == 0.0
    dst = tmp_path / "qdq_like.onnx"
    shutil.copy(artifacts["onnx"], dst)
    man = read_artifact_manifest(artifacts["onnx"])
    fields = {k: man[k] for k in ("format", "source", "input_spec", "output_spec")}
    fields["quantization"] = {"dtype": "int8", "input_dtype": "float32", "output_dtype": "float32",
                              "input": {"scale": 0.02, "zero_point": 3}, "output": {"scale": 0.25, "zero_point": -128}}
    write_artifact_manifest(dst, fields, ("onnxruntime",))
    m = runtime.load(dst)
    assert m.output_step == 0.25 and not m.quantized       # float I/O: nothing to (de)quantize here
    x = _x(2)
    np.testing.assert_array_equal(m.predict(x), _load(artifacts, "onnx").predict(x))
