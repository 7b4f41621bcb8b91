"""Every format exports, runs in its real runtime and matches eager; manifests; integrity;
determinism."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from edgefm.errors import ConfigError, DataError, IntegrityError
from edgefm.export.verify import eager_outputs, run_float, verify
from edgefm.manifest import read_artifact_manifest, sha256_file

NAMES = {("onnx", False): "student.onnx", ("onnx", True): "student_qdq.onnx",
         ("tflite", False): "student_fp32.tflite", ("tflite", True): "student_int8.tflite",
         ("pte", False): "student_xnnpack_fp32.pte", ("pte", True): "student_xnnpack_q8.pte",
         ("tflm", True): "model_data.cc"}


@pytest.mark.parametrize("key", list(NAMES))
def test_artifact_runs_and_matches_eager(exported, toy, key):
    model, _, (hx, hy) = toy
    res = exported[key]
    assert res.path.name == NAMES[key]
    rep = verify(res.path, hx, hy, reference=model)
    eager = eager_outputs(model, hx)
    # independent check of the reported SQNR
    from edgefm.adapters import get_adapter
    backend = {"pte": "executorch", "tflite": "litert", "onnx": "onnx", "tflm": "tflm"}[key[0]]
    kw = {"arena_bytes": res.extra["arena_bytes"]} if key[0] == "tflm" else {}
    pred = run_float(get_adapter(backend).load_runner(res.path, **kw), hx)
    mu = eager.mean()
    sq = 10 * np.log10(np.sum((eager - mu) ** 2) / max(np.sum((eager - pred) ** 2), 1e-30))
    assert rep["sqnr_db"] == pytest.approx(min(sq, 120.0), abs=0.05)
    if key[1]:
        assert rep["sqnr_db"] > 12.0                      # int8 floor on this toy model
        assert abs(rep["rel_loss"]) < 0.15
    else:
        assert np.max(np.abs(pred - eager)) < 1e-3 * np.abs(eager).max()
    assert rep["mae"] == pytest.approx(float(np.mean(np.abs(pred[:, 0] - hy))), abs=1e-3)


def test_manifest_fields(exported):
    for key, res in exported.items():
        m = read_artifact_manifest(res.path)
        assert m["format"] == key[0]
        assert m["sha256"] == sha256_file(res.path) and m["bytes"] == res.path.stat().st_size
        assert m["input_spec"]["channels"] == ["acc_x", "acc_y", "acc_z"] and m["input_spec"]["fs_hz"] == 32.0
        assert m["input_spec"]["normalisation"]["std"] == [1, 1, 1]
        assert m["source"]["checkpoint"] == "toy.pt" and len(m["source"]["calibration_sha256"]) == 64
        assert m["output_spec"] == {"name": "hr", "unit": "bpm"}
        assert "torch" in m["versions"]
        q = m["quantization"]
        assert q["dtype"] == ("int8" if key[1] else "float32")
        if key[1]:
            assert q["layer_sqnr"] and all("layer" in r and "sqnr_db" in r for r in q["layer_sqnr"])


def test_full_integer_tflite_io(exported):
    from edgefm.adapters.litert import LiteRTRunner
    m = read_artifact_manifest(exported[("tflite", True)].path)
    r = LiteRTRunner(exported[("tflite", True)].path.read_bytes())
    i, o = r.input_details[0], r.output_details[0]
    assert i.dtype == np.int8 and o.dtype == np.int8
    assert m["quantization"]["input"] == {"scale": i.scale, "zero_point": i.zero_point}
    assert m["quantization"]["output"] == {"scale": o.scale, "zero_point": o.zero_point}
    assert "DEQUANTIZE" not in m["ops"]                  # integer end to end


def test_tflm_matches_litert_and_arena_is_minimal(exported, toy):
    from edgefm.adapters import litert, tflm
    _, _, (hx, _) = toy
    res = exported[("tflm", True)]
    m = read_artifact_manifest(res.path)
    arena = m["arena_bytes"]
    assert arena > 0 and arena == res.extra["arena_bytes"]
    cc = res.path.read_text()
    assert "alignas(16) const unsigned char g_model_data[]" in cc
    assert f"kTensorArenaSize = {arena}" in (res.path.parent / "model_data.h").read_text()
    model_bytes = tflm._from_c_source(cc.encode())
    assert model_bytes == exported[("tflite", True)].path.read_bytes()
    lite, micro = litert.LiteRTRunner(model_bytes, xnnpack=False), tflm.TFLMRunner(model_bytes, arena)
    i = lite.input_details[0]
    q = np.clip(np.round(hx / i.scale) + i.zero_point, -128, 127).astype(np.int8)
    diffs = [int(np.abs(lite.run(q[k:k + 1]).astype(int) - micro.run(q[k:k + 1]).astype(int)).max())
             for k in range(len(q))]
    assert max(diffs) <= 1
    assert res.verification["max_diff_vs_litert_steps"] == max(diffs)
    x0 = q[:1]
    assert tflm._works(model_bytes, arena, x0)
    assert not tflm._works(model_bytes, arena - 16, x0)     # smaller arena fails


def test_corrupted_artifact_fails_naming_file(exported, toy, tmp_path):
    _, _, (hx, hy) = toy
    src = exported[("onnx", True)].path
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_name(src.stem + ".manifest.json"), tmp_path / (src.stem + ".manifest.json"))
    data = bytearray(dst.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as e:
        verify(dst, hx, hy)
    assert str(dst) in str(e.value)


def test_bad_inputs_are_typed_errors(toy, tmp_path):
    from edgefm.export import export
    model, calib, _ = toy
    bad = calib.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError):
        export(model, "onnx", tmp_path, bad)
    with pytest.raises(DataError):
        export(model, "onnx", tmp_path, calib[0])
    with pytest.raises(ConfigError):
        export(model, "bogus", tmp_path, calib)
    from edgefm.export import ArtifactSpec
    bad_spec = ArtifactSpec(input_spec={"channels": ["acc_x", "acc_y", "acc_z"],
                                        "normalisation": {"mean": [0, 0, 0, 0], "std": [1, 1, 1, 1]}})
    with pytest.raises(ConfigError, match="normalisation"):
        export(model, "onnx", tmp_path, calib, spec=bad_spec)
    assert not list(tmp_path.iterdir())                    # nothing half-written


@pytest.mark.slow
def test_deterministic_exports(exported, toy, tmp_path):
    """Exporting the same model with the same calibration twice gives identical bytes."""
    from edgefm.export import ArtifactSpec, export_onnx, export_pte, export_tflite, export_tflm
    model, calib, held = toy
    m0 = read_artifact_manifest(exported[("onnx", True)].path)
    spec = ArtifactSpec(source={"checkpoint": "toy.pt", "sha256": "0" * 64, "config": {"width": 8}},
                        input_spec=dict(m0["input_spec"]))
    again = {("onnx", True): export_onnx(model, tmp_path, calib, int8=True, heldout=held, spec=spec),
             ("tflite", True): export_tflite(model, tmp_path, calib, int8=True, heldout=held, spec=spec),
             ("pte", True): export_pte(model, tmp_path, calib, int8=True, heldout=held, spec=spec),
             ("tflm", True): export_tflm(model, tmp_path, calib, heldout=held, spec=spec)}
    for key, res in again.items():
        assert sha256_file(res.path) == sha256_file(exported[key].path), key
