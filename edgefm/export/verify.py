"""Verification of an exported artifact in its real runtime, against an independent reference.

    report = verify("out/student_int8.tflite", x_heldout, y_heldout, reference=model)
    report = verify_artifact("out/student_int8.tflite", "data/wrist-raw")   # `edgefm export verify`

Both check the sha256 against the manifest first (:class:`IntegrityError` naming the file),
then the manifest's ``input_spec`` against the artifact itself (input shape = channels x window,
dtype = quantization) and against the reference's own copy of it, and load the artifact with its
adapter. The reference is never the artifact: it is the eager model (``reference=`` / the
checkpoint named in the manifest's ``source``, its sha256 checked) or the reference outputs
stored at export time beside the artifact (``NAME.reference.npz``: held-out windows, the eager
model's outputs on them and the input spec they were made with; its sha256 is in the manifest).
:func:`verify_artifact` also checks the spec against the data (rate, channels, window) and runs
the data's raw test windows, normalised with the manifest's statistics, through the artifact.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import torch

from edgefm.errors import (ConfigError, DataError, EdgefmError, InputSpecError, IntegrityError, ManifestError,
                           VerificationError)
from edgefm.manifest import atomic_write_bytes, dumps, safe_name, sha256_bytes, sha256_file

FORMAT_BACKEND = {"pte": "executorch", "tflite": "litert", "onnx": "onnx", "tflm": "tflm"}
REFERENCE_WINDOWS = 32          # windows kept in NAME.reference.npz


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


def output_classes(output_spec: dict | None) -> list[str] | None:
    """The class names of a classification output (``{"kind": "classes", "classes": [...]}``),
    else None (a regression output: ``{"name", "unit"}``, ``kind`` defaulting to "regression")."""
    spec = output_spec if isinstance(output_spec, dict) else {}
    if spec.get("kind", "regression") in ("regression", "bins"):
        output_bins(spec)
        return None
    if spec.get("kind") != "classes":
        raise ConfigError(f"must be 'regression', 'bins' or 'classes', got {spec.get('kind')!r}",
                          field="output_spec.kind")
    names = spec.get("classes")
    if not isinstance(names, list) or len(names) < 2 or not all(isinstance(c, str) and c for c in names) \
            or len(set(names)) != len(names):
        raise ConfigError(f"must list two or more distinct class names, got {names!r}",
                          field="output_spec.classes")
    return list(names)


def output_bins(output_spec: dict | None) -> np.ndarray | None:
    """The bin centres of a binned regression output (``{"kind": "bins", "bins_bpm": [...]}``: the
    model scores F bins, the value is the expectation of their softmax), else None."""
    spec = output_spec if isinstance(output_spec, dict) else {}
    if spec.get("kind") != "bins":
        return None
    b = spec.get("bins_bpm")
    try:
        arr = np.asarray(b, np.float64).reshape(-1)
    except (TypeError, ValueError):
        arr = np.zeros(0)
    if arr.size < 2 or not np.isfinite(arr).all() or not np.all(np.diff(arr) > 0):
        raise ConfigError("must list two or more increasing finite bin centres", field="output_spec.bins_bpm")
    return arr


def to_units(out: np.ndarray, output_spec: dict | None) -> np.ndarray:
    """Model outputs (N, D) in output units (N, 1): a binned output's softmax expectation over
    its bin centres; any other output as it is."""
    bins = output_bins(output_spec)
    out = np.asarray(out, np.float64).reshape(len(out), -1)
    if bins is None:
        return out
    if out.shape[1] != len(bins):
        raise ConfigError(f"output_spec lists {len(bins)} bins, the model returns {out.shape[1]} outputs",
                          field="output_spec.bins_bpm")
    from runtime.track import expected_bpm
    return expected_bpm(out, bins)[:, None]


def abs_err_stats(pred: np.ndarray, eager: np.ndarray) -> dict:
    """Per-window |pred - eager| in output units (the largest over a window's outputs):
    ``{p50, p99, max}`` over the windows (numpy's linear-interpolated percentiles)."""
    err = np.abs(np.asarray(pred, np.float64) - np.asarray(eager, np.float64)).reshape(len(pred), -1).max(axis=1)
    if not len(err):
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    return {"p50": float(np.percentile(err, 50)), "p99": float(np.percentile(err, 99)), "max": float(err.max())}


def class_labels(y, k: int) -> np.ndarray:
    """Integer class codes (N,) from labels ``y``; -1 (or NaN) = unknown. A code outside
    [0, k) or a fractional one is a :class:`DataError`."""
    y = np.asarray(y, np.float64).reshape(-1)
    y = np.where(np.isfinite(y), y, -1.0)
    bad = (y != np.round(y)) | (y >= k) | ((y < 0) & (y != -1))
    if bad.any():
        raise DataError(f"class labels must be whole numbers in [0, {k}) or -1 (unknown); got "
                        f"{y[bad][:5].tolist()}", field="y")
    return y.astype(np.int64)


def label_metrics(pred: np.ndarray, y, classes: list[str] | None) -> dict:
    """Task metrics of outputs ``pred`` (N, D) against labels ``y`` (N,): regression ``mae``
    (over finite labels); classes ``accuracy``, ``macro_f1``, ``balanced_accuracy`` (sklearn,
    over windows whose label is known) and ``n_labelled``."""
    if classes is None:
        y = np.asarray(y, np.float64).reshape(-1)
        ok = np.isfinite(y)
        return {"mae": round(float(np.mean(np.abs(pred[ok, 0] - y[ok]))), 4) if ok.any() else None}
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
    y = class_labels(y, len(classes))
    ok = y >= 0
    if not ok.any():
        return {"n_labelled": 0, "accuracy": None, "macro_f1": None, "balanced_accuracy": None}
    p = np.argmax(pred, axis=1)[ok]
    return {"n_labelled": int(ok.sum()), "accuracy": round(float(accuracy_score(y[ok], p)), 5),
            "macro_f1": round(float(f1_score(y[ok], p, average="macro", zero_division=0)), 5),
            "balanced_accuracy": round(float(balanced_accuracy_score(y[ok], p)), 5)}


def metrics(pred: np.ndarray, eager: np.ndarray, y: np.ndarray | None, output_spec: dict | None = None) -> dict:
    """An artifact's outputs ``pred`` (N, D) against the eager model's ``eager`` (N, D) and, when
    given, labels ``y`` (N,).

    Always: ``sqnr_db`` (around the eager mean; over the logits for classes), ``max_abs_diff``.
    Regression outputs: ``abs_err`` = per-window |pred - eager| ``{p50, p99, max}`` in output units;
    with labels ``mae``, ``mae_float`` (eager's) and ``rel_loss``. Class outputs (``output_spec``
    kind "classes", D = number of classes): ``agreement`` (fraction of windows whose argmax equals
    eager's), ``logit_abs_err`` (per-window, as ``abs_err``); with labels (int codes, -1 unknown)
    ``accuracy``, ``macro_f1``, ``balanced_accuracy`` and the eager model's ``*_float``."""
    from quantize.sqnr import sqnr_db
    classes = output_classes(output_spec)
    pred, eager = np.asarray(pred).reshape(len(pred), -1), np.asarray(eager).reshape(len(eager), -1)
    if classes is not None and eager.shape[1] != len(classes):
        raise ConfigError(f"output_spec names {len(classes)} classes, the model returns {eager.shape[1]} outputs",
                          field="output_spec.classes")
    # SQNR of the output around its mean (an HR offset of ~70 bpm would flatter a raw SQNR)
    mu = float(eager.mean()) if eager.size else 0.0
    out = {"n": int(len(pred)), "sqnr_db": round(sqnr_db(eager - mu, pred - mu), 2),
           "max_abs_diff": float(np.max(np.abs(pred - eager))) if len(pred) else 0.0,
           "mean_abs_output": float(np.mean(np.abs(eager))) if len(eager) else 0.0}
    if classes is None:
        if output_bins(output_spec) is not None:       # bin scores -> bpm: errors in output units
            pred, eager = to_units(pred, output_spec), to_units(eager, output_spec)
            out["mean_abs_output"] = float(np.mean(np.abs(eager))) if len(eager) else 0.0
        out["abs_err"] = abs_err_stats(pred, eager)
    else:
        out["agreement"] = round(float(np.mean(np.argmax(pred, 1) == np.argmax(eager, 1))), 5) if len(pred) else None
        out["logit_abs_err"] = abs_err_stats(pred, eager)
    if y is None:
        return out
    if np.size(y) != len(pred):
        raise DataError(f"{np.size(y)} labels for {len(pred)} windows", field="y")
    if classes is not None:
        lab, lab_f = label_metrics(pred, y, classes), label_metrics(eager, y, classes)
        out.update(lab, **{f"{k}_float": lab_f[k] for k in ("accuracy", "macro_f1", "balanced_accuracy")})
        return out
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    ok = np.isfinite(y)
    if ok.any():
        mae = float(np.mean(np.abs(pred[ok, 0] - y[ok])))
        mae_f = float(np.mean(np.abs(eager[ok, 0] - y[ok])))
        out.update({"mae": round(mae, 4), "mae_float": round(mae_f, 4),
                    "rel_loss": round((mae - mae_f) / mae_f, 5) if mae_f > 0 else 0.0})
    return out


def eager_outputs(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x.astype(np.float32))).reshape(len(x), -1).numpy()


# ---------------------------------------------------------------- stored reference outputs

def reference_path(artifact: str | Path) -> Path:
    """``student_int8.tflite`` -> ``student_int8.reference.npz`` (beside it)."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.stem + ".reference.npz")


def write_reference(artifact: str | Path, x: np.ndarray, y_eager: np.ndarray, input_spec: dict) -> dict:
    """Write ``NAME.reference.npz`` beside ``artifact``: up to :data:`REFERENCE_WINDOWS` of the
    normalised held-out windows ``x`` (N, C, T), the eager model's outputs ``y_eager`` on them and
    the ``input_spec`` they were made with. Returns the manifest's ``reference`` field."""
    n = min(len(x), REFERENCE_WINDOWS)
    buf = io.BytesIO()
    np.savez(buf, x=np.ascontiguousarray(x[:n], np.float32),
             y=np.ascontiguousarray(np.asarray(y_eager[:n], np.float32).reshape(n, -1)),
             input_spec=np.array(dumps(input_spec)))
    data = buf.getvalue()
    p = reference_path(artifact)
    atomic_write_bytes(p, data)
    return {"file": p.name, "sha256": sha256_bytes(data), "windows": n,
            "what": "held-out windows (normalised), the eager model's outputs on them, the input spec"}


def read_reference(artifact: Path, m: dict) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """(x, y_eager, input_spec) from the stored reference the manifest names, its sha256 checked;
    None when the manifest names none. Read without unpickling (``allow_pickle=False``)."""
    ref = m.get("reference")
    if ref is None:
        return None
    if not isinstance(ref, dict) or not isinstance(ref.get("file"), str):
        raise ManifestError("reference must name a file and its sha256", path=artifact, field="reference")
    p = artifact.parent / safe_name(ref["file"], what="reference.file", path=artifact)
    if not p.is_file():
        raise ManifestError("the stored reference outputs named in the manifest are missing", path=p,
                            field="reference.file", hint="copy it along with the artifact, or re-export")
    data = p.read_bytes()
    if sha256_bytes(data) != ref.get("sha256"):
        raise IntegrityError("sha256 differs from the manifest's reference.sha256", path=p, field="reference.sha256",
                             hint="the stored reference was corrupted or modified; re-export the artifact")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            x, y, spec = z["x"].astype(np.float32), z["y"].astype(np.float32), json.loads(str(z["input_spec"]))
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as e:
        raise ManifestError(f"cannot read the stored reference ({type(e).__name__})", path=p) from e
    if x.ndim != 3 or y.ndim != 2 or len(x) != len(y) or not len(x) or not isinstance(spec, dict) \
            or not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ManifestError(f"stored reference has bad arrays x {x.shape}, y {y.shape}", path=p)
    return x, y, spec


# ---------------------------------------------------------------- the manifest's input spec

def _names(channels) -> list[str]:
    return [c["name"] if isinstance(c, dict) else str(c) for c in channels]


def manifest_input_spec(m: dict, path: Path) -> dict:
    """The manifest's ``input_spec`` as ``{channels, fs_hz, window, hop, mean, std}``, each field
    present and sane, else :class:`InputSpecError` naming ``input_spec.FIELD``."""
    spec = m.get("input_spec")
    if not isinstance(spec, dict):
        raise InputSpecError("the manifest has no input_spec", path=path, field="input_spec")

    def num(k, integer=False):
        v = spec.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0 \
                or (integer and v != int(v)):
            raise InputSpecError(f"must be a positive {'whole ' if integer else ''}number, got {v!r}",
                                 path=path, field=f"input_spec.{k}")
        return int(v) if integer else float(v)

    ch = spec.get("channels")
    if not isinstance(ch, list) or not ch or not all(isinstance(c, (str, dict)) for c in ch):
        raise InputSpecError("must be a non-empty list of channel names", path=path, field="input_spec.channels")
    out = {"channels": _names(ch), "fs_hz": num("fs_hz"), "window": num("window", True), "hop": num("hop", True)}
    norm = spec.get("normalisation")
    if not isinstance(norm, dict):
        raise InputSpecError("missing: the per-channel mean and std the model was trained with", path=path,
                             field="input_spec.normalisation")
    C = len(out["channels"])
    for k in ("mean", "std"):
        try:
            v = np.asarray(norm.get(k), np.float64).reshape(-1)
        except (TypeError, ValueError):
            v = np.zeros(0)
        if v.shape != (C,) or not np.isfinite(v).all() or (k == "std" and not (v > 0).all()):
            raise InputSpecError(f"must give one finite{' positive' if k == 'std' else ''} value per channel ({C})",
                                 path=path, field=f"input_spec.normalisation.{k}")
        out[k] = v
    return out


def _check_redundant(spec: dict, m: dict, path: Path) -> None:
    """``window_s``/``hop_s``, where the manifest has them, must agree with the sample counts at
    ``fs_hz`` (checked after the window is confirmed by the artifact, so a mismatch is the rate)."""
    for k, n in (("window_s", "window"), ("hop_s", "hop")):
        if k in m["input_spec"]:
            s = m["input_spec"][k]
            if isinstance(s, bool) or not isinstance(s, (int, float)) or \
                    abs(float(s) * spec["fs_hz"] - spec[n]) > 1e-6 * max(spec[n], 1):
                raise InputSpecError(f"{n} {spec[n]} samples at fs_hz {spec['fs_hz']:g} Hz is not {k} {s!r} s",
                                     path=path, field=f"input_spec.{'fs_hz' if n == 'window' else k}",
                                     hint="the manifest was edited; re-export the artifact")


def _check_against_artifact(spec: dict, m: dict, i, path: Path) -> None:
    """The manifest's spec must describe the artifact's real input tensor ``i``: shape
    (B, channels, window) and dtype int8 exactly when the manifest says so."""
    shp, C, T = tuple(i.shape), len(spec["channels"]), spec["window"]
    if len(shp) != 3:
        raise InputSpecError(f"the artifact's input has shape {shp}, not (batch, channels, window)", path=path,
                             field="input_spec.shape")
    if shp[1] not in (-1, C):
        raise InputSpecError(f"names {C} channels but the artifact's input has {shp[1]} (shape {shp})",
                             path=path, field="input_spec.channels", hint="the manifest was edited; re-export")
    if shp[2] not in (-1, T):
        raise InputSpecError(f"window {T} samples but the artifact's input takes {shp[2]} (shape {shp})",
                             path=path, field="input_spec.window", hint="the manifest was edited; re-export")
    declared = m["input_spec"].get("shape")
    if declared is not None and (not isinstance(declared, list) or list(declared)[1:] != [C, T]):
        raise InputSpecError(f"shape {declared} is not (B, {C}, {T})", path=path, field="input_spec.shape")
    q = m.get("quantization") if isinstance(m.get("quantization"), dict) else {}
    got = np.dtype(i.dtype).name
    for where, want in (("quantization.input_dtype", q.get("input_dtype")),
                        ("input_spec.dtype", m["input_spec"].get("dtype"))):
        if want is not None and str(want) != got:
            raise InputSpecError(f"says the input is {want}, the artifact takes {got}", path=path, field=where,
                                 hint="the manifest was edited; re-export")
    qi = q.get("input")
    if isinstance(qi, dict) and i.quantized and "scale" in qi:
        if not (isinstance(qi["scale"], (int, float)) and abs(float(qi["scale"]) - i.scale) <= 1e-6 * i.scale
                and qi.get("zero_point") == i.zero_point):
            raise InputSpecError(f"input scale/zero point ({qi.get('scale')}, {qi.get('zero_point')}) differ from "
                                 f"the artifact's ({i.scale}, {i.zero_point})", path=path, field="quantization.input")


def _check_against_reference(spec: dict, ref: dict, label: str, path: Path) -> None:
    """Every field of the manifest's spec must equal the reference's own copy (the checkpoint's
    ``input_spec``, or the one stored with the reference outputs at export)."""
    try:
        r = manifest_input_spec({"input_spec": ref}, Path(label))
    except InputSpecError as e:
        raise VerificationError(f"the {label} has no usable input spec ({e.one_line()})", path=path,
                                field="reference") from e
    for k in ("channels", "fs_hz", "window", "hop"):
        if r[k] != spec[k]:
            raise InputSpecError(f"the manifest says {spec[k]!r}, the {label} says {r[k]!r}", path=path,
                                 field=f"input_spec.{k}", hint="the manifest was edited; re-export the artifact")
    for k in ("mean", "std"):
        if not np.allclose(r[k], spec[k], rtol=1e-6, atol=1e-9):
            raise InputSpecError(f"the manifest's {k} {spec[k].tolist()} differs from the {label}'s {r[k].tolist()}",
                                 path=path, field=f"input_spec.normalisation.{k}",
                                 hint="the manifest was edited; re-export the artifact")


def _check_against_data(spec: dict, ds, path: Path) -> None:
    """The data must be what the model takes: its rate, its channels, its window length."""
    if abs(ds.fs_hz - spec["fs_hz"]) > 1e-9 * spec["fs_hz"]:
        raise InputSpecError(f"the manifest says {spec['fs_hz']:g} Hz, the data {ds.path} is at {ds.fs_hz:g} Hz",
                             path=path, field="input_spec.fs_hz")
    missing = [c for c in spec["channels"] if c not in ds.channel_names]
    if missing:
        raise InputSpecError(f"channels {missing} are not in the data {ds.path} (has {list(ds.channel_names)})",
                             path=path, field="input_spec.channels")
    if ds.window != spec["window"]:
        raise InputSpecError(f"the manifest says {spec['window']} samples, the data {ds.path} has windows of "
                             f"{ds.window}", path=path, field="input_spec.window")


# ---------------------------------------------------------------- loading

def _artifact(path: Path) -> tuple[dict, object]:
    """(manifest, runner) with the sha256 checked on the very bytes that are loaded."""
    from edgefm.adapters import get_adapter
    from runtime.model import check_model_bytes, verified_manifest
    m = verified_manifest(path)                              # IntegrityError names the file
    data = path.read_bytes()
    if sha256_bytes(data) != m.get("sha256"):
        raise IntegrityError("changed while it was being verified", path=path, field="sha256")
    backend = FORMAT_BACKEND.get(m.get("format"))
    if backend is None:
        raise VerificationError(f"unknown format {m.get('format')!r} in manifest", path=path, field="format")
    _check_header(m, path)
    kw = {}
    if backend == "tflm":
        from edgefm.adapters.tflm import _from_c_source
        data = _from_c_source(data) if path.suffix.lower() in (".cc", ".c", ".h") else data
        kw = {"arena_bytes": m.get("arena_bytes")}
    check_model_bytes(backend, data, path)
    try:
        runner = get_adapter(backend).load_runner(data, **kw)
    except EdgefmError:
        raise
    except Exception as e:  # the library's own error: a file that passed sha256 but will not load
        raise VerificationError(f"{backend} could not load it ({type(e).__name__}: {str(e)[:160]})", path=path,
                                hint="re-export it; check the versions in its manifest") from e
    return m, runner


def _check_header(m: dict, path: Path) -> None:
    """A TFLite Micro export's ``model_data.h`` (its arena size) is covered by ``header_sha256``."""
    if "header_sha256" not in m:
        return
    h = path.parent / safe_name(m.get("header", ""), what="header", path=path)
    if not h.is_file():
        raise ManifestError("the header named in the manifest is missing", path=h, field="header")
    if sha256_file(h) != m["header_sha256"]:
        raise IntegrityError("sha256 differs from the manifest's header_sha256", path=h, field="header_sha256",
                             hint="the header was corrupted or modified; re-export")


def _source_model(m: dict, path: Path, reference: str | Path | None):
    """(LoadedModel, description) of the eager source model, or (None, why not). An explicit
    ``reference`` must exist and be the checkpoint the manifest's ``source.sha256`` names."""
    from edgefm.export.io import load_model
    src = m.get("source") if isinstance(m.get("source"), dict) else {}
    explicit = reference is not None
    ck = reference if explicit else src.get("checkpoint")
    if not ck:
        return None, "the manifest names no source checkpoint"
    cands = [Path(ck)] if explicit or Path(ck).is_absolute() else [Path(ck), path.parent / ck]
    p = next((c for c in cands if c.is_file()), None)
    if p is None:
        if explicit:
            raise ConfigError("checkpoint not found", path=ck, field="--reference")
        return None, f"the source checkpoint {ck} is not found"
    want = src.get("sha256")
    pinned = isinstance(want, str) and len(want) == 64
    if pinned and sha256_file(p) != want:
        why = f"{p} is not the checkpoint this artifact was exported from (sha256 differs from source.sha256)"
        if explicit:
            raise VerificationError(why, path=path, field="source.sha256")
        return None, why
    try:
        # its sha256 matches the one the artifact's manifest pins: verified even without its own manifest
        lm = load_model(p, unverified=True) if pinned else load_model(p)
    except EdgefmError as e:
        if explicit:
            raise
        return None, f"the source checkpoint {p} cannot be loaded ({e.one_line()})"
    return lm, f"eager model from {p}"


def _check_sqnr(fmt: str, path: Path, rep: dict, int8: bool, what: str) -> None:
    from edgefm.export import MIN_FP32_SQNR_DB, MIN_INT8_SQNR_DB, REL_ERROR_TOLERANCE
    floor = MIN_INT8_SQNR_DB if int8 else MIN_FP32_SQNR_DB
    material = rep["max_abs_diff"] > REL_ERROR_TOLERANCE * max(rep.get("mean_abs_output", 0.0), 1e-6)
    if rep["sqnr_db"] < floor and material:
        raise VerificationError(f"{fmt} output SQNR {rep['sqnr_db']} dB vs {what} is below {floor} dB "
                                f"(max |diff| {rep['max_abs_diff']:.4g})", path=path,
                                hint="the artifact does not compute what its source model does; re-export it")


def _int8(m: dict) -> bool:
    q = m.get("quantization")
    return isinstance(q, dict) and q.get("dtype") == "int8"


def _output_spec(m: dict, path: Path) -> dict:
    """The manifest's ``output_spec``, checked: a class output must name its classes
    (:class:`ManifestError` naming ``output_spec.FIELD`` otherwise)."""
    spec = m.get("output_spec") if isinstance(m.get("output_spec"), dict) else {}
    try:
        output_classes(spec)
    except ConfigError as e:
        raise ManifestError(e.message, path=path, field=e.field, hint="re-export the artifact") from e
    return spec


def _metrics(path: Path, pred, eager, y, output_spec: dict) -> dict:
    """:func:`metrics`, with a class count that disagrees with the artifact's outputs reported
    as the manifest's fault (naming the file)."""
    try:
        return metrics(pred, eager, y, output_spec)
    except ConfigError as e:
        raise ManifestError(e.message, path=path, field=e.field, hint="re-export the artifact") from e


# ---------------------------------------------------------------- entry points

def verify(path: str | Path, x: np.ndarray, y: np.ndarray | None = None, *,
           reference: torch.nn.Module | None = None, min_sqnr_db: float | None = None) -> dict:
    """Integrity check, input-spec check, then run held-out ``x`` (N, C, T) normalised windows in
    the artifact's runtime and compare with ``reference`` (the eager float model) and labels
    ``y`` (N,) in output units (class codes for a class output, -1 unknown). Without ``reference``
    the stored reference outputs written at export are the comparison (``sqnr_db``, ``abs_err`` or
    ``agreement`` are then on those windows). See :func:`metrics` for the report's fields.

    Raises:
        IntegrityError: the artifact or its stored reference differs from the manifest.
        InputSpecError: the manifest's input spec disagrees with the artifact or the reference.
        VerificationError: no independent reference, or SQNR below ``min_sqnr_db``.
    """
    path = Path(path)
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3 or not np.isfinite(x).all():
        raise DataError(f"held-out windows must be finite (N, C, T), got {x.shape}", field="x")
    m, runner, spec, stored = _checked_artifact(path)
    ospec = _output_spec(m, path)
    pred = run_float(runner, x)
    rep = {"artifact": path.name, "format": m["format"]}
    if reference is not None:
        rep.update(_metrics(path, pred, eager_outputs(reference, x), y, ospec), reference="eager model (reference=)")
    elif stored is not None:
        rep.update(_metrics(path, run_float(runner, stored[0]), stored[1], None, ospec),
                   reference=f"stored reference outputs {m['reference']['file']}")
        if y is not None:
            rep.update(label_metrics(to_units(pred, ospec) if output_classes(ospec) is None else pred, y,
                                  output_classes(ospec)))
    else:
        raise VerificationError("no independent reference: pass reference= (the eager model) or re-export it so "
                                "that its stored reference outputs are written", path=path, field="reference")
    if min_sqnr_db is not None and rep["sqnr_db"] < min_sqnr_db:
        raise VerificationError(f"SQNR {rep['sqnr_db']} dB vs eager is below {min_sqnr_db} dB", path=path,
                                hint="see the per-layer SQNR in the manifest; keep the worst layer in float")
    return rep


def _checked_artifact(path: Path):
    """(manifest, runner, input spec, stored reference or None) of an artifact whose sha256, input
    spec (against the artifact's input tensor and the manifest's own copies) and stored reference
    (sha256 and its copy of the spec) are checked."""
    m, runner = _artifact(path)
    spec = manifest_input_spec(m, path)
    _check_against_artifact(spec, m, runner.input_details[0], path)
    _check_redundant(spec, m, path)
    stored = read_reference(path, m)
    if stored is not None:
        _check_against_reference(spec, stored[2], f"stored reference {reference_path(path).name}", path)
    return m, runner, spec, stored


def _data_windows(data: Path, spec: dict, n: int, path: Path):
    """(x_raw (N, C, T) in sensor units, valid mask, labels dict, the dataset) from the test split
    of a windows dataset (a cohort directory is accepted: its raw/)."""
    from edgefm.data.store import WindowDataset
    if (data / "raw" / "manifest.json").exists():
        data = data / "raw"
    ds = WindowDataset(data)
    _check_against_data(spec, ds, path)
    w = ds.load("test", max_n=n, normalise=False)
    idx = [list(ds.channel_names).index(c) for c in spec["channels"]]
    x, mask = np.asarray(w.x[:, idx], np.float32), np.asarray(w.mask[:, idx], bool)
    if len(x) == 0:
        raise DataError("no windows in the test split", path=data, field="split")
    if not np.isfinite(np.where(mask, x, 0.0)).all():
        raise DataError("non-finite values in observed samples", path=data, field="x")
    return x, mask, dict(w.labels), ds


def verify_artifact(path: str | Path, data: str | Path, *, n: int = 256,
                    reference: str | Path | None = None) -> dict:
    """``edgefm export verify``: is ``path`` still the model it was exported from, and does it
    take ``data``?

    1. sha256 of the artifact (and of its stored reference) against the manifest;
    2. the manifest's ``input_spec`` against the artifact's input tensor (shape, dtype), against the
       reference's own copy (the source checkpoint's spec, the spec stored with the reference
       outputs) and against ``data`` (rate, channels, window): an edited ``fs_hz``, ``window`` or
       normalisation fails here, naming the field;
    3. ``data``'s raw test windows, normalised with the manifest's statistics, run in the artifact's
       runtime and compared with the eager source model (``reference``, else the manifest's
       ``source.checkpoint`` when found with the same sha256) and with the labels; the stored
       reference windows run too and are compared with the stored eager outputs. At least one
       independent reference is required; SQNR must clear the export's floor (int8 10 dB, fp32 40 dB).
       The report carries the per-window error (``abs_err`` {p50, p99, max} in output units, or
       ``agreement`` for a class output) against the eager model on the data's windows, else
       against the stored reference outputs.

    ``data``: a windows dataset (or cohort) directory, or a ``.npy`` of normalised (N, C, T)
    windows (then rate and channels cannot be checked; the report says so).
    """
    path, data = Path(path), Path(data)
    if not (isinstance(n, int) and 0 < n <= 100_000):
        raise ConfigError(f"must be a whole number in [1, 100000], got {n!r}", field="--n")
    m, runner, spec, stored = _checked_artifact(path)
    lm, eager_what = _source_model(m, path, reference)
    if lm is not None and lm.input_spec:
        _check_against_reference(spec, lm.input_spec, "source checkpoint's input_spec", path)
    if lm is None and stored is None:
        raise VerificationError(f"no independent reference to compare with: {eager_what}, and the manifest names "
                                "no stored reference outputs", path=path, field="source.checkpoint",
                                hint="pass --reference CHECKPOINT (the model it was exported from), or re-export it")
    mean, std = spec["mean"][None, :, None], spec["std"][None, :, None]
    labels = {}
    if data.suffix == ".npy":
        try:
            z = np.load(data, allow_pickle=False).astype(np.float32)[:n]
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read windows ({type(e).__name__})", path=data) from e
        if z.ndim != 3 or z.shape[1:] != (len(spec["channels"]), spec["window"]) or not np.isfinite(z).all():
            raise InputSpecError(f"windows {z.shape} are not finite (N, {len(spec['channels'])}, {spec['window']})",
                                 path=data, field="input_spec.window")
        data_note = "normalised .npy windows: rate and channels not checked"
    else:
        x_raw, mask, labels, ds = _data_windows(data, spec, n, path)
        z = np.where(mask, (x_raw - mean) / std, 0.0).astype(np.float32)   # missing samples read 0
        data_note = f"{ds.path} test split: {ds.fs_hz:g} Hz, channels and {ds.window}-sample window match"
    pred = run_float(runner, z)
    ospec = _output_spec(m, path)
    out_name = str(ospec.get("name", "hr"))
    y = np.asarray(labels[out_name], np.float64).reshape(-1) if out_name in labels else None
    rep: dict = {"artifact": str(path), "format": m["format"], "integrity": "sha256 matches the manifest",
                 "input_spec": "matches the artifact" + (", the stored reference" if stored is not None else "")
                 + (", the source checkpoint" if lm is not None and lm.input_spec else ""),
                 "data": data_note, "n": int(len(z))}
    if isinstance(m.get("source"), dict) and m["source"].get("unverified"):
        rep["source_integrity"] = "unverified (exported from a checkpoint without a manifest)"
    int8 = _int8(m)
    if lm is not None:
        eager = eager_outputs(lm.model, z)
        rep.update(_metrics(path, pred, eager, y, ospec), reference=eager_what, sqnr_windows=int(len(z)))
        _check_sqnr(m["format"], path, rep, int8, "the eager source model")
    elif y is not None:
        rep.update(label_metrics(to_units(pred, ospec) if output_classes(ospec) is None else pred, y,
                                  output_classes(ospec)))
    if stored is not None:
        sr = _metrics(path, run_float(runner, stored[0]), stored[1], None, ospec)
        rep["stored_reference"] = {"file": m["reference"]["file"], **sr}
        _check_sqnr(m["format"], path, sr, int8, f"the stored reference outputs {m['reference']['file']}")
        if lm is None:
            rep.update({k: sr[k] for k in ("abs_err", "agreement", "logit_abs_err") if k in sr})
            rep.update(sqnr_db=sr["sqnr_db"], max_abs_diff=sr["max_abs_diff"], sqnr_windows=sr["n"],
                       reference=f"stored reference outputs {m['reference']['file']} "
                                 f"({sr['n']} windows, eager model at export)",
                       eager_source=eager_what)
    return rep
