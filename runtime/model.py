"""``runtime.load(path) -> Model``: one model interface over four real runtimes.

Backends and the files they take:

==============  ====================================================================
``executorch``  ``.pte`` (ExecuTorch program, XNNPACK-delegated or portable)
``litert``      ``.tflite`` (LiteRT interpreter)
``onnx``        ``.onnx`` (ONNX Runtime, CPU execution provider, one thread)
``tflm``        ``.tflite`` with ``backend="tflm"``, or the C array source
                (``model_data.cc``) whose bytes are parsed back out of the array
==============  ====================================================================

Everything is driven by the artifact's manifest (``NAME.manifest.json``, docs/DESIGN.md):
the sha256 is verified first, always (:class:`~edgefm.errors.IntegrityError` naming the file; a
file without a manifest is refused unless loaded with ``unverified=True``), then
``input_spec`` (channels, ``fs_hz``, ``window``, ``normalisation``) and ``quantization``
(int8 input/output ``scale``/``zero_point``) define what :meth:`Model.predict` does:

    x_raw (B, C, T) in sensor units at fs_hz
      -> (x - mean) / std                       (per channel, from the manifest)
      -> q = clip(round(x / scale) + zp)        (int8/uint8 inputs only)
      -> backend call, one batch at a time when the artifact has a fixed batch of 1
      -> y = (q_out - zp_out) * scale_out       (int8/uint8 outputs only)
    -> (B, D) float32 in ``output_spec.unit``

Runners come from ``edgefm.adapters.<backend>.load_runner``: one adapter module per backend
library, shared with export and verification, so an upgrade changes one file.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefm.adapters import Runner, TensorDetails
from edgefm.errors import ConfigError, InputSpecError, IntegrityError, ManifestError
from edgefm.manifest import read_artifact_manifest, sha256_bytes

BACKENDS = ("executorch", "litert", "onnx", "tflm")
_SUFFIX_BACKEND = {".pte": "executorch", ".tflite": "litert", ".onnx": "onnx",
                   ".cc": "tflm", ".c": "tflm", ".h": "tflm"}


# ---------------------------------------------------------------- runners

def _np_dtype(d) -> np.dtype:
    return np.dtype(d)


def _details(d: Any) -> TensorDetails:
    """An adapter's detail record as :class:`edgefm.adapters.TensorDetails`."""
    if isinstance(d, TensorDetails):
        return d
    get = (lambda k, default=None: d.get(k, default)) if isinstance(d, dict) else \
          (lambda k, default=None: getattr(d, k, default))
    shape = tuple(int(s) if s is not None and not isinstance(s, str) else -1 for s in get("shape", ()))
    return TensorDetails(name=str(get("name", "")), dtype=_np_dtype(get("dtype", np.float32)),
                         shape=shape, scale=float(get("scale", 0.0) or 0.0),
                         zero_point=int(get("zero_point", 0) or 0))


def load_runner(backend: str, model: bytes, *, arena_bytes: int | None = None) -> Runner:
    """A runner for ``model`` bytes from the backend's adapter (``edgefm.adapters.<backend>``),
    the one module that drives that library."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}", field="backend",
                          hint=f"choose one of {', '.join(BACKENDS)}")
    adapter = importlib.import_module(f"edgefm.adapters.{backend}")
    if backend == "tflm":
        return adapter.load_runner(model, arena_bytes=arena_bytes)
    return adapter.load_runner(model)


def check_model_bytes(backend: str, data: bytes, path: str | Path = "") -> None:
    """Refuse bytes that are not the backend's file format before a native library parses them
    (ExecuTorch aborts the whole process on a program with a garbage identifier)."""
    if backend == "executorch" and not (len(data) >= 8 and data[4:6] == b"ET" and data[6:8].isdigit()):
        raise ManifestError("not an ExecuTorch program (no 'ET..' file identifier)", path=path,
                            hint="re-export the .pte")
    if backend in ("litert", "tflm") and not (len(data) >= 8 and data[4:8] == b"TFL3"):
        raise ManifestError("not a TFLite flatbuffer (no 'TFL3' file identifier)", path=path,
                            hint="re-export the .tflite")


def verified_manifest(path: str | Path) -> dict:
    """The artifact's manifest with its sha256 checked (:func:`read_artifact_manifest` refuses a
    missing artifact, a manifest that is not a JSON object and a sha256 mismatch, naming the file)."""
    return read_artifact_manifest(path, verify=True)


_C_BYTE = re.compile(rb"0x([0-9a-fA-F]{2})")


def c_array_bytes(src: bytes, path: str | Path = "") -> bytes:
    """The model bytes held in a TFLite Micro C array source (``const unsigned char x[] = {0x..}``)."""
    start = src.find(b"{")
    end = src.find(b"}", start)
    if start < 0 or end < 0:
        raise ManifestError("no byte array found in C source", path=path,
                            hint="pass the model_data.cc written by `edgefm export --format tflm`")
    data = bytes(int(h, 16) for h in _C_BYTE.findall(src[start:end]))
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ManifestError("C array does not hold a TFLite flatbuffer (no 'TFL3' identifier)", path=path)
    return data


# ---------------------------------------------------------------- input spec

@dataclass(frozen=True)
class InputSpec:
    """The model side of an artifact: ``channels`` in order, ``fs_hz``, ``window``/``hop``
    samples, per-channel ``mean``/``std`` (raw units) that :meth:`Model.predict` applies."""

    channels: tuple[str, ...]
    fs_hz: float
    window: int
    hop: int
    mean: np.ndarray = field(repr=False)
    std: np.ndarray = field(repr=False)
    preset: str = ""

    @property
    def window_s(self) -> float:
        return self.window / self.fs_hz

    @property
    def hop_s(self) -> float:
        return self.hop / self.fs_hz

    @classmethod
    def from_manifest(cls, m: dict, path: str | Path = "") -> "InputSpec":
        spec = m.get("input_spec")
        if not isinstance(spec, dict):
            raise ManifestError("manifest has no input_spec", path=path, field="input_spec")
        try:
            chans = tuple(c["name"] if isinstance(c, dict) else str(c) for c in spec["channels"])
            fs = float(spec["fs_hz"])
            window = int(spec["window"]) if "window" in spec else int(round(float(spec["window_s"]) * fs))
            hop = int(spec["hop"]) if "hop" in spec else int(round(float(spec["hop_s"]) * fs))
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"input_spec is incomplete ({e})", path=path, field="input_spec") from e
        norm = spec.get("normalisation") or {}
        C = len(chans)
        mean = np.asarray(norm.get("mean", np.zeros(C)), np.float32).reshape(-1)
        std = np.asarray(norm.get("std", np.ones(C)), np.float32).reshape(-1)
        if mean.shape != (C,) or std.shape != (C,) or not (np.isfinite(std).all() and (std > 0).all()) \
                or not np.isfinite(mean).all():
            raise ManifestError(f"normalisation must give a finite mean and positive std for each of "
                                f"{C} channels", path=path, field="input_spec.normalisation")
        if window <= 0 or hop <= 0 or fs <= 0:
            raise ManifestError("window, hop and fs_hz must be positive", path=path, field="input_spec")
        return cls(chans, fs, window, hop, mean, std, str(spec.get("preset", "")))


def _quant_params(m: dict, which: str) -> tuple[float, int] | None:
    """(scale, zero_point) of the artifact's ``input``/``output`` from its manifest, if quantized."""
    q = m.get("quantization") or {}
    for d in (q.get(which), q.get(f"{which}s"), q):
        if isinstance(d, list) and d:
            d = d[0]
        if isinstance(d, dict):
            s = d.get(f"{which}_scale", d.get("scale"))
            z = d.get(f"{which}_zero_point", d.get("zero_point"))
            if s is not None:
                return float(s[0] if isinstance(s, list) else s), int(z[0] if isinstance(z, list) else (z or 0))
    return None


# ---------------------------------------------------------------- the model

_F32, _U8 = np.dtype(np.float32), np.dtype(np.uint8)
# ufuncs bound once for the hot path (module globals: one lookup instead of two per call)
_mul, _add, _sub, _rint, _max, _min, _vdot, _isfinite = (np.multiply, np.add, np.subtract, np.rint,
                                                          np.maximum, np.minimum, np.vdot, math.isfinite)


class Model:
    """A loaded artifact. ``predict(x)`` maps raw-unit windows ``(B, C, T)`` to ``(B, D)``.

    Attributes: ``path``, ``backend``, ``manifest``, ``spec`` (:class:`InputSpec`), ``unverified``
    (True when loaded with ``unverified=True`` and no manifest: its sha256 was not checked),
    ``runner`` (the bare backend runner), ``in_details``/``out_details``
    (:class:`TensorDetails` of the model file, with the scale/zero point actually used).

    Everything :meth:`predict` needs is fixed at load: the normalisation and input quantization
    folded into one affine map, the output scale and zero point, a reused input buffer and the
    runner's hot path (``run_from``), bound into one closure. A float32 ``(1, C, T)`` window with
    no ``fs_hz``/``channels`` takes the short path: shape/dtype check, multiply and add into the
    buffer, one NaN/inf reduction, round and clip (int8), the backend call, dequantize into a new
    array. A Model is not re-entrant (the interpreters it wraps are not either): one thread calls
    it at a time.
    """

    def __init__(self, path: Path, backend: str, manifest: dict, runner: Runner):
        self.path, self.backend, self.manifest, self.runner = path, backend, manifest, runner
        self.spec = InputSpec.from_manifest(manifest, path)
        self.in_details = _details(runner.input_details[0])
        self.out_details = _details(runner.output_details[0])
        self.in_details = self._check_quant(self.in_details, "input")
        self.out_details = self._check_quant(self.out_details, "output")
        shp = self.in_details.shape
        C, T = len(self.spec.channels), self.spec.window
        if len(shp) != 3 or (shp[1] not in (-1, C)) or (shp[2] not in (-1, T)):
            raise ManifestError(f"model input shape {shp} does not match the manifest's input_spec "
                                f"(B, {C}, {T})", path=path, field="input_spec")
        self._fixed_batch = shp[0] if shp[0] > 0 else None
        self._ct = (C, T)
        self._in_dtype = self.in_details.dtype
        self._qin = self._in_dtype.kind in "iu"
        self._qout = self.out_details.dtype.kind in "iu"
        # fold normalisation and input quantization into one affine map: q = x * a + b
        s = self.in_details.scale if self._qin else 1.0
        self._a = (1.0 / (self.spec.std * s)).astype(np.float32)[None, :, None]
        self._b = (-self.spec.mean / (self.spec.std * s)
                   + (self.in_details.zero_point if self._qin else 0.0)).astype(np.float32)[None, :, None]
        self._A = np.ascontiguousarray(np.broadcast_to(self._a, (1, C, T)))
        self._B = np.ascontiguousarray(np.broadcast_to(self._b, (1, C, T)))
        if self._qin:
            # clip bounds as full arrays: a ufunc with a scalar operand costs more than the work
            info = np.iinfo(self._in_dtype)
            self._qlo, self._qhi = np.full((1, C, T), info.min, np.float32), np.full((1, C, T), info.max, np.float32)
        self._zp_out = np.float32(self.out_details.zero_point)
        self._s_out = np.float32(self.out_details.scale)
        if self._qout and self.out_details.dtype.itemsize == 1:
            # 8-bit output: dequantize by table, (code - zp) * scale for all 256 codes (float32)
            codes = np.arange(256, dtype=np.uint8).view(self.out_details.dtype)
            self._deq = (codes.astype(np.float32) - self._zp_out) * self._s_out
        else:
            self._deq = None
        # hot path: batch-1 windows are normalised (and quantized) into one reused buffer, then
        # handed to the runner's run_from (cast straight into the backend's input)
        self._shape1 = (1, C, T) if self._fixed_batch in (None, 1) else None
        self._z1 = np.zeros((1, C, T), np.float32)
        run_from = getattr(runner, "run_from", None)
        if run_from is None:                  # a runner with only run(): give it its own dtype
            in_dtype = self._in_dtype
            run_from = lambda z: runner.run(z.astype(in_dtype))  # noqa: E731
        self._run_from = run_from
        self._fast = self._hot_path()
        # one step of the int8 output: the model's own output scale, or (artifacts that
        # dequantize inside, e.g. .pte/.onnx QDQ) the shared output scale in the manifest
        q = manifest.get("quantization") or {}
        mq = _quant_params(manifest, "output") if q.get("dtype") == "int8" else None
        self._output_step = float(self.out_details.scale) if self._qout else (mq[0] if mq else 0.0)
        out = manifest.get("output_spec") or {}
        self.output_name = str(out.get("name", "output"))
        self.output_unit = str(out.get("unit", ""))
        # True only for a file loaded with unverified=True that has no manifest (no sha256 check)
        self.unverified = manifest.get("integrity") == UNVERIFIED

    def _check_quant(self, d: TensorDetails, which: str) -> TensorDetails:
        if d.dtype.kind not in "iu":
            return d
        mq = _quant_params(self.manifest, which)
        if mq is None and d.scale <= 0:
            raise ManifestError(f"{which} is {d.dtype} but neither the manifest nor the model gives "
                                f"its scale/zero_point", path=self.path, field=f"quantization.{which}")
        if mq is not None:
            if d.scale > 0 and (abs(mq[0] - d.scale) > 1e-6 * abs(d.scale) or mq[1] != d.zero_point):
                raise ManifestError(f"manifest {which} scale/zero_point {mq} differ from the model's "
                                    f"({d.scale}, {d.zero_point})", path=self.path,
                                    field=f"quantization.{which}", hint="re-export the artifact")
            d = TensorDetails(d.name, d.dtype, d.shape, mq[0], mq[1])
        return d

    # -- API
    @property
    def channels(self) -> tuple[str, ...]:
        return self.spec.channels

    @property
    def fs_hz(self) -> float:
        return self.spec.fs_hz

    @property
    def quantized(self) -> bool:
        return self._qin or self._qout

    @property
    def output_step(self) -> float:
        """One quantization step of the int8 output in its unit (0.0 for a float model). For
        artifacts that dequantize inside (float32 output) it is the shared output scale their
        manifest records."""
        return self._output_step

    def check_input(self, x: np.ndarray, fs_hz: float | None = None,
                    channels: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """Validate ``x: (B, C, T)`` (or ``(C, T)``) against the input spec; returns float32 (B, C, T).

        Shape, rate and channels are checked here; non-finite values are caught in
        :meth:`prepare` (one reduction over the normalised input instead of a second pass).
        """
        if fs_hz is not None and abs(float(fs_hz) - self.spec.fs_hz) > 1e-6:
            raise InputSpecError(f"input is at {fs_hz} Hz, the model expects {self.spec.fs_hz} Hz",
                                 path=self.path, field="fs_hz",
                                 hint="resample to the model's rate first (runtime.stream does not resample)")
        if channels is not None and tuple(channels) != self.spec.channels:
            raise InputSpecError(f"channels {tuple(channels)} differ from the model's {self.spec.channels}",
                                 path=self.path, field="channels")
        if not isinstance(x, np.ndarray):
            x = np.asarray(x)
        if x.ndim == 2:
            x = x[None]
        if x.shape[1:] != self._ct or x.ndim != 3:
            C, T = self._ct
            raise InputSpecError(f"input shape {tuple(np.shape(x))}, expected (B, {C}, {T}) "
                                 f"= (batch, {'/'.join(self.spec.channels)}, {self.spec.window_s:g} s "
                                 f"at {self.spec.fs_hz:g} Hz)", path=self.path, field="input.shape")
        if x.dtype != np.float32:
            if not np.issubdtype(x.dtype, np.number):
                raise InputSpecError(f"input dtype {x.dtype} is not numeric", path=self.path, field="input.dtype")
            x = x.astype(np.float32)
        return x

    def _normalise(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """z <- x * a + b (normalised; in input quantization units for int8), rounded and clipped
        to the input dtype's range for int8; raises InputSpecError on NaN/inf anywhere."""
        _mul(x, self._A, out=z)               # full (1, C, T) operands: no per-channel broadcast cost
        _add(z, self._B, out=z)
        if not _isfinite(_vdot(z, z)):        # NaN/inf anywhere, in one BLAS reduction
            raise InputSpecError("input holds NaN or infinite values", path=self.path, field="input",
                                 hint="mark missing samples in the mask and skip the window (runtime.stream does)")
        if self._qin:
            _rint(z, out=z)
            _max(z, self._qlo, out=z)
            _min(z, self._qhi, out=z)
        return z

    def _hot_path(self):
        """``fast(x)`` for one validated float32 ``(1, C, T)`` window: :meth:`_normalise`, the
        runner's ``run_from``, :meth:`finish` as one closure over constants bound at load (no
        attribute or manifest lookups per call)."""
        A, B, z, run = self._A, self._B, self._z1, self._run_from
        qin, qout = self._qin, self._qout and self._deq is None
        lo, hi = (self._qlo, self._qhi) if qin else (None, None)
        table = self._deq.take if self._deq is not None else None
        finish = self.finish
        nonfinite = self._normalise               # raises the typed error (re-checks; rare path)

        def fast(x: np.ndarray) -> np.ndarray:
            _mul(x, A, out=z)
            _add(z, B, out=z)
            if not _isfinite(_vdot(z, z)):
                nonfinite(x, z)
            if qin:
                _rint(z, out=z)
                _max(z, lo, out=z)
                _min(z, hi, out=z)
            y = run(z)
            if table is not None:                 # int8 output: one table lookup, a new array
                y = table(y.view(_U8))
            elif y.dtype is not _F32 or qout:
                return finish(y)
            return y if y.ndim == 2 else y.reshape(y.shape[0], -1)
        return fast

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Raw-unit ``(B, C, T)`` float32 -> the backend's input (normalised, quantized if int8).

        Raises InputSpecError when ``x`` holds NaN or infinite values.
        """
        z = self._normalise(x, np.empty(x.shape, np.float32))
        return z.astype(self._in_dtype) if self._qin else z

    def finish(self, y: np.ndarray) -> np.ndarray:
        """Backend output -> ``(B, D)`` float32 in the output's unit (dequantized), a new array."""
        if self._deq is not None:
            y = self._deq.take(y.view(_U8))
        elif self._qout:
            y = _sub(y, self._zp_out, dtype=np.float32)
            _mul(y, self._s_out, out=y)
        elif y.dtype is not _F32:
            y = y.astype(np.float32)
        return y if y.ndim == 2 else y.reshape(y.shape[0], -1)

    def predict(self, x: np.ndarray, fs_hz: float | None = None,
                channels: tuple[str, ...] | list[str] | None = None) -> np.ndarray:
        """``x: (B, C, T)`` raw units at ``fs_hz`` -> ``(B, D)`` float32 in ``output_unit``."""
        if type(x) is np.ndarray and x.shape == self._shape1 and x.dtype is _F32 \
                and fs_hz is None and channels is None:
            return self._fast(x)      # the hot path: one float32 window, checked by shape and dtype
        return self._predict(self.check_input(x, fs_hz, channels))

    def _predict(self, x: np.ndarray) -> np.ndarray:
        """x: validated float32 (B, C, T) -> (B, D)."""
        B = x.shape[0]
        if B == 1 and self._shape1 is not None:
            return self._fast(x)
        z = self._normalise(x, np.empty(x.shape, np.float32))
        fb = self._fixed_batch
        if fb is None or fb == B:
            return self.finish(self._run_from(z))
        if fb != 1:
            raise InputSpecError(f"artifact has a fixed batch of {fb}, got {B}",
                                 path=self.path, field="input.shape")
        run, fin = self._run_from, self.finish
        return np.concatenate([fin(run(z[i:i + 1])) for i in range(B)])

    __call__ = predict

    def __repr__(self) -> str:
        return (f"Model({self.path.name}, backend={self.backend}, channels={self.spec.channels}, "
                f"fs_hz={self.spec.fs_hz:g}, window={self.spec.window}, input={self.in_details.dtype}"
                + (", UNVERIFIED)" if self.unverified else ")"))


UNVERIFIED = "unverified"


def _manifest_or_unverified(path: Path, unverified: bool, input_spec: dict | None) -> dict:
    """The artifact's manifest, its sha256 checked (always). A file without a manifest is refused
    unless ``unverified``; then ``input_spec`` stands in for the manifest's and the returned
    manifest says ``"integrity": "unverified"``."""
    from edgefm.manifest import manifest_path_for
    if not path.exists():
        raise ManifestError("artifact not found", path=path)
    mp = manifest_path_for(path)
    if mp.exists() or mp.is_symlink():
        return {**verified_manifest(path), "integrity": "verified"}
    if not unverified:
        raise ManifestError(f"no manifest {mp.name} beside the artifact: its sha256 cannot be checked",
                            path=path, field="manifest",
                            hint="re-export it, or pass unverified=True (--unverified) to accept it; "
                                 "every report then says 'unverified'")
    if not isinstance(input_spec, dict):
        raise ManifestError("an artifact without a manifest needs input_spec= (channels, fs_hz, window, hop, "
                            "normalisation) to be run", path=path, field="input_spec")
    return {"input_spec": dict(input_spec), "integrity": UNVERIFIED}


def load(path: str | Path, backend: str | None = None, *, unverified: bool = False,
         input_spec: dict | None = None) -> Model:
    """Load an exported artifact and its manifest into a :class:`Model`.

    The file's sha256 is always checked against its manifest, on the very bytes that are run.

    Args:
        path: ``.pte``, ``.tflite``, ``.onnx``, or a TFLite Micro C array source (``.cc``).
        backend: override the backend chosen by suffix; ``"tflm"`` runs a ``.tflite`` in the
            TFLite Micro interpreter.
        unverified: accept a file that has *no* manifest (a manifest that disagrees with the file
            is still refused); ``input_spec`` then gives what the manifest would. The model's
            ``unverified`` attribute is True and its repr says so.
        input_spec: only with ``unverified`` and no manifest: ``{channels, fs_hz, window, hop,
            normalisation: {mean, std}}``.

    Raises:
        IntegrityError: the file's sha256 differs from its manifest (names the file).
        ManifestError: no manifest (without ``unverified``), an invalid one, or the model disagrees with it.
        ConfigError: unknown backend or a suffix no backend takes.
    """
    path = Path(path)
    if path.suffix.lower() == ".h":
        raise ConfigError("a TFLite Micro header holds no model bytes", path=path,
                          hint="load the C array source beside it (model_data.cc)")
    manifest = _manifest_or_unverified(path, unverified, input_spec)
    if backend is None:
        backend = _SUFFIX_BACKEND.get(path.suffix.lower())
        if backend is None:
            raise ConfigError(f"cannot tell the backend from suffix {path.suffix!r}", path=path,
                              hint=f"pass backend= one of {', '.join(BACKENDS)}")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}", path=path, field="backend",
                          hint=f"choose one of {', '.join(BACKENDS)}")
    data = path.read_bytes()
    if manifest["integrity"] != UNVERIFIED and sha256_bytes(data) != manifest.get("sha256"):
        raise IntegrityError("changed while it was being loaded: sha256 differs from its manifest",
                             path=path, field="sha256", hint="the file is being modified; re-export it")
    if path.suffix.lower() in (".cc", ".c", ".h"):
        if backend != "tflm":
            raise ConfigError("a C array source runs only in TFLite Micro", path=path, hint="use backend='tflm'")
        data = c_array_bytes(data, path)
    ok = {"executorch": (".pte",), "onnx": (".onnx",), "litert": (".tflite",),
          "tflm": (".tflite", ".cc", ".c", ".h")}[backend]
    if path.suffix.lower() not in ok:
        raise ConfigError(f"backend {backend!r} does not take {path.suffix} files", path=path,
                          field="backend", hint=f"it takes {', '.join(ok)}")
    check_model_bytes(backend, data, path)
    try:
        runner = load_runner(backend, data, arena_bytes=manifest.get("arena_bytes"))
    except Exception as e:  # the library's own error: a file that passed sha256 but will not load
        from edgefm.errors import EdgefmError
        if isinstance(e, EdgefmError):
            raise
        raise ManifestError(f"{backend} could not load the artifact ({type(e).__name__}: {e})",
                            path=path, hint="re-export it; check versions in its manifest") from e
    return Model(path, backend, manifest, runner)
