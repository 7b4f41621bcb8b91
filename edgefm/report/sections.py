"""One builder per report section: ``build(stages) -> Section`` from the stage summaries."""

from __future__ import annotations

from pathlib import Path

from edgefm.report import Section, plot_png


def _sum(stages, name) -> dict | None:
    r = stages.get(name)
    return None if r is None else r.summary


def data_section(stages) -> Section:
    s = Section("data", "Data")
    d = _sum(stages, "data")
    if d is None:
        return s.missing("the data stage did not run")
    info = d.get("info", {})
    s.text(("User data at " + d["cohort"]) if d.get("external") else "Built-in synthetic cohort (edgefm.data.synth).")
    rows = [{"item": "subjects", "value": info.get("subjects") if not isinstance(info.get("subjects"), list)
             else len(info["subjects"])},
            {"item": "hours", "value": info.get("hours")},
            {"item": "wrist-raw windows", "value": d.get("raw", {}).get("n_windows")},
            {"item": "channels", "value": ", ".join(d.get("raw", {}).get("channels", []))},
            {"item": "labels", "value": ", ".join(d.get("raw", {}).get("labels", []))}]
    split = d.get("raw", {}).get("split") or {}
    for k, v in split.items():
        rows.append({"item": f"{k} subjects", "value": len(v)})
    s.table(rows, "cohort summary")
    s.data = {k: r["value"] for k, r in zip([r["item"] for r in rows], rows)}
    return s


def teacher_section(stages) -> Section:
    s = Section("teacher", "Teacher: generative evaluation vs baselines")
    t = _sum(stages, "teacher")
    if t is None:
        return s.missing("the teacher stage did not run")
    s.text(f"LSM-{t.get('size')} masked autoencoder, {t.get('params')} parameters, checkpoint "
           f"{t.get('bytes')} bytes.")
    g = t.get("generative", {})
    if g.get("status") != "ok":
        return s.missing(g.get("reason", "no generative evaluation"))
    tab = g["table"]
    methods = []
    for r in tab["tasks"].values():
        methods += [m for m in r["methods"] if m not in methods]
    rows = []
    for name, r in tab["tasks"].items():
        row = {"task": r.get("label") or name}
        for m in methods:
            row[f"{m} MAE"] = r["methods"].get(m, {}).get("mae")
        row["gain vs linear"] = r.get("gain_vs_linear")
        rows.append(row)
    s.table(rows, f"MAE in normalised units on {tab.get('n_windows')} held-out windows "
                  f"({len(tab.get('subjects', []))} subjects); lower is better")
    rec = stages["teacher"].dir / g.get("reconstructions", "")
    if g.get("reconstructions") and Path(rec).is_file():
        s.figure(Path(rec).read_bytes(), "teacher_reconstructions.png", "teacher reconstructions")
    s.data = {"tasks": tab["tasks"]}
    return s


def distil_section(stages) -> Section:
    s = Section("distil", "Distillation: ACC student vs baselines (held-out subjects)")
    d = _sum(stages, "distil")
    if d is None:
        return s.missing("the distil stage did not run")
    res = d.get("results", {})
    s.text(f"Student {d.get('student')}: {d.get('params')} parameters, {d.get('macs')} MACs per window; "
           f"HR MAE of the deployable model (student + HR head) on test windows: {d.get('hr_mae_test'):.2f} bpm."
           if d.get("hr_mae_test") is not None else f"Student {d.get('student')}.")
    rows = []
    for model, tasks in res.get("probes", {}).items():
        for frac, v in (tasks.get("hr") or {}).items():
            sel = v.get("selected", v)
            rows.append({"model": model, "labels": frac, "HR MAE (bpm)": sel.get("mae")})
    for frac, v in (res.get("supervised", {}).get("hr") or {}).items():
        rows.append({"model": "supervised ACC-only", "labels": frac, "HR MAE (bpm)": v.get("mae")})
    if "hr_mae_constant_train_mean" in res:
        rows.append({"model": "constant (train mean)", "labels": "-", "HR MAE (bpm)": res["hr_mae_constant_train_mean"]})
    s.table(rows, "heart-rate MAE by label fraction (frozen-embedding probes; supervised = same architecture "
                  "trained end to end)")
    ret = res.get("retrieval") or []
    if ret:
        s.table([{k: v for k, v in r.items() if not isinstance(v, (list, dict))} for r in ret],
                "retrieval of the paired teacher embedding")
    if rows:
        def plot(ax):
            models = sorted({r["model"] for r in rows if r["labels"] != "-"})
            for m in models:
                pts = [(r["labels"], r["HR MAE (bpm)"]) for r in rows if r["model"] == m and r["HR MAE (bpm)"] is not None]
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=m)
            ax.set_xlabel("label fraction"); ax.set_ylabel("HR MAE (bpm)"); ax.legend(fontsize=8)
            ax.set_title("label efficiency")
        s.figure(plot_png(plot), "distil_label_efficiency.png", "HR MAE vs labelled fraction")
    s.data = {"student": d.get("student"), "params": d.get("params"), "macs": d.get("macs"),
              "hr_mae_test": d.get("hr_mae_test"), "rows": rows}
    return s


def compression_section(stages) -> Section:
    s = Section("compression", "Compression: pruning and int8 quantization")
    p, q = _sum(stages, "prune"), _sum(stages, "quantize")
    if p is None and q is None:
        return s.missing("the prune and quantize stages did not run")
    rows = []
    if p is not None:
        lat = p.get("latency_ms") or {}
        for k in ("before", "after"):
            if k in p:
                rows.append({"variant": f"fp32 {'pruned' if k == 'after' else 'dense'}", **p[k],
                             "eager_latency_ms": lat.get(k)})
        s.text(f"Structured pruning ratio {p.get('amount')}: MACs reduced by {100 * (p.get('macs_reduction') or 0):.0f}%"
               + (" (pruning skipped)" if not p.get("amount") else "") + ".")
    if q is not None:
        for name, v in (q.get("variants") or {}).items():
            rows.append({"variant": name, **{k: x for k, x in v.items() if not isinstance(x, (dict, list))}})
    s.table(rows, "size, compute and quality per variant (HR MAE in bpm on held-out windows; SQNR vs fp32 eager)",
            ["variant", "params", "macs", "eager_latency_ms", "hr_mae", "sqnr_db", "rel_loss", "min_layer_sqnr_db"])
    s.data = {"prune": p, "quantize": q}
    return s


def export_section(stages) -> Section:
    s = Section("export", "Export verification")
    e = _sum(stages, "export")
    if e is None:
        return s.missing("the export stage did not run")
    rows = [{k: v for k, v in a.items() if not isinstance(v, (dict, list))} for a in e.get("artifacts", [])]
    s.table(rows, "every artifact, loaded and run in its real runtime on held-out windows",
            ["artifact", "format", "int8", "bytes", "sqnr_db", "hr_mae", "rel_loss", "max_abs_diff", "arena_bytes",
             "sha256"])
    s.data = {"artifacts": e.get("artifacts", [])}
    return s


def gate_section(stages) -> Section:
    s = Section("gate", "Opportunistic-inference gate")
    g = _sum(stages, "gate")
    if g is None:
        return s.missing("the gate stage did not run")
    s.table([{"evaluated on": g.get("evaluated_on"), "skip fraction": g.get("skip"), "event recall": g.get("recall"),
              "recall lower bound": g.get("recall_lower_bound"), "detection delay median (s)": g.get("delay_s"),
              "delay p90 (s)": g.get("delay_s_p90"), "target recall": g.get("target_recall"),
              "target met on calibration": g.get("met_target")}],
            "calibrated gate (thresholds from the calibration subjects, figures on held-out subjects)")
    s.table([{k: v for k, v in (g.get("config") or {}).items()}], "gate config (GateConfig.to_dict())")
    curve = g.get("curve") or []
    if curve:
        def plot(ax):
            ax.plot([c["recall"] for c in curve], [c["skip"] for c in curve], "o-", ms=3)
            ax.axvline(g.get("target_recall", 0.95), ls="--", c="gray")
            if g.get("recall") is not None:
                ax.plot([g["recall"]], [g["skip"]], "r*", ms=12, label="chosen")
                ax.legend()
            ax.set_xlabel("event recall"); ax.set_ylabel("windows skipped (fraction)")
            ax.set_title("gate trade-off")
        s.figure(plot_png(plot), "gate_tradeoff.png", "skipped fraction vs event recall")
    s.data = {k: g.get(k) for k in ("skip", "recall", "delay_s", "config")}
    return s


def battery_section(stages) -> Section:
    s = Section("battery", "Battery projection per policy")
    m = _sum(stages, "simulate")
    if m is None:
        return s.missing("the simulate stage did not run")
    rows = m.get("policies", [])
    s.text(f"Device {m.get('device')}, artifact {m.get('artifact')}: on-target inference "
           f"{m.get('inference_ms', 0):.2f} ms, {m.get('inference_energy_uj', 0):.1f} µJ per window "
           f"(worst case {m.get('worst_case_latency_ms', 0):.2f} ms vs the {m.get('deadline_ms', 0):.0f} ms hop deadline); "
           f"physical ceiling (ACC + MCU sleep only) {m.get('ceiling_days', 0):.0f} days.")
    s.table(rows, "energy per policy", ["policy", "battery_days", "of_ceiling", "average_power_mw", "inferences",
                                        "skipped_fraction"])
    if rows:
        def plot(ax):
            names = [r["policy"] for r in rows]
            ax.barh(names, [r["battery_days"] for r in rows], color="#0b5d4b")
            if m.get("ceiling_days"):
                ax.axvline(m["ceiling_days"], ls="--", c="gray", label="ceiling")
                ax.legend()
            ax.set_xlabel("projected battery life (days)"); ax.set_title(f"battery on {m.get('device')}")
        s.figure(plot_png(plot), "battery_per_policy.png", "battery life per policy")
    mem = [r for r in (m.get("memory") or []) if isinstance(r, dict)]
    if mem:
        s.table(mem, "memory vs device limits", ["resource"] + [k for k in mem[0] if k != "resource"])
    s.data = {"battery_days": {r["policy"]: r["battery_days"] for r in rows}, "ceiling_days": m.get("ceiling_days")}
    return s


def latency_section(stages) -> Section:
    s = Section("latency", "Latency per backend (host)")
    p = _sum(stages, "profile")
    if p is None:
        return s.missing("the profile stage did not run")
    rows = p.get("latency", [])
    s.table(rows, "host latency, warm, per variant", ["variant", "role", "kind", "dtype", "p50_ms", "p90_ms", "p99_ms",
                                                      "bytes", "rss_peak_mb", "error"])
    if rows:
        def plot(ax):
            ax.barh([r["variant"] for r in rows], [r.get("p50_ms") or 0 for r in rows], color="#2a6f97")
            ax.set_xscale("log"); ax.set_xlabel("p50 latency (ms, log)"); ax.set_title("latency per variant")
        s.figure(plot_png(plot), "latency_per_variant.png", "p50 latency per variant")
    s.data = {"latency": rows}
    return s


def budget_section(stages) -> Section:
    s = Section("budget", "Budget")
    p = _sum(stages, "profile")
    if p is None:
        return s.missing("the profile stage did not run")
    rows = p.get("budget") or []
    if not rows:
        return s.text("No budget file given (`--budget FILE`); nothing to check.")
    s.table(rows, "budget rows", ["row", "measured", "limit", "unit", "pass"])
    ok = all(r.get("pass") for r in rows)
    s.text("All budget rows pass." if ok else "Budget FAILED: " + ", ".join(r["row"] for r in rows if not r.get("pass")))
    s.data = {"pass": ok, "rows": rows}
    return s


def timing_section(stages) -> Section:
    s = Section("timing", "Run")
    s.table([{"stage": k, "seconds": getattr(v, "seconds", None), "skipped (inputs unchanged)": getattr(v, "skipped", False)}
             for k, v in stages.items()], "stage times")
    return s


SECTIONS = [data_section, teacher_section, distil_section, compression_section, export_section, gate_section,
            battery_section, latency_section, budget_section, timing_section]
