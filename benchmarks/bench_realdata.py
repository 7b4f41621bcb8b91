"""Real recordings, subjects the model never saw: every task's int8 student beside its baselines.

    python benchmarks/bench_realdata.py                 # all sections -> benchmarks/results/realdata.json
    python benchmarks/bench_realdata.py --only troika   # one section (printed; the file is not written)

Data: ``../shared/data`` (or ``--data``), imported with ``edgefm data import`` into a temporary
folder (``--work`` keeps them). Every figure is on held-out subjects; everything a model uses
(normalisation, tracker step, epochs, thresholds, channel choice) comes from training subjects.

- **troika** (12 subjects, ECG reference): leave one subject out. The LED-on student (PPG x2 +
  ACC) and the LED-off student (ACC only): the spectral heart-rate student + on-device tracker,
  int8 (DSP front end float, CNN int8). MAE per held-out subject, averaged over subjects (the
  way published TROIKA results are given); baselines: training-label mean, the held-out
  subject's own mean (an oracle).
- **sp_sw_har** (18 subjects, 5 activities): leave one subject out. Per fold the input set (ACC,
  or ACC + gyroscope) is chosen by validation error (1 - macro-F1) on 3 validation subjects drawn
  from the training subjects; the int8 student's predictions of all folds pooled -> macro-F1;
  baseline: the training subjects' majority class.
- **daphnet** (3 subjects here, freezing of gait): leave one subject out, gate + detector
  (:mod:`edgefm.tasks.events`), ankle sensor (``--placement``); episode recall, skip fraction,
  each with a Wilson 95% interval.
- **wesad** (15 subjects, Empatica E4): heart rate (BVP + ACC; the reference is the E4's own
  PPG-derived HR.csv, not ECG) and the four protocol phases (ACC + EDA + TEMP, 60 s windows);
  5 subject-group folds for heart rate, leave one subject out for the phases.
- **artifacts**: one deployable model per task built by :func:`edgefm.tasks.build_deployable`
  (the dataset's own split, else a seeded one), exported to ExecuTorch, LiteRT, ONNX and TFLite
  Micro and verified in each runtime: per-window |int8 - fp32| p50/p99/max (bpm) or agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "2")

RESULT = REPO / "benchmarks" / "results" / "realdata.json"
COMMAND = "python benchmarks/bench_realdata.py"
SECTIONS = ("wesad", "daphnet", "troika", "sp_sw_har", "artifacts")
IMPORTS = {"troika": ("troika", "troika"), "daphnet": ("daphnet", "daphnet"), "sp_sw_har": ("sp-sw-har", "sp_sw_har"),
           "wesad": ("e4", "wesad_e4")}


def _imported(name: str, data: Path, work: Path) -> Path:
    from edgefm.data.importers import import_dataset
    fmt, folder = IMPORTS[name]
    out = work / folder
    if not (out / "manifest.json").exists():
        import_dataset(fmt, data / folder, out, overwrite=True)
    return out


def _r(x, nd=4):
    if isinstance(x, float):
        return round(x, nd)
    if isinstance(x, dict):
        return {k: _r(v, nd) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_r(v, nd) for v in x]
    return x


def troika(path: Path, log) -> dict:
    from edgefm.tasks import FitConfig, load_windows, loso_folds
    from edgefm.tasks.crossval import cross_validate
    out = {}
    for name, ch in (("ppg_acc", ("ppg", "ppg2", "acc_x", "acc_y", "acc_z")), ("acc", ("acc_x", "acc_y", "acc_z"))):
        log(f"troika, {name} student, leave one subject out")
        tw = load_windows(path, "hr", channels=ch)
        out[name] = cross_validate(tw, loso_folds(tw), FitConfig(), log=log)
    return out


def har(path: Path, log) -> dict:
    """Leave one subject out; per fold the input set (ACC, or ACC + gyroscope) is the one with the
    lower validation error on 3 of the training subjects (the model trained without them is the
    fold's model)."""
    from edgefm.tasks import FitConfig, load_windows, loso_folds
    from edgefm.tasks.crossval import cross_validate
    cands = {"acc": ("acc_x", "acc_y", "acc_z"), "acc_gyro": ("acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z")}
    tws = {k: load_windows(path, "activity", channels=v) for k, v in cands.items()}
    log("sp_sw_har activity, leave one subject out, inputs chosen per fold on validation subjects")
    return cross_validate(tws, loso_folds(tws["acc"]), FitConfig(), val_subjects=3, log=log)


def daphnet(path: Path, log, placement: str) -> dict:
    from edgefm.tasks.events import FreezeConfig, freeze_loso
    return freeze_loso(path, FreezeConfig(placement=placement), log=log)


def wesad(path: Path, log) -> dict:
    import numpy as np
    from edgefm.tasks import FitConfig, load_windows, loso_folds
    from edgefm.tasks.crossval import cross_validate
    log("wesad heart rate (BVP + ACC), 5 subject-group folds")
    tw = load_windows(path, "hr", channels=("ppg", "acc_x", "acc_y", "acc_z"))
    subs = sorted(set(tw.subject[tw.known]))
    groups = [subs[i::5] for i in range(5)]
    folds = [([s for s in subs if s not in g], g) for g in groups]
    hr = cross_validate(tw, folds, FitConfig(epochs=15), max_train_windows=8000, log=log)
    log("wesad protocol phases (ACC + EDA + TEMP, 60 s windows), leave one subject out")
    tp = load_windows(path, "phase")
    phase = cross_validate(tp, loso_folds(tp), FitConfig(epochs=40), val_subjects=3, log=log)
    return {"hr": hr, "phase": phase}


def artifacts(paths: dict, work: Path, log) -> dict:
    from edgefm.tasks import DeployConfig, build_deployable
    jobs = {"troika_ppg_acc": (paths["troika"], DeployConfig(task="hr", split="seeded")),
            "troika_acc": (paths["troika"], DeployConfig(task="hr", sensors="led_off", split="seeded")),
            "sp_sw_har": (paths["sp_sw_har"], DeployConfig(task="activity", split="seeded")),
            "daphnet": (paths["daphnet"], DeployConfig(task="freeze", placement="ankle",
                                                       split={"train": ["daphnet-S02", "daphnet-S03"], "val": [],
                                                              "test": ["daphnet-S01"]})),
            "wesad_hr": (paths["wesad"], DeployConfig(task="hr", channels=("ppg", "acc_x", "acc_y", "acc_z"),
                                                      split="seeded")),
            # TFLite Micro's arena search runs in-process and segfaulted on this model (exit 139):
            # the in-process native crash of issue #19; its other three formats are exported
            "wesad_phase": (paths["wesad"], DeployConfig(task="phase", split="seeded",
                                                         formats=("pte", "tflite", "onnx")))}
    out = {}
    for name, (data, cfg) in jobs.items():
        t0 = time.perf_counter()
        log(f"artifacts: {name}")
        res = build_deployable(data, work / "deploy" / name, cfg, overwrite=True)
        out[name] = {"task": res.metrics["task"], "channels": res.metrics["channels"], "params": res.metrics["params"],
                     "macs": res.metrics["macs"], "split": res.split,
                     "artifacts": {a["format"]: {k: a["verification"].get(k) for k in
                                                 ("abs_err", "agreement", "sqnr_db", "n", "mae", "mae_float",
                                                  "macro_f1", "macro_f1_float") if k in a["verification"]}
                                   for a in res.artifacts},
                     "seconds": round(time.perf_counter() - t0, 1)}
    return out


def summary(r: dict) -> dict:
    """The issue's keys from the sections that ran."""
    s: dict = {}
    if "troika" in r:
        t = r["troika"]
        s["troika.hr_mae_ppg_acc_int8"] = t["ppg_acc"]["int8"]["hr_mae_subject_mean"]
        s["troika.hr_mae_ppg_acc_fp32"] = t["ppg_acc"]["fp32"]["hr_mae_subject_mean"]
        s["troika.hr_mae_acc_int8"] = t["acc"]["int8"]["hr_mae_subject_mean"]
        s["troika.hr_mae_acc_fp32"] = t["acc"]["fp32"]["hr_mae_subject_mean"]
        s["troika.hr_mae_constant"] = t["acc"]["baselines"]["constant"]
        s["troika.hr_mae_subject_mean"] = t["acc"]["baselines"]["subject_mean"]
    if "sp_sw_har" in r:
        s["sp_sw_har.macro_f1_int8"] = r["sp_sw_har"]["int8"]["macro_f1"]
        s["sp_sw_har.macro_f1_fp32"] = r["sp_sw_har"]["fp32"]["macro_f1"]
        s["sp_sw_har.int8_agreement_with_fp32"] = r["sp_sw_har"]["int8"]["agreement_with_fp32"]
        s["sp_sw_har.balanced_accuracy_int8"] = r["sp_sw_har"]["int8"]["balanced_accuracy"]
        s["sp_sw_har.macro_f1_majority"] = r["sp_sw_har"]["baselines"]["majority"]["macro_f1"]
    if "daphnet" in r:
        d = r["daphnet"]
        s["daphnet.freeze_recall"] = d["episode_recall"]
        s["daphnet.freeze_recall_ci95"] = d["episode_recall_ci95"]
        s["daphnet.skip"] = d["skip"]
        s["daphnet.skip_ci95"] = d["skip_ci95"]
    if "wesad" in r:
        w = r["wesad"]
        s["wesad.hr_mae_int8"] = w["hr"]["int8"]["hr_mae_subject_mean"]
        s["wesad.hr_mae_constant"] = w["hr"]["baselines"]["constant"]
        s["wesad.hr_mae_subject_mean"] = w["hr"]["baselines"]["subject_mean"]
        s["wesad.phase_macro_f1_int8"] = w["phase"]["int8"]["macro_f1"]
        s["wesad.phase_macro_f1_majority"] = w["phase"]["baselines"]["majority"]["macro_f1"]
    hr = [x["int8"] for x in ([r["troika"]["ppg_acc"], r["troika"]["acc"]] if "troika" in r else [])
          + ([r["wesad"]["hr"]] if "wesad" in r else [])]
    if hr:
        s["int8.p99_abs_err_bpm_tracked"] = max(x["abs_err_vs_fp32_tracked"]["p99"] for x in hr)
        s["int8.p99_abs_err_bpm_per_window"] = max(x["abs_err_vs_fp32"]["p99"] for x in hr)
        s["int8.max_output_bpm"] = max(x["max_output_bpm"] for x in hr)
    if "artifacts" in r:
        arts = [(n, f, v) for n, a in r["artifacts"].items() for f, v in a["artifacts"].items()]
        s["int8.p99_abs_err_bpm"] = max(v["abs_err"]["p99"] for _, _, v in arts if "abs_err" in v)
        s["int8.min_agreement"] = min(v["agreement"] for _, _, v in arts if "agreement" in v)
    return s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=None, help="keep the imports and artifacts here")
    ap.add_argument("--only", action="append", choices=SECTIONS, default=[])
    ap.add_argument("--placement", default="ankle", choices=("ankle", "thigh", "trunk"))
    ap.add_argument("--out", type=Path, default=RESULT)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 when sections run side by side)")
    ap.add_argument("--merge", type=Path, nargs="+", default=None,
                    help="merge the partial results of --only runs into --out (their commands listed)")
    a = ap.parse_args(argv)
    if a.merge:
        parts = [json.loads(p.read_text()) for p in a.merge]
        res = {k: v for d in parts for k, v in d["sections"].items()}
        res["seconds"] = {k: v for d in parts for k, v in d["sections"].get("seconds", {}).items()}
        doc = {"command": " ; ".join(d["command"] for d in parts), **_r(summary(res)),
               "total_seconds": round(sum(d["total_seconds"] for d in parts), 1), "sections": _r(res)}
        from edgefm.manifest import atomic_write_json
        atomic_write_json(a.out, doc)
        print(json.dumps(_r(summary(res)), indent=1))
        print(f"wrote {a.out}")
        return 0
    if not a.data.is_dir():
        print(f"no data folder {a.data}: nothing to benchmark", file=sys.stderr)
        return 2
    import torch
    torch.set_num_threads(a.threads)
    sections = a.only or list(SECTIONS)

    def log(s):
        print(s, flush=True)

    t0 = time.perf_counter()
    res: dict = {}
    with tempfile.TemporaryDirectory(prefix="edgefm-realdata-") as tmp:
        work = a.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        need = {"artifacts": list(IMPORTS)}.get
        names = sorted({n for s in sections for n in (need(s) or [s])})
        paths = {n: _imported(n, a.data, work) for n in names}
        for s in sections:
            t = time.perf_counter()
            if s == "troika":
                res[s] = troika(paths["troika"], log)
            elif s == "sp_sw_har":
                res[s] = har(paths["sp_sw_har"], log)
            elif s == "daphnet":
                res[s] = daphnet(paths["daphnet"], log, a.placement)
            elif s == "wesad":
                res[s] = wesad(paths["wesad"], log)
            elif s == "artifacts":
                res[s] = artifacts(paths, work, log)
            res.setdefault("seconds", {})[s] = round(time.perf_counter() - t, 1)
            log(f"{s}: {time.perf_counter() - t:.0f} s")
            # what has finished is kept even if a later section crashes
            (Path(tempfile.gettempdir()) / f"realdata-partial-{'-'.join(sections)}.json").write_text(json.dumps(_r(res), default=str))
    keys = summary(res)
    doc = {"command": COMMAND + (" " + " ".join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ""),
           **_r(keys), "total_seconds": round(time.perf_counter() - t0, 1), "sections": _r(res)}
    print(json.dumps(_r(keys), indent=1))
    if not a.only:
        from edgefm.manifest import atomic_write_json
        atomic_write_json(a.out, doc)
        print(f"wrote {a.out}")
    else:
        (Path(tempfile.gettempdir()) / f"realdata-{'-'.join(sections)}.json").write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
