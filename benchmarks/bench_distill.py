"""Benchmark for issue 4: PPG -> ACC distillation vs supervised / SSL ACC-only baselines.

    python benchmarks/bench_distill.py                    # trains a small teacher per source
    python benchmarks/bench_distill.py --teacher CKPT     # reuse a wrist-raw teacher

Sources: the synthetic cohort (``edgefm.data.synth``, held-out synthetic subjects) and WESAD
wrist (E4; leave-subjects-out with the importer's subject split). Cross-dataset: TROIKA
(ECG-derived HR), never trained on: heads are fitted on the WESAD train split.
Writes benchmarks/results/distill.json (keys of issue 4) and a report (Markdown, JSON,
plots) in benchmarks/results/distill_report/. CPU only; budget ~1 h on 2 contended cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from distill import DEFAULT_STUDENT, DistillConfig, build_student, distill, head_from_probe, save_student  # noqa: E402
from distill.baselines import MaskedPretrainConfig, SupervisedConfig, pretrain_masked  # noqa: E402
from distill.data import acc_channels, acc_view  # noqa: E402
from distill.experiment import CompareConfig, compare, cross_dataset, load_normalised  # noqa: E402
from distill.report import write_report  # noqa: E402
from edgefm.data.store import WindowDataset  # noqa: E402
from edgefm.manifest import atomic_write_json  # noqa: E402

SHARED = Path(os.environ.get("EDGEFM_SHARED_DATA", REPO.parent / "shared" / "data"))


def log(s: str) -> None:
    print(f"[bench_distill {time.strftime('%H:%M:%S')}] {s}", file=sys.stderr, flush=True)


def prepare_real(fmt: str, src: Path, work: Path) -> Path | None:
    from edgefm.data.importers import import_dataset
    from edgefm.data.store import open_manifest, read_recordings, write_windows
    out = work / f"{fmt}_raw"
    if (out / "manifest.json").exists():
        return out
    if not src.exists():
        log(f"{src} not found; skipping {fmt}")
        return None
    rec = import_dataset(fmt, src, work / f"{fmt}_rec", overwrite=True)   # the benchmark owns work/
    m = open_manifest(rec, "recordings")
    return write_windows(read_recordings(rec), out, "wrist-raw",
                         provenance={"source": str(rec), "source_provenance": m.get("provenance", {})},
                         split=m.get("split"), overwrite=True)


def prepare_synthetic(work: Path, subjects: int) -> Path | None:
    out = work / "synth"
    if (out / "raw" / "manifest.json").exists():
        return out / "raw"
    try:
        from edgefm.data.synth import SynthConfig, synthesize
    except ImportError as e:
        log(f"synthetic cohort unavailable ({e})")
        return None
    # edgefm.data.synth._segment_starts can place two segments at the same start when a rare
    # activity has few candidate seconds (duplicate recording id -> FileExistsError); until
    # that is fixed, the next seed is tried and the seed used is recorded.
    last = None
    for seed in range(5):
        try:
            synthesize(SynthConfig(subjects=subjects, days=0.25, seed=seed, raw_minutes=12.0,
                                   traces=False), out)
            (work / "synth_seed.txt").write_text(str(seed))
            break
        except FileExistsError as e:
            log(f"synth seed {seed} failed ({e}); trying seed {seed + 1}")
            last = e
    else:
        raise last
    return out / "raw"


def get_teacher(ds_path: Path, args, work: Path, name: str):
    from edgefm.train.checkpoint import load_teacher
    from edgefm.train.pretrain import TrainConfig, pretrain, teacher_for_dataset
    if args.teacher:
        t = load_teacher(args.teacher)
        return t, Path(args.teacher)
    ck = work / f"teacher_{name}" / "teacher.pt"
    if not ck.exists():
        log(f"pretraining a tiny teacher on {name} for {args.teacher_minutes} min")
        model = teacher_for_dataset(ds_path, "tiny")
        pretrain(model, ds_path, TrainConfig(steps=100_000, max_minutes=args.teacher_minutes, batch_size=64,
                                             progress=False), ck.parent, size="tiny")
    return load_teacher(ck), ck


def run_source(name: str, ds_path: Path, args, work: Path) -> tuple[dict, dict, dict, dict]:
    """Teacher -> distilled student, SSL baseline, comparison on held-out subjects."""
    torch.manual_seed(0)
    ds = WindowDataset(ds_path)
    teacher, tck = get_teacher(ds_path, args, work, name)
    D = teacher.cfg.enc_dim
    cap = {"train": args.max_train, "val": args.max_eval, "test": args.max_eval}
    t0 = time.time()
    student = build_student(args.student, teacher_dim=D)
    distill(student, teacher, ds_path, DistillConfig(epochs=args.epochs, batch_size=128,
                                                     max_train_windows=args.max_train,
                                                     patience=4, verbose=True))
    t_distill = time.time() - t0
    log(f"{name}: distilled in {t_distill:.0f}s")
    # SSL baseline: same architecture, same windows, same epoch budget
    t0 = time.time()
    tr = load_normalised(ds, "train", max_n=args.max_train, seed=0)
    va = load_normalised(ds, "val", max_n=args.max_eval, seed=0)
    chans = acc_channels(ds.channel_names)
    ssl = pretrain_masked(build_student(args.student, teacher_dim=D), acc_view(tr, chans),
                          MaskedPretrainConfig(epochs=args.epochs, patience=4), x_val=acc_view(va, chans),
                          callback=lambda r: log(f"{name} ssl epoch {r['epoch']} {r['train_loss']:.4f} "
                                                 f"val {r['val_loss']}"))
    t_ssl = time.time() - t0
    log(f"{name}: SSL baseline in {t_ssl:.0f}s")
    results, preds, fitted = compare(
        student, teacher, ds_path, ssl_encoder=ssl,
        make_encoder=lambda: build_student(args.student, teacher_dim=D),
        config=CompareConfig(seeds=tuple(range(args.probe_seeds)), supervised_seeds=(0, 1),
                             max_windows=cap),
        supervised_config=SupervisedConfig(epochs=args.sup_epochs, patience=6))
    results["teacher"] = {"checkpoint": str(tck), "enc_dim": D, "params": teacher.num_params("encoder"),
                          "step": (teacher.meta or {}).get("step")}
    results["seconds"] = {"distill": t_distill, "ssl": t_ssl, "compare": results.pop("elapsed_s")}
    results["distill_history"] = student.distill_info["history"]
    # the deployable student: encoder + the HR head chosen on val (100% of train labels)
    head = head_from_probe(fitted["heads"]["student"])
    nm = {c: (fitted["acc_stats"][c]) for c in chans}
    spec = {"preset": ds.manifest["preset"]["preset"], "channels": list(chans), "fs_hz": ds.fs_hz,
            "window": ds.window, "hop": ds.hop,
            "normalisation": {"mean": [nm[c][0] for c in chans], "std": [nm[c][1] for c in chans]}}
    from edgefm.manifest import sha256_file
    ck = save_student(work / f"student_{name}.pt", student, head, input_spec=spec,
                      teacher={"path": str(tck), "sha256": sha256_file(tck)},
                      metrics={"hr_mae_test_bpm": results["bland_altman"]["student"]})
    results["student_checkpoint"] = str(ck)
    return results, preds, fitted, {"teacher": teacher}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", help="wrist-raw teacher checkpoint (default: train one per source)")
    ap.add_argument("--teacher-minutes", type=float, default=4.0)
    ap.add_argument("--student", default=DEFAULT_STUDENT)
    ap.add_argument("--epochs", type=int, default=12, help="distillation and SSL epochs (upper bound)")
    ap.add_argument("--sup-epochs", type=int, default=40)
    ap.add_argument("--max-train", type=int, default=10000, help="train windows used (seeded draw)")
    ap.add_argument("--max-eval", type=int, default=4000, help="val/test windows used (seeded draw)")
    ap.add_argument("--probe-seeds", type=int, default=3)
    ap.add_argument("--synth-subjects", type=int, default=24)
    ap.add_argument("--sources", default="synthetic,wesad")
    ap.add_argument("--troika-from", default="wesad", help="source whose heads are applied to TROIKA")
    ap.add_argument("--merge", action="store_true",
                    help="update the sources this run computes in an existing --out, keep the rest")
    ap.add_argument("--workdir", default="/tmp/edgefm_bench_distill")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "distill.json"))
    ap.add_argument("--report", default=str(REPO / "benchmarks" / "results" / "distill_report"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_distill.py" + ("" if argv is None and len(sys.argv) == 1
                                                       else " " + " ".join(sys.argv[1:] if argv is None else argv))
    s = build_student(args.student)
    out = {"command": command, "student": {"name": args.student, "params": s.num_params(), "macs": s.macs(),
                                           "params_target": 100_000, "macs_target": 5_000_000,
                                           "meets_targets": s.num_params() <= 100_000 and s.macs() <= 5_000_000},
           "settings": vars(args), "torch_threads": torch.get_num_threads(),
           "note": "timings provisional: measured on 2 CPU cores shared by ~9 engineers"}
    report = {"student": out["student"], "datasets": {}}
    predictions = {}
    fitted_by = {}
    srcs = [x.strip() for x in args.sources.split(",") if x.strip()]
    for name in srcs:
        try:
            path = (prepare_synthetic(work, args.synth_subjects) if name == "synthetic"
                    else prepare_real("e4", SHARED / "wesad_e4", work) if name == "wesad" else None)
            if path is None:
                out[name] = {"status": "unavailable"}
                continue
            log(f"source {name}: {path}")

            res, preds, fitted, extra = run_source(name, path, args, work)
            fitted_by[name] = (fitted, extra["teacher"])
            report["datasets"][name] = res
            predictions[name] = preds
            sup = res.get("supervised", {}).get("hr", {})
            pr = res["probes"]
            g = lambda m: pr.get(m, {}).get("hr", {}).get("10%", {}).get("selected", {}).get("mae")
            out[name] = {
                "hr_mae_student_10pct": g("student"), "hr_mae_supervised_10pct": sup.get("10%", {}).get("mae"),
                "hr_mae_ssl_10pct": g("ssl"), "hr_mae_teacher_10pct": g("teacher"),
                "hr_mae_constant_train_mean": res.get("hr_mae_constant_train_mean"),
                "subjects_test": res["subjects"]["test"], "n_windows": res["n_windows"]}
            if name == "synthetic" and (work / "synth_seed.txt").exists():
                out[name]["cohort_seed"] = int((work / "synth_seed.txt").read_text())
            a, b, c = out[name]["hr_mae_student_10pct"], out[name]["hr_mae_supervised_10pct"], out[name]["hr_mae_ssl_10pct"]
            if None not in (a, b, c):
                out[name]["student_vs_supervised_reduction"] = 1 - a / b
                out[name]["goal_20pct_below_supervised"] = bool(a <= 0.8 * b)
                out[name]["goal_below_ssl"] = bool(a < c)
            if res.get("retrieval"):
                r64 = next((r for r in res["retrieval"] if r["batch"] == 64), None)
                if r64:
                    out[name]["retrieval_top1_b64"] = r64["top1"]
                    out[name]["retrieval_top5_b64"] = r64["top5"]
                    out[name]["retrieval_chance_top1_b64"] = r64["chance_top1"]
            out[name]["hr_mae_by_fraction"] = {
                m: {p: v["selected"]["mae"] for p, v in pr.get(m, {}).get("hr", {}).items()} for m in pr}
            out[name]["hr_mae_by_fraction"]["supervised"] = {p: v["mae"] for p, v in sup.items()}
            atomic_write_json(work / "partial.json", out)
        except Exception as e:  # record and go on: the other sources still report
            traceback.print_exc()
            out[name] = {"status": f"failed: {type(e).__name__}: {e}"}
    # cross-dataset: TROIKA, heads fitted on WESAD (else synthetic) train split
    try:
        src = args.troika_from if args.troika_from in fitted_by else None
        tpath = prepare_real("troika", SHARED / "troika", work) if src else None
        if src and tpath:
            fitted, teacher = fitted_by[src]
            res, preds = cross_dataset(fitted, teacher, tpath)
            res["source"] = src
            out["troika"] = {"hr_mae_student": res.get("hr_mae_student"),
                             "hr_mae_supervised": res.get("hr_mae_supervised"),
                             "hr_mae_ssl": res.get("hr_mae_ssl"), "hr_mae_teacher": res.get("hr_mae_teacher"),
                             "hr_mae_constant_source_mean": res.get("hr_mae_constant_source_mean"),
                             "source": src, "n_windows": res["n_windows"], "protocol": res["protocol"]}
            report["datasets"]["troika (cross-dataset)"] = {"cross": {**res, "protocol": res["protocol"]}}
            predictions["troika"] = preds
        elif args.troika_from in srcs:
            out["troika"] = {"status": "unavailable"}
    except Exception as e:
        traceback.print_exc()
        out["troika"] = {"status": f"failed: {type(e).__name__}: {e}"}
    write_report(report, args.report, predictions, overwrite=True)   # the benchmark owns its results folder
    out["report"] = str(Path(args.report).relative_to(REPO)) if Path(args.report).is_relative_to(REPO) else args.report
    if args.merge and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        mine = {*srcs, "troika"} if "troika" in out else set(srcs)
        for k, v in old.items():
            if (k in ("synthetic", "wesad", "troika") and k not in mine) or k not in out:
                out[k] = v
        cmds = old.get("commands", [old.get("command")]) + [command]
        out["commands"] = [c for c in dict.fromkeys(cmds) if c]
        out["command"] = " && ".join(out["commands"])
        reps = old.get("reports", [old.get("report")]) + [out["report"]]
        out["reports"] = [r for r in dict.fromkeys(reps) if r]
    atomic_write_json(args.out, json.loads(json.dumps(out, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))))
    print(json.dumps({k: out[k] for k in ("student", *srcs, "troika") if k in out}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
