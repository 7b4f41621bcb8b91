"""`edgefm task ...`: a deployable model for a task on your own recordings, and its refit."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, SEED_MAX, err, handle_errors, number, print_json

app = typer.Typer(no_args_is_help=True)

TaskOpt = Annotated[Optional[str], typer.Option("--task", help="hr, activity, freeze or phase (default: from the "
                                                               "labels the data has).")]
SplitOpt = Annotated[str, typer.Option("--split", help="manifest (the dataset's own split, else seeded) or seeded.")]
SubjectsOpt = Annotated[Optional[str], typer.Option(help="Comma-separated subject ids (with --val-subjects and "
                                                         "--test-subjects instead of --split).")]
EpochsOpt = Annotated[Optional[int], typer.Option("--epochs", min=1, max=10000, help="Training epochs.")]
FormatsOpt = Annotated[str, typer.Option("--formats", help="Comma-separated: pte, tflite, onnx, tflm.")]


def _split(split: str, train: str | None, val: str | None, test: str | None):
    from edgefm.errors import ConfigError
    if train or val or test:
        if not (train and test):
            raise ConfigError("explicit subject lists need --train-subjects and --test-subjects",
                              field="--train-subjects")
        return {k: [s.strip() for s in (v or "").split(",") if s.strip()]
                for k, v in (("train", train), ("val", val), ("test", test))}
    if split not in ("manifest", "seeded"):
        raise ConfigError(f"unknown split {split!r}", field="--split", hint="manifest or seeded")
    return split


def _show(res, as_json: bool) -> None:
    t = res.metrics["test"]
    if as_json:
        print_json({"out": str(res.out), "split": res.split, "test": t,
                    "artifacts": [{"format": a["format"], "path": a["path"],
                                   **{k: a["verification"].get(k) for k in ("abs_err", "agreement", "sqnr_db")
                                      if k in a["verification"]}} for a in res.artifacts]})
        return
    i8 = t.get("int8", {})
    if "hr_mae" in i8:
        typer.echo(f"held-out subjects {', '.join(res.split['test'])}: int8 HR MAE {i8['hr_mae']:.2f} bpm tracked "
                   f"({i8['hr_mae_per_window']:.2f} per window; fp32 {t['fp32']['hr_mae']:.2f})")
    else:
        typer.echo(f"held-out subjects {', '.join(res.split['test'])}: int8 macro-F1 {i8['macro_f1']:.3f}, balanced "
                   f"accuracy {i8['balanced_accuracy']:.3f} (fp32 macro-F1 {t['fp32']['macro_f1']:.3f})")
    for a in res.artifacts:
        v = a["verification"]
        what = (f"agreement {v['agreement']:.4f}" if "agreement" in v else
                "|int8 - fp32| p50 {p50:.3f} p99 {p99:.3f} max {max:.3f} bpm".format(**v["abs_err"]))
        typer.echo(f"  {a['format']:6s} {Path(a['path']).name}: verified, {what}")
    typer.echo(str(res.out / "report.md"))


@app.command("fit")
@handle_errors
def fit_cmd(
    data: Annotated[Path, typer.Argument(help="Recordings dataset (`edgefm data import` or `data synth` output).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the model, artifacts and report.")],
    task: TaskOpt = None,
    sensors: Annotated[str, typer.Option("--sensors", help="Heart rate: led_on (PPG + ACC) or led_off (ACC only).")] = "led_on",
    channels: Annotated[Optional[str], typer.Option("--channels", help="Comma-separated input channels "
                                                                       "(overrides --sensors).")] = None,
    placement: Annotated[Optional[str], typer.Option("--placement", help="Daphnet sensor: ankle, thigh or trunk.")] = None,
    fs_hz: Annotated[Optional[float], typer.Option("--fs-hz", callback=number(min=1, max=2000), help="Model input rate.")] = None,
    window_s: Annotated[Optional[float], typer.Option("--window-s", callback=number(min=0, min_open=True, max=3600))] = None,
    hop_s: Annotated[Optional[float], typer.Option("--hop-s", callback=number(min=0, min_open=True, max=3600))] = None,
    split: SplitOpt = "manifest",
    train_subjects: SubjectsOpt = None,
    val_subjects: SubjectsOpt = None,
    test_subjects: SubjectsOpt = None,
    epochs: EpochsOpt = None,
    formats: FormatsOpt = "pte,tflite,onnx,tflm",
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX)] = 0,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a task's student on the training subjects, int8-export it to every format, verify each
    in its runtime, and score it on held-out subjects.

    Example: edgefm task fit runs/troika-data --task hr --sensors led_on -o runs/troika-hr
    """
    from edgefm.tasks import DeployConfig, FitConfig, build_deployable
    fit = FitConfig(seed=seed, **({"epochs": epochs} if epochs else {}))
    cfg = DeployConfig(task=task, sensors=sensors, placement=placement, fs_hz=fs_hz, window_s=window_s, hop_s=hop_s,
                       channels=tuple(c.strip() for c in channels.split(",") if c.strip()) if channels else None,
                       split=_split(split, train_subjects, val_subjects, test_subjects), seed=seed,
                       formats=tuple(f.strip() for f in formats.split(",") if f.strip()), fit=fit)
    res = build_deployable(data, out, cfg, overwrite=overwrite, log=lambda s: err.print(s, highlight=False))
    _show(res, as_json)


@app.command("refit")
@handle_errors
def refit_cmd(
    run: Annotated[Path, typer.Argument(help="A finished `task fit` folder (or a pipeline run's model folder).")],
    data: Annotated[Path, typer.Argument(help="Your labelled recordings (any `edgefm data import` output).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="New folder for the refit model, artifacts and report.")],
    head_only: Annotated[bool, typer.Option("--head-only", help="Train only the head (else fine-tune all layers).")] = False,
    split: SplitOpt = "manifest",
    train_subjects: SubjectsOpt = None,
    val_subjects: SubjectsOpt = None,
    test_subjects: SubjectsOpt = None,
    epochs: EpochsOpt = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX)] = 0,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Refit a finished model on your own labelled recordings and re-export verified artifacts
    with a new report (scores before and after on your held-out subjects).

    Example: edgefm task refit runs/troika-hr my-recordings -o runs/my-hr --test-subjects me
    """
    from edgefm.tasks import DeployConfig, FitConfig
    from edgefm.tasks.deploy import refit_deployable
    fit = FitConfig(seed=seed, epochs=epochs or 10, lr=1e-3)
    cfg = DeployConfig(split=_split(split, train_subjects, val_subjects, test_subjects), seed=seed, fit=fit)
    res = refit_deployable(run, data, out, cfg, head_only=head_only, overwrite=overwrite,
                           log=lambda s: err.print(s, highlight=False))
    _show(res, as_json)


@app.command("list")
def list_cmd() -> None:
    """The tasks, the label each learns and its default window."""
    from edgefm.tasks import TASKS
    for t in TASKS.values():
        typer.echo(f"{t.name:9s} label {t.label!r:11s} {t.kind:10s} {t.fs_hz:g} Hz, {t.window_s:g} s windows, "
                   f"{t.hop_s:g} s hop  ({t.doc})")
