"""The pipeline's final report: one self-contained HTML (plots as base64 PNG), Markdown, JSON.

``write_report(stages, out_dir)`` reads every stage's summary (``RUN/<stage>/stage.json``)
and writes ``report.html``, ``report.md``, ``report.json`` and the plots as PNG files.
Sections: data summary, teacher generative table vs baselines, distillation vs baselines,
compression table, export verification, gate trade-off curve, battery projection per policy,
latency per backend, budget pass/fail. A section whose stage did not produce its figures
says so ("not available: ...") — nothing is filled in.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from edgefm.manifest import atomic_write_bytes, atomic_write_json

__all__ = ["write_report", "write_sections", "Section"]


class Section:
    """A titled block: paragraphs, tables (list of row dicts) and figures (PNG bytes)."""

    def __init__(self, key: str, title: str):
        self.key, self.title = key, title
        self.blocks: list[tuple[str, Any]] = []
        self.data: dict = {}

    def text(self, s: str) -> "Section":
        self.blocks.append(("text", s)); return self

    def table(self, rows: list[dict], caption: str = "", columns: list[str] | None = None) -> "Section":
        if rows:
            self.blocks.append(("table", (caption, rows, columns)))
        return self

    def figure(self, png: bytes, name: str, caption: str = "") -> "Section":
        self.blocks.append(("figure", (name, png, caption))); return self

    def missing(self, why: str) -> "Section":
        self.blocks.append(("text", f"**not available:** {why}")); self.data["status"] = "unavailable"
        self.data["reason"] = why
        return self


def _fmt(v, col: str = "") -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        if col in ("pass", "passed", "ok"):
            return "pass" if v else "FAIL"
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        a = abs(v)
        return f"{v:.3g}" if (a >= 1e4 or (a < 1e-2 and a > 0)) else f"{v:.3f}".rstrip("0").rstrip(".")
    if isinstance(v, (list, dict)):
        return json.dumps(v)[:80]
    return str(v)


def _cols(rows, columns):
    if columns:
        return columns
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols


def _md(sections: list[Section], title: str) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for kind, b in s.blocks:
            if kind == "text":
                out += [b, ""]
            elif kind == "table":
                cap, rows, columns = b
                cols = _cols(rows, columns)
                if cap:
                    out += [f"*{cap}*", ""]
                out.append("| " + " | ".join(cols) + " |")
                out.append("|" + "---|" * len(cols))
                for r in rows:
                    out.append("| " + " | ".join(_fmt(r.get(c), c) for c in cols) + " |")
                out.append("")
            else:
                name, _, cap = b
                out += [f"![{cap or name}]({name})", ""]
    return "\n".join(out)


_CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:24px auto;padding:0 16px;color:#123}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}th,td{border:1px solid #ccd;padding:3px 8px;
text-align:right}th{background:#eef3f1}td:first-child,th:first-child{text-align:left}
h2{border-bottom:2px solid #0b5d4b;padding-bottom:2px;margin-top:32px}img{max-width:100%}
.FAIL{color:#b00020;font-weight:700}.pass{color:#0b5d4b;font-weight:700}caption{text-align:left;font-style:italic}"""


def _html(sections: list[Section], title: str) -> str:
    e = html.escape
    out = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
           f"<style>{_CSS}</style></head><body><h1>{e(title)}</h1><nav><ol>"]
    out += [f"<li><a href='#{s.key}'>{e(s.title)}</a></li>" for s in sections]
    out.append("</ol></nav>")
    for s in sections:
        out.append(f"<h2 id='{s.key}'>{e(s.title)}</h2>")
        for kind, b in s.blocks:
            if kind == "text":
                t = e(b).replace("**not available:**", "<b>not available:</b>")
                out.append(f"<p>{t}</p>")
            elif kind == "table":
                cap, rows, columns = b
                cols = _cols(rows, columns)
                out.append("<table>" + (f"<caption>{e(cap)}</caption>" if cap else ""))
                out.append("<tr>" + "".join(f"<th>{e(c)}</th>" for c in cols) + "</tr>")
                for r in rows:
                    cells = []
                    for c in cols:
                        v = _fmt(r.get(c), c)
                        cls = f" class='{v}'" if v in ("pass", "FAIL") else ""
                        cells.append(f"<td{cls}>{e(v)}</td>")
                    out.append("<tr>" + "".join(cells) + "</tr>")
                out.append("</table>")
            else:
                name, png, cap = b
                out.append(f"<figure><img alt='{e(cap or name)}' src='data:image/png;base64,"
                           f"{base64.b64encode(png).decode()}'><figcaption>{e(cap)}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


def plot_png(fn) -> bytes:
    """Run ``fn(ax)`` on a fresh matplotlib axes (Agg) and return the PNG bytes."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    try:
        fn(ax)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", metadata={"Software": None})
        return buf.getvalue()
    finally:
        plt.close(fig)


def write_report(stages: dict, out_dir: str | Path, title: str = "edgefm pipeline report") -> list[Path]:
    """Write ``report.html``, ``report.md``, ``report.json`` (+ PNGs) from the stage records.

    ``stages``: {name: StageRecord-like with ``.summary`` (dict) and ``.seconds``}.
    """
    from edgefm.report.sections import SECTIONS
    return write_sections([build(stages) for build in SECTIONS], out_dir, title,
                          {"stage_seconds": {k: getattr(v, "seconds", None) for k, v in stages.items()}})


def write_sections(sections: list[Section], out_dir: str | Path, title: str, data: dict | None = None) -> list[Path]:
    """Write ``report.html`` (figures embedded), ``report.md``, ``report.json`` (``data`` plus each
    section's data) and each figure as its own PNG; returns the paths, the HTML first."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for s in sections:
        for kind, b in s.blocks:
            if kind == "figure":
                name, png, _ = b
                atomic_write_bytes(out_dir / name, png)
                files.append(out_dir / name)
    atomic_write_bytes(out_dir / "report.md", _md(sections, title).encode())
    atomic_write_bytes(out_dir / "report.html", _html(sections, title).encode())
    atomic_write_json(out_dir / "report.json", {"title": title, **(data or {}),
                                                "sections": {s.key: s.data for s in sections}})
    return [out_dir / "report.html", out_dir / "report.md", out_dir / "report.json", *files]
