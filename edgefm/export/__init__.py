"""Export a model to deployable artifacts, one readable function per format.

Each function: op check -> (int8: the shared PT2E quantization, :func:`quantize.ptq.quantize_`)
-> convert -> run the bytes in the real runtime on held-out windows and compare with eager ->
write the artifact atomically -> write ``NAME.manifest.json`` (docs/DESIGN.md fields) -> re-read it.

int8: every format is made from one quantized graph (one calibration, one set of scales and
zero points), so the .pte, .tflite, TFLite Micro array and .onnx of a model agree within one
output quantization step; each manifest records ``quantization.qparams_sha256`` to show it.
Pass ``quantized=`` (a :class:`quantize.ptq.QuantizedModel`) to reuse one calibration across
calls; ``export(..., "all", int8=True)`` does.

    res = export_tflite(model, "out/", calib, int8=True, heldout=(x, y), spec=spec)
    res.path, res.manifest, res.verification   # student_int8.tflite, ..., {sqnr_db, abs_err, mae, rel_loss}

Verification (``res.verification``, the manifest's ``verification`` block): the artifact's
outputs on the held-out windows against the eager fp32 model's, per window — ``abs_err``
``{p50, p99, max}`` of |artifact - eager| in output units for a regression output (e.g. bpm),
``agreement`` (fraction of windows with the same argmax) for class logits — beside the SQNR and,
with labels, the task metrics (MAE; accuracy, macro-F1, balanced accuracy). See
:func:`edgefm.export.verify.metrics`. A budget bounds them (``int8_p99_abs_err``,
``int8_min_agreement``, :mod:`edgefm.profile.budget`).

Beside each artifact ``NAME.reference.npz`` keeps held-out windows, the eager model's outputs on
them and the input spec they were made with (its sha256 in the manifest's ``reference``), so
``edgefm export verify`` can check the artifact later against something other than itself.

``model``: any ``torch.nn.Module`` taking ``(B, C, T)`` float32 (the deployable student:
normalised ACC at 32 Hz -> HR in bpm, or -> K class logits). ``calib``: (N, C, T) float32
normalised windows. Exports are deterministic (seeded, no timestamps): the same model and
calibration give identical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgefm.errors import ConfigError, DataError, ExportError, VerificationError
from edgefm.export.verify import eager_outputs, metrics, output_classes, run_float
from edgefm.manifest import atomic_write_bytes, read_artifact_manifest, sha256_bytes, write_artifact_manifest

FORMATS = ("pte", "tflite", "onnx", "tflm")
INT8_SCHEME = "pt2e-xnnpack-int8-full-integer"   # quantize.ptq: one scheme, one calibration, every format
# int8 artifacts must keep at least this SQNR (dB) vs eager on held-out windows
MIN_INT8_SQNR_DB = 10.0
MIN_FP32_SQNR_DB = 40.0
REL_ERROR_TOLERANCE = 0.02     # max |artifact - eager| tolerated beside a low SQNR, relative to mean |eager|


@dataclass(frozen=True)
class ArtifactSpec:
    """What the manifest says about where a model came from and what it takes and returns.

    source: ``{"checkpoint": path, "sha256": ..., "config": {...}}``.
    input_spec: ``{"preset", "channels", "fs_hz", "window", "hop", "normalisation": {mean, std}}``.
    output_spec: ``{"name", "unit"}`` (optional ``"range"`` [lo, hi] the int8 output must cover) for
    a regression output (B, 1); ``{"name", "kind": "classes", "classes": [K names]}`` for class
    logits (B, K). The manifest carries it as given.
    """

    source: dict = field(default_factory=dict)
    input_spec: dict = field(default_factory=dict)
    output_spec: dict = field(default_factory=lambda: {"name": "hr", "unit": "bpm"})


@dataclass
class ExportResult:
    format: str
    path: Path
    manifest: Path
    verification: dict
    extra: dict = field(default_factory=dict)


def _prep(model, calib, heldout, spec=None):
    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}", field="model")
    torch.manual_seed(0)
    np.random.seed(0)
    calib = np.asarray(calib, dtype=np.float32)
    if calib.ndim != 3 or len(calib) == 0:
        raise DataError(f"calibration windows must be (N, C, T), got {calib.shape}", field="calib")
    if not np.isfinite(calib).all():
        raise DataError("calibration windows contain NaN or inf", field="calib")
    if spec is not None:
        _check_spec(spec, calib)
        output_classes(spec.output_spec)          # a class output must name its classes
    if heldout is None:
        hx, hy = calib[: min(len(calib), 64)], None
    else:
        hx, hy = heldout
        hx = np.asarray(hx, dtype=np.float32)
        if hx.ndim != 3 or hx.shape[1:] != calib.shape[1:]:
            raise DataError(f"held-out windows {hx.shape} do not match calibration {calib.shape}", field="heldout")
    return model.eval(), calib, calib[:1], hx, hy


def _check_spec(spec: ArtifactSpec, calib: np.ndarray) -> None:
    """The manifest's input spec must describe the model's input: one name, mean and std per channel."""
    ins = spec.input_spec
    ch = ins.get("channels")
    if ch is not None and len(ch) != calib.shape[1]:
        raise ConfigError(f"input_spec names {len(ch)} channels, the model takes {calib.shape[1]}",
                          field="input_spec.channels")
    norm = ins.get("normalisation") or {}
    for k in ("mean", "std"):
        v = norm.get(k)
        if v is not None and (len(v) != calib.shape[1] or not np.all(np.isfinite(v))
                              or (k == "std" and min(v) <= 0)):
            raise ConfigError(f"normalisation {k} must give one finite value per input channel "
                              f"({calib.shape[1]}){', positive' if k == 'std' else ''}",
                              field=f"input_spec.normalisation.{k}")


def _manifest_fields(fmt: str, spec: ArtifactSpec, quant: dict, calib: np.ndarray, example_shape,
                     verification: dict, **extra) -> dict:
    src = dict(spec.source)
    src["calibration_sha256"] = sha256_bytes(np.ascontiguousarray(calib).tobytes())
    src["calibration_windows"] = int(len(calib))
    return {"format": fmt, "source": src,
            "input_spec": {**spec.input_spec, "shape": list(example_shape), "dtype": quant.get("input_dtype", "float32")},
            "output_spec": dict(spec.output_spec), "quantization": quant,
            "verification": verification, **extra}


def _finish(fmt, data: bytes, path: Path, fields: dict, backends: tuple[str, ...],
            reference: tuple[np.ndarray, np.ndarray] | None = None) -> Path:
    """Write the artifact, its stored reference (``reference``: held-out windows and the eager
    model's outputs on them, see :func:`edgefm.export.verify.write_reference`), then the
    manifest, which records the reference's sha256; re-read it with its sha256 checked."""
    from edgefm.export.verify import write_reference
    atomic_write_bytes(path, data)
    if reference is not None:
        fields = {**fields, "reference": write_reference(path, *reference, fields.get("input_spec") or {})}
    mp = write_artifact_manifest(path, fields, backends)
    read_artifact_manifest(path, verify=True)
    return mp


def _check_verification(fmt: str, path: Path, rep: dict, int8: bool) -> None:
    floor = MIN_INT8_SQNR_DB if int8 else MIN_FP32_SQNR_DB
    # SQNR is taken around the output mean; a model whose outputs barely vary (e.g. undertrained)
    # can score low with tiny absolute errors, so fail only when the error is also material
    material = rep["max_abs_diff"] > REL_ERROR_TOLERANCE * max(rep.get("mean_abs_output", 0.0), 1e-6)
    if rep["sqnr_db"] < floor and material:
        raise VerificationError(f"{fmt} output SQNR {rep['sqnr_db']} dB vs eager is below {floor} dB",
                                path=path, hint="see quantization.layer_sqnr; keep the worst layers in float "
                                                "(edgefm compress tune) or recalibrate with more windows")


def _int8(model, calib: np.ndarray, quantized=None, keep_float=(), output_spec=None):
    """The shared int8 model: ``quantized`` when given (checked to be calibrated on ``calib``),
    else a new calibration on ``calib`` whose output covers the output spec's range
    (:func:`quantize.ptq.output_range_for`: 30-230 bpm for heart rate)."""
    from quantize.ptq import QuantConfig, QuantizedModel, output_range_for, quantize_
    if quantized is None:
        return quantize_(model, QuantConfig(backend="pte", calibration=calib, keep_float=tuple(keep_float),
                                            output_range=output_range_for(output_spec)))
    if not isinstance(quantized, QuantizedModel) or quantized.observed is None:
        raise ConfigError("quantized= must be a QuantizedModel from quantize.ptq.quantize_", field="quantized")
    c = quantized.config.calibration
    if c.shape[1:] != calib.shape[1:] or not np.array_equal(c, calib[:len(c)]):
        raise ConfigError("quantized= was calibrated on other windows than calib", field="quantized",
                          hint="pass the calibration windows it was made with")
    return quantized


def _check_io(fmt: str, qm, i, o) -> None:
    """An int8-I/O artifact must take and return exactly the shared graph's input/output qparams
    (a side the graph keeps in float must be float in the artifact)."""
    ref = qm.io_qparams()
    for name, d in (("input", i), ("output", o)):
        r = ref.get(name)
        if not d.quantized and ("input" not in ref or "output" not in ref):
            continue                  # float32 I/O around an int8 core (see _tflite_bytes)
        if abs(d.scale - r["scale"]) > 1e-6 * r["scale"] or d.zero_point != r["zero_point"]:
            raise ExportError(f"{fmt} {name} scale/zero point ({d.scale}, {d.zero_point}) differ from the "
                              f"quantized graph's {r}", hint="the converter requantized the model; check its version")


def _quant_info(qm, int8: bool, **kw) -> dict:
    if not int8:
        return {"dtype": "float32", "input_dtype": "float32", "output_dtype": "float32"}
    return {"dtype": "int8", "scheme": INT8_SCHEME, "per_channel": qm.config.per_channel, "qat": qm.config.qat,
            "keep_float": list(qm.config.keep_float), "qparams_sha256": qm.qparams_sha256,
            "calibration_windows": int(len(qm.config.calibration)), **qm.io_qparams(),
            "layer_sqnr": qm.layer_sqnr, **kw}


# --------------------------------------------------------------------------- ExecuTorch

def export_pte(model: torch.nn.Module, out_dir: str | Path, calib: np.ndarray, *, int8: bool = False,
               heldout=None, spec: ArtifactSpec = ArtifactSpec(), name: str = "student",
               quantized=None) -> ExportResult:
    """ExecuTorch ``.pte``, XNNPACK-delegated: ``NAME_xnnpack_fp32.pte`` or ``NAME_xnnpack_q8.pte``
    (the shared int8 graph with its quantize ops folded; float32 I/O, int8 inside the delegate)."""
    from edgefm.adapters import executorch as et
    model, calib, _, hx, hy = _prep(model, calib, heldout, spec)
    example = (torch.from_numpy(calib[:1]),)
    qm = _int8(model, calib, quantized, output_spec=spec.output_spec) if int8 else None
    data, leftover = et.lower(qm.converted(fold=True) if int8 else model, example)
    path = Path(out_dir) / f"{name}_xnnpack_{'q8' if int8 else 'fp32'}.pte"
    eager = eager_outputs(model, hx)
    rep = metrics(run_float(et.ExecuTorchRunner(data), hx), eager, hy, spec.output_spec)
    _check_verification("pte", path, rep, int8)
    quant = _quant_info(qm, int8, input_dtype="float32", output_dtype="float32")
    fields = _manifest_fields("pte", spec, quant, calib, example[0].shape, rep,
                              delegate="xnnpack", non_delegated_ops=leftover)
    mp = _finish("pte", data, path, fields, ("executorch",), (hx, eager))
    return ExportResult("pte", path, mp, rep, {"non_delegated_ops": leftover})


# --------------------------------------------------------------------------- LiteRT

def _tflite_bytes(model, calib, int8: bool, keep_float=(), quantized=None, output_spec=None):
    from edgefm.adapters import litert
    example = (torch.from_numpy(calib[:1]),)
    if not int8:
        return litert.strip_names(litert.convert(model, example)), None
    qm = _int8(model, calib, quantized, keep_float, output_spec=output_spec)
    data = litert.convert(qm.converted(fold=False), example, int8=True)
    io = qm.io_qparams()
    if "input" not in io or "output" not in io:
        # a boundary layer kept in float (e.g. a DSP front end): float32 I/O, int8 inside
        # (LiteRT's interface rewrite only makes both sides int8)
        return litert.strip_names(data), qm
    return litert.strip_names(litert.int8_io(data)), qm


def export_tflite(model: torch.nn.Module, out_dir: str | Path, calib: np.ndarray, *, int8: bool = False,
                  heldout=None, spec: ArtifactSpec = ArtifactSpec(), name: str = "student",
                  quantized=None) -> ExportResult:
    """LiteRT ``.tflite`` via litert-torch: ``NAME_fp32.tflite``, or ``NAME_int8.tflite`` — full
    integer with int8 input and output (the shared int8 graph converted), what an MCU wants."""
    from edgefm.adapters import litert
    from edgefm.export.opcheck import check_ops
    model, calib, _, hx, hy = _prep(model, calib, heldout, spec)
    example = (torch.from_numpy(calib[:1]),)
    check_ops(model, example, "litert")
    data, qm = _tflite_bytes(model, calib, int8, quantized=quantized, output_spec=spec.output_spec)
    path = Path(out_dir) / f"{name}_{'int8' if int8 else 'fp32'}.tflite"
    r = litert.LiteRTRunner(data)
    eager = eager_outputs(model, hx)
    rep = metrics(run_float(r, hx), eager, hy, spec.output_spec)
    _check_verification("tflite", path, rep, int8)
    i, o = r.input_details[0], r.output_details[0]
    if int8:
        _check_io("tflite", qm, i, o)
    quant = _quant_info(qm, int8, input_dtype=i.dtype.name, output_dtype=o.dtype.name,
                        input={"scale": i.scale, "zero_point": i.zero_point},
                        output={"scale": o.scale, "zero_point": o.zero_point})
    fields = _manifest_fields("tflite", spec, quant, calib, example[0].shape, rep, ops=litert.list_ops(data))
    mp = _finish("tflite", data, path, fields, ("litert-torch", "ai-edge-litert"), (hx, eager))
    return ExportResult("tflite", path, mp, rep)


# --------------------------------------------------------------------------- ONNX

def export_onnx(model: torch.nn.Module, out_dir: str | Path, calib: np.ndarray, *, int8: bool = False,
                heldout=None, spec: ArtifactSpec = ArtifactSpec(), name: str = "student",
                quantized=None) -> ExportResult:
    """ONNX: ``NAME.onnx`` (fp32, opset 17, dynamic batch), or ``NAME_qdq.onnx`` — the shared int8
    graph as QuantizeLinear/DequantizeLinear with per-channel int8 weights (opset 18, batch 1,
    float32 I/O), run by ONNX Runtime's int8 kernels."""
    from edgefm.adapters import onnx as ox
    model, calib, _, hx, hy = _prep(model, calib, heldout, spec)
    example = (torch.from_numpy(calib[:1]),)
    qm = _int8(model, calib, quantized, output_spec=spec.output_spec) if int8 else None
    data = qm.onnx_qdq() if int8 else ox.export(model, example)
    path = Path(out_dir) / (f"{name}_qdq.onnx" if int8 else f"{name}.onnx")
    eager = eager_outputs(model, hx)
    rep = metrics(run_float(ox.OnnxRunner(data), hx), eager, hy, spec.output_spec)
    _check_verification("onnx", path, rep, int8)
    quant = _quant_info(qm, int8, input_dtype="float32", output_dtype="float32")
    fields = _manifest_fields("onnx", spec, quant, calib, example[0].shape, rep,
                              opset=ox.QDQ_OPSET if int8 else ox.OPSET)
    mp = _finish("onnx", data, path, fields, ("onnx", "onnxruntime"), (hx, eager))
    return ExportResult("onnx", path, mp, rep)


# --------------------------------------------------------------------------- TFLite Micro

def export_tflm(model: torch.nn.Module, out_dir: str | Path, calib: np.ndarray, *, int8: bool = True,
                heldout=None, spec: ArtifactSpec = ArtifactSpec(), name: str = "student",
                quantized=None) -> ExportResult:
    """TFLite Micro C source: ``model_data.cc`` (16-byte aligned ``const unsigned char`` array)
    and ``model_data.h`` (length and ``kTensorArenaSize``), from the full-int8 ``.tflite``. The
    arena size is the smallest that runs the model in the ``tflite-micro`` interpreter."""
    from edgefm.adapters import litert, tflm
    from edgefm.export.opcheck import check_ops
    if not int8:
        raise ConfigError("TFLite Micro export is int8 only", field="int8", hint="pass --int8")
    model, calib, _, hx, hy = _prep(model, calib, heldout, spec)
    example = (torch.from_numpy(calib[:1]),)
    check_ops(model, example, "tflm")
    data, qm = _tflite_bytes(model, calib, True, quantized=quantized, output_spec=spec.output_spec)
    out_dir = Path(out_dir)
    tflm.check_ops(litert.list_ops(data), str(out_dir / "model_data.cc"))
    r_lite = litert.LiteRTRunner(data)
    i = r_lite.input_details[0]
    x0 = np.clip(np.round(hx[:1] / i.scale) + i.zero_point, -128, 127).astype(np.int8) if i.quantized \
        else hx[:1].astype(np.float32)
    arena = tflm.measure_arena(data, x0)
    r = tflm.TFLMRunner(data, arena)
    pred = run_float(r, hx)
    eager = eager_outputs(model, hx)
    rep = metrics(pred, eager, hy, spec.output_spec)
    # TFLM must agree with LiteRT on the same int8 model within one output quantization step
    o = r.output_details[0]
    # same int8 model, LiteRT's builtin kernels vs TFLite Micro: must agree within one step
    # (a float32 output - float I/O around an int8 core - is measured in the graph's output steps)
    step = 1.0 if o.quantized else qm.io_qparams().get("output", {}).get("scale", 1.0)
    raw_micro = _raw(r, hx, i).astype(np.float64) / step
    steps = int(np.ceil(np.max(np.abs(raw_micro - _raw(litert.LiteRTRunner(data, xnnpack=False), hx, i)
                                      .astype(np.float64) / step)) - 1e-6))
    rep["max_diff_vs_litert_steps"] = steps
    # for information: LiteRT's default XNNPACK int8 kernels round differently at times
    rep["max_diff_vs_litert_xnnpack_steps"] = int(np.ceil(np.max(np.abs(
        raw_micro - _raw(r_lite, hx, i).astype(np.float64) / step)) - 1e-6))
    path = out_dir / "model_data.cc"
    _check_verification("tflm", path, rep, True)
    if steps > 1:
        raise VerificationError(f"TFLite Micro differs from LiteRT by {steps:.2f} quantization steps", path=path)
    _check_io("tflm", qm, i, o)
    cc, h = tflm.c_source(data, arena_bytes=arena)
    atomic_write_bytes(out_dir / "model_data.h", h.encode())
    quant = _quant_info(qm, True, input_dtype=i.dtype.name, output_dtype=o.dtype.name,
                        input={"scale": i.scale, "zero_point": i.zero_point},
                        output={"scale": o.scale, "zero_point": o.zero_point})
    fields = _manifest_fields("tflm", spec, quant, calib, example[0].shape, rep, arena_bytes=arena,
                              model_bytes=len(data), tflite_sha256=sha256_bytes(data), header="model_data.h",
                              header_sha256=sha256_bytes(h.encode()),
                              ops=litert.list_ops(data))
    mp = _finish("tflm", cc.encode(), path, fields, ("tflite-micro", "litert-torch"), (hx, eager))
    return ExportResult("tflm", path, mp, rep, {"arena_bytes": arena})


def _raw(runner, x: np.ndarray, i) -> np.ndarray:
    """Raw (int8, or float where the artifact's output is float) outputs of a runner for float
    windows x (N, C, T), quantized first where its input is int8."""
    q = np.clip(np.round(x / i.scale) + i.zero_point, -128, 127).astype(np.int8) if i.quantized \
        else x.astype(np.float32)
    return np.concatenate([np.asarray(runner.run(q[k:k + 1])).reshape(1, -1) for k in range(len(q))])


_FUNCS = {"pte": export_pte, "tflite": export_tflite, "onnx": export_onnx, "tflm": export_tflm}


def export(model: torch.nn.Module, fmt: str, out_dir: str | Path, calib: np.ndarray, *, int8: bool = False,
           heldout=None, spec: ArtifactSpec = ArtifactSpec(), name: str = "student",
           quantized=None) -> list[ExportResult]:
    """Export to ``fmt`` (``pte``, ``tflite``, ``onnx``, ``tflm`` or ``all``). The int8 ones share
    one calibration: ``quantized`` when given, else one made here on ``calib``."""
    fmts = FORMATS if fmt == "all" else (fmt,)
    for f in fmts:
        if f not in _FUNCS:
            raise ConfigError(f"unknown export format {f!r}", field="format",
                              hint="choose pte, tflite, onnx, tflm or all")
    if quantized is None and sum(int8 or f == "tflm" for f in fmts) > 1:
        model, c, _, _, _ = _prep(model, calib, heldout, spec)
        quantized = _int8(model, c, output_spec=spec.output_spec)
    return [_FUNCS[f](model, out_dir, calib, int8=(True if f == "tflm" else int8), heldout=heldout,
                      spec=spec, name=name, quantized=quantized) for f in fmts]
