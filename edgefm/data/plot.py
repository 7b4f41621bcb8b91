"""``plot_dataset(path, out_png, index=0, seconds=60) -> Path``: look at the data.

Four panels, shared time axis in seconds:
  PPG   (``ppg``, ``ppg2``; a.u.)
  ACC   (``acc_x|y|z``, g; for a windows dataset in raw units, not z-scored)
  HR    (stream ``hr`` and label ``hr`` in bpm, beat events as ticks; for a window: its label)
  mask  (one row per channel; dark = observed, light = missing)

Works on a ``recordings`` dataset (recording ``index``, its first ``seconds`` seconds) and on
a ``windows`` dataset (window ``index`` in manifest shard order); for a synthetic cohort, its
``raw/`` windows (else ``segments/``, ``traces/``, ``minutely/``). Renders with matplotlib's
Agg backend and writes the PNG atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from edgefm.errors import ConfigError, DataError
from edgefm.manifest import atomic_write_bytes


#: longest excerpt of a recording a plot may show (seconds): one day
MAX_SECONDS = 86400.0


def plot_dataset(path: str | Path, out_png: str | Path, index: int = 0, seconds: float = 60.0, *,
                 overwrite: bool = False) -> Path:
    """Write a PNG of one window or recording excerpt of the dataset at ``path``; returns ``out_png``.

    ``out_png`` is checked first (:func:`edgefm.data.store.prepare_output`): never inside the
    dataset, an existing file only with ``overwrite``; written atomically.
    """
    from edgefm.data.store import prepare_output

    path, out_png = Path(path), Path(out_png)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or \
            not (np.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
        raise ConfigError(f"seconds must be in (0, {MAX_SECONDS:g}], got {seconds}", field="seconds")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise ConfigError(f"index must be a whole number >= 0, got {index}", field="index")
    prepare_output(out_png, overwrite=overwrite, sources=(path,))
    return _plot(path, out_png, index, seconds)


def _plot(path: Path, out_png: Path, index: int, seconds: float) -> Path:
    from edgefm.data.store import open_manifest, output_errors

    m = open_manifest(path)
    if m["kind"] == "cohort":  # plot its raw windows, else segments, traces, minutely windows
        parts = {k: p.get("path", k) for k, p in m["parts"].items()}
        for part in ("raw", "segments", "traces", "minutely", *parts):
            sub = path / parts.get(part, part)
            if (sub / "manifest.json").is_file():
                return _plot(sub, out_png, index, seconds)
        raise DataError("cohort has no readable part (raw/, segments/, traces/, minutely/)", path=path)
    if m["kind"] == "recordings":
        panels, title = _from_recording(path, m, index, seconds)
    elif m["kind"] == "windows":
        panels, title = _from_window(path, index)
    else:
        raise DataError(f"cannot plot a {m['kind']!r} dataset", path=path, field="kind")
    png = _render(panels, title)
    with output_errors(out_png):
        atomic_write_bytes(out_png, png)
    return out_png


def _from_recording(path: Path, m: dict, index: int, seconds: float):
    from edgefm.data.store import read_recordings

    n = len(m["recordings"])
    if index >= n:
        raise DataError(f"index {index} is beyond the {n} recordings", path=path, field="index")
    rec = next(r for i, r in enumerate(read_recordings(path)) if i == index)
    rec = rec.slice_s(0.0, min(seconds, rec.duration_s))
    series = {}
    for name, s in rec.streams.items():
        t = np.arange(s.n) / s.spec.fs_hz
        series[name] = (t, np.asarray(s.data), np.asarray(s.valid), s.spec.unit)
    hr = []
    if "hr" in rec.streams:
        t, d, v, _ = series["hr"]
        hr.append(("device hr", t, np.where(v, d, np.nan), "-"))
    if "hr" in rec.labels:
        lt = rec.labels["hr"]
        t = np.arange(lt.values.size) / lt.fs_hz
        hr.append(("hr label", t, lt.values.astype(float), "steps-post"))
    beats = rec.events.get("beats")
    title = f"{path.name}: recording {rec.id.split('@')[0]} (subject {rec.subject}), first {rec.duration_s:.0f} s"
    cats = {k: lt for k, lt in rec.labels.items() if lt.kind == "categorical"}
    if cats:
        k, lt = next(iter(cats.items()))
        vals = lt.values[lt.values >= 0]
        if vals.size:
            cls = lt.classes[int(np.bincount(vals).argmax())] if lt.classes else str(np.bincount(vals).argmax())
            title += f"; {k}: {cls}"
    return {"series": series, "hr": hr, "beats": beats}, title


def _from_window(path: Path, index: int):
    from edgefm.data.store import WindowDataset

    ds = WindowDataset(path)
    if index >= len(ds):
        raise DataError(f"index {index} is beyond the {len(ds)} windows", path=path, field="index")
    seen = 0
    for s in ds.shards():
        if index < seen + s["n"]:
            x, mk, meta = ds._open(s["name"])
            i = index - seen
            b = ds._batch(x, mk, meta, np.array([i]), normalise=False)
            break
        seen += s["n"]
    t = np.arange(ds.window) / ds.fs_hz
    series = {}
    for ci, c in enumerate(ds.channels):
        v = b["mask"][0, ci]
        series[c.name] = (t, np.where(v, b["x"][0, ci], np.nan), v, c.unit)
    hr = []
    if "hr" in b and np.isfinite(b["hr"][0]):
        hr.append((f"hr label {float(b['hr'][0]):.1f} bpm", t[[0, -1]], np.full(2, float(b["hr"][0])), "-"))
    title = f"{path.name}: window {index} ({s['split']}), subject {b['subject'][0]}"
    for k, li in ds.labels.items():
        if li.get("kind") == "categorical" and k in b and b[k][0] >= 0:
            cl = li.get("classes", [])
            title += f"; {k}: {cl[b[k][0]] if b[k][0] < len(cl) else b[k][0]}"
    return {"series": series, "hr": hr, "beats": None}, title


def _render(p: dict, title: str) -> bytes:
    import matplotlib
    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure  # no pyplot: no global state, no display

    series, hr = p["series"], p["hr"]
    fig = Figure(figsize=(11, 8), dpi=100)
    axs = fig.subplots(4, 1, sharex=True, gridspec_kw={"height_ratios": [2, 2, 1.5, 1.2]})
    ppg = [k for k in ("ppg", "ppg2") if k in series]
    acc = [k for k in ("acc_x", "acc_y", "acc_z") if k in series]
    for ax, names, lab in ((axs[0], ppg, "PPG [a.u.]"), (axs[1], acc, "ACC [g]")):
        for k in names:
            t, d, v, _ = series[k]
            ax.plot(t, np.where(v, d, np.nan), lw=0.7, label=k)
        if names:
            ax.legend(loc="upper right", fontsize=7)
        else:
            ax.text(0.5, 0.5, "no channel", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_ylabel(lab)
    ax = axs[2]
    for name, t, v, style in hr:
        if style == "steps-post":
            ax.step(t, v, where="post", lw=1.2, label=name)
        else:
            ax.plot(t, v, lw=1.2, label=name)
    beats = p.get("beats")
    if beats is not None and len(beats):
        tmax = max(s[0][-1] for s in series.values() if len(s[0]))
        bt = beats[beats <= tmax]
        if bt.size:
            lo = np.nanmin([np.nanmin(v) for _, _, v, _ in hr if np.isfinite(v).any()] or [60.0])
            ax.plot(bt, np.full(bt.size, lo - 5), "|", color="k", ms=6, label="beats")
    if hr or (beats is not None and len(beats)):
        ax.legend(loc="upper right", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no heart-rate data", ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_ylabel("HR [bpm]")
    # mask: channels on a common grid at the fastest rate
    ax = axs[3]
    names = list(series)
    tmax = max((s[0][-1] for s in series.values() if len(s[0])), default=0.0)
    fs = max((1 / np.median(np.diff(s[0])) for s in series.values() if len(s[0]) > 1), default=1.0)
    grid = np.arange(0, tmax + 1e-9, 1 / fs) if tmax > 0 else np.zeros(1)
    img = np.zeros((len(names), grid.size))
    for r, k in enumerate(names):
        t, _, v, _ = series[k]
        if len(t):
            idx = np.clip(np.searchsorted(t, grid, side="right") - 1, 0, len(t) - 1)
            img[r] = v[idx]
    ax.imshow(img, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0, vmax=1,
              extent=(0, grid[-1] if grid.size > 1 else 1, len(names) - 0.5, -0.5))
    ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_ylabel("observed\n(dark)")
    ax.set_xlabel("time [s]")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
