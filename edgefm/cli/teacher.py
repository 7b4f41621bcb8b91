"""`edgefm teacher ...` commands: train, eval, info (thin layer over edgefm.train / edgefm.eval)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import (JsonOpt, OverwriteOpt, UnverifiedOpt, err, handle_errors,
                               note_unverified, number, out, print_json)

app = typer.Typer(no_args_is_help=True)





def _scales(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        from edgefm.errors import ConfigError
        raise ConfigError(f"--decoder-context {text!r} is not a comma-separated list of integers",
                          field="decoder_context", hint="e.g. --decoder-context 5,15,45") from None


@app.command("train")
@handle_errors
def train(
    data: Annotated[Path, typer.Argument(help="A windows dataset (edgefm data window / synth output).")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Run directory for teacher.pt.")],
    size: Annotated[str, typer.Option("--size", help="tiny | small | base | large")] = "tiny",
    max_minutes: Annotated[Optional[float], typer.Option("--max-minutes", help="Wall-clock budget.", callback=number(min=0, min_open=True))] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Optimiser steps (cap when a budget is set).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Global batch size.")] = 64,
    lr: Annotated[float, typer.Option("--lr", help="Peak learning rate.", callback=number(min=0, max=10, min_open=True))] = 1e-3,
    nproc: Annotated[int, typer.Option("--nproc", help="Processes for DDP through torchrun.", min=1, max=64)] = 1,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/teacher.pt.")] = False,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    device: Annotated[str, typer.Option("--device", help="auto | cpu | cuda")] = "auto",
    residual: Annotated[Optional[str], typer.Option("--residual", help="'linear': decode a correction to "
                        "the linear interpolation of the visible samples.")] = None,
    decoder_baseline: Annotated[bool, typer.Option("--decoder-baseline", help="With --residual: every decoder "
                                "token also sees that baseline (how a Tiny learns on 2 cores).")] = False,
    decoder_context: Annotated[Optional[str], typer.Option("--decoder-context", help="With --decoder-baseline: "
                               "comma-separated time scales in samples of local-mean baselines the decoder also "
                               "sees, e.g. 5,15,45.")] = None,
    context_residual: Annotated[bool, typer.Option("--context-residual", help="With --decoder-context: the "
                                "residual baseline is a learned per-channel blend of the linear and local-mean "
                                "baselines.")] = False,
    loss: Annotated[str, typer.Option("--loss", help="mse | l1 (reconstruction loss).")] = "mse",
    bf16: Annotated[bool, typer.Option("--bf16", help="bfloat16 autocast (CUDA, or a CPU with AVX512-BF16).")] = False,
    mask_mix: Annotated[Optional[str], typer.Option("--mask-mix", help="Mask kinds drawn per training sample, KIND=WEIGHT "
                        "comma-separated (kinds: random, temporal, sensor, interpolate, extrapolate). Default "
                        "random=0.4,temporal=0.2,interpolate=0.2,extrapolate=0.2.")] = None,
    span_max: Annotated[float, typer.Option("--span-max", help="Longest interpolation/extrapolation gap drawn in "
                        "training, as a fraction of the window.")] = 0.4,
    overwrite: OverwriteOpt = False,
    unverified: UnverifiedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pretrain the masked-autoencoder teacher on DATA's train split.

    An existing non-empty --out is refused unless --overwrite (or --resume, which continues it)."""
    from edgefm.data.store import WindowDataset
    from edgefm.manifest import check_output
    from edgefm.train import TrainConfig, launch, load_checkpoint, parse_mask_mix, pretrain, teacher_for_dataset
    from edgefm.train.checkpoint import accept_unverified

    check_output(out_dir, overwrite=overwrite, sources=(data,), resumable=resume)
    if steps is None and max_minutes is None:
        steps = 2000
    mix = {"mask_mix": parse_mask_mix(mask_mix)} if mask_mix else {}
    cfg = TrainConfig(steps=steps, max_minutes=max_minutes, batch_size=batch_size, lr=lr, seed=seed, device=device,
                      bf16=bf16, span_frac=(0.0, span_max), **mix)
    ctx = _scales(decoder_context)
    kw = {k: v for k, v in (("residual", residual), ("decoder_sees_baseline", decoder_baseline),
                             ("decoder_context", ctx), ("context_residual", context_residual),
                             ("loss", None if loss == "mse" else loss)) if v}
    resumed_unverified = note_unverified(out_dir / "teacher.pt") if resume and unverified else []
    def run(into: Path) -> Path:
        with accept_unverified(unverified):
            if nproc > 1:
                return launch(data, into, cfg, size=size, nproc=nproc, resume=resume, model_kw=kw or None)
            ds = WindowDataset(data)
            import torch
            torch.manual_seed(seed)
            return pretrain(teacher_for_dataset(ds, size, **kw), ds, cfg, into, resume=resume, size=size)

    if overwrite and not resume and out_dir.is_dir() and any(out_dir.iterdir()):
        from edgefm.manifest import atomic_dir
        with atomic_dir(out_dir, overwrite=True) as tmp:     # the old run stays until training succeeds
            ckpt = out_dir / run(tmp).relative_to(tmp)
    else:
        ckpt = run(out_dir)
    ck = load_checkpoint(ckpt)
    res = {"checkpoint": str(ckpt), "sha256": ck["sha256"], "step": ck["step"], "size": ck["size"],
           "val_loss": ck.get("val_loss"), "train_seconds": ck.get("train_seconds"),
           "resumed_unverified": bool(resumed_unverified)}
    if as_json:
        print_json(res)
    else:
        out.print(f"teacher {ck['size']} at step {ck['step']} -> {ckpt}  (val loss {res['val_loss']})")


@app.command("eval")
@handle_errors
def evaluate_cmd(
    ckpt: Annotated[Path, typer.Argument(help="teacher.pt (or its run directory).")],
    data: Annotated[Path, typer.Argument(help="A windows dataset with held-out subjects.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Directory for eval.json and reconstructions.png.")],
    split: Annotated[str, typer.Option("--split")] = "test",
    max_windows: Annotated[int, typer.Option("--max-windows", min=1)] = 256,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    overwrite: OverwriteOpt = False,
    unverified: UnverifiedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """LSM Table 3: imputation, interpolation, extrapolation, sensor imputation vs baselines."""
    from edgefm.eval import EvalConfig, run_eval, table
    from edgefm.manifest import check_output
    from edgefm.train.checkpoint import accept_unverified

    from edgefm.train.checkpoint import teacher_path

    check_output(out_dir, overwrite=overwrite, sources=(teacher_path(ckpt), data))
    with accept_unverified(unverified):
        res = run_eval(ckpt, data, out_dir, EvalConfig(split=split, max_windows=max_windows, seed=seed),
                       overwrite=overwrite)
    if unverified and note_unverified(ckpt):
        res = {**res, "integrity": "unverified"}
    if as_json:
        print_json(res)
    else:
        out.print(table(res))
        err.print(f"wrote {out_dir / 'eval.json'} and {out_dir / 'reconstructions.png'}")


@app.command("info")
@handle_errors
def info(
    ckpt: Annotated[Path, typer.Argument(help="teacher.pt (or its run directory).")],
    unverified: UnverifiedOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """What a checkpoint holds: size, config, parameters, FLOPs, data, step, losses."""
    from edgefm.train import load_teacher

    m = load_teacher(ckpt, unverified=unverified)
    meta = m.meta
    spec = meta.get("input_spec") or {}
    tc = meta.get("train_config") or {}
    res = {"checkpoint": meta["path"], "sha256": meta["sha256"], "size": meta["size"], "step": meta["step"],
           "total_steps": meta.get("total_steps"), "params": m.num_params(), "encoder_params": m.num_params("encoder"),
           "gflops": m.flops() / 1e9, "model_config": m.cfg.to_dict(), "preset": spec.get("preset"),
           "channels": [c["name"] for c in spec.get("channels", [])], "fs_hz": spec.get("fs_hz"),
           "dataset": meta.get("dataset"), "train_config": tc,
           "integrity": "unverified" if meta.get("unverified") else "verified"}
    if as_json:
        print_json(res)
        return
    from rich.table import Table
    t = Table(show_header=False, title=f"teacher {meta['size']}")
    t.add_row("integrity", "unverified (no manifest, sha256 not checked)" if meta.get("unverified")
              else "verified (sha256 matches the manifest)")
    for k in ("checkpoint", "sha256", "step", "total_steps", "params", "encoder_params", "gflops", "preset", "fs_hz"):
        v = res[k]
        t.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    c = m.cfg
    t.add_row("encoder", f"{c.enc_depth} x {c.enc_dim} ({c.enc_heads} heads)")
    t.add_row("decoder", f"{c.dec_depth} x {c.dec_dim} ({c.dec_heads} heads)")
    t.add_row("input", f"{c.n_channels} ch x {c.seq_len}, patches {c.patch_c} ch x {c.patch_t}, grid {c.grid}")
    t.add_row("channels", ", ".join(res["channels"]))
    d = res["dataset"] or {}
    t.add_row("dataset", f"{d.get('path')} (manifest sha256 {str(d.get('manifest_sha256'))[:12]}…)")
    out.print(t)
