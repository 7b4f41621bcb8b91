"""Issue 7 benchmark: `edgefm profile` over a full artifact set, and battery projection.

    python benchmarks/bench_profile.py                 # build artifacts, profile them, simulate
    python benchmarks/bench_profile.py --run-dir RUN   # profile an existing pipeline run instead

Builds (unless --run-dir): the LSM teacher checkpoint at --teacher-size on its own wrist-raw
input (PPG + 3-axis ACC, 4 x 256 at 32 Hz), the default distilled-student architecture
(`distill.students.build_student()`) + HR head as a student checkpoint, and its exports through
`edgefm.export` (ExecuTorch .pte fp32/q8, LiteRT .tflite fp32/int8, ONNX fp32/QDQ, TFLite
Micro C array with its measured arena). The teacher's weights are untrained (latency and
memory do not depend on weight values). The student is fitted quickly, not distilled: 200 Adam
steps of supervised HR regression on synthetic ACC windows, so that int8 calibration and export
verification see realistic activations and weights. Then runs the real CLI,
`edgefm profile run DIR --device nrf52840 --trace TRACES --out DIR/profile --json`, timed
end to end, on synthetic-cohort ACC day traces (`edgefm.data.synth.synth_acc_trace`).
Figures go to benchmarks/results/profile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]
CHANNELS_ACC = ["acc_x", "acc_y", "acc_z"]


def build_teacher(out: Path, size: str) -> Path:
    from edgefm.data.windows import get_preset
    from edgefm.models.lsm_mae import build_teacher as build
    from edgefm.train.checkpoint import save_checkpoint
    p = get_preset("wrist-raw")
    torch.manual_seed(0)
    m = build(size, preset="wrist-raw")
    C = len(p.channels)
    spec = {"preset": p.name, "channels": [c.to_dict() for c in p.channels], "fs_hz": p.fs_hz,
            "window": p.window, "hop": p.hop, "normalisation": {"mean": [0.0] * C, "std": [1.0] * C}}
    return save_checkpoint(out / f"teacher_{size}.pt", {
        "model_config": m.cfg.to_dict(), "size": size, "model": m.state_dict(), "step": 0, "total_steps": 0,
        "input_spec": spec, "dataset": {"path": "untrained (benchmark)", "manifest_sha256": None}})


def acc_windows(days: float = 0.1, seed: int = 7):
    """Normalised wrist-raw ACC windows (N, 3, 256) and HR (N,) bpm from a synthetic trace."""
    from edgefm.data.synth import synth_acc_trace
    rec = synth_acc_trace(days, seed=seed)
    acc = np.stack([np.asarray(rec.streams[c].data) for c in CHANNELS_ACC])
    hr = np.asarray(rec.labels["hr"].values, dtype=np.float64)
    fs, win, hop = 32, 256, 64
    starts = np.arange(0, acc.shape[1] - win + 1, hop)
    x = np.stack([acc[:, s:s + win] for s in starts]).astype(np.float32)
    y = np.array([hr[min(int((s + win) / fs) - 1, len(hr) - 1)] for s in starts])
    ok = np.isfinite(x).all((1, 2)) & np.isfinite(y)
    x, y = x[ok], y[ok]
    mean, std = x.mean((0, 2)), x.std((0, 2)) + 1e-6
    return (x - mean[None, :, None]) / std[None, :, None], y, mean, std


def build_student_and_exports(out: Path, calib_n: int = 128, steps: int = 200) -> dict:
    from distill.deploy import LinearHead, deployable, save_student
    from distill.students import build_student
    from edgefm.export import ArtifactSpec, export
    from edgefm.errors import VerificationError
    from edgefm.manifest import sha256_file
    torch.manual_seed(0)
    st = build_student()
    x, y, mean, std = acc_windows()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    fit, calib_i, held = idx[: len(idx) // 2], idx[:calib_n], idx[len(idx) // 2:][:256]
    head = LinearHead(st.embed_dim, 1)
    ym, ys = float(y[fit].mean()), float(y[fit].std() + 1e-6)
    with torch.no_grad():
        head.bias.fill_(0.0)
    net = torch.nn.Sequential(st, head)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x[fit]), torch.from_numpy(((y[fit] - ym) / ys).astype(np.float32))
    g = torch.Generator().manual_seed(0)
    net.train()
    for step in range(steps):                    # a quick supervised fit (HR, standardised)
        b = torch.randint(0, len(xt), (64,), generator=g)
        loss = torch.nn.functional.mse_loss(net(xt[b]).squeeze(1), yt[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    st.eval()
    with torch.no_grad():                        # fold the label standardisation into the head
        head.weight.mul_(ys)
        head.bias.mul_(ys).add_(ym)
    head.eval()
    spec_in = {"preset": "wrist-raw", "channels": CHANNELS_ACC, "fs_hz": 32.0, "window": 256, "hop": 64,
               "normalisation": {"mean": mean.tolist(), "std": std.tolist()}}
    ck = save_student(out / "student.pt", st, head, input_spec=spec_in)
    model = deployable(st, head)
    calib = x[calib_i]
    heldout = (x[held], y[held].astype(np.float32))
    spec = ArtifactSpec(source={"checkpoint": str(ck), "sha256": sha256_file(ck)},
                        input_spec=spec_in, output_spec={"name": "hr", "unit": "bpm"})
    exp = out / "export"
    times = {}
    for fmt in ("onnx", "tflite", "pte"):
        for int8 in (False, True):
            t0 = time.perf_counter()
            export(model, fmt, exp, calib, int8=int8, spec=spec, heldout=heldout)
            times[f"{fmt}_{'int8' if int8 else 'fp32'}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    try:
        export(model, "tflm", exp / "tflm", calib, int8=True, spec=spec, heldout=heldout)
    except VerificationError as e:
        # The TFLite Micro export refused its own output (issue 5's check). Keep going and
        # measure the arena of the int8 .tflite in the tflite-micro interpreter directly.
        from edgefm.adapters import tflm
        data = (exp / "student_int8.tflite").read_bytes()
        from edgefm.adapters.litert import LiteRTRunner
        i = LiteRTRunner(data).input_details[0]
        x0 = np.clip(np.round(calib[:1] / i.scale) + i.zero_point, -128, 127).astype(np.int8)
        times["tflm_error"] = e.one_line()
        times["tflm_arena_bytes_direct"] = int(tflm.measure_arena(data, x0))
    times["tflm"] = time.perf_counter() - t0
    return times


def write_traces(out: Path, subjects: int, days: float) -> Path:
    from edgefm.data.store import write_recordings
    from edgefm.data.synth import synth_acc_trace
    recs = []
    for s in range(subjects):
        r = synth_acc_trace(days, seed=s)
        r.subject = r.id = f"trace-seed{s}"     # synth_acc_trace names every trace s000
        recs.append(r)
    return write_recordings(recs, out, provenance={"generator": {"fn": "synth_acc_trace", "days": days,
                                                                 "seeds": list(range(subjects))}},
                            overwrite=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=Path("/tmp/edgefm-bench-profile"))
    ap.add_argument("--teacher-size", default="base")
    ap.add_argument("--device", default="nrf52840")
    ap.add_argument("--subjects", type=int, default=2)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--runs", type=int, default=100)
    args = ap.parse_args()
    command = "python benchmarks/bench_profile.py" + "".join(f" {a}" for a in sys.argv[1:])
    build = {}
    if args.run_dir is None:
        run = args.work / "run"
        run.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        if not (run / f"teacher_{args.teacher_size}.pt").exists():
            build_teacher(run, args.teacher_size)
            build["teacher_seconds"] = time.perf_counter() - t0
        else:
            build["teacher"] = f"reused {run / f'teacher_{args.teacher_size}.pt'}"
        if not (run / "export" / "student_xnnpack_q8.pte").exists():
            build["export_seconds"] = build_student_and_exports(run)
        else:
            build["exports"] = f"reused {run / 'export'} (delete it to rebuild)"
    else:
        run = args.run_dir
    traces = args.work / "traces"
    if not (traces / "manifest.json").exists():
        write_traces(traces, args.subjects, args.days)

    t0 = time.perf_counter()
    # the `edgefm profile` command group itself (its Typer app), so that another group's
    # import error cannot break this benchmark; same code path as `edgefm profile run ...`
    cmd = [sys.executable, "-c", "from edgefm.cli.profile import app; app(prog_name='edgefm profile')",
           "run", str(run), "--device", args.device,
           "--trace", str(traces), "--runs", str(args.runs), "--out", str(args.work / "profile"), "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    profile_seconds = time.perf_counter() - t0
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-3000:])
        raise SystemExit(f"edgefm profile failed with exit code {p.returncode}")
    res = json.loads(p.stdout)
    rows = {r["name"]: r for r in res["variants"]}
    sim = res["target"]
    days = sim["battery_days"]
    r = res["ratios"]
    out = {
        "command": command,
        "profile_command": " ".join(["edgefm", "profile"] + cmd[3:]),
        "profile_seconds": profile_seconds,
        "ratio_pte_int8_vs_teacher_eager": r.get("ratio_pte_int8_vs_teacher_eager"),
        "ratio_pte_int8_vs_student_eager": r.get("ratio_pte_int8_vs_student_eager"),
        "ratios": {k: v for k, v in r.items() if k.startswith("ratio_")},
        "battery_days": days,
        "battery_ratio_gated_vs_continuous_ppg": days["gated-ppg-off"] / days["continuous-ppg"],
        "ceiling_days": sim["ceiling_days"],
        "ceiling_fraction": {p_["policy"]["name"]: p_["ceiling_fraction"] for p_ in sim["policies"]},
        "skipped_fraction": {p_["policy"]["name"]: p_["skipped_fraction"] for p_ in sim["policies"]},
        "target": {k: sim[k] for k in ("device", "inference_ms", "inference_energy_uj", "worst_case_latency_ms",
                                       "deadline_ms", "ram", "flash", "duration_days")},
        "target_model": res["target_model"],
        "teacher_size": args.teacher_size if args.run_dir is None else "from run dir",
        "latency_ms": {n: {k: v.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "rss_peak_mb", "rss_model_mb",
                                                 "bytes", "params", "macs", "error")} for n, v in rows.items()},
        "build": build,
        "note": "timings provisional: 2 shared CPU cores under contention; 1 thread per backend",
    }
    from edgefm.manifest import atomic_write_json
    atomic_write_json(REPO / "benchmarks" / "results" / "profile.json", out)
    print(json.dumps({k: out[k] for k in ("profile_seconds", "ratio_pte_int8_vs_teacher_eager",
                                          "ratio_pte_int8_vs_student_eager", "battery_days",
                                          "battery_ratio_gated_vs_continuous_ppg", "ratios")}, indent=2))
    print(f"reports: {args.work / 'profile'}/profile.{{json,md,html}}")


if __name__ == "__main__":
    main()
