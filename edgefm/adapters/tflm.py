"""TFLite Micro adapter: run an int8 ``.tflite`` in the ``tflite-micro`` Python interpreter,
measure the smallest tensor arena that works, and write the C source (``model_data.cc/.h``).

Runner contract (see :mod:`edgefm.adapters`): ``load_runner(path_or_bytes, arena_bytes=None)
-> Runner`` with ``run(x: np.ndarray) -> np.ndarray`` in the model's raw dtypes (int8) and
``input_details`` / ``output_details`` with ``(scale, zero_point)``. ``path_or_bytes`` may be a
``.tflite`` or the ``model_data.cc`` written here.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np

from edgefm.adapters import TensorDetails, read_model_bytes
from edgefm.errors import ExportError, UnsupportedOpError

LIBRARY = "tflite-micro"
ALIGN = 16                    # bytes; flatbuffers need >= 8, CMSIS-NN likes 16
DEFAULT_ARENA_BYTES = 256 * 1024

# Builtin ops with int8 kernels in TFLite Micro's all-ops resolver that a 1-D CNN/MLP needs.
# (The interpreter itself is the final judge: it refuses a model with any other op.)
SUPPORTED_OPS = frozenset({
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEQUANTIZE",
    "FULLY_CONNECTED", "HARD_SWISH", "LEAKY_RELU", "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL",
    "PAD", "PADV2", "QUANTIZE", "RELU", "RELU6", "RESHAPE", "SOFTMAX", "SQUEEZE", "STRIDED_SLICE",
    "SUB", "TANH", "TRANSPOSE", "EXPAND_DIMS", "SUM", "BATCH_MATMUL", "SPLIT", "PACK", "UNPACK",
    "GATHER", "SHAPE", "SLICE", "MINIMUM", "MAXIMUM", "RSQRT", "SQUARED_DIFFERENCE", "PRELU",
    "LOG",            # float32 kernel (elementwise.cc): layers kept in float
})


def check_ops(ops: list[str], path: str | None = None) -> None:
    """Raise :class:`UnsupportedOpError` for ops TFLite Micro cannot run (names from
    :func:`edgefm.adapters.litert.list_ops`)."""
    bad = sorted({o for o in ops if o not in SUPPORTED_OPS})
    if bad:
        raise UnsupportedOpError(f"TFLite Micro has no kernel for op(s) {', '.join(bad)}", path=path,
                                 hint="replace the layer with supported ops (conv, depthwise, dense, relu, add, mean)")


def _from_c_source(src: bytes) -> bytes:
    start, end = src.find(b"{"), src.find(b"}")
    if start < 0 or end < start:
        raise ExportError("no byte array found in C source", hint="pass the model_data.cc written by export")
    return bytes(int(h, 16) for h in re.findall(rb"0x([0-9a-fA-F]{2})", src[start:end]))


def _details(d: dict, name: str) -> TensorDetails:
    qp = d.get("quantization_parameters", {}) or {}
    sc, zp = np.asarray(qp.get("scales", [])), np.asarray(qp.get("zero_points", []))
    return TensorDetails(name, np.dtype(d["dtype"]), tuple(int(s) for s in d["shape"]),
                         float(sc[0]) if sc.size else 0.0, int(zp[0]) if zp.size else 0)


class TFLMRunner:
    """Runs a model in the TFLite Micro interpreter with a tensor arena of ``arena_bytes``."""

    def __init__(self, model: bytes, arena_bytes: int | None = None):
        from tflite_micro.python.tflite_micro import runtime
        self.arena_bytes = int(arena_bytes or DEFAULT_ARENA_BYTES)
        try:
            self._it = runtime.Interpreter.from_bytes(model, arena_size=self.arena_bytes)
        except Exception as e:
            raise ExportError(f"TFLite Micro could not prepare the model with a {self.arena_bytes}-byte "
                              f"arena: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                              hint="give a larger arena or check the ops with `edgefm export --check-only`") from e
        self.input_details = [_details(self._it.get_input_details(0), "input")]
        self.output_details = [_details(self._it.get_output_details(0), "output")]
        d = self.input_details[0]
        self._in = np.zeros(d.shape, d.dtype)          # hot path: reused input buffer
        self._set, self._invoke, self._get = self._it.set_input, self._it.invoke, self._it.get_output

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: raw input (shape and dtype of ``input_details[0]``; batch 1) -> raw output."""
        self._set(np.ascontiguousarray(x, dtype=self.input_details[0].dtype), 0)
        self._invoke()
        return self._get(0)                 # get_output returns a new array

    def run_from(self, z: np.ndarray) -> np.ndarray:
        """Runner contract hot path: z cast into a reused input buffer, then set_input."""
        if z.shape != self._in.shape:
            return self.run(z)
        np.copyto(self._in, z, casting="unsafe")
        self._set(self._in, 0)
        self._invoke()
        return self._get(0)


def load_runner(path_or_bytes: str | Path | bytes, arena_bytes: int | None = None) -> TFLMRunner:
    if isinstance(path_or_bytes, (str, Path)) and Path(path_or_bytes).suffix in (".cc", ".c"):
        model = _from_c_source(Path(path_or_bytes).read_bytes())
    else:
        model = read_model_bytes(path_or_bytes)
    return TFLMRunner(model, arena_bytes)


def _works(model: bytes, arena: int, x: np.ndarray) -> bool:
    with _silence_fd2():          # the C++ allocator logs every failed attempt on stderr
        try:
            r = TFLMRunner(model, arena)
            r.run(x)
            return True
        except Exception:
            return False


@contextlib.contextmanager
def _silence_fd2():
    import os
    import sys
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def measure_arena(model: bytes, x: np.ndarray, upper: int = 4 << 20, step: int = ALIGN) -> int:
    """Smallest tensor arena (bytes, multiple of ``step``) with which the model prepares and runs
    ``x`` in the TFLite Micro interpreter, by bisection; raises if even ``upper`` fails."""
    if not _works(model, upper, x):
        # report the interpreter's own message
        TFLMRunner(model, upper).run(x)
        raise ExportError(f"model does not run in TFLite Micro even with a {upper}-byte arena")
    lo, hi = 0, upper // step          # lo fails (0 bytes), hi works
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _works(model, mid * step, x):
            hi = mid
        else:
            lo = mid
    return hi * step


def c_source(model: bytes, name: str = "g_model_data", arena_bytes: int | None = None) -> tuple[str, str]:
    """``(model_data.cc, model_data.h)`` text: the model as an aligned ``const unsigned char``
    array and its length, plus ``kTensorArenaSize`` when known."""
    guard = "EDGEFM_MODEL_DATA_H_"
    h = [f"#ifndef {guard}", f"#define {guard}", "", "#include <cstddef>", "",
         f"// {len(model)} bytes of TFLite flatbuffer, generated by edgefm export --format tflm",
         f"extern const unsigned char {name}[];", f"extern const unsigned int {name}_len;"]
    if arena_bytes:
        h.append(f"constexpr size_t kTensorArenaSize = {int(arena_bytes)};  // measured in the TFLM interpreter")
    h += ["", f"#endif  // {guard}", ""]
    rows = []
    for i in range(0, len(model), 12):
        rows.append("  " + ", ".join(f"0x{b:02x}" for b in model[i:i + 12]) + ",")
    cc = ['#include "model_data.h"', "",
          f"alignas({ALIGN}) const unsigned char {name}[] = {{", *rows, "};",
          f"const unsigned int {name}_len = {len(model)};", ""]
    return "\n".join(cc), "\n".join(h)
