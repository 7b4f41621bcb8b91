"""LSM Table 3 generative evaluation of the teacher against imputation baselines.

Protocol (held-out subjects, normalised units, the teacher's own normalisation):

  random        random patch-level masking at ``random_ratio`` (LSM: 0.8)
  interp_G      temporal interpolation: every channel hidden over a gap of G minutes (10, 20,
                30, 60, 120) in the window's interior, at least one patch visible on each side;
                for other presets the same fraction of the window (G / 300), in seconds
  extrap_G      temporal extrapolation: the last G minutes hidden (a forecast)
  sensor_M      sensor imputation: every channel of modality M hidden for the whole window

Gaps start on the model's patch grid. The teacher hides every patch that holds a hidden
sample (it never sees a hidden value); baselines see every other observed sample. MAE and
MSE count only positions that were artificially hidden AND truly observed. MICE is fitted
once on training-split windows (so a modality hidden in every test window can still be
predicted from the others) and applied to the held-out ones. ``smooth`` (not in LSM's table) is
linear interpolation between local means of k observed samples per side, k tuned per task and
channel on training windows (k = 1 is linear interpolation): the best a per-channel smoother
does, i.e. the part of a gain over linear that needs no model of the data at all.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from edgefm.errors import DataError, ShapeError
from edgefm.eval.baselines import BASELINES
from edgefm.manifest import atomic_dir, atomic_write_json

GAPS_MIN = (10, 20, 30, 60, 120)
LSM_WINDOW_MIN = 300


@dataclass(frozen=True)
class EvalConfig:
    split: str = "test"
    max_windows: int = 256          # seeded subsample of the split's windows
    random_ratio: float = 0.8
    gaps_min: tuple[int, ...] = GAPS_MIN
    methods: tuple[str, ...] = ("teacher", "mean", "nearest", "linear", "smooth", "mice")
    smooth_fit_windows: int = 256   # training windows the smoother's per-channel k is tuned on
    sensor_tasks: bool = True
    batch_size: int = 64
    mice_max_fit_rows: int = 6000
    seed: int = 0
    inherited_missing: float = 0.0  # extra fraction of patches made missing in the data (AIM stress test)


@dataclass
class Task:
    name: str
    group: str                      # random / interp / extrap / sensor
    hide: np.ndarray                # (N, C, T) bool, True = artificially hidden
    span_s: float | None = None     # gap length in seconds (interp/extrap)
    label: str = ""


def _gap_len(g_min: float, T: int, fs_hz: float, minutely: bool) -> int:
    if minutely:
        return int(round(g_min * 60 * fs_hz))
    return max(1, int(round(T * g_min / LSM_WINDOW_MIN)))


def gap_start_patches(T: int, L: int, patch_t: int) -> range:
    """Patch-grid columns where an interior gap of ``L`` samples may start: at least one patch
    visible on each side (at least column 1)."""
    return range(1, max(1, (T - L - patch_t) // patch_t) + 1)


def make_tasks(N: int, C: int, T: int, fs_hz: float, patch_t: int, channel_modalities: list[str],
               grid_hide_random, cfg: EvalConfig, minutely: bool) -> list[Task]:
    """Draw the hidden sets of every task for N windows (seeded)."""
    rng = np.random.default_rng(cfg.seed)
    tasks = [Task("random", "random", grid_hide_random, label=f"random {cfg.random_ratio:.0%}")]
    t = np.arange(T)
    for g in cfg.gaps_min:
        L = _gap_len(g, T, fs_hz, minutely)
        if L >= T - 2 * patch_t:
            continue
        unit = f"{g} min" if minutely else f"{L / fs_hz:.2f} s"
        grid = gap_start_patches(T, L, patch_t)
        starts = rng.integers(grid.start, grid.stop, N) * patch_t
        hide = (t[None] >= starts[:, None]) & (t[None] < starts[:, None] + L)
        tasks.append(Task(f"interp_{g}", "interp", np.repeat(hide[:, None], C, 1), L / fs_hz, f"interp {unit}"))
        hide = np.repeat((t >= T - L)[None, None], N, 0).repeat(C, 1)
        tasks.append(Task(f"extrap_{g}", "extrap", hide, L / fs_hz, f"extrap {unit}"))
    if cfg.sensor_tasks:
        for mod in dict.fromkeys(channel_modalities):
            sel = np.array([m == mod for m in channel_modalities])
            if sel.all():
                continue
            hide = np.zeros((N, C, T), bool)
            hide[:, sel] = True
            tasks.append(Task(f"sensor_{mod}", "sensor", hide, label=f"hide {mod}"))
    return tasks


def _random_hide(model, n: int, cfg: EvalConfig) -> np.ndarray:
    """(n, C, T) bool: the ``random`` task's hidden samples, a seeded patch mask at ``random_ratio``."""
    grid = model.draw_mask(n, "random", ratio=cfg.random_ratio, generator=torch.Generator().manual_seed(cfg.seed))
    return model.unpatchify(grid.cpu()[..., None].expand(-1, -1, model.cfg.patch_dim).float()).numpy() > 0.5


def _teacher_fill(model, x: np.ndarray, mask: np.ndarray, hide: np.ndarray, batch: int) -> np.ndarray:
    dev = next(model.parameters()).device
    out = np.empty_like(x)
    model.eval()
    with torch.no_grad():
        for a in range(0, x.shape[0], batch):
            xb = torch.from_numpy(x[a:a + batch]).to(dev)
            mb = torch.from_numpy(mask[a:a + batch]).to(dev)
            hb = torch.from_numpy(hide[a:a + batch]).to(dev)
            out[a:a + batch] = model.reconstruct(xb, mb, hb).cpu().numpy()
    return out


def load_eval_windows(model, data, cfg: EvalConfig):
    """Held-out windows z-scored with the teacher's normalisation: (x, mask, Windows)."""
    from edgefm.data.store import WindowDataset
    ds = data if isinstance(data, WindowDataset) else WindowDataset(data)
    names = tuple(model.cfg.channel_names)
    if names and tuple(ds.channel_names) != names:
        raise ShapeError(f"dataset channels {list(ds.channel_names)} differ from the teacher's {list(names)}",
                         path=ds.path, field="channels", hint="window the data with the teacher's preset")
    if ds.window != model.cfg.seq_len:
        raise ShapeError(f"dataset windows are {ds.window} samples, the teacher's {model.cfg.seq_len}",
                         path=ds.path, field="window")
    if ds.n(cfg.split) == 0 and cfg.split == "train":  # fall back for datasets without a train split
        cfg = EvalConfig(split="test", max_windows=cfg.max_windows, seed=cfg.seed)
    if ds.n(cfg.split) == 0:
        raise DataError(f"split {cfg.split!r} has no windows", path=ds.path, field="split",
                        hint="evaluate on another split with --split")
    w = ds.load(cfg.split, normalise=False)
    if len(w) > cfg.max_windows:
        w = w.select(np.sort(np.random.default_rng(cfg.seed).choice(len(w), cfg.max_windows, replace=False)))
    meta = getattr(model, "meta", None) or {}
    nm = (meta.get("input_spec") or {}).get("normalisation") or ds.manifest["normalisation"]
    mean = np.asarray(nm["mean"], np.float32)[None, :, None]
    std = np.asarray(nm["std"], np.float32)[None, :, None]
    mask = w.mask & np.isfinite(w.x)
    if cfg.inherited_missing > 0:  # whole model patches go missing in the data itself
        gen = torch.Generator().manual_seed(cfg.seed + 99)
        grid = model.draw_mask(len(w), "random", ratio=cfg.inherited_missing, generator=gen).cpu()
        gone = model.unpatchify(grid[..., None].expand(-1, -1, model.cfg.patch_dim).float()).numpy() > 0.5
        mask = mask & ~gone
    x = np.where(mask, (np.nan_to_num(w.x) - mean) / std, 0.0).astype(np.float32)
    return x, mask, w, ds


def evaluate(model, data, cfg: EvalConfig = EvalConfig()) -> dict:
    """Run every task with every method; returns the result dict (JSON-ready)."""
    x, mask, w, ds = load_eval_windows(model, data, cfg)
    N, C, T = x.shape
    mcfg = model.cfg
    hide_rand = _random_hide(model, N, cfg)
    minutely = ds.manifest["preset"].get("preset") == "lsm-minutely"
    tasks = make_tasks(N, C, T, ds.fs_hz, mcfg.patch_t, [c.modality for c in ds.channels], hide_rand, cfg, minutely)
    imputer, smooth_k = None, {}
    if "mice" in cfg.methods or "smooth" in cfg.methods:  # both fitted on training windows, loaded once
        xt, mt, _, _ = load_eval_windows(model, ds, EvalConfig(split="train", max_windows=cfg.max_windows,
                                                                seed=cfg.seed, inherited_missing=0.0))
    if "mice" in cfg.methods:  # observed samples of the training windows, see fit_mice
        from edgefm.eval.baselines import fit_mice
        imputer = fit_mice(xt, mt, max_fit_rows=cfg.mice_max_fit_rows, seed=cfg.seed)
    if "smooth" in cfg.methods:  # per task and channel, k tuned on training windows with that task's hiding
        from edgefm.eval.baselines import fit_smooth
        fit_cfg = dataclasses.replace(cfg, seed=cfg.seed + 1)
        sel = np.random.default_rng(fit_cfg.seed).permutation(len(xt))[:cfg.smooth_fit_windows]
        xs, ms = xt[sel], mt[sel]
        for tt in make_tasks(len(xs), C, T, ds.fs_hz, mcfg.patch_t, [c.modality for c in ds.channels],
                             _random_hide(model, len(xs), fit_cfg), fit_cfg, minutely):
            smooth_k[tt.name] = fit_smooth(xs, ms, tt.hide)
    rows = {}
    for task in tasks:
        score = task.hide & mask
        n = int(score.sum())
        row = {"label": task.label, "group": task.group, "span_s": task.span_s, "n_scored": n, "methods": {}}
        if n == 0:
            rows[task.name] = row
            continue
        avail = mask & ~task.hide
        for meth in cfg.methods:
            if meth == "teacher":
                fill = _teacher_fill(model, x, mask, task.hide, cfg.batch_size)
            elif meth == "mice":
                fill = BASELINES["mice"](x, avail, imputer=imputer)
            elif meth == "smooth":
                fill = BASELINES["smooth"](x, avail, smooth_k[task.name])
                row["smooth_k"] = smooth_k[task.name].tolist()
            else:
                fill = BASELINES[meth](x, avail)
            err = (fill - x)[score]
            row["methods"][meth] = {"mae": float(np.abs(err).mean()), "mse": float((err ** 2).mean())}
        if "teacher" in row["methods"] and "linear" in row["methods"]:
            row["gain_vs_linear"] = 1 - row["methods"]["teacher"]["mae"] / row["methods"]["linear"]["mae"]
        rows[task.name] = row
    meta = getattr(model, "meta", None) or {}
    return {"split": cfg.split, "n_windows": N, "subjects": sorted(set(map(str, w.subject))),
            "dataset": str(ds.path), "checkpoint": meta.get("path"), "checkpoint_sha256": meta.get("sha256"),
            "units": "normalised (z-score)", "tasks": rows,
            "config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}}


def table(result: dict):
    """A rich Table: one row per task, MAE (and gain vs linear) per method."""
    from rich.table import Table
    methods = []
    for r in result["tasks"].values():
        methods += [m for m in r["methods"] if m not in methods]
    t = Table(title=f"generative eval, {result['split']} split, {result['n_windows']} windows "
                    f"({len(result['subjects'])} subjects), MAE in normalised units")
    t.add_column("task")
    for m in methods:
        t.add_column(m, justify="right")
    t.add_column("gain vs linear", justify="right")
    for name, r in result["tasks"].items():
        best = min((v["mae"] for v in r["methods"].values()), default=None)
        cells = []
        for m in methods:
            v = r["methods"].get(m)
            cells.append("-" if v is None else (f"[bold]{v['mae']:.3f}[/bold]" if v["mae"] == best else f"{v['mae']:.3f}"))
        g = r.get("gain_vs_linear")
        t.add_row(r["label"] or name, *cells, "-" if g is None else f"{g:+.1%}")
    return t


def plot_reconstructions(model, data, out_png: str | Path, cfg: EvalConfig = EvalConfig(), index: int = 0,
                         task: str = "interp_60", channels: int = 4) -> Path:
    """PNG: masked input vs truth vs teacher reconstruction for one window and task."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, mask, w, ds = load_eval_windows(model, data, cfg)
    N, C, T = x.shape
    index = min(index, N - 1)
    hide_rand = _random_hide(model, N, cfg)
    minutely = ds.manifest["preset"].get("preset") == "lsm-minutely"
    tasks = {t.name: t for t in make_tasks(N, C, T, ds.fs_hz, model.cfg.patch_t, [c.modality for c in ds.channels],
                                           hide_rand, cfg, minutely)}
    tk = tasks.get(task) or tasks["random"]
    sl = slice(index, index + 1)
    rec = _teacher_fill(model, x[sl], mask[sl], tk.hide[sl], 1)[0]
    lin = BASELINES["linear"](x[sl], (mask & ~tk.hide)[sl])[0]
    t_s = np.arange(T) / ds.fs_hz
    tt, unit = (t_s / 60, "min") if minutely else (t_s, "s")
    chans = list(range(min(channels, C)))
    fig, axes = plt.subplots(len(chans), 1, figsize=(10, 2.0 * len(chans)), sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], chans):
        obs = mask[index, c]
        vis = obs & ~tk.hide[index, c]
        ax.plot(tt, np.where(obs, x[index, c], np.nan), color="0.6", lw=1, label="truth")
        ax.plot(tt, np.where(vis, x[index, c], np.nan), color="k", lw=1.2, label="model input")
        ax.plot(tt, np.where(tk.hide[index, c], rec[c], np.nan), color="C3", lw=1.2, label="teacher")
        ax.plot(tt, np.where(tk.hide[index, c], lin[c], np.nan), color="C0", lw=1, ls="--", label="linear")
        ax.set_ylabel(ds.channels[c].name, fontsize=8)
    axes[0, 0].legend(loc="upper right", fontsize=7, ncol=4)
    axes[0, 0].set_title(f"{tk.label or tk.name}: window {index} (subject {w.subject[index]})", fontsize=9)
    axes[-1, 0].set_xlabel(f"time ({unit})")
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    from edgefm.manifest import atomic_write_bytes
    atomic_write_bytes(out_png, buf.getvalue())
    return out_png


def run_eval(checkpoint, data, out_dir: str | Path, cfg: EvalConfig = EvalConfig(), *,
             overwrite: bool = False) -> dict:
    """Load a checkpoint, evaluate, write ``eval.json`` and ``reconstructions.png`` atomically
    (an existing non-empty ``out_dir`` is replaced only with ``overwrite``)."""
    from edgefm.train.checkpoint import load_teacher
    model = load_teacher(checkpoint) if not isinstance(checkpoint, torch.nn.Module) else checkpoint
    res = evaluate(model, data, cfg)
    res["unverified"] = bool((getattr(model, "meta", None) or {}).get("unverified"))
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        atomic_write_json(tmp / "eval.json", res)
        plot_reconstructions(model, data, tmp / "reconstructions.png", cfg,
                             task="interp_60" if "interp_60" in res["tasks"] else "random")
    return res
