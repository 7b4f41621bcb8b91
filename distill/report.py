"""Distillation report: Markdown + JSON + plots (matplotlib, Agg backend).

``write_report(results, out_dir, predictions=None)`` writes
  report.json               the results dict (deterministic JSON)
  report.md                 tables: sizes, retrieval (with chance), HR/RMSSD/class probes per
                            label fraction for student / SSL / teacher, supervised baseline
  hr_pred_vs_ref.png        predicted vs reference HR (bpm) per model, held-out subjects
  bland_altman.png          difference vs mean (bpm) with bias and 95% limits of agreement
  label_efficiency.png      HR MAE vs label fraction per model
``results`` layout: {"datasets": {name: {"retrieval": {...}, "probes": {model: probe_suite},
"supervised": {label: {pct: {...}}}, ...}}, "student": {...}}; ``predictions``:
{dataset: {"ref": (N,), model: (N,) ...}} in bpm.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefm.manifest import atomic_dir, atomic_write_json


def _fmt(v, nd=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return "nan" if not np.isfinite(v) else f"{v:.{nd}f}"
    return str(v)


def _clean(o):
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, (np.floating, float)):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    return o


def markdown(results: dict) -> str:
    L = ["# PPG → ACC distillation report", ""]
    st = results.get("student", {})
    if st:
        L += [f"Student `{st.get('name')}`: **{st.get('params')}** parameters, **{st.get('macs')}** MACs "
              f"per window (targets ≤ 100k, ≤ 5M).", ""]
    for ds, r in results.get("datasets", {}).items():
        L += [f"## {ds}", ""]
        if r.get("note"):
            L += [r["note"], ""]
        ret = r.get("retrieval")
        if ret:
            L += ["Retrieval of the paired teacher (PPG) embedding from the ACC embedding, held-out subjects:", "",
                  "| batch N | top-1 | chance 1/N | top-5 | chance 5/N | batches |", "|---|---|---|---|---|---|"]
            for rr in (ret if isinstance(ret, list) else [ret]):
                L.append(f"| {rr['batch']} | {_fmt(rr['top1'], 3)} | {_fmt(rr['chance_top1'], 3)} | "
                         f"{_fmt(rr['top5'], 3)} | {_fmt(rr['chance_top5'], 3)} | {rr['n_batches']} |")
            L.append("")
        if r.get("hr_mae_constant_train_mean") is not None:
            L += [f"Reference: always predicting the train split's mean HR gives MAE "
                  f"{_fmt(r['hr_mae_constant_train_mean'])} bpm on the test subjects "
                  f"({', '.join(r.get('subjects', {}).get('test', []))}).", ""]
        probes = r.get("probes", {})
        sup = r.get("supervised", {})
        tasks = sorted({t for m in probes.values() for t in m})
        for t in tasks:
            reg = any("mae" in (v.get("selected") or {}) for m in probes.values() for v in m.get(t, {}).values())
            unit = {"hr": "bpm", "rmssd": "ms"}.get(t, "")
            L += [f"### {t}: {'MAE' if reg else 'balanced accuracy / macro-F1'} {f'({unit})' if unit else ''}", "",
                  "| model | probe | " + " | ".join(sorted({p for m in probes.values() for p in m.get(t, {})},
                                                          key=lambda s: float(s[:-1]))) + " |"]
            pcts = sorted({p for m in probes.values() for p in m.get(t, {})}, key=lambda s: float(s[:-1]))
            L.append("|---|---|" + "---|" * len(pcts))
            for model, m in probes.items():
                for pk in ("linear", "mlp", "selected"):
                    cells = []
                    for p in pcts:
                        s = m.get(t, {}).get(p, {}).get(pk)
                        if not s:
                            cells.append("–")
                        elif reg:
                            cells.append(f"{_fmt(s['mae'])} ± {_fmt(s.get('mae_std'))}")
                        else:
                            cells.append(f"{_fmt(s['balanced_accuracy'], 3)} / {_fmt(s['macro_f1'], 3)}")
                    L.append(f"| {model} | {pk} | " + " | ".join(cells) + " |")
            if t in sup:
                cells = [f"{_fmt(sup[t][p]['mae'])} ± {_fmt(sup[t][p].get('mae_std'))}" if p in sup[t] else "–"
                         for p in pcts]
                L.append("| supervised (end-to-end) | own head | " + " | ".join(cells) + " |")
            L.append("")
            n = {p: next((m[t][p].get("n_labels") for m in probes.values() if p in m.get(t, {})), None) for p in pcts}
            L += ["labelled train windows per fraction: " + ", ".join(f"{p}: {n[p]}" for p in pcts), ""]
        if r.get("bland_altman"):
            L += ["Bland–Altman (prediction − reference, bpm, 100% labels):", "",
                  "| model | bias | 95% LoA | n |", "|---|---|---|---|"]
            for model, b in r["bland_altman"].items():
                L.append(f"| {model} | {_fmt(b['bias'])} | {_fmt(b['loa_low'])} … {_fmt(b['loa_high'])} | {b['n']} |")
            L.append("")
        if r.get("cross"):
            L += ["Cross-dataset HR MAE (bpm) — " + r["cross"].get("protocol", ""), "",
                  "| model | MAE |", "|---|---|"]
            for k, v in r["cross"].items():
                if k.startswith("hr_mae_") and isinstance(v, (int, float)):
                    L.append(f"| {k[7:]} | {_fmt(float(v))} |")
            L += ["", f"{r['cross'].get('n_windows')} windows of subjects {', '.join(r['cross'].get('subjects', []))}", ""]
    return "\n".join(L) + "\n"


def _plots(results: dict, predictions: dict, d: Path) -> list[str]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    made = []
    dsets = [k for k in predictions if len(predictions[k].get("ref", []))]
    if dsets:
        models = sorted({m for k in dsets for m in predictions[k] if m != "ref"})
        for kind in ("pred", "ba"):
            fig, axes = plt.subplots(len(dsets), len(models), figsize=(3.2 * len(models), 3.0 * len(dsets)),
                                     squeeze=False)
            for i, ds in enumerate(dsets):
                ref = np.asarray(predictions[ds]["ref"], float)
                for j, m in enumerate(models):
                    ax = axes[i, j]
                    if m not in predictions[ds]:
                        ax.axis("off")
                        continue
                    p = np.asarray(predictions[ds][m], float)
                    ok = np.isfinite(ref) & np.isfinite(p)
                    if kind == "pred":
                        ax.scatter(ref[ok], p[ok], s=2, alpha=0.3)
                        lo, hi = np.nanmin(ref[ok]) if ok.any() else 40, np.nanmax(ref[ok]) if ok.any() else 180
                        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
                        ax.set_xlabel("reference HR (bpm)"); ax.set_ylabel("predicted HR (bpm)")
                    else:
                        mean, diff = (ref[ok] + p[ok]) / 2, p[ok] - ref[ok]
                        ax.scatter(mean, diff, s=2, alpha=0.3)
                        if len(diff) > 1:
                            b, s = diff.mean(), diff.std(ddof=1)
                            for y, st in ((b, "-"), (b - 1.96 * s, "--"), (b + 1.96 * s, "--")):
                                ax.axhline(y, color="k", ls=st, lw=0.8)
                        ax.set_xlabel("mean of ref and pred (bpm)"); ax.set_ylabel("pred − ref (bpm)")
                    ax.set_title(f"{ds}: {m}", fontsize=9)
            fig.tight_layout()
            name = "hr_pred_vs_ref.png" if kind == "pred" else "bland_altman.png"
            fig.savefig(d / name, dpi=90)
            plt.close(fig)
            made.append(name)
    # label efficiency
    dnames = [k for k, r in results.get("datasets", {}).items() if "hr" in str(r.get("probes", {}).keys()) or
              any("hr" in m for m in r.get("probes", {}).values())]
    if dnames:
        fig, axes = plt.subplots(1, len(dnames), figsize=(4.5 * len(dnames), 3.5), squeeze=False)
        for ax, ds in zip(axes[0], dnames):
            r = results["datasets"][ds]
            for model, m in r.get("probes", {}).items():
                pts = sorted((float(p[:-1]), v["selected"]["mae"]) for p, v in m.get("hr", {}).items())
                if pts:
                    ax.plot(*zip(*pts), "o-", label=model)
            pts = sorted((float(p[:-1]), v["mae"]) for p, v in r.get("supervised", {}).get("hr", {}).items())
            if pts:
                ax.plot(*zip(*pts), "s--", label="supervised")
            ax.set_xscale("log"); ax.set_xlabel("labels used (%)"); ax.set_ylabel("HR MAE (bpm)")
            ax.set_title(ds); ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(d / "label_efficiency.png", dpi=90)
        plt.close(fig)
        made.append("label_efficiency.png")
    return made


def write_report(results: dict, out_dir: str | Path, predictions: dict | None = None, *,
                 overwrite: bool = False) -> Path:
    """Write report.md, report.json and the plots into ``out_dir`` atomically; returns it
    (an existing non-empty ``out_dir`` is replaced only with ``overwrite``)."""
    out_dir = Path(out_dir)
    clean = _clean(results)
    with atomic_dir(out_dir, overwrite=overwrite) as d:
        plots = _plots(clean, predictions or {}, d)
        clean["plots"] = plots
        atomic_write_json(d / "report.json", clean)
        (d / "report.md").write_text(markdown(clean) + "".join(f"\n![{p}]({p})\n" for p in plots))
    return out_dir
