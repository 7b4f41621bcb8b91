"""Compression and export benchmark (issue 5) -> benchmarks/results/compress.json.

    python benchmarks/bench_compress.py [--student CKPT] [--workdir DIR] [--epochs N]

1. Data: a synthetic cohort (``edgefm.data.synth``), wrist-raw windows, subject-level split;
   ACC channels normalised with the train split's statistics.
2. Student: ``--student`` loads a distilled checkpoint (``distill.deploy.load_student``); without
   it the default student architecture (``cnn1d_small``) + linear HR head is trained
   supervised on the cohort's HR labels (``distill.baselines.train_supervised``) — no teacher
   is needed for that, and this is what the figures below use unless a checkpoint is given.
3. int8 PTQ through each backend's quantizer -> .pte / .tflite / .onnx; HR-MAE loss vs float
   on held-out subjects; TFLite Micro arena and agreement with LiteRT.
4. Structured pruning at 50% of channels + distillation recovery from the unpruned model:
   MAC reduction, measured int8 latency (XNNPACK .pte and LiteRT .tflite), HR-MAE loss.
5. Size: teacher fp32 checkpoint bytes / pruned int8 student .tflite bytes.
6. Determinism: every format exported twice -> identical sha256.
Timings are provisional when the machine is shared.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "compress.json"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load_data(workdir: Path, subjects: int, raw_minutes: float):
    from distill.data import acc_view, label, load_split
    from edgefm.data.synth import SynthConfig, synthesize
    cohort = workdir / f"cohort_s{subjects}_m{int(raw_minutes)}"
    if not (cohort / "manifest.json").exists():
        log(f"synthesizing cohort -> {cohort}")
        synthesize(SynthConfig(subjects=subjects, days=0.25, seed=0, raw_minutes=raw_minutes, traces=False), cohort,
                   overwrite=True)
    out = {}
    for split in ("train", "val", "test"):
        w = load_split(cohort / "raw", split)
        x, y = acc_view(w), label(w, "hr")
        ok = np.isfinite(y)
        out[split] = (x[ok], y[ok].astype(np.float32))
    man = json.loads((cohort / "raw" / "manifest.json").read_text())
    return cohort, out, man


def input_spec_of(man: dict, channels=("acc_x", "acc_y", "acc_z")) -> dict:
    norm = man.get("normalisation", {})
    names = [c["name"] if isinstance(c, dict) else c for c in man.get("preset", {}).get("channels", [])]
    pick = lambda v: [float(v[c]) for c in channels] if isinstance(v, dict) else [float(v[names.index(c)]) for c in channels]
    mean, std = norm.get("mean", {}), norm.get("std", {})
    preset = man.get("preset", {})
    return {"preset": preset.get("name", "wrist-raw") if isinstance(preset, dict) else preset,
            "channels": list(channels), "fs_hz": 32.0, "window": 256, "hop": 64,
            "normalisation": {"mean": pick(mean), "std": pick(std)}}


class HRModel(torch.nn.Module):
    """Deployable: (B, 3, T) normalised ACC -> (B, 1) bpm (encoder + linear head, de-standardised)."""

    def __init__(self, sup):
        super().__init__()
        self.encoder, self.head = sup.encoder, sup.head
        self.y_mean, self.y_std = float(sup.y_mean), float(sup.y_std)

    def forward(self, x):
        return self.head(self.encoder(x)) * self.y_std + self.y_mean


def train_student(data, epochs: int):
    from distill.baselines import SupervisedConfig, train_supervised
    from distill.students import build_student
    torch.manual_seed(0)
    enc = build_student()
    if hasattr(enc, "projector"):
        enc.projector = torch.nn.Identity()       # distillation-only; never shipped
    (xtr, ytr), (xv, yv) = data["train"], data["val"]
    sup = train_supervised(enc, xtr, ytr, xv, yv, SupervisedConfig(epochs=epochs, patience=5))
    return HRModel(sup).eval()


def mae(model, x, y) -> float:
    with torch.no_grad():
        p = torch.cat([model(torch.from_numpy(x[i:i + 512])) for i in range(0, len(x), 512)])[:, 0].numpy()
    return float(np.mean(np.abs(p - y)))


def latency_ms(runner, x: np.ndarray, repeats: int) -> float:
    from edgefm.export.verify import run_float  # noqa: F401 (same input path as verification)
    i = runner.input_details[0]
    q = x[:1].astype(np.float32)
    if i.quantized:
        q = np.clip(np.round(q / i.scale) + i.zero_point, -128, 127).astype(np.int8)
    for _ in range(10):
        runner.run(q)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        runner.run(q)
        ts.append((time.perf_counter() - t) * 1e3)
    return float(statistics.median(ts))


def teacher_bytes(workdir: Path, size: str) -> int:
    """Bytes of a fp32 teacher checkpoint of LSM size ``size`` written by the teacher's own
    ``save_checkpoint`` (model weights + config only; a training checkpoint with optimizer state
    would be ~3x larger, so this is the conservative figure)."""
    from edgefm.models import lsm_mae
    from edgefm.train.checkpoint import save_checkpoint
    torch.manual_seed(0)
    m = getattr(lsm_mae, f"lsm_{size}")()
    p = workdir / f"teacher_{size}.pt"
    save_checkpoint(p, {"model_config": m.config.__dict__ if hasattr(m, "config") else {},
                        "size": size, "model": m.state_dict()})
    n = p.stat().st_size
    p.unlink()
    p.with_name(p.stem + ".manifest.json").unlink(missing_ok=True)
    return n


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", type=Path, default=None, help="distilled student checkpoint")
    ap.add_argument("--teacher", type=Path, default=None, help="teacher checkpoint (size ratio)")
    ap.add_argument("--teacher-size", default="tiny", choices=["tiny", "small", "base"])
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "edgefm_bench_compress")
    ap.add_argument("--subjects", type=int, default=12)
    ap.add_argument("--raw-minutes", type=float, default=16.0)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--recover-epochs", type=int, default=15)
    ap.add_argument("--heldout", type=int, default=600)
    ap.add_argument("--calib", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    command = "python benchmarks/bench_compress.py" + "".join(f" {x}" for x in (argv if argv is not None else sys.argv[1:]))
    a.workdir.mkdir(parents=True, exist_ok=True)
    from edgefm.adapters import executorch as et, litert
    from edgefm.export import ArtifactSpec, export_onnx, export_pte, export_tflite, export_tflm
    from edgefm.manifest import sha256_file
    from quantize.prune import PruneConfig, prune_

    t0 = time.time()
    cohort, data, man = load_data(a.workdir, a.subjects, a.raw_minutes)
    rng = np.random.default_rng(0)
    xte, yte = data["test"]
    sel = np.sort(rng.choice(len(xte), size=min(a.heldout, len(xte)), replace=False))
    held = (xte[sel], yte[sel])
    xtr, ytr = data["train"]
    calib = xtr[np.sort(rng.choice(len(xtr), size=min(a.calib, len(xtr)), replace=False))]
    if a.student:
        from distill.deploy import load_student
        ls = load_student(a.student)
        model, spec_in = ls.deployable(), ls.input_spec
        source = {"checkpoint": str(a.student), "sha256": ls.meta["sha256"], "config": ls.meta.get("student_config")}
        student_kind = "distilled checkpoint"
    else:
        log("training the default student (cnn1d_small) supervised on synthetic HR ...")
        model = train_student(data, a.epochs)
        spec_in = input_spec_of(man)
        source = {"checkpoint": None, "config": {"arch": "cnn1d_small", "trained": "supervised in bench_compress",
                                                 "epochs": a.epochs}}
        student_kind = "cnn1d_small trained supervised on the synthetic cohort inside the benchmark (no distilled checkpoint given)"
    spec = ArtifactSpec(source=source, input_spec=spec_in, output_spec={"name": "hr", "unit": "bpm"})
    mae_f = mae(model, *held)
    log(f"float HR MAE {mae_f:.3f} bpm on {len(held[0])} held-out windows")

    res = {"student": student_kind, "heldout_windows": int(len(held[0])), "calibration_windows": int(len(calib)),
           "float_hr_mae_bpm": round(mae_f, 4), "cohort": str(cohort)}
    d_full = a.workdir / "full"
    rel, sq, files = {}, {}, {}
    for fmt, fn in (("pte", export_pte), ("tflite", export_tflite), ("onnx", export_onnx)):
        r = fn(model, d_full, calib, int8=True, heldout=held, spec=spec)
        rel[fmt], sq[fmt], files[fmt] = r.verification["rel_loss"], r.verification["sqnr_db"], r.path
        log(f"{fmt}: {r.path.name} {r.verification}")
    r = export_tflm(model, d_full, calib, heldout=held, spec=spec)
    res["int8_rel_loss"] = rel
    res["int8_sqnr_db"] = sq
    res["int8_hr_mae_bpm"] = {k: json.loads((files[k].with_name(files[k].stem + ".manifest.json")).read_text())
                              ["verification"]["mae"] for k in files}
    res["tflm_arena_bytes"] = r.extra["arena_bytes"]
    res["tflm_vs_litert_max_steps"] = r.verification["max_diff_vs_litert_steps"]
    res["tflm_rel_loss"] = r.verification["rel_loss"]

    # ---- prune 50 % + recovery
    pruned = copy.deepcopy(model)
    ex = (torch.from_numpy(calib[:1]),)
    rep = prune_(pruned, PruneConfig(ratio=0.5, recover_epochs=a.recover_epochs, recover_lr=1e-3), ex, data=xtr)
    mae_p = mae(pruned, *held)
    d_pr = a.workdir / "pruned"
    pr = {fmt: fn(pruned, d_pr, calib, int8=True, heldout=held, spec=spec)
          for fmt, fn in (("pte", export_pte), ("tflite", export_tflite), ("onnx", export_onnx))}
    prt = export_tflm(pruned, d_pr, calib, heldout=held, spec=spec)
    lat = {}
    for name, path in (("pte", files["pte"]), ("pte_pruned", pr["pte"].path),
                       ("tflite", files["tflite"]), ("tflite_pruned", pr["tflite"].path)):
        runner = (et if name.startswith("pte") else litert).load_runner(path)
        lat[name] = round(latency_ms(runner, held[0], a.repeats), 4)
    res["prune50"] = {
        "macs_before": rep.before.macs, "macs_after": rep.after.macs,
        "macs_reduction": round(rep.macs_reduction, 4),
        "params_before": rep.before.params, "params_after": rep.after.params,
        "params_reduction": round(rep.params_reduction, 4),
        "eager_fp32_latency_ms": {"before": rep.before.latency_ms, "after": rep.after.latency_ms},
        "int8_latency_ms": lat,
        "latency_reduction": round(1 - lat["pte_pruned"] / lat["pte"], 4),
        "latency_reduction_by_backend": {"xnnpack_pte": round(1 - lat["pte_pruned"] / lat["pte"], 4),
                                         "litert_tflite": round(1 - lat["tflite_pruned"] / lat["tflite"], 4)},
        "float_hr_mae_bpm": round(mae_p, 4),
        "rel_loss": round((mae_p - mae_f) / mae_f, 5),
        "int8_rel_loss_vs_unpruned_float": {k: round((v.verification["mae"] - mae_f) / mae_f, 5) for k, v in pr.items()},
        "recover_epochs": a.recover_epochs, "channels": rep.channels,
        "tflm_arena_bytes": prt.extra["arena_bytes"]}
    log(f"prune50: {res['prune50']}")

    # ---- size ratio
    student_bytes = pr["tflite"].path.stat().st_size
    if a.teacher:
        tb, tname = a.teacher.stat().st_size, str(a.teacher)
    else:
        tb, tname = teacher_bytes(a.workdir, a.teacher_size), f"lsm_{a.teacher_size} (weights-only checkpoint)"
    res["size"] = {"teacher": tname, "teacher_bytes": tb, "student_int8_artifact": pr["tflite"].path.name,
                   "student_int8_bytes": student_bytes, "student_fp32_unpruned_bytes": int(rep.before.bytes)}
    res["size_ratio_teacher_to_student_int8"] = round(tb / student_bytes, 1)

    # ---- determinism: export again, compare every format's sha256
    d_again = a.workdir / "pruned_again"
    again = {"pte": export_pte(pruned, d_again, calib, int8=True, heldout=held, spec=spec).path,
             "tflite": export_tflite(pruned, d_again, calib, int8=True, heldout=held, spec=spec).path,
             "onnx": export_onnx(pruned, d_again, calib, int8=True, heldout=held, spec=spec).path,
             "tflm": export_tflm(pruned, d_again, calib, heldout=held, spec=spec).path}
    first = {"pte": pr["pte"].path, "tflite": pr["tflite"].path, "onnx": pr["onnx"].path, "tflm": prt.path}
    same = {k: sha256_file(first[k]) == sha256_file(again[k]) for k in first}
    res["deterministic_by_format"] = same
    res["deterministic"] = all(same.values())
    res["seconds"] = round(time.time() - t0, 1)
    res["note"] = "timings provisional: measured on 2 CPU cores shared by ~9 engineers"
    res["torch_threads"] = 1
    res["command"] = command
    a.out.parent.mkdir(parents=True, exist_ok=True)
    from edgefm.manifest import atomic_write_json
    atomic_write_json(a.out, res)
    print(json.dumps(res, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
