"""`edgefm distill ...` commands: a thin layer over ``distill.run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import (JsonOpt, OverwriteOpt, SeedOpt, UnverifiedOpt,
                               handle_errors, note_unverified, number, out, print_json)

app = typer.Typer(no_args_is_help=True)

DataArg = Annotated[Path, typer.Argument(help="Windows dataset (wrist-raw) with ppg and acc_x|y|z.")]
TeacherOpt = Annotated[Path, typer.Option("--teacher", "-t", help="Teacher checkpoint (teacher.pt or its folder).")]




@app.command("run")
@handle_errors
def run_cmd(
    data: DataArg,
    teacher: TeacherOpt,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Student checkpoint to write (.pt).")],
    student: Annotated[str, typer.Option(help="Student factory (cnn1d_tiny|cnn1d_small|cnn1d_base|"
                                              "tiny_transformer_tiny|tiny_transformer_small).")] = "cnn1d_small",
    epochs: Annotated[int, typer.Option(help="Maximum epochs (early stopping on val).", min=1)] = 20,
    batch_size: Annotated[int, typer.Option(help="Batch size (= InfoNCE pool).")] = 128,
    lr: Annotated[float, typer.Option(help="Peak learning rate.", callback=number(min=0, max=10, min_open=True))] = 2e-3,
    temperature: Annotated[float, typer.Option(help="InfoNCE temperature.")] = 0.1,
    cosine_weight: Annotated[float, typer.Option(help="Weight of 1 - cosine.")] = 1.0,
    mse_weight: Annotated[float, typer.Option(help="Weight of MSE.")] = 0.5,
    infonce_weight: Annotated[float, typer.Option(help="Weight of InfoNCE.")] = 1.0,
    max_train: Annotated[Optional[int], typer.Option(help="Use at most this many train windows.", min=1)] = None,
    seed: SeedOpt = 0,
    overwrite: OverwriteOpt = False,
    unverified: UnverifiedOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Distil a PPG-seeing teacher into an ACC-only student and fit its heart-rate head."""
    from distill.distill import DistillConfig
    from distill.run import run_distillation
    from distill.deploy import load_student
    from edgefm.manifest import check_output
    from edgefm.train.checkpoint import accept_unverified
    from edgefm.train.checkpoint import teacher_path
    check_output(out_path, overwrite=overwrite, sources=(data, teacher_path(teacher)))
    cfg = DistillConfig(epochs=epochs, batch_size=batch_size, lr=lr, temperature=temperature,
                        cosine_weight=cosine_weight, mse_weight=mse_weight, infonce_weight=infonce_weight,
                        max_train_windows=max_train, seed=seed, verbose=True)
    with accept_unverified(unverified):
        path = run_distillation(data, teacher, out_path, student=student, config=cfg)
    ld = load_student(path)
    res = {"checkpoint": str(path), "params": ld.student.num_params(), "macs": ld.student.macs(),
           **ld.meta["metrics"], "teacher_integrity": "unverified" if unverified and note_unverified(teacher)
           else "verified"}
    if json_:
        print_json(res)
    else:
        out.print(f"wrote {path}: {res['params']} params, {res['macs']} MACs, HR head {res['hr_head']}, "
                  f"val HR MAE {res['hr_mae_val_bpm']:.2f} bpm")


@app.command("eval")
@handle_errors
def eval_cmd(
    student_ckpt: Annotated[Path, typer.Argument(help="Student checkpoint from `edgefm distill run`.")],
    data: DataArg,
    teacher: TeacherOpt,
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Report directory to write.")],
    baselines: Annotated[bool, typer.Option(help="Train the supervised and SSL baselines too.")] = True,
    fractions: Annotated[str, typer.Option(help="Label fractions, comma separated.")] = "0.01,0.1,1",
    seeds: Annotated[int, typer.Option(help="Label draws per fraction.")] = 3,
    epochs: Annotated[int, typer.Option(help="SSL baseline epochs.", min=0)] = 10,
    probes: Annotated[str, typer.Option(help="Probes, comma separated (linear, mlp).")] = "linear,mlp",
    overwrite: OverwriteOpt = False,
    unverified: UnverifiedOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Held-out evaluation: retrieval, probes at 1/10/100% labels, baselines, teacher ceiling."""
    from distill.run import run_evaluation
    from edgefm.errors import ConfigError
    from edgefm.manifest import check_output
    from edgefm.train.checkpoint import accept_unverified
    from edgefm.train.checkpoint import teacher_path
    check_output(out_dir, overwrite=overwrite, sources=(student_ckpt, data, teacher_path(teacher)))
    try:
        fr = tuple(float(f) for f in fractions.split(",") if f.strip())
    except ValueError:
        raise ConfigError(f"not a list of numbers: {fractions!r}", field="fractions") from None
    with accept_unverified(unverified):
        rep = run_evaluation(student_ckpt, data, teacher, out_dir, baselines=baselines, fractions=fr,
                             seeds=tuple(range(seeds)), epochs=epochs,
                             probes=tuple(p.strip() for p in probes.split(",") if p.strip()), overwrite=overwrite)
    if unverified:
        rep = {**rep, "unverified_inputs": note_unverified(student_ckpt, teacher)}
    if json_:
        print_json(rep)
    else:
        out.print(f"wrote {out_dir}/report.md")


@app.command("info")
@handle_errors
def info_cmd(student_ckpt: Annotated[Path, typer.Argument(help="Student checkpoint.")],
             unverified: UnverifiedOpt = False, json_: JsonOpt = False) -> None:
    """Size, input spec, teacher and metrics of a student checkpoint."""
    from distill.deploy import load_student
    ld = load_student(student_ckpt, unverified=unverified)
    res = {"arch": ld.meta["arch"], "params": ld.student.num_params(), "macs": ld.student.macs(),
           "input_spec": ld.input_spec, "output_spec": ld.meta["output_spec"], "teacher": ld.meta["teacher"],
           "metrics": ld.meta["metrics"], "sha256": ld.meta["sha256"],
           "integrity": "unverified" if ld.meta["unverified"] else "verified"}
    if json_:
        print_json(res)
    else:
        for k, v in res.items():
            out.print(f"{k}: {v}")
