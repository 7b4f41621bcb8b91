"""The ten stages of ``edgefm pipeline``, each a thin call into its module's public API.

Every stage is ``fn(ctx, inputs) -> summary``: it writes its artifacts into ``ctx.dir``
(which becomes ``RUN/<stage>/``) and returns a JSON-able summary; paths in summaries are
relative to the stage folder. A module that is missing or refuses its input makes the stage
fail with a :class:`StageError` naming the module — no stage ever invents a result. Optional
evaluations (tables in the report) that depend on a module not installed are recorded as
``{"status": "unavailable", "reason": ...}`` and shown as such in the report.
"""

from __future__ import annotations

import copy

import importlib
import shutil
from pathlib import Path

import numpy as np

from edgefm.errors import EdgefmError
from edgefm.manifest import atomic_write_json, read_json, sha256_file
from edgefm.pipeline.core import StageContext, StageError, StageRecord

ACC = ("acc_x", "acc_y", "acc_z")


def need(module: str, stage: str):
    """Import a module a stage depends on, or fail the stage saying which module is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise StageError(f"stage {stage} needs `{module}`, which is not available ({e})",
                         hint="that module has not landed yet or its dependencies are missing") from e


def optional(what: str, fn, *a, **k) -> dict:
    """Run an optional evaluation; a missing module or a failure is recorded, never faked."""
    try:
        return {"status": "ok", **fn(*a, **k)}
    except ImportError as e:
        return {"status": "unavailable", "reason": f"{what}: module not available ({e})"}
    except EdgefmError as e:
        return {"status": "failed", "reason": f"{what}: {type(e).__name__}: {e.one_line()}"}


def _threads():
    import torch
    torch.set_num_threads(1)


# ---------------------------------------------------------------- data

def stage_data(ctx: StageContext, inputs: dict) -> dict:
    """Synthesize the built-in cohort (or reference the user's ``--data``) and summarise it."""
    from edgefm.data.store import info
    p = ctx.params
    if p.get("path"):
        src = Path(p["path"])
        # user data is referenced, not copied: record its manifests' hashes so a change re-runs
        hashes = {part: sha256_file(src / part / "manifest.json") for part in ("raw", "traces")
                  if (src / part / "manifest.json").exists()}
        atomic_write_json(ctx.dir / "source.json", {"path": str(src.resolve()), "manifest_sha256": hashes})
        cohort = src.resolve()
    else:
        synth = need("edgefm.data.synth", "data")
        cfg = synth.SynthConfig(subjects=p["subjects"], days=p["days"], seed=p["seed"],
                                raw_minutes=p["raw_minutes"], freezing_fraction=p["freezing_fraction"],
                                start_hour=p["start_hour"])
        ctx.log(f"synthesizing {p['subjects']} subjects × {p['days']} d")
        synth.synthesize(cfg, ctx.dir / "cohort")
        cohort = None
    where = cohort or ctx.dir / "cohort"
    summary = {"cohort": str(cohort) if cohort else "cohort", "external": cohort is not None}
    cm = read_json(where / "manifest.json")
    summary["info"] = {"subjects": len(cm.get("subjects", [])) if isinstance(cm.get("subjects"), list)
                       else cm.get("subjects"), "hours": cm.get("hours"), "kind": cm.get("kind"),
                       "parts": {part: _jsonable(info(where / part)) for part in ("raw", "traces")}}
    raw = read_json(where / "raw" / "manifest.json")
    summary["raw"] = {"n_windows": raw.get("n_windows"), "channels": [c["name"] for c in raw["channels"]],
                      "split": raw.get("split"), "labels": list(raw.get("labels", {}))}
    return summary


def cohort_dir(rec: StageRecord) -> Path:
    c = Path(rec.summary["cohort"])
    return c if c.is_absolute() else rec.dir / c


def _jsonable(x):
    import json
    from edgefm.manifest import dumps
    return json.loads(dumps(x))


# ---------------------------------------------------------------- teacher

def stage_teacher(ctx: StageContext, inputs: dict) -> dict:
    """Pretrain the LSM-style MAE teacher on the cohort's wrist-raw windows; generative eval."""
    _threads()
    p = ctx.params
    pre = need("edgefm.train.pretrain", "teacher")
    raw = cohort_dir(inputs["data"]) / "raw"
    model = pre.teacher_for_dataset(raw, p["size"])
    cfg = pre.TrainConfig(steps=p["steps"], max_minutes=p["max_minutes"], batch_size=p["batch_size"],
                          seed=p["seed"], progress=False)
    ctx.log(f"LSM-{p['size']} teacher, {model.num_params() if hasattr(model, 'num_params') else '?'} params, "
            f"{p['steps']} steps" + (f", at most {p['max_minutes']} min" if p["max_minutes"] else ""))
    ckpt = Path(pre.pretrain(model, raw, cfg, ctx.dir, size=p["size"]))
    summary = {"checkpoint": str(ckpt.relative_to(ctx.dir)), "size": p["size"],
               "params": int(model.num_params()) if hasattr(model, "num_params") else None,
               "bytes": ckpt.stat().st_size}

    def generative():
        gen = importlib.import_module("edgefm.eval.generative")
        cfg = gen.EvalConfig(max_windows=p["eval_windows"], seed=p["seed"])
        res = gen.run_eval(ckpt, raw, ctx.dir / "eval", cfg)
        return {"table": _jsonable(res), "reconstructions": "eval/reconstructions.png"}
    summary["generative"] = optional("teacher generative evaluation", generative)
    return summary


# ---------------------------------------------------------------- distil

def stage_distil(ctx: StageContext, inputs: dict) -> dict:
    """Distil the PPG teacher into the ACC student; compare with supervised/SSL baselines and the
    teacher probe on held-out subjects; save the student + HR head checkpoint."""
    _threads()
    p = ctx.params
    dl = need("distill", "distil")
    exp = need("distill.experiment", "distil")
    from edgefm.data.store import WindowDataset
    from edgefm.train.checkpoint import load_teacher
    raw = cohort_dir(inputs["data"]) / "raw"
    ds = WindowDataset(raw)
    tckpt = inputs["teacher"].dir / inputs["teacher"].summary["checkpoint"]
    teacher = load_teacher(tckpt)
    tdim = teacher.cfg.enc_dim

    def make():
        return dl.build_student(p["student"], teacher_dim=tdim)
    student = make()
    ctx.log(f"student {p['student']}: {student.num_params()} params, {student.macs()} MACs/window")
    cfg = dl.DistillConfig(epochs=p["epochs"], batch_size=p["batch_size"], seed=p["seed"],
                           max_train_windows=p["max_train_windows"])
    student = dl.distill(student, teacher, ds, cfg)
    chans = [c for c in ds.channel_names if c in ACC]
    ssl = None
    if p.get("ssl_epochs"):
        from distill.data import acc_view, load_split
        xtr = acc_view(load_split(ds, "train", max_n=p["max_windows"]), tuple(chans))
        ssl = dl.pretrain_masked(make(), xtr, dl.MaskedPretrainConfig(epochs=p["ssl_epochs"], seed=p["seed"]))
    ccfg = exp.CompareConfig(fractions=tuple(p["fractions"]), seeds=tuple(p["seeds"]),
                             supervised_seeds=tuple(p["seeds"][:2]), seed=p["seed"], probes=tuple(p["probes"]),
                             max_windows={"train": p["max_windows"], "val": p["max_windows"],
                                          "test": p["max_windows"]})
    results, preds, fitted = exp.compare(student, teacher, ds, ssl_encoder=ssl, make_encoder=make, config=ccfg,
                                         supervised_config=dl.SupervisedConfig(epochs=p["supervised_epochs"],
                                                                               seed=p["seed"]), log=False)
    head = dl.head_from_probe(fitted["heads"]["student"])
    finetune = None
    if p.get("finetune_epochs"):
        # The shipped model: the distilled encoder fine-tuned end to end on the train split's HR
        # labels (val early stopping). A frozen-probe head on a distilled embedding can need
        # weights ~1e3 when the embedding's spread is small, which int8 cannot represent; the
        # comparison above (frozen probes) is the distillation result, this is the product.
        import torch
        from distill.data import acc_view, label, load_split
        from distill.deploy import LinearHead
        wtr = load_split(ds, "train", max_n=p["max_windows"])
        wva = load_split(ds, "val", max_n=p["max_windows"])
        sup = dl.train_supervised(copy.deepcopy(student), acc_view(wtr, tuple(chans)), label(wtr, "hr"),
                                  acc_view(wva, tuple(chans)), label(wva, "hr"),
                                  dl.SupervisedConfig(epochs=p["finetune_epochs"], seed=p["seed"], lr=1e-3))
        student = sup.encoder
        head = LinearHead(sup.head.in_features, 1)
        with torch.no_grad():  # fold the label standardisation into the linear head
            head.weight.copy_(sup.head.weight * sup.y_std)
            head.bias.copy_(sup.head.bias * sup.y_std + sup.y_mean)
        finetune = {"epochs": p["finetune_epochs"], "val_hr_mae": float(sup.best_val_mae)}
    idx = [ds.channel_names.index(c) for c in chans]
    input_spec = {"preset": ds.manifest["preset"].get("preset", "wrist-raw"), "channels": chans,
                  "fs_hz": ds.fs_hz, "window": ds.window, "hop": ds.hop,
                  "normalisation": {"mean": [float(ds.mean[0, i, 0]) for i in idx],
                                    "std": [float(ds.std[0, i, 0]) for i in idx]}}
    hr_mae = float(np.mean(np.abs(preds["student"] - preds["ref"]))) if "student" in preds else None
    if finetune is not None:  # the shipped model's own held-out error
        wte = load_split(ds, "test", max_n=p["max_windows"])
        yte = label(wte, "hr")
        with torch.no_grad():
            pte = dl.deployable(student, head)(torch.from_numpy(acc_view(wte, tuple(chans)))).numpy()[:, 0]
        ok = np.isfinite(yte)
        hr_mae = float(np.mean(np.abs(pte[ok] - yte[ok])))
        finetune["test_hr_mae"] = hr_mae
    path = dl.save_student(ctx.dir / "student.pt", student, head, input_spec=input_spec,
                           teacher={"path": str(tckpt), "sha256": sha256_file(tckpt), "config": teacher.cfg.__dict__
                                    if not hasattr(teacher.cfg, "to_dict") else teacher.cfg.to_dict()},
                           metrics={"hr_mae_test": hr_mae})
    np.savez(ctx.dir / "predictions.npz", **{k: np.asarray(v) for k, v in preds.items()})
    atomic_write_json(ctx.dir / "results.json", _jsonable(results))
    return {"checkpoint": path.name, "student": p["student"], "params": int(student.num_params()),
            "macs": int(student.macs()), "hr_mae_test": hr_mae, "finetune": finetune,
            "results": _jsonable(results),
            "input_spec": input_spec}


# ---------------------------------------------------------------- prune / quantize / export

def _windows(inputs, split: str, max_n: int | None = None, seed: int = 0):
    """Normalised ACC windows ``(N, 3, T)`` float32 and reference HR ``(N,)`` bpm of one split.

    With ``max_n``, a seeded random subset spread over every subject and activity of the split
    (the first windows on disk are one subject's first segment: calibrating int8 ranges on
    them clips every other activity)."""
    from distill.data import acc_view, label, load_split
    raw = cohort_dir(inputs["data"]) / "raw"
    w = load_split(str(raw), split)
    if max_n is not None and len(w) > max_n:
        idx = np.sort(np.random.default_rng(seed).choice(len(w), max_n, replace=False))
        w = w.select(idx)
    x = np.ascontiguousarray(acc_view(w, ACC), dtype=np.float32)
    y = label(w, "hr") if "hr" in w.labels else None
    return x, (None if y is None else np.asarray(y, np.float64))


def _size(model, spec) -> dict:
    import torch
    from distill.students._common import count_macs, count_params
    ex = torch.zeros(1, len(spec["channels"]), spec["window"])
    return {"params": int(count_params(model)), "macs": int(count_macs(model, ex))}


def _load_pruned(rec: StageRecord):
    """(model, input spec, output spec) of the prune stage's code-free, manifest-checked checkpoint."""
    from edgefm.export.io import load_model
    lm = load_model(rec.dir / rec.summary["checkpoint"])
    return lm.model, lm.input_spec, lm.output_spec


def stage_prune(ctx: StageContext, inputs: dict) -> dict:
    """Structured channel pruning of the deployable model (student + HR head) with recovery.

    ``amount == 0`` passes the dense model through unchanged (and says so)."""
    _threads()
    import torch
    p = ctx.params
    dl = need("distill", "prune")
    loaded = dl.load_student(inputs["distil"].dir / inputs["distil"].summary["checkpoint"])
    model = loaded.deployable().eval()
    spec = loaded.input_spec
    before = _size(model, spec)
    x_te, y_te = _windows(inputs, "test", max_n=512)
    with torch.no_grad():
        pred0 = model(torch.from_numpy(x_te)).numpy().reshape(-1)
    summary = {"before": {**before, "hr_mae": _mae(pred0, y_te)}, "amount": p["amount"]}
    if p["amount"] > 0:
        q = need("quantize.prune", "prune")
        x_tr, _ = _windows(inputs, "train", max_n=4096)
        ex = (torch.zeros(1, len(spec["channels"]), spec["window"]),)
        # keep the embedding width: the HR head (and an MLP head's normalisation buffers) reads it
        enc_layers = [n for n, m in model.encoder.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv1d,
                                                                                       torch.nn.Conv2d))]
        ignore = (f"encoder.{enc_layers[-1]}",) if enc_layers else ()
        rep = q.prune_(model, q.PruneConfig(ratio=p["amount"], recover_epochs=p["recover_epochs"], seed=p["seed"],
                                            ignore=ignore), ex, data=x_tr)
        summary["prune_report"] = _jsonable(rep.to_dict())
        summary["latency_ms"] = {"before": rep.before.latency_ms, "after": rep.after.latency_ms}
        model.eval()
        with torch.no_grad():
            pred1 = model(torch.from_numpy(x_te)).numpy().reshape(-1)
        after = _size(model, spec)
        summary["after"] = {**after, "hr_mae": _mae(pred1, y_te)}
        summary["macs_reduction"] = 1 - after["macs"] / before["macs"]
    else:
        ctx.log("amount 0: pruning skipped, the dense model goes on")
        summary["after"] = summary["before"]
        summary["macs_reduction"] = 0.0
    out_spec = {"name": "heart_rate", "unit": "bpm"}
    from edgefm.export.io import save_model
    ck = inputs["distil"].dir / inputs["distil"].summary["checkpoint"]
    save_model(ctx.dir / "student_pruned.pt", model, input_spec=spec, output_spec=out_spec,
               source={"checkpoint": str(ck), "sha256": sha256_file(ck)},
               meta={"prune_amount": p["amount"]})
    summary.update(checkpoint="student_pruned.pt", input_spec=spec)
    return summary


def _mae(pred, y):
    if y is None:
        return None
    ok = np.isfinite(y)
    return float(np.mean(np.abs(pred[ok] - y[ok]))) if ok.any() else None


def stage_quantize(ctx: StageContext, inputs: dict) -> dict:
    """int8 PTQ with the shared PT2E scheme, in each backend's form (folded for XNNPACK,
    unfolded for LiteRT, QDQ for ONNX Runtime; one calibration, identical scales); SQNR per
    layer and HR MAE vs float on held-out windows."""
    _threads()
    import copy
    import torch
    p = ctx.params
    q = need("quantize", "quantize")
    from edgefm.export.verify import metrics
    model, spec, out_spec = _load_pruned(inputs["prune"])
    calib, _ = _windows(inputs, "train", max_n=p["calib_windows"])
    x_te, y_te = _windows(inputs, "test", max_n=p.get("eval_windows", 256))
    with torch.no_grad():
        eager = model(torch.from_numpy(x_te)).numpy()
    variants = {"fp32 eager": {"hr_mae": _mae(eager.reshape(-1), y_te)}}
    layers = {}
    for backend in ("pte", "tflite", "onnx"):
        ctx.log(f"int8 PTQ, {backend} form")
        qm = q.quantize_(copy.deepcopy(model), q.QuantConfig(backend=backend, calibration=calib,
                                                             output_range=q.output_range_for(out_spec)))
        outs = []
        for i in range(len(x_te)):        # the quantized graph is traced at batch 1
            o = qm(torch.from_numpy(x_te[i:i + 1]))
            outs.append((o.detach().numpy() if hasattr(o, "detach") else np.asarray(o)).reshape(1, -1))
        pred = np.concatenate(outs)
        m = metrics(pred, eager, y_te)
        ls = [r for r in (qm.layer_sqnr or []) if isinstance(r, dict)]
        variants[f"int8 {backend}"] = {"sqnr_db": m["sqnr_db"], "hr_mae": m.get("mae"), "rel_loss": m.get("rel_loss"),
                                       "min_layer_sqnr_db": min((r.get("sqnr_db", np.inf) for r in ls), default=None)}
        layers[backend] = ls
    atomic_write_json(ctx.dir / "layer_sqnr.json", _jsonable(layers))
    return {"variants": _jsonable(variants), "calib_windows": int(len(calib))}


def stage_export(ctx: StageContext, inputs: dict) -> dict:
    """Export fp32 and int8 to every format; each is verified in its real runtime."""
    _threads()
    p = ctx.params
    ex = need("edgefm.export", "export")
    model, spec, out_spec = _load_pruned(inputs["prune"])
    ck = inputs["prune"].dir / inputs["prune"].summary["checkpoint"]
    calib, _ = _windows(inputs, "train", max_n=inputs["quantize"].summary.get("calib_windows", 256))
    held = _windows(inputs, "test", max_n=p["verify_windows"])
    aspec = ex.ArtifactSpec(source={"checkpoint": str(ck), "sha256": sha256_file(ck),
                                    "student": inputs["distil"].summary.get("student")},
                            input_spec=spec, output_spec=out_spec)
    arts = []
    for int8 in [pr == "int8" for pr in p["precisions"]]:
        for fmt in p["formats"]:
            if fmt == "tflm" and not int8:
                continue
            ctx.log(f"{fmt} {'int8' if int8 else 'fp32'}")
            for r in ex.export(model, fmt, ctx.dir, calib, int8=int8, heldout=held, spec=aspec, name="student"):
                v = r.verification or {}
                arts.append({"artifact": Path(r.path).name, "format": r.format, "int8": int8,
                             "bytes": Path(r.path).stat().st_size, "sha256": sha256_file(r.path)[:16],
                             "sqnr_db": v.get("sqnr_db"), "hr_mae": v.get("mae"), "rel_loss": v.get("rel_loss"),
                             "max_abs_diff": v.get("max_abs_diff"), "manifest": Path(r.manifest).name,
                             **({"arena_bytes": r.extra.get("arena_bytes")} if r.extra.get("arena_bytes") else {})})
    return {"artifacts": arts, "input_spec": spec}


def find_artifact(rec: StageRecord, fmt: str, int8: bool) -> Path:
    for a in rec.summary["artifacts"]:
        if a["format"] == fmt and a["int8"] == int8:
            return rec.dir / a["artifact"]
    raise StageError(f"no {'int8' if int8 else 'fp32'} {fmt} artifact in the export stage", path=rec.dir)


# ---------------------------------------------------------------- gate

def stage_gate(ctx: StageContext, inputs: dict) -> dict:
    """Calibrate the motion gate on the cohort's traces for a target event recall (calibrated on
    the train+val subjects, reported on the held-out test subjects)."""
    p = ctx.params
    cal = need("runtime.calibrate", "gate")
    spec = inputs["export"].summary["input_spec"]
    fs = float(spec["fs_hz"])
    base = cal.GateConfig(fs_hz=fs)
    rep = cal.calibrate(cohort_dir(inputs["data"]) / "traces", target_recall=p["target_recall"],
                        out=ctx.dir / "calibration.json", window_s=spec["window"] / fs, hop_s=spec["hop"] / fs,
                        base=base)
    cfg = rep["gate"]
    atomic_write_json(ctx.dir / "gate.json", cfg)          # GateConfig.to_dict(), read by the demo
    held = rep.get("held_out") or rep["calibration"]
    return {"config": cfg, "skip": held.get("skip"), "recall": held.get("recall"),
            "recall_lower_bound": held.get("recall_lower_bound"), "delay_s": held.get("delay_s_median"),
            "delay_s_p90": held.get("delay_s_p90"), "evaluated_on": held.get("method", "calibration"),
            "calibration": {k: rep["calibration"].get(k) for k in ("skip", "recall")},
            "target_recall": p["target_recall"], "met_target": rep.get("met_target"),
            "cost": _jsonable(rep.get("cost")), "curve": _jsonable(rep.get("curve", []))}


# ---------------------------------------------------------------- simulate

def _fw_gate(cfg: dict):
    """The calibrated gate (``GateConfig.to_dict()``) as the simulator takes it (the runtime's class)."""
    from runtime.gate import GateConfig
    return GateConfig.from_dict(cfg)


def stage_simulate(ctx: StageContext, inputs: dict) -> dict:
    """Energy, latency, memory and battery per policy on the named device over the traces."""
    p = ctx.params
    fs = need("firmware_sim.simulate", "simulate")
    from firmware_sim.device import load_device
    dev = load_device(p["device"])
    # the artifact a wristband runs: int8 .tflite, else the best exported one (named in the summary)
    art = None
    for fmt, int8 in (("tflite", True), ("onnx", True), ("tflite", False), ("onnx", False)):
        try:
            art = find_artifact(inputs["export"], fmt, int8)
            break
        except StageError:
            continue
    if art is None:
        raise StageError("no .tflite or .onnx artifact to simulate in the export stage")
    info = fs.load_model_info(art)          # sha256 checked before the graph is parsed
    gcfg = inputs["gate"].summary["config"]
    traces = fs.load_trace(cohort_dir(inputs["data"]) / "traces")
    res = fs.simulate(info, traces, dev, fs.default_policies(_fw_gate(gcfg)))
    d = _jsonable(res.to_dict())
    atomic_write_json(ctx.dir / "simulation.json", d)
    # what the phone demo needs for its live battery projection
    v = dev.supply_v
    atomic_write_json(ctx.dir / "demo_device.json", {
        "name": dev.name, "battery_j": dev.battery_capacity_mah * 3.6 * dev.battery_voltage_v,
        "floor_w": d["floor_power_uw"] * 1e-6, "inference_j": d["inference_energy_uj"] * 1e-6,
        "gate_j_per_sample": dev.gate_cycles_per_sample / dev.clock_hz * dev.active_current_ma * 1e-3 * v,
        "ppg_w": dev.ppg_power_mw * 1e-3, "source": f"firmware_sim profile {dev.path}"})
    _demo_trace(ctx, traces, inputs)
    rows = [{"policy": r["policy"]["name"], "battery_days": r["battery_days"], "average_power_mw": r["average_power_mw"],
             "of_ceiling": r["ceiling_fraction"], "inferences": r["inferences"], "skipped_fraction": r["skipped_fraction"]}
            for r in d["policies"]]
    mem = [{"resource": k, **{kk: vv for kk, vv in val.items() if not isinstance(vv, (dict, list))}}
           for k, val in (("ram", d.get("ram") or {}), ("flash", d.get("flash") or {}))]
    return {"device": dev.name, "artifact": art.name, "policies": rows, "ceiling_days": d["ceiling_days"], "inference_ms": d["inference_ms"],
            "inference_energy_uj": d["inference_energy_uj"], "worst_case_latency_ms": d["worst_case_latency_ms"],
            "deadline_ms": d["deadline_ms"], "latency_ok": d["latency_ok"], "memory": mem,
            "battery_days": d["battery_days"]}


def _demo_trace(ctx, traces, inputs, seconds: float = 600.0):
    """A 10-minute replay trace for the phone demo: the held-out stretch with the most motion."""
    from edgefm.pipeline.demo import trace_to_json
    split = inputs["data"].summary.get("raw", {}).get("split") or {}
    test = set(split.get("test", []))
    best = None
    for tr in traces:
        if test and not any(s in tr.id for s in test):
            continue
        n = int(seconds * tr.fs_hz)
        for a in range(0, max(1, tr.acc.shape[1] - n), n):
            seg, ok = tr.acc[:, a:a + n], tr.valid[a:a + n]
            if seg.shape[1] < n or not ok.all():
                continue
            score = float(np.std(np.linalg.norm(seg, axis=0)))
            if best is None or score > best[0]:
                best = (score, seg, tr.fs_hz, tr.id, a)
    if best is None:
        raise StageError("no fully valid 10-minute stretch in the traces for the demo replay")
    atomic_write_json(ctx.dir / "demo_trace.json", {**trace_to_json(best[1], best[2]),
                                                    "source": {"trace": best[3], "start_sample": best[4]}})


# ---------------------------------------------------------------- profile

def stage_profile(ctx: StageContext, inputs: dict) -> dict:
    """Host latency of teacher, student and every artifact; target estimates; budget check."""
    _threads()
    p = ctx.params
    prof = need("edgefm.profile", "profile")
    t, d = inputs["teacher"], inputs["distil"]
    arts = [t.dir / t.summary["checkpoint"], d.dir / d.summary["checkpoint"], inputs["export"].dir]
    # the same traces and calibrated gate as the simulate stage, so the budget's battery row and
    # the battery table are one simulation's figures
    res = prof.profile(arts, device=p["device"], budget=(p.get("budget") or {}).get("path"),
                       runs=p["runs"], warmup=p["warmup"], trace=cohort_dir(inputs["data"]) / "traces",
                       gate=_fw_gate(inputs["gate"].summary["config"]))
    prof.write_reports(res, ctx.dir / "profile")
    r = _jsonable(res.to_dict())
    lat = [{"variant": v.get("name"), "kind": v.get("kind"), "dtype": v.get("dtype"), "role": v.get("role"),
            "p50_ms": v.get("p50_ms"), "p90_ms": v.get("p90_ms"), "p99_ms": v.get("p99_ms"),
            "bytes": v.get("bytes"), "rss_peak_mb": v.get("rss_peak_mb"), "error": v.get("error")}
           for v in r["variants"]]
    budget = [{"row": b["name"], "measured": b["measured"], "limit": b["limit"], "unit": b["unit"],
               "pass": b["passed"]} for b in r["budget"]]
    return {"latency": lat, "ratios": r["ratios"], "budget": budget, "passed": r["passed"],
            "seconds_profile": r["seconds"]}


def stage_report(ctx: StageContext, inputs: dict) -> dict:
    from edgefm.report import write_report
    paths = write_report({k: v for k, v in inputs.items()}, ctx.dir)
    return {"files": [str(Path(x).relative_to(ctx.dir)) for x in paths]}
