"""The pipeline on imported recordings (``edgefm pipeline run --data DIR`` where DIR is what
``edgefm data import`` wrote, any format).

Stages (``RUN/<stage>/``), each a short call of the public API the CLI commands also call:

=========  ===========================================================================================
data       window the recordings for the task (``--task``, else from the labels present; the task's
           preset unless ``--fs-hz/--window-s/--hop-s``), split by subject (the dataset's own split,
           else seeded): :func:`edgefm.tasks.deploy.windows_for`
teacher    says why it does not run: the LSM teacher and PPG -> ACC distillation run on the synthetic
           cohort (``edgefm pipeline run`` without ``--data``); here the task's student learns the
           labels directly (without PPG in the data there is no PPG teacher at all)
model      :func:`edgefm.tasks.build_deployable`: train on training subjects, int8, export to
           ExecuTorch, LiteRT, ONNX, TFLite Micro, each verified in its runtime
gate       :func:`runtime.calibrate.calibrate` when the recordings have events (activity or freeze
           labels) and 3-axis ACC; otherwise one line saying so, and the simulator runs the model on
           every window
simulate   :func:`firmware_sim.simulate` on the recordings themselves (they are the only continuous
           data there is; their length is stated)
profile    :func:`edgefm.profile.profile` of the artifacts on the host, the device estimate, budget
report     ``report.md`` + ``report.html``: every stage's figures and every fallback taken
=========  ===========================================================================================
"""

from __future__ import annotations

import json
from pathlib import Path

from edgefm.manifest import atomic_write_json, read_json, sha256_file
from edgefm.pipeline.core import StageContext, StageError

STAGES = ("data", "teacher", "model", "gate", "simulate", "profile", "report")
DEPS = {"data": (), "teacher": ("data",), "model": ("data",), "gate": ("data", "model"),
        "simulate": ("data", "model", "gate"), "profile": ("data", "model", "gate"),
        "report": ("data", "teacher", "model", "gate", "simulate", "profile")}
DOC = {"data": "window + split the recordings", "teacher": "teacher / distillation (or why not)",
       "model": "train, int8, export, verify", "gate": "calibrate the motion gate (or why not)",
       "simulate": "firmware/battery simulation", "profile": "host latency + budget", "report": "report"}
PRESET = {"quick": {"epochs": 5, "runs": 20, "warmup": 3}, "default": {"epochs": 25, "runs": 100, "warmup": 10}}
ETA_S = {"quick": {"data": 10, "teacher": 1, "model": 60, "gate": 10, "simulate": 10, "profile": 30, "report": 2},
         "default": {"data": 20, "teacher": 1, "model": 120, "gate": 20, "simulate": 20, "profile": 60, "report": 2}}
EVENT_LABELS = ("activity", "freeze")


def is_recordings(path: Path) -> bool:
    """Whether ``path`` is a recordings store (``edgefm data import`` output), not a cohort."""
    p = Path(path) / "manifest.json"
    if not p.is_file():
        return False
    try:
        return read_json(p).get("kind") == "recordings"
    except Exception:           # a malformed manifest is reported by the cohort validation
        return False


def _data_path(inputs) -> Path:
    return Path(inputs["data"].summary["path"])


def _deploy_config(p: dict):
    from edgefm.tasks import DeployConfig, FitConfig
    return DeployConfig(task=p.get("task"), sensors=p.get("sensors", "led_on"), fs_hz=p.get("fs_hz"),
                        window_s=p.get("window_s"), hop_s=p.get("hop_s"), split=p.get("split", "manifest"),
                        seed=p["seed"], fit=FitConfig(epochs=p["epochs"], seed=p["seed"]))


def stage_data(ctx: StageContext, inputs: dict) -> dict:
    """Window the recordings for the task and split them by subject (nothing is copied)."""
    from edgefm.data.store import open_manifest
    from edgefm.tasks.data import dataset_channels, dataset_labels, split_subjects
    from edgefm.tasks.deploy import windows_for
    p = ctx.params
    src = Path(p["path"])
    tw = windows_for(src, _deploy_config(p))
    split = split_subjects(tw, p.get("split", "manifest"), p["seed"], open_manifest(src, "recordings").get("split"))
    ch = dataset_channels(src)
    labels = dataset_labels(src)
    atomic_write_json(ctx.dir / "source.json", {"path": str(src.resolve()),
                                                "manifest_sha256": sha256_file(src / "manifest.json")})
    ctx.log(f"{tw.task.name}: {len(tw)} windows of {len(set(tw.subject))} subjects, "
            f"{', '.join(tw.channels)} at {tw.fs_hz:g} Hz")
    return {"path": str(src.resolve()), "task": tw.task.name, "channels": list(tw.channels), "fs_hz": tw.fs_hz,
            "window_s": tw.window / tw.fs_hz, "hop_s": tw.hop / tw.fs_hz, "windows": len(tw),
            "subjects": sorted(set(tw.subject.tolist())), "split": split, "label_counts": tw.label_counts(),
            "data_channels": sorted(ch), "data_labels": sorted(labels),
            "has_ppg": any(c.startswith("ppg") for c in ch),
            "has_events": any(k in labels for k in EVENT_LABELS),
            "has_acc": all(f"acc_{a}" in ch for a in "xyz")}


def stage_teacher(ctx: StageContext, inputs: dict) -> dict:
    """Say why no teacher is trained on imported recordings (one line, kept for the report)."""
    d = inputs["data"].summary
    why = ("no PPG in the data, so no PPG teacher: the task's student learns the labels directly"
           if not d["has_ppg"] else
           "the LSM teacher and PPG -> ACC distillation run on the synthetic cohort (`edgefm pipeline run` "
           "without --data); on imported recordings the task's student learns the labels directly")
    ctx.log(f"teacher: not run ({why})")
    return {"ran": False, "reason": why}


def stage_model(ctx: StageContext, inputs: dict) -> dict:
    """:func:`edgefm.tasks.build_deployable` on the recordings."""
    from edgefm.tasks import build_deployable
    p = ctx.params
    d = inputs["data"].summary
    cfg = _deploy_config({**p, "task": d["task"], "split": d["split"]})
    res = build_deployable(_data_path(inputs), ctx.dir / "model", cfg, log=ctx.log)
    arts = []
    for a in res.artifacts:
        v = a["verification"]
        row = {"format": a["format"], "artifact": str(Path("model") / Path(a["path"]).name)}
        if "abs_err" in v:
            row["int8 vs fp32 per window, p50 / p99 / max (bpm)"] = "{p50:.3f} / {p99:.3f} / {max:.3f}".format(**v["abs_err"])
            row["per-window MAE (bpm)"] = v.get("mae")
        else:
            row["int8 vs fp32 agreement"] = v.get("agreement")
            row["macro-F1"] = v.get("macro_f1")
        row["sqnr_db"] = v.get("sqnr_db")
        arts.append(row)
    return {"task": d["task"], "dir": "model", "test": res.metrics["test"], "params": res.metrics["params"],
            "macs": res.metrics["macs"], "artifacts": arts, "input_spec": res.model.input_spec,
            "output_spec": res.model.output_spec}


def stage_gate(ctx: StageContext, inputs: dict) -> dict:
    """Calibrate the gate when the recordings have events and ACC; else say why not."""
    d = inputs["data"].summary
    if not d["has_events"] or not d["has_acc"]:
        why = ("no activity or freeze labels: no events to calibrate the gate on" if not d["has_events"]
               else "no 3-axis accelerometer for the gate")
        ctx.log(f"gate: not calibrated ({why}); the simulator runs the model on every window")
        return {"calibrated": False, "reason": why}
    from runtime.calibrate import calibrate
    from runtime.gate import GateConfig
    spec = inputs["model"].summary["input_spec"]
    fs = float(spec["fs_hz"])
    block = _gate_block(spec)
    from edgefm.errors import DataError
    try:
        rep = calibrate(_data_path(inputs), target_recall=ctx.params["target_recall"],
                        out=ctx.dir / "calibration.json", window_s=spec["window"] / fs, hop_s=spec["hop"] / fs,
                        base=GateConfig(fs_hz=fs, block_s=block / fs, off_hold_s=max(1.0, block / fs)))
    except DataError as e:            # e.g. labels, but none of the gate's event classes
        why = f"the gate cannot be calibrated on these labels ({e.one_line()})"
        ctx.log(f"gate: not calibrated ({why}); the simulator runs the model on every window")
        return {"calibrated": False, "reason": why}
    atomic_write_json(ctx.dir / "gate.json", rep["gate"])
    held = rep.get("held_out") or rep["calibration"]
    return {"calibrated": True, "config": rep["gate"], "skip": held.get("skip"), "recall": held.get("recall"),
            "recall_lower_bound": held.get("recall_lower_bound"), "evaluated_on": held.get("method", "calibration"),
            "target_recall": ctx.params["target_recall"], "met_target": rep.get("met_target")}


def _gate_block(spec: dict) -> int:
    """Gate block (samples) that tiles the model's window and hop: their largest common divisor
    of at most one second."""
    import math
    g = math.gcd(int(spec["window"]), int(spec["hop"]))
    return max(d for d in range(1, g + 1) if g % d == 0 and d <= float(spec["fs_hz"]))


def _gate(inputs, default: bool = False):
    """The calibrated gate; else None, or (``default``) the runtime's default thresholds on blocks
    that tile the model's windows (what the profile's simulation needs to run at all)."""
    from runtime.gate import GateConfig
    g = inputs["gate"].summary
    if g.get("calibrated"):
        return GateConfig.from_dict(g["config"])
    if not default:
        return None
    spec = inputs["model"].summary["input_spec"]
    fs, b = float(spec["fs_hz"]), _gate_block(spec)
    return GateConfig(fs_hz=fs, block_s=b / fs, off_hold_s=max(1.0, b / fs))


def _artifact(inputs, fmt: str) -> Path:
    m = inputs["model"]
    for a in m.summary["artifacts"]:
        if a["format"] == fmt:
            return m.dir / a["artifact"]
    raise StageError(f"no {fmt} artifact in the model stage", path=m.dir)


def stage_simulate(ctx: StageContext, inputs: dict) -> dict:
    """The firmware simulator on the recordings themselves."""
    import importlib
    fs = importlib.import_module("firmware_sim.simulate")
    from firmware_sim.device import load_device
    from firmware_sim.simulate import Policy
    d = inputs["data"].summary
    if not d["has_acc"]:
        ctx.log("simulate: not run (the recordings have no 3-axis accelerometer to replay)")
        return {"ran": False, "reason": "no 3-axis accelerometer in the recordings"}
    dev = load_device(ctx.params["device"])
    info = fs.load_model_info(_artifact(inputs, "tflite"))
    traces = fs.load_trace(_data_path(inputs))
    gate = _gate(inputs)
    pols = fs.default_policies(gate) if gate is not None else [Policy("continuous-ppg", run_model=True, gate=None, ppg="on"),
                                                                Policy("acc-always", run_model=True, gate=None, ppg="off")]
    res = fs.simulate(info, traces, dev, pols)
    out = json.loads(json.dumps(res.to_dict(), default=str))
    atomic_write_json(ctx.dir / "simulation.json", out)
    hours = sum(t.acc.shape[1] / t.fs_hz for t in traces) / 3600
    note = (f"simulated over the {len(traces)} imported recordings ({hours:.2f} h in all): the only continuous "
            "data there is; battery days extrapolate them")
    ctx.log(f"simulate: {note}")
    return {"ran": True, "device": dev.name, "note": note, "hours": hours,
            "policies": [{"policy": r["policy"]["name"], "battery_days": r["battery_days"],
                          "average_power_mw": r["average_power_mw"], "inferences": r["inferences"],
                          "skipped_fraction": r["skipped_fraction"]} for r in out["policies"]],
            "inference_ms": out.get("inference_ms"), "inference_energy_uj": out.get("inference_energy_uj")}


def stage_profile(ctx: StageContext, inputs: dict) -> dict:
    """Host latency of every artifact, the device estimate, and the budget."""
    from edgefm.profile import profile
    from edgefm.profile.report import write_reports
    p = ctx.params
    d = inputs["data"].summary
    res = profile([inputs["model"].dir / "model"], device=p["device"], budget=(p.get("budget") or {}).get("path"),
                  runs=p["runs"], warmup=p["warmup"], trace=_data_path(inputs) if d["has_acc"] else None,
                  gate=_gate(inputs, default=True))
    write_reports(res, ctx.dir / "profile")
    r = json.loads(json.dumps(res.to_dict(), default=str))
    return {"latency": [{"variant": v.get("name"), "dtype": v.get("dtype"), "p50_ms": v.get("p50_ms"),
                         "p99_ms": v.get("p99_ms"), "bytes": v.get("bytes"), "error": v.get("error")}
                        for v in r["variants"]],
            "budget": [{"row": b["name"], "measured": b["measured"], "limit": b["limit"], "unit": b["unit"],
                        "pass": b["passed"]} for b in r["budget"]], "passed": r["passed"]}


def stage_report(ctx: StageContext, inputs: dict) -> dict:
    """``report.html`` / ``.md`` / ``.json`` (:func:`edgefm.report.write_sections`): verdict first,
    then each stage's figures and fallbacks."""
    from edgefm.report import Section, write_sections
    d, m = inputs["data"].summary, inputs["model"].summary
    t8 = m["test"].get("int8", {})
    prof = inputs["profile"].summary
    if "hr_mae" in t8:
        headline = (f"heart rate on held-out subjects {', '.join(d['split']['test'])}: int8 MAE {t8['hr_mae']:.2f} bpm "
                    f"(tracked across windows; {t8['hr_mae_per_window']:.2f} per window)")
    else:
        headline = (f"{d['task']} on held-out subjects {', '.join(d['split']['test'])}: int8 macro-F1 "
                    f"{t8['macro_f1']:.3f}, balanced accuracy {t8['balanced_accuracy']:.3f}")
    verdict = ("budget: passed" if prof.get("passed") else "budget: FAILED") if prof.get("budget") else "no budget given"
    rows = [("summary", "Summary", [{"what": "data", "value": f"{d['path']} - {d['windows']} windows, "
                                                             f"{len(d['subjects'])} subjects"},
                                    {"what": "model", "value": headline}, {"what": "verdict", "value": verdict}])]
    notes = [{"stage": "teacher", "note": inputs["teacher"].summary["reason"]}]
    g, sim = inputs["gate"].summary, inputs["simulate"].summary
    if not g.get("calibrated"):
        notes.append({"stage": "gate", "note": g["reason"] + "; the simulator runs the model on every window"})
    if sim.get("note") or sim.get("reason"):
        notes.append({"stage": "simulate", "note": sim.get("note") or sim.get("reason")})
    rows.append(("fallbacks", "Fallbacks taken", notes))
    rows.append(("artifacts", "Artifacts (int8, verified in their runtimes on held-out windows)", m["artifacts"]))
    if g.get("calibrated"):
        rows.append(("gate", "Gate", [{k: g.get(k) for k in ("skip", "recall", "recall_lower_bound", "evaluated_on",
                                                              "met_target")}]))
    if sim.get("ran"):
        rows.append(("battery", f"Battery on {sim['device']}", sim["policies"]))
    rows.append(("latency", "Latency (host)", prof.get("latency", [])))
    if prof.get("budget"):
        rows.append(("budget", "Budget", prof["budget"]))
    sections = [Section(key, title).table(r) for key, title, r in rows]
    cm = inputs["model"].dir / "model" / "confusion.png"
    if cm.exists():
        sections[0].figure(cm.read_bytes(), "confusion.png", "int8 model on the held-out subjects")
    files = write_sections(sections, ctx.dir, f"edgefm pipeline on {Path(d['path']).name}: {d['task']}",
                           {"headline": headline, "verdict": verdict})
    ctx.log(headline + "; " + verdict)
    return {"files": [f.name for f in files], "headline": headline, "verdict": verdict}
