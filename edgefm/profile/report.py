"""Profile reports: JSON, Markdown, and a self-contained HTML page with embedded PNG plots.

The plot functions (``plot_latency``, ``plot_energy``, ``plot_battery``) return PNG bytes and
are reused by the pipeline's report.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from edgefm.manifest import atomic_dir, atomic_write_bytes, dumps


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return buf.getvalue()


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_latency(rows: list[dict]) -> bytes:
    """Host p50 per variant (log scale) with p90-p99 whiskers."""
    plt = _plt()
    ok = [r for r in rows if r.get("ok") and r.get("p50_ms")]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(ok) + 1.2))
    names = [r["name"] for r in ok]
    p50 = [r["p50_ms"] for r in ok]
    err = [[0 for _ in ok], [r["p99_ms"] - r["p50_ms"] for r in ok]]
    colors = ["#c44e52" if r["kind"] == "eager" else "#4c72b0" if r["dtype"] == "fp32" else "#55a868" for r in ok]
    ax.barh(names, p50, xerr=err, color=colors, capsize=3)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("host latency per window, ms (bar p50, whisker p99; log scale)")
    ax.set_title("Latency per variant (red eager, blue fp32, green int8)")
    return _png(fig)


def plot_energy(sim: dict) -> bytes:
    """Average power per policy, stacked by component (uW)."""
    plt = _plt()
    pols = sim["policies"]
    comps = list(pols[0]["power_uw"])
    fig, ax = plt.subplots(figsize=(7, 3.2))
    left = [0.0] * len(pols)
    names = [p["policy"]["name"] for p in pols]
    for c in comps:
        vals = [p["power_uw"][c] for p in pols]
        ax.barh(names, vals, left=left, label=c)
        left = [a + b for a, b in zip(left, vals)]
    ax.axvline(sim["floor_power_uw"], color="k", ls="--", lw=1, label="floor (ACC + sleep)")
    ax.invert_yaxis()
    ax.set_xlabel("average power, uW")
    ax.set_title(f"Energy breakdown on {sim['device']}")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    return _png(fig)


def plot_battery(sim: dict) -> bytes:
    """Projected battery days per policy beside the physical ceiling."""
    plt = _plt()
    pols = sim["policies"]
    names = [p["policy"]["name"] for p in pols] + ["ceiling"]
    days = [p["battery_days"] for p in pols] + [sim["ceiling_days"]]
    fig, ax = plt.subplots(figsize=(7, 3))
    bars = ax.barh(names, days, color=["#4c72b0"] * len(pols) + ["#999999"])
    for b, d, p in zip(bars, days, pols + [None]):
        txt = f"{d:.1f} d" + (f"  ({p['ceiling_fraction']:.0%} of ceiling)" if p else "")
        ax.text(b.get_width(), b.get_y() + b.get_height() / 2, " " + txt, va="center", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlim(min(days) / 1.5, max(days) * 6)   # room for the labels
    ax.invert_yaxis()
    ax.set_xlabel("projected battery life, days (log scale)")
    ax.set_title(f"Battery projection on {sim['device']}")
    return _png(fig)


def _fmt(v, nd=2):
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.{nd}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def variant_table(res) -> tuple[list[str], list[list[str]]]:
    head = ["variant", "kind", "dtype", "p50 ms", "p90 ms", "p99 ms", "per s", "peak RSS MB", "model RSS MB",
            "size KB", "params", "MACs"]
    body = []
    for r in res.rows:
        name = _variant_name(r)
        if not r["ok"]:
            body.append([name, r["kind"], r["dtype"], "failed: " + r["error"][:160]] + [""] * 8)
            continue
        body.append([name, f"{r['role']} {r['kind']}" if r["kind"] == "eager" else r["kind"], r["dtype"],
                     _fmt(r["p50_ms"], 3), _fmt(r["p90_ms"], 3), _fmt(r["p99_ms"], 3),
                     _fmt(r["throughput_per_s"], 0), _fmt(r["rss_peak_mb"], 0), _fmt(r["rss_model_mb"], 1),
                     _fmt(r["bytes"] / 1024, 1), _fmt(r["params"]), _fmt(r["macs"])])
    return head, body


def _variant_name(r: dict) -> str:
    """The row's name, marked when its integrity was not checked or it was refused."""
    mark = {"unverified": " [unverified]", "refused": " [refused]"}.get(r.get("integrity", ""), "")
    return r["name"] + mark


def integrity_lines(res) -> list[str]:
    """What was not verified or not run, and the overall verdict: for every report format."""
    lines = []
    if res.unverified:
        lines.append("UNVERIFIED (no manifest, sha256 not checked; accepted with --unverified): "
                     + ", ".join(res.unverified))
    for p in res.problems:
        lines.append(f"{'REFUSED' if p['integrity'] == 'refused' else 'FAILED'}: {p['name']}: {p['reason']}")
    lines.append("passed: " + ("true" if res.passed else "false"))
    return lines


def policy_table(sim: dict) -> tuple[list[str], list[list[str]]]:
    head = ["policy", "avg power uW", "battery days", "of ceiling", "inferences", "skipped"]
    body = [[p["policy"]["name"], _fmt(p["average_power_mw"] * 1e3, 1), _fmt(p["battery_days"], 1),
             f"{p['ceiling_fraction']:.0%}", _fmt(p["inferences"]), f"{p['skipped_fraction']:.0%}"]
            for p in sim["policies"]]
    body.append(["ceiling (ACC + MCU sleep)", _fmt(sim["floor_power_uw"], 1), _fmt(sim["ceiling_days"], 1),
                 "100%", "", ""])
    return head, body


def target_lines(sim: dict) -> list[str]:
    ram, fl = sim["ram"], sim["flash"]
    arena_m = ram["arena_bytes_measured"]
    integrity = sim.get("model_integrity", "")
    return [
        f"device {sim['device']}: model {sim['model']['name']} ({sim['model']['macs']:,} MACs)"
        + (f" [{integrity.upper()}: no manifest, sha256 not checked]" if integrity == "unverified" else ""),
        f"latency: {sim['inference_ms']:.2f} ms per inference, worst case {sim['worst_case_latency_ms']:.2f} ms "
        f"vs hop deadline {sim['deadline_ms']:.0f} ms -> {'OK' if sim['latency_ok'] else 'MISSED'}",
        f"energy per inference: {sim['inference_energy_uj']:.1f} uJ",
        f"arena: measured (TFLite Micro) {_fmt(arena_m)} B, estimated {ram['arena_bytes_estimated']:,} B"
        + (f" [{ram['arena_note']}]" if ram.get("arena_note") else "") + "; "
        f"RAM total {ram['total_bytes'] / 1024:.1f} KiB (arena + {ram['buffers_bytes']:,} B buffers + "
        f"{ram['reserved_bytes'] / 1024:.0f} KiB reserved) of {ram['limit_bytes'] / 1024:.0f} KiB -> "
        f"{'OK' if ram['ok'] else 'OVER'}",
        f"flash: {fl['total_bytes'] / 1024:.1f} KiB (model {fl['model_bytes'] / 1024:.1f} KiB + runtime "
        f"{fl['runtime_bytes'] / 1024:.0f} KiB + reserved {fl['reserved_bytes'] / 1024:.0f} KiB) of "
        f"{fl['limit_bytes'] / 1024:.0f} KiB -> {'OK' if fl['ok'] else 'OVER'}",
        f"trace: {sim.get('trace_source', ', '.join(sim['traces']))}, {sim['duration_days']:.2f} days",
    ]


def _md_table(head, body) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in body]
    return "\n".join(out)


def to_markdown(res) -> str:
    parts = ["# edgefm profile", "", f"Host timings: {res.settings.get('host_timing')}; "
             f"{res.settings.get('runs')} runs after {res.settings.get('warmup')} warm-up. "
             f"Total {res.seconds:.1f} s.", ""] + ["- " + l for l in integrity_lines(res)] + \
        ["", _md_table(*variant_table(res)), ""]
    main = {k: v for k, v in res.ratios.items() if k.startswith("ratio_")}
    if main:
        parts += ["## Ratios (p50, same run)", "", _md_table(["ratio", "x"], [[k, f"{v:,.1f}"] for k, v in main.items()]), ""]
    if res.sim:
        parts += [f"## Target estimate ({res.sim['device']}, from {res.sim_model})", ""]
        parts += ["- " + l for l in target_lines(res.sim)] + ["", _md_table(*policy_table(res.sim)), ""]
        if res.sim.get("layers_ms"):
            parts += [f"Slowest layers on {res.sim['device']} (cycles per MAC from the profile's calibration):", "",
                      _md_table(["layer", "op", "MACs", "ms"], [[l["name"], l["op"], f"{l['macs']:,}", f"{l['ms']:.2f}"]
                                                               for l in res.sim["layers_ms"][:8]]), ""]
    if res.budget:
        parts += [f"## Budget ({res.budget_path}): {'PASS' if res.passed else 'FAIL'}", "",
                  _md_table(["check", "measured", "limit", "result", "note"],
                            [[r.name, _fmt(r.measured), f"{'<=' if r.direction == 'max' else '>='} {_fmt(r.limit)} {r.unit}",
                              "pass" if r.passed else "FAIL", r.note] for r in res.budget]), ""]
    for name, pl in res.per_layer.items():
        parts += [f"### Per-layer: {name}", "", pl["source"], ""]
        if pl["rows"]:
            parts += [_md_table(["op", "name", "ms"], [[r["op"], r["name"], f"{r['ms']:.4f}"] for r in pl["rows"][:15]]), ""]
    return "\n".join(parts) + "\n"


def to_html(res) -> str:
    """One self-contained page: inline CSS, plots as data: URIs, no external references."""
    def table(head, body):
        h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
        b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in body)
        return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"

    def img(png: bytes, alt: str):
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'

    body = [f"<h1>edgefm profile</h1><p>{html.escape(res.settings.get('host_timing', ''))}; "
            f"{res.settings.get('runs')} runs after {res.settings.get('warmup')} warm-up; total {res.seconds:.1f} s.</p>",
            "<ul>" + "".join(f"<li>{html.escape(l)}</li>" for l in integrity_lines(res)) + "</ul>",
            table(*variant_table(res))]
    if any(r.get("ok") for r in res.rows):
        body.append(img(plot_latency(res.rows), "latency per variant"))
    main = {k: v for k, v in res.ratios.items() if k.startswith("ratio_")}
    if main:
        body += ["<h2>Ratios (p50, same run)</h2>", table(["ratio", "x"], [[k, f"{v:,.1f}"] for k, v in main.items()])]
    if res.sim:
        body += [f"<h2>Target estimate: {html.escape(res.sim['device'])}</h2><ul>"
                 + "".join(f"<li>{html.escape(l)}</li>" for l in target_lines(res.sim)) + "</ul>",
                 table(*policy_table(res.sim)), img(plot_energy(res.sim), "energy breakdown"),
                 img(plot_battery(res.sim), "battery projection")]
    if res.budget:
        body += [f"<h2>Budget: {'PASS' if res.passed else 'FAIL'}</h2>",
                 table(["check", "measured", "limit", "result", "note"],
                       [[r.name, _fmt(r.measured), f"{'<=' if r.direction == 'max' else '>='} {_fmt(r.limit)} {r.unit}",
                         "pass" if r.passed else "FAIL", r.note] for r in res.budget])]
    for name, pl in res.per_layer.items():
        body.append(f"<h3>Per-layer: {html.escape(name)}</h3><p>{html.escape(pl['source'])}</p>")
        if pl["rows"]:
            body.append(table(["op", "name", "ms"], [[r["op"], r["name"], f"{r['ms']:.4f}"] for r in pl["rows"][:15]]))
    css = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
           "margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
           "td:first-child,th:first-child{text-align:left}img{max-width:100%;display:block;margin:1em 0}")
    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>edgefm profile</title>"
            f"<style>{css}</style></head><body>{''.join(body)}</body></html>\n")


def write_reports(res, out: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``profile.json``, ``profile.md`` and ``profile.html`` into ``out`` atomically; an
    existing non-empty ``out`` is replaced only with ``overwrite``."""
    out = Path(out)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        atomic_write_bytes(tmp / "profile.json", (dumps(res.to_dict()) + "\n").encode())
        atomic_write_bytes(tmp / "profile.md", to_markdown(res).encode())
        atomic_write_bytes(tmp / "profile.html", to_html(res).encode())
    return out
