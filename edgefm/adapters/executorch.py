"""ExecuTorch adapter: XNNPACK PT2E quantization, lowering to a ``.pte``, and running it.

Runner contract (see :mod:`edgefm.adapters`): ``load_runner(path_or_bytes) -> Runner`` with
``run(x: np.ndarray) -> np.ndarray`` in the program's raw dtypes (``.pte`` programs built here
take and return float32, also when quantized: the int8 quantize/dequantize sit inside the
XNNPACK delegate) and ``input_details`` / ``output_details`` (:class:`TensorDetails`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgefm.adapters import TensorDetails, read_model_bytes
from edgefm.adapters._graph import capture, layer_of, op_name
from edgefm.errors import ExportError

LIBRARY = "executorch"
_ET_DTYPES = {0: np.uint8, 1: np.int8, 3: np.int32, 4: np.int64, 6: np.float32, 7: np.float64}


def quantizer(per_channel: bool = True, qat: bool = False, full_integer: bool = False):
    """ExecuTorch's own XNNPACK PT2E quantizer: int8 symmetric weights (per output channel with
    ``per_channel``), int8 affine activations.

    full_integer: also give int8 input/output to the int8-capable ops it leaves in float
    (:data:`edgefm.adapters._graph.PASSTHROUGH_OPS`), so that the same quantized graph converts
    to a full-integer ``.tflite`` for LiteRT and TFLite Micro as well as lowering to XNNPACK.
    """
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer, get_symmetric_quantization_config)
    from edgefm.adapters._graph import annotate_passthrough

    class _FullIntegerXNNPACKQuantizer(XNNPACKQuantizer):
        def annotate(self, model):
            model = super().annotate(model)
            annotate_passthrough(model, self.global_config)
            return model

    cls = _FullIntegerXNNPACKQuantizer if full_integer else XNNPACKQuantizer
    return cls().set_global(get_symmetric_quantization_config(is_per_channel=per_channel, is_qat=qat))


def lower(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> tuple[bytes, list[dict]]:
    """Export -> edge -> XNNPACK partition -> ExecuTorch program bytes.

    ``model`` may be an eager module or a PT2E-converted GraphModule (int8 QDQ). Returns the
    ``.pte`` bytes and the ops left outside the XNNPACK delegate (``[{layer, op}]``; they run on
    ExecuTorch's portable kernels).
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    try:
        ep = torch.export.export(model, tuple(example), strict=True)
        edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
        leftover = _non_delegated(edge.exported_program().graph_module)
        buf = edge.to_executorch().buffer
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"ExecuTorch lowering failed: {str(e).splitlines()[0]}",
                          hint="run `edgefm export --check-only` to list unsupported ops") from e
    return bytes(buf), leftover


_IGNORED = {"getitem", "executorch_call_delegate", "alloc", "view_copy", "_to_copy"}


def _non_delegated(gm: torch.fx.GraphModule) -> list[dict]:
    out = []
    for n in gm.graph.nodes:
        if n.op != "call_function":
            continue
        name = op_name(n).split(".")[-1] if "." in op_name(n) else op_name(n)
        if any(k in str(n.target) for k in _IGNORED) or name in _IGNORED:
            continue
        op = n.target.name() if hasattr(n.target, "name") and callable(n.target.name) else str(n.target)
        out.append({"layer": layer_of(n), "op": op.replace(".default", "")})
    return out


def unsupported_ops(model: torch.nn.Module, example: tuple[torch.Tensor, ...]) -> list[dict]:
    """Ops of ``model`` that XNNPACK would not run (``[{layer, op}]``), found by partitioning."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower
    ep = torch.export.export(capture(model, example), tuple(example), strict=False)
    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    return _non_delegated(edge.exported_program().graph_module)


class ExecuTorchRunner:
    """Runs a ``.pte`` program's ``forward`` with :class:`executorch.runtime.Runtime`."""

    def __init__(self, model: bytes):
        from executorch.runtime import Runtime
        model = bytes(model)
        if not (len(model) >= 8 and model[4:6] == b"ET" and model[6:8].isdigit()):
            # a garbage identifier makes the runtime's logger abort the whole process
            raise ExportError("not an ExecuTorch program (no 'ET..' file identifier)", hint="re-export the .pte")
        try:
            self._prog = Runtime.get().load_program(model)
            self._m = self._prog.load_method("forward")
        except Exception as e:
            raise ExportError(f"ExecuTorch could not load the program: {str(e).splitlines()[0]}",
                              hint="re-export the .pte") from e
        md = self._m.metadata

        def det(tm, name):
            dt = tm.dtype()
            code = dt if isinstance(dt, int) else int(getattr(dt, "value", dt))
            return TensorDetails(name, np.dtype(_ET_DTYPES.get(code, np.float32)),
                                 tuple(int(s) for s in tm.sizes()))
        self.input_details = [det(md.input_tensor_meta(0), "input")]
        self.output_details = [det(md.output_tensor_meta(0), "output")]
        # hot path, built once: one input tensor (and its numpy view) reused for every call, the
        # argument tuple, the bound execute (outputs come back as new tensors, not aliases of the
        # program's planned memory, so no copy is needed)
        d = self.input_details[0]
        self._t_in = torch.zeros(d.shape, dtype=torch.from_numpy(np.zeros(0, d.dtype)).dtype)
        self._n_in = self._t_in.numpy()
        self._args = (self._t_in,)
        self._execute = self._m.execute

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: raw input (shape and dtype of ``input_details[0]``) -> raw output."""
        x = np.ascontiguousarray(x, dtype=self.input_details[0].dtype)
        return self._execute([torch.from_numpy(x)])[0].numpy()

    def run_from(self, z: np.ndarray) -> np.ndarray:
        """Runner contract hot path: z cast into the reused input tensor."""
        if z.shape != self._n_in.shape:
            return self.run(z)
        np.copyto(self._n_in, z, casting="unsafe")
        return self._execute(self._args)[0].numpy()


def load_runner(path_or_bytes: str | Path | bytes) -> ExecuTorchRunner:
    return ExecuTorchRunner(read_model_bytes(path_or_bytes))
