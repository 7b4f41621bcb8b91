"""Verification of an exported artifact in its real runtime.

    report = verify("out/student_int8.tflite", x_heldout, y_heldout, reference=model)

checks the sha256 against the manifest first (:class:`IntegrityError` naming the file), loads
the artifact with its adapter, runs the held-out windows and reports SQNR against eager and
the task metric (HR MAE, bpm) against float.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgefm.errors import DataError, VerificationError
from edgefm.manifest import read_artifact_manifest

FORMAT_BACKEND = {"pte": "executorch", "tflite": "litert", "onnx": "onnx", "tflm": "tflm"}


def run_float(runner, x: np.ndarray) -> np.ndarray:
    """Run ``x`` (N, C, T) float32 through ``runner`` one window at a time; quantize the input
    and dequantize the output where the artifact has int8 I/O. Returns (N, D) float32."""
    i, o = runner.input_details[0], runner.output_details[0]
    outs = []
    for k in range(len(x)):
        xi = x[k:k + 1].astype(np.float32)
        if i.quantized:
            info = np.iinfo(i.dtype)
            xi = np.clip(np.round(xi / i.scale) + i.zero_point, info.min, info.max).astype(i.dtype)
        y = np.asarray(runner.run(xi))
        if o.quantized:
            y = (y.astype(np.float32) - o.zero_point) * o.scale
        outs.append(y.reshape(1, -1).astype(np.float32))
    return np.concatenate(outs, 0)


def metrics(pred: np.ndarray, eager: np.ndarray, y: np.ndarray | None) -> dict:
    """SQNR of ``pred`` vs ``eager`` (dB) and, with labels ``y`` (N,), HR MAE of both."""
    from quantize.sqnr import sqnr_db
    # SQNR of the output around its mean (an HR offset of ~70 bpm would flatter a raw SQNR)
    mu = float(eager.mean())
    out = {"n": int(len(pred)), "sqnr_db": round(sqnr_db(eager - mu, pred - mu), 2),
           "max_abs_diff": float(np.max(np.abs(pred - eager))) if len(pred) else 0.0,
           "mean_abs_output": float(np.mean(np.abs(eager))) if len(eager) else 0.0}
    if y is not None:
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        ok = np.isfinite(y)
        mae = float(np.mean(np.abs(pred[ok, 0] - y[ok])))
        mae_f = float(np.mean(np.abs(eager[ok, 0] - y[ok])))
        out.update({"mae": round(mae, 4), "mae_float": round(mae_f, 4),
                    "rel_loss": round((mae - mae_f) / mae_f, 5) if mae_f > 0 else 0.0})
    return out


def eager_outputs(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x.astype(np.float32))).reshape(len(x), -1).numpy()


def verify(path: str | Path, x: np.ndarray, y: np.ndarray | None = None, *,
           reference: torch.nn.Module | None = None, min_sqnr_db: float | None = None) -> dict:
    """Integrity check, then run held-out ``x`` (N, C, T) normalised windows in the artifact's
    runtime; compare with ``reference`` (the eager float model) and labels ``y`` (N,) in bpm.
    Raises :class:`VerificationError` when SQNR falls below ``min_sqnr_db``."""
    from edgefm.adapters import get_adapter
    path = Path(path)
    m = read_artifact_manifest(path, verify=True)           # IntegrityError names the file
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or not np.isfinite(x).all():
        raise DataError(f"held-out windows must be finite (N, C, T), got {x.shape}", field="x")
    backend = FORMAT_BACKEND.get(m.get("format"))
    if backend is None:
        raise VerificationError(f"unknown format {m.get('format')!r} in manifest", path=path)
    kw = {"arena_bytes": m["arena_bytes"]} if backend == "tflm" else {}
    runner = get_adapter(backend).load_runner(path, **kw)
    pred = run_float(runner, x)
    eager = eager_outputs(reference, x) if reference is not None else pred
    rep = {"artifact": path.name, "format": m["format"], **metrics(pred, eager, y)}
    if min_sqnr_db is not None and rep["sqnr_db"] < min_sqnr_db:
        raise VerificationError(f"SQNR {rep['sqnr_db']} dB vs eager is below {min_sqnr_db} dB", path=path,
                                hint="see the per-layer SQNR in the manifest; keep the worst layer in float")
    return rep
