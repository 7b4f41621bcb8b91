"""Runtime benchmark (issue 6): backend agreement, runtime overhead, 7-day gated stream, gate.

    python benchmarks/bench_runtime.py            # full run, writes benchmarks/results/runtime.json
    python benchmarks/bench_runtime.py --quick    # smaller figures, for a smoke test

Figures:
  agreement         the same held-out windows through .pte, .tflite (LiteRT), .onnx and TFLite
                    Micro via runtime.load(...).predict: fp32 max |diff| vs ONNX; int8 (all four
                    made from one PT2E calibration, quantize.ptq) max pairwise |diff| in steps of
                    the shared int8 output scale, and whether every manifest has the same qparams
  runtime_overhead  Model.predict vs a bare call for the same contract (float32 raw-unit window in,
                    float32 output out): the leanest hand-written sequence of the library's public
                    API calls (see BARE below; its source is saved in the results), batch 1, one
                    thread; bare and runtime calls interleaved (order alternating), per-round
                    medians, min over rounds; the bare is checked to give the runtime's outputs
  stream_7d_seconds 7 simulated days of 32 Hz ACC (edgefm.data.synth.iter_acc_trace, generated
                    hour by hour so memory stays flat) through Streamer + gate + int8 model; the
                    time is the runtime's own (generation excluded, reported separately)
  gate              synthetic (calibrated on the cohort's train+val subjects, held-out test
                    subjects) and daphnet (leave one subject out, pooled): skip and recall
Timings are taken on a shared 2-core machine (another process was training a model on it): the
load average is recorded beside them.
The student is the real default student (distill cnn1d_small + HR head, untrained weights:
timings and agreement do not depend on training) exported by edgefm.export; if that export
fails, a small conv model exported by tests/runtime/artifacts.py is used and the reason saved.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "tests" / "runtime"))

import runtime  # noqa: E402
from edgefm.manifest import atomic_write_json, read_artifact_manifest  # noqa: E402
from runtime.gate import GateConfig  # noqa: E402

FS, W, H = 32.0, 256, 64
SHARED = Path(os.environ.get("EDGEFM_SHARED_DATA", REPO.parent / "shared" / "data"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rss_mb() -> float:
    import psutil
    return psutil.Process().memory_info().rss / 2**20


# ---------------------------------------------------------------- data
def acc_windows(hours: float, seed: int) -> np.ndarray:
    """(N, 3, W) raw ACC (g) windows from a synthetic trace, fully observed ones only."""
    from edgefm.data.synth import iter_acc_trace
    out = []
    for rec in iter_acc_trace(hours / 24.0, seed):
        x = np.stack([rec.streams[c].data for c in ("acc_x", "acc_y", "acc_z")])
        v = np.stack([rec.streams[c].valid for c in ("acc_x", "acc_y", "acc_z")]).all(0)
        for s in range(0, x.shape[1] - W + 1, H):
            if v[s:s + W].all():
                out.append(x[:, s:s + W])
    return np.asarray(out, np.float32)


# ---------------------------------------------------------------- artifacts
def make_artifacts(out: Path, calib_raw: np.ndarray, heldout_raw: np.ndarray) -> tuple[dict, str]:
    mean = calib_raw.mean((0, 2))
    std = calib_raw.std((0, 2)) + 1e-6
    spec = {"preset": "wrist-acc", "fs_hz": FS, "window": W, "hop": H, "window_s": W / FS, "hop_s": H / FS,
            "channels": [{"name": c, "modality": "acc", "unit": "g", "fs_hz": FS} for c in ("acc_x", "acc_y", "acc_z")],
            "normalisation": {"mean": mean.tolist(), "std": std.tolist()}}
    norm = lambda x: ((x - mean[:, None]) / std[:, None]).astype(np.float32)  # noqa: E731
    try:
        from distill.deploy import deployable
        from distill.students.cnn1d import cnn1d_small
        from edgefm.export import ArtifactSpec, export
        torch.manual_seed(0)
        stu = cnn1d_small()
        # an untrained encoder's output hardly depends on its input, which would make every
        # agreement and SQNR figure trivial: fit encoder + head for a few steps to a motion
        # proxy (60 bpm + 200 x std of |a|), so outputs vary across windows like heart rate
        cal_n = torch.from_numpy(norm(calib_raw[:512]))
        target = torch.from_numpy(np.minimum(180.0, 60.0 + 200.0 * np.linalg.norm(calib_raw[:512], axis=1).std(1))).float()
        head = torch.nn.Linear(stu.config.embed_dim, 1)
        with torch.no_grad():
            head.bias.fill_(float(target.mean()))
        net = torch.nn.Sequential(stu, head).train()
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        g = torch.Generator().manual_seed(0)
        for step in range(80):
            idx = torch.randint(0, len(cal_n), (64,), generator=g)
            loss = torch.nn.functional.mse_loss(net(cal_n[idx])[:, 0], target[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            spread = float(net(cal_n[:128])[:, 0].std())
        log(f"  student fitted to the motion proxy: loss {loss.item():.1f}, output std {spread:.2f} bpm")
        model = deployable(stu, head)
        aspec = ArtifactSpec(source={"checkpoint": None, "config": {"student": "cnn1d_small", "weights": "80 steps on a motion proxy"}},
                             input_spec=spec, output_spec={"name": "hr", "unit": "bpm"})
        cal, hx = norm(calib_raw[:256]), norm(heldout_raw[:64])
        arts, failed = {}, {}
        # one calibration, one set of scales and zero points for every int8 artifact
        from quantize.ptq import QuantConfig, quantize_
        t = time.time()
        shared = quantize_(model, QuantConfig(backend="pte", calibration=cal))
        log(f"  int8 quantization (shared by all formats) in {time.time() - t:.1f} s, qparams {shared.qparams_sha256[:12]}")
        for int8 in (False, True):
            for fmt in ("pte", "tflite", "onnx") + (("tflm",) if int8 else ()):
                t = time.time()
                key = f"{fmt}_{'int8' if int8 else 'fp32'}"
                try:
                    r = export(model, fmt, out, cal, int8=int8, heldout=(hx, None), spec=aspec, name="student",
                               quantized=shared if (int8 or fmt == "tflm") else None)[0]
                except Exception as e:   # noqa: BLE001 - recorded in the results
                    failed[key] = f"{type(e).__name__}: {e}"
                    log(f"  {key} export failed: {failed[key][:200]}")
                    continue
                arts[key] = r.path
                log(f"  exported {r.path.name} in {time.time() - t:.1f} s")
        n_params = sum(p.numel() for p in model.parameters())
        src = f"edgefm.export of distill cnn1d_small deployable ({n_params} params, 80 steps on a motion proxy)"
        if not all(f"{f}_fp32" in arts for f in ("pte", "tflite", "onnx")):
            raise RuntimeError(f"fp32 exports failed: {failed}")
        if "tflm_fp32" not in arts:   # TFLite Micro also runs the float .tflite
            arts["tflm_fp32"] = arts["tflite_fp32"]
        if failed:
            src += f"; failed exports: {failed}"
        return arts, src
    except Exception as e:  # record why, then export the same student with the plain exporters
        log("edgefm.export failed, falling back:", repr(e))
        import artifacts as A
        A.MEAN, A.STD = mean.tolist(), std.tolist()
        model = locals().get("model") or A.TinyHR(32)
        p = A.export_all(out / "fallback", model=model)
        n_params = sum(p_.numel() for p_ in model.parameters())
        return ({"onnx_fp32": p["onnx"], "pte_fp32": p["pte"], "tflite_fp32": p["tflite"], "tflm_fp32": p["tflm"],
                 "onnx_int8": p["onnx_int8"]},
                f"distill cnn1d_small deployable ({n_params} params, 80 steps on a motion proxy) exported by "
                f"tests/runtime/artifacts.py (edgefm.export failed: {e!r})")


def load(path: Path, key: str) -> runtime.Model:
    return runtime.load(path, backend="tflm" if key.startswith("tflm") and path.suffix == ".tflite" else None)


# ---------------------------------------------------------------- figures
def _quant(path: Path) -> dict:
    return read_artifact_manifest(path, verify=False).get("quantization") or {}


def agreement(arts: dict, x: np.ndarray) -> dict:
    res = {}
    for kind in ("fp32", "int8"):
        ks = [k for k in arts if k.endswith(kind)]
        if not ks:
            continue
        models = {k: load(arts[k], k) for k in ks}          # each artifact loaded once
        ys = {k: m.predict(x) for k, m in models.items()}
        ref_k = "onnx_" + kind if "onnx_" + kind in ys else ks[0]
        ref = ys[ref_k]
        row = {"reference": ref_k, "windows": int(len(x)), "max_abs_diff_bpm": {}}
        for k, y in ys.items():
            row["max_abs_diff_bpm"][k] = float(np.abs(y - ref).max())
        if kind == "int8":
            q = {k: _quant(arts[k]) for k in ks}
            steps = {k: models[k].output_step for k in ks}
            row["output_step_bpm"] = steps                     # int8 output scale (manifest's for float-I/O artifacts)
            row["qparams_sha256"] = {k: q[k].get("qparams_sha256") for k in ks}
            row["shared_qparams"] = bool(len(set(row["qparams_sha256"].values())) == 1
                                         and None not in row["qparams_sha256"].values())
            first = steps[ks[0]]
            row["shared_output_step"] = bool(first > 0 and all(abs(v - first) <= 1e-9 * first for v in steps.values()))
            step = max(steps.values())
            diff_bpm = {(a, b): np.abs(ys[a] - ys[b]).max() for i, a in enumerate(ks) for b in ks[i + 1:]}
            pairs = {f"{a}|{b}": float(d / step) if step > 0 else float("inf") for (a, b), d in diff_bpm.items()}
            row["output_step"] = step
            row["pairwise_max_diff_steps"] = pairs
            row["max_pairwise_diff_steps"] = max(pairs.values()) if pairs else 0.0
            row["max_pairwise_diff_bpm"] = float(max(diff_bpm.values(), default=0.0))
            # exact ties at one step come out as 1 +- float rounding of (a - b) / step
            row["within_one_step"] = bool(row["shared_output_step"] and row["max_pairwise_diff_steps"] <= 1.0 + 1e-3)
            row["definition"] = ("every pair of int8 artifacts, max over windows of |y_a - y_b| (bpm, through "
                                 "runtime.load(...).predict) divided by the shared int8 output scale (output_step); "
                                 "within_one_step: all artifacts report that one scale and every pair differs by "
                                 "at most 1 step (+1e-3 for the float32 rounding of dequantized outputs)")
            if "tflite_int8" in ys and "tflm_int8" in ys and step > 0:
                d = diff_bpm.get(("tflite_int8", "tflm_int8"), diff_bpm.get(("tflm_int8", "tflite_int8")))
                row["litert_vs_tflm_steps"] = float(d / step)
        else:
            row["agree_1e-3"] = bool(max(row["max_abs_diff_bpm"].values()) <= 1e-3 * max(1.0, np.abs(ref).max()))
        res[kind] = row
    return res


# ---------------------------------------------------------------- bare calls
# The runtime's overhead is measured against these: for each library, the leanest hand-written
# code a user would write for the runtime's contract (float32 raw-unit window (1, C, T) in,
# float32 output out), with every constant precomputed once (a, b: the manifest's normalisation
# folded with the input scale and zero point, as full (1, C, T) arrays; the output scale and zero
# point) and the library's public inference API, its own session/interpreter from the artifact's
# bytes with the runtime's settings (one thread; LiteRT's default XNNPACK delegate). For int8
# inputs it quantizes (round, clip, cast) and for int8 outputs it dequantizes; it skips what the
# runtime adds (shape/dtype check, NaN/inf check, reused buffers, batch handling).
BARE = {
    "litert": """
def bare(x):
    if q_in:
        z = np.minimum(np.maximum(np.rint(x * a + b), lo), hi).astype(in_dtype)
    else:
        z = x * a + b
    it.set_tensor(i_in, z)
    it.invoke()
    y = it.get_tensor(i_out)
    return (y.astype(np.float32) - zp_out) * s_out if q_out else y
""",
    "tflm": """
def bare(x):
    if q_in:
        z = np.minimum(np.maximum(np.rint(x * a + b), lo), hi).astype(in_dtype)
    else:
        z = x * a + b
    it.set_input(z, 0)
    it.invoke()
    y = it.get_output(0)
    return (y.astype(np.float32) - zp_out) * s_out if q_out else y
""",
    "executorch": """
def bare(x):
    return method.execute([torch.from_numpy(x * a + b)])[0].numpy()
""",
    "onnx": """
def bare(x):
    return sess.run([out_name], {in_name: x * a + b})[0]
""",
}


def bare_call(m: runtime.Model):
    """(bare(x), source) for the artifact behind ``m``, made from the library directly."""
    data = m.path.read_bytes()
    if m.path.suffix in (".cc", ".c", ".h"):
        data = runtime.model.c_array_bytes(data, m.path)
    C, T = m._ct
    i, o = m.in_details, m.out_details
    q_in, q_out = i.dtype.kind in "iu", o.dtype.kind in "iu"
    s_in = i.scale if q_in else 1.0
    a = np.ascontiguousarray(np.broadcast_to((1.0 / (m.spec.std * s_in)).astype(np.float32)[:, None], (1, C, T)))
    b = np.ascontiguousarray(np.broadcast_to((-m.spec.mean / (m.spec.std * s_in)
                                              + (i.zero_point if q_in else 0.0)).astype(np.float32)[:, None], (1, C, T)))
    env = {"np": np, "a": a, "b": b, "q_in": q_in, "q_out": q_out, "in_dtype": i.dtype,
           "zp_out": np.float32(o.zero_point), "s_out": np.float32(o.scale)}
    if q_in:
        info = np.iinfo(i.dtype)
        env["lo"], env["hi"] = np.full((1, C, T), info.min, np.float32), np.full((1, C, T), info.max, np.float32)
    if m.backend == "litert":
        from ai_edge_litert.interpreter import Interpreter
        it = Interpreter(model_content=data, num_threads=1)
        it.allocate_tensors()
        env.update(it=it, i_in=it.get_input_details()[0]["index"], i_out=it.get_output_details()[0]["index"])
    elif m.backend == "tflm":
        from tflite_micro.python.tflite_micro import runtime as tflm_rt
        env["it"] = tflm_rt.Interpreter.from_bytes(data, arena_size=int(m.manifest.get("arena_bytes") or 256 * 1024))
    elif m.backend == "executorch":
        from executorch.runtime import Runtime
        program = Runtime.get().load_program(data)        # kept alive beside its method
        env.update(torch=torch, program=program, method=program.load_method("forward"))
    else:
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        env.update(sess=sess, in_name=sess.get_inputs()[0].name, out_name=sess.get_outputs()[0].name)
    src = BARE[m.backend]
    exec(src, env)   # noqa: S102 - our own source text, kept verbatim in the results
    return env["bare"], src.strip()


def overhead(arts: dict, x: np.ndarray, n: int, rounds: int = 5) -> dict:
    """Per artifact: bare vs Model.predict on (1, C, T) windows, interleaved with the order
    alternating, ``rounds`` rounds of ``n // rounds`` pairs (TFLite Micro, ~1 ms a call: n / 8);
    medians per round, min over rounds."""
    res = {}
    xs = [np.ascontiguousarray(x[i % len(x)][None]) for i in range(64)]
    clock = time.perf_counter
    for k, p in arts.items():
        m = load(p, k)
        bare, _ = bare_call(m)
        pred = m.predict
        same = all(np.allclose(np.asarray(bare(xi)).reshape(1, -1), pred(xi), rtol=0, atol=1e-4) for xi in xs[:16])
        slow = m.backend == "tflm"
        per = max(20, (n // 8 if slow else n) // rounds)
        for i in range(10 if slow else 100):      # warm-up
            bare(xs[i % 64])
            pred(xs[i % 64])
        med_b, med_r = [], []
        gc.collect()
        gc.disable()
        try:
            for _ in range(rounds):
                tb, tr = [], []
                for i in range(per):
                    xi = xs[i % 64]
                    if i & 1:
                        t0 = clock(); pred(xi); t1 = clock(); bare(xi); t2 = clock()      # noqa: E702
                        tr.append(t1 - t0); tb.append(t2 - t1)                           # noqa: E702
                    else:
                        t0 = clock(); bare(xi); t1 = clock(); pred(xi); t2 = clock()      # noqa: E702
                        tb.append(t1 - t0); tr.append(t2 - t1)                           # noqa: E702
                med_b.append(float(np.median(tb)))
                med_r.append(float(np.median(tr)))
        finally:
            gc.enable()
        bare_s, rt_s = min(med_b), min(med_r)
        per_round = [r_ / b_ - 1.0 for b_, r_ in zip(med_b, med_r)]
        res[k] = {"bare_us": bare_s * 1e6, "runtime_us": rt_s * 1e6, "overhead": rt_s / bare_s - 1.0,
                  "overhead_median_of_rounds": float(np.median(per_round)),
                  "overhead_per_round": [round(v, 4) for v in per_round],
                  "pairs": per * rounds, "bare_matches_runtime": bool(same), "backend": m.backend}
        log(f"  {k:12s} bare {bare_s * 1e6:8.1f} us  runtime {rt_s * 1e6:8.1f} us  overhead {rt_s / bare_s - 1:+.1%}"
            f"  (rounds {', '.join(f'{v:+.1%}' for v in per_round)})")
    return res


def stream_days(model_path: Path, key: str, gate: GateConfig, days: float, seed: int = 7) -> dict:
    from edgefm.data.synth import iter_acc_trace
    m = load(model_path, key)
    s = None
    t_rt = t_gen = 0.0
    n_gen = 0
    counts = np.zeros(3, np.int64)
    rss = []
    gc.collect()
    rss0 = rss_mb()
    a = time.perf_counter()
    it = iter_acc_trace(days, seed)
    while True:
        try:
            rec = next(it)
        except StopIteration:
            break
        b = time.perf_counter()
        t_gen += b - a
        x = np.stack([rec.streams[c].data for c in ("acc_x", "acc_y", "acc_z")], 1)
        v = np.stack([rec.streams[c].valid for c in ("acc_x", "acc_y", "acc_z")], 1)
        n_gen += len(x)
        if s is None:
            s = runtime.Streamer(m, gate=gate, fs_hz=FS, start_time=rec.start_time)
        out = s.push(x, valid=v)
        counts += np.bincount(out.status, minlength=3)
        a = time.perf_counter()
        t_rt += a - b
        del x, v, out, rec
        rss.append(rss_mb())
    s.flush()
    hours = len(rss)
    return {"days": days, "backend": m.backend, "artifact": model_path.name, "seconds": t_rt,
            "generation_seconds": t_gen, "samples_generated": int(n_gen), "samples_in": int(s.samples_in),
            "samples_consumed": int(s.samples_consumed), "samples_gap": int(s.samples_gap),
            "lossless": bool(s.samples_in == n_gen == s.samples_consumed),
            "windows": int(s.windows), "inferred": int(counts[0]), "gated": int(counts[1]), "invalid": int(counts[2]),
            "skip": float(counts[1] / max(1, counts[0] + counts[1])),
            "rss_mb_start": rss0, "rss_mb_after_day1": rss[min(23, hours - 1)], "rss_mb_end": rss[-1],
            "rss_mb_peak_sampled": max(rss), "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "memory_flat": bool(rss[-1] - rss[min(23, hours - 1)] < 50.0)}


def gate_synthetic(tmp: Path, subjects: int, days: float) -> dict:
    from edgefm.data.synth import SynthConfig, synthesize
    from runtime.calibrate import calibrate
    t = time.time()
    coh = synthesize(SynthConfig(subjects=subjects, days=days, seed=3, raw_minutes=0.0, freezing_fraction=0.3),
                     tmp / "cohort", overwrite=True)
    log(f"  cohort {subjects} x {days} d in {time.time() - t:.0f} s")
    r = calibrate(coh, 0.95, cv="split", out=tmp / "gate_synthetic.json")
    return r


def gate_daphnet(tmp: Path) -> dict | None:
    src = SHARED / "daphnet"
    if not src.is_dir():
        return None
    from edgefm.data.importers import import_dataset
    from runtime.calibrate import calibrate
    ds = import_dataset("daphnet", src, tmp / "daphnet", overwrite=True)
    return calibrate(ds, 0.95, cv="loso", out=tmp / "gate_daphnet.json")


def _gate_row(r: dict) -> dict:
    h = r["held_out"] or r["calibration"]
    return {"skip": h["skip"], "recall": h["recall"], "delay_s_median": h["delay_s_median"],
            "delay_s_p90": h["delay_s_p90"], "event_windows": h["event_windows"], "windows": h["windows"],
            "episodes_missed": h["episodes_missed"], "episodes": h["episodes"], "held_out": h.get("method", "none"),
            "calibration": {"skip": r["calibration"]["skip"], "recall": r["calibration"]["recall"]},
            "gate": r["gate"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "runtime.json")
    args = ap.parse_args()
    q = args.quick
    cmd = "python benchmarks/bench_runtime.py" + (" --quick" if q else "")
    res: dict = {"command": cmd, "provisional": "timings on a shared, contended 2-core CPU (another process "
                                                 "training); rerun on a quiet machine", "threads": 1}
    t0 = time.time()
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        log("gate: synthetic cohort ...")
        gs = gate_synthetic(tmp, 4 if q else 10, 0.5 if q else 1.0)
        log("gate: daphnet ...")
        gd = gate_daphnet(tmp)
        res["gate"] = {"synthetic": _gate_row(gs), "daphnet": _gate_row(gd) if gd else None,
                       "cost": gs["cost"]}
        res["gate"]["goals"] = {"synthetic": bool(gs["held_out"] and gs["held_out"]["skip"] >= 0.60
                                                  and gs["held_out"]["recall"] >= 0.95),
                                "daphnet": bool(gd and gd["held_out"]["recall"] >= 0.95)}
        log(json.dumps(res["gate"], indent=1, default=str))

        log("artifacts ...")
        # 16 h from 06:00 (sleep, then the day's activities), sampled: varied windows
        rng = np.random.default_rng(0)
        calib = acc_windows(16.0, seed=11)
        calib = calib[rng.choice(len(calib), size=min(len(calib), 1024), replace=False)]
        held = acc_windows(16.0, seed=12)
        held = held[rng.choice(len(held), size=min(len(held), 64), replace=False)]
        arts, src = make_artifacts(tmp / "artifacts", calib, held)
        res["artifacts"] = {"source": src, "files": {k: p.name for k, p in arts.items()},
                            "bytes": {k: p.stat().st_size for k, p in arts.items()}}
        log("agreement ...")
        res["agreement"] = agreement(arts, held)
        log(json.dumps(res["agreement"], indent=1))
        log("overhead ...")
        load0 = os.getloadavg()
        ov = overhead(arts, held, 500 if q else 4000)
        res["runtime_overhead"] = {
            "max": max(v["overhead"] for v in ov.values()), "goal": 0.10,
            "met": bool(max(v["overhead"] for v in ov.values()) <= 0.10),
            # the same ratio taken round by round (bare and runtime medians of one round), median
            # over rounds: a cross-check that the min-of-medians ratio is not a lucky pairing
            "max_overhead_median_of_rounds": max(v["overhead_median_of_rounds"] for v in ov.values()),
            "definition": "overhead = runtime_us / bare_us - 1 at batch 1 (one (1, 3, 256) window), one thread. "
                          "runtime: runtime.load(path).predict(x), x float32 raw units (g); it checks shape/dtype, "
                          "normalises, checks NaN/inf, quantizes (int8 inputs), runs, dequantizes (int8 outputs). "
                          "bare: the leanest hand-written code for the same contract with the library's public API "
                          "and constants precomputed once (source per backend in 'bare_source'); it normalises and, "
                          "for int8 inputs/outputs, quantizes with the stored scale/zero point and dequantizes the "
                          "output, and does no checking. Calls interleaved (order alternating), medians per round, "
                          "min over rounds; bare_matches_runtime: the bare gives the runtime's outputs.",
            "bare_source": BARE,
            "contention": {"cpus": os.cpu_count(), "loadavg_before": [round(v, 2) for v in load0],
                           "loadavg_after": [round(v, 2) for v in os.getloadavg()],
                           "note": "shared 2-core machine: another engineer was training a model on the same cores "
                                   "during this session (see the load average); one benchmark thread"},
            "per_backend": ov}
        log("stream ...")
        key = "tflite_int8" if "tflite_int8" in arts else "onnx_fp32"
        gate = GateConfig.from_dict(gs["gate"])
        st = stream_days(arts[key], key, gate, 0.25 if q else 7.0)
        res["stream_7d_seconds"] = st["seconds"]
        res["stream"] = st
        log(json.dumps(st, indent=1))
    res["total_seconds"] = time.time() - t0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out, res)
    print(json.dumps({k: res[k] for k in ("runtime_overhead", "stream_7d_seconds", "gate", "command")},
                     indent=1, default=str)[:4000])


if __name__ == "__main__":
    main()
