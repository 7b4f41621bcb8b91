"""Measure one variant in a fresh process: ``python -m edgefm.profile._worker '<json spec>'``.

A fresh process per variant makes peak RSS mean something: ``ru_maxrss`` is read once after
the backend's imports (baseline) and once after loading and running the model (peak). Only the
variant's own backend is imported. Every backend runs on one thread, so the ratios compare
kernels, not thread pools. Prints one JSON object on stdout.

Spec: {"kind": "eager"|"pte"|"tflite"|"onnx", "path": str, "runs": int, "warmup": int,
       "per_layer": bool, "input_shape": [..] | null, "tmp": dir,
       "unverified": bool (eager: accept a checkpoint without a manifest)}
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _rss_mb() -> float:
    """Peak resident set size of this process image: ``VmHWM`` from /proc/self/status.

    Not ``ru_maxrss``: Linux carries it across fork+exec, so a child of a parent that had
    imported torch would report the parent's size as its own peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_now_mb() -> float:
    """Current resident set size (from /proc/self/statm), the baseline after imports."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return _rss_mb()


MAX_SECONDS = float(os.environ.get("EDGEFM_PROFILE_MAX_S", "8"))


def _time(fn, runs: int, warmup: int) -> list[float]:
    """``warmup`` untimed calls, then ``runs`` timed ones; a slow model (e.g. an LSM-Base teacher)
    gets fewer (at least 10 timed) so that one variant spends about MAX_SECONDS timing."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    for _ in range(max(0, min(warmup - 1, int(MAX_SECONDS / 4 / max(first, 1e-9))))):
        fn()
    out = []
    budget_end = time.perf_counter() + MAX_SECONDS
    for k in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
        if k >= 9 and time.perf_counter() > budget_end:
            break
    return out


def _rand(shape, dtype_name: str):
    import numpy as np
    rng = np.random.default_rng(0)
    if "int8" in dtype_name:
        return rng.integers(-128, 127, size=shape, dtype=np.int8) if "uint" not in dtype_name \
            else rng.integers(0, 255, size=shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(np.float32)


def run_onnx(spec):
    import onnxruntime as ort
    base = _rss_now_mb()
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(spec["path"], so, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = spec.get("input_shape") or [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    x = _rand(shape, inp.type.replace("tensor(", "").replace(")", ""))
    name = inp.name
    times = _time(lambda: sess.run(None, {name: x}), spec["runs"], spec["warmup"])
    res = {"times_ms": times, "input_shape": list(shape), "input_dtype": str(x.dtype),
           "rss_baseline_mb": base, "rss_peak_mb": _rss_mb()}
    if spec.get("per_layer"):
        so2 = ort.SessionOptions()
        so2.intra_op_num_threads = 1
        so2.enable_profiling = True
        so2.profile_file_prefix = os.path.join(spec["tmp"], "ort")
        s2 = ort.InferenceSession(spec["path"], so2, providers=["CPUExecutionProvider"])
        for _ in range(max(5, spec["warmup"])):
            s2.run(None, {name: x})
        prof = s2.end_profiling()
        agg: dict[str, list] = {}
        with open(prof) as f:
            for ev in json.load(f):
                if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
                    key = ev["name"][: -len("_kernel_time")]
                    op = ev.get("args", {}).get("op_name", "")
                    agg.setdefault(key, [op, []])[1].append(ev["dur"] / 1e3)
        res["per_layer"] = sorted(({"name": k, "op": v[0], "ms": sorted(v[1])[len(v[1]) // 2]}
                                   for k, v in agg.items()), key=lambda r: -r["ms"])
        res["per_layer_source"] = "ONNX Runtime profiling (enable_profiling), median kernel time"
    return res


def run_tflite(spec):
    from ai_edge_litert.interpreter import Interpreter
    base = _rss_now_mb()
    it = Interpreter(model_path=spec["path"], num_threads=1)
    inp = it.get_input_details()[0]
    shape = spec.get("input_shape") or [int(s) for s in inp["shape"]]
    if spec.get("input_shape"):
        it.resize_tensor_input(inp["index"], shape)
    it.allocate_tensors()
    x = _rand(shape, str(inp["dtype"]))
    idx = inp["index"]

    def fn():
        it.set_tensor(idx, x)
        it.invoke()
    times = _time(fn, spec["runs"], spec["warmup"])
    res = {"times_ms": times, "input_shape": list(shape), "input_dtype": str(x.dtype),
           "rss_baseline_mb": base, "rss_peak_mb": _rss_mb()}
    if spec.get("per_layer"):
        res["per_layer_source"] = ("not available: ai-edge-litert's Python Interpreter exposes no op "
                                   "profiler (LiteRT's benchmark_model binary does; it is not installed)")
    return res


def run_pte(spec):
    import torch
    torch.set_num_threads(1)
    from executorch.runtime import Runtime
    base = _rss_now_mb()
    rt = Runtime.get()
    etdump = bool(spec.get("per_layer")) and bool(spec.get("etdump"))
    prog = rt.load_program(spec["path"], enable_etdump=etdump, debug_buffer_size=0)
    method = prog.load_method("forward")
    meta = method.metadata
    tm = meta.input_tensor_meta(0)
    shape = spec.get("input_shape") or list(tm.sizes())
    dt = str(tm.dtype())
    x = torch.from_numpy(_rand(shape, "int8" if "char" in dt.lower() or "int8" in dt.lower() else "float32"))
    times = _time(lambda: method.execute([x]), spec["runs"], spec["warmup"])
    res = {"times_ms": times, "input_shape": list(shape), "input_dtype": str(x.dtype),
           "rss_baseline_mb": base, "rss_peak_mb": _rss_mb()}
    if spec.get("per_layer") and not etdump:
        res["per_layer_source"] = ("skipped: ETDump off (pass --etdump; an XNNPACK-delegated program "
                                   "reports one delegate call per run, not per op)")
    elif etdump:
        try:
            et = os.path.join(spec["tmp"], "etdump.etdp")
            prog.write_etdump_result_to_file(et, os.path.join(spec["tmp"], "debug.bin"))
            from executorch.devtools import Inspector
            insp = Inspector(etdump_path=et)
            rows = []
            for block in insp.event_blocks:
                for ev in block.events:
                    if ev.perf_data is not None:
                        rows.append({"name": ev.name, "op": ev.name, "ms": float(ev.perf_data.p50)})
            res["per_layer"] = sorted(rows, key=lambda r: -r["ms"])[:50]
            res["per_layer_source"] = "ExecuTorch ETDump via devtools Inspector (p50 per event)"
        except Exception as e:   # the devtools stack changes often; never fail the timing for it
            res["per_layer_source"] = f"not available: {type(e).__name__}: {str(e)[:160]}"
    return res


def _load_eager(path: str, unverified: bool = False):
    """A torch model from an edgefm checkpoint: a teacher (called through ``embed``), a student
    (its deployable graph) or a compressed model. Returns (module, call, kind).

    Read through the one checkpoint loader: ``weights_only`` (nothing in the file runs code) and
    the manifest's sha256 checked (a file without one only with ``unverified``). A ``torch.export``
    program (.pt2) is refused: ``torch.export.load`` unpickles arbitrary objects."""
    from edgefm.errors import ManifestError
    if path.endswith(".pt2"):
        raise ManifestError("torch.export programs (.pt2) are not loaded: torch.export.load unpickles "
                            "arbitrary objects, which can run code", path=path,
                            hint="profile the student checkpoint (.pt) or an exported .pte/.tflite/.onnx")
    from distill import deploy
    from edgefm.export import io as model_io
    from edgefm.train import checkpoint as teacher_ck
    ck = teacher_ck.read_torch_checkpoint(
        path, {teacher_ck.FORMAT: teacher_ck.VERSION, deploy.FORMAT: deploy.VERSION,
               model_io.FORMAT: model_io.VERSION}, "teacher, student or model", unverified=unverified,
        hint_missing="pass a checkpoint written by edgefm", hint_corrupt="the file is corrupted")
    if ck["format"] == teacher_ck.FORMAT:
        m = teacher_ck.teacher_from_checkpoint(ck)
        return m, ("embed" if hasattr(m, "embed") else "forward"), "load_teacher"
    return model_io.model_from_checkpoint(ck).model, "forward", ("load_student" if ck["format"] == deploy.FORMAT
                                                                  else "load_model")


def run_eager(spec):
    import torch
    torch.set_num_threads(1)
    base = _rss_now_mb()
    model, call, how = _load_eager(spec["path"], unverified=bool(spec.get("unverified")))
    model.eval()
    shape = spec.get("input_shape")
    if not shape:
        raise RuntimeError("eager variant needs an input shape (from its manifest's input_spec)")
    x = torch.from_numpy(_rand(shape, "float32"))
    if call == "embed":
        m = torch.ones(shape, dtype=torch.bool)
        fn = lambda: model.embed(x, m)  # noqa: E731
    else:
        fn = lambda: model(x)  # noqa: E731
    with torch.inference_mode():
        times = _time(fn, spec["runs"], spec["warmup"])
        macs = _count_macs(model, fn)
    params = sum(p.numel() for p in model.parameters())
    return {"times_ms": times, "input_shape": list(shape), "input_dtype": "float32", "call": call,
            "loaded_with": how, "params": int(params), "macs": macs, "rss_baseline_mb": base,
            "rss_peak_mb": _rss_mb()}


def _count_macs(model, fn) -> int:
    """MACs of one call: Conv/Linear modules by forward hooks, plus the attention matmuls
    (q@k^T and attn@v) of modules exposing ``heads`` and a (B, N, D) input."""
    import torch
    from torch import nn
    total = [0]

    def hook(mod, inp, out):
        o = out[0] if isinstance(out, (tuple, list)) else out
        if not isinstance(o, torch.Tensor):
            return
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            import math
            total[0] += o[0].numel() * (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
        elif isinstance(mod, nn.Linear):
            total[0] += (o.numel() // o.shape[0]) * mod.in_features
        elif hasattr(mod, "heads") and isinstance(inp[0], torch.Tensor) and inp[0].dim() == 3:
            n, d = inp[0].shape[1], inp[0].shape[2]
            total[0] += 2 * n * n * d
    hs = [m.register_forward_hook(hook) for m in model.modules()
          if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) or hasattr(m, "heads")]
    try:
        fn()
    finally:
        for h in hs:
            h.remove()
    return int(total[0])


RUNNERS = {"onnx": run_onnx, "tflite": run_tflite, "pte": run_pte, "eager": run_eager}


def main() -> None:
    spec = json.loads(sys.argv[1])
    try:
        res = RUNNERS[spec["kind"]](spec)
        res["ok"] = True
    except Exception as e:   # reported as a failed row by the parent, never a crash
        res = {"ok": False, "error": f"{type(e).__name__}: {str(e)[:400]}"}
    sys.stdout.write("\n@@EDGEFM_RESULT@@" + json.dumps(res) + "\n")


if __name__ == "__main__":
    main()
