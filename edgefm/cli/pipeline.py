"""`edgefm pipeline ...` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, err, handle_errors, number, print_json

app = typer.Typer(no_args_is_help=True)


@app.command("run")
@handle_errors
def run(
    quick: Annotated[bool, typer.Option("--quick", help="Tiny models, little data (< 3 min on 2 cores).")] = False,
    data: Annotated[Optional[Path], typer.Option("--data", help="Imported recordings (`edgefm data import`) or a "
                                                           "cohort (`edgefm data synth`); default: synthesize.")] = None,
    task: Annotated[Optional[str], typer.Option("--task", help="With imported recordings: hr, activity, freeze or "
                                                               "phase (default: from the labels).")] = None,
    sensors: Annotated[str, typer.Option("--sensors", help="Heart rate: led_on (PPG + ACC) or led_off (ACC).")] = "led_on",
    fs_hz: Annotated[Optional[float], typer.Option("--fs-hz", callback=number(min=1, max=2000),
                                                   help="Model input rate (default: the task's).")] = None,
    window_s: Annotated[Optional[float], typer.Option("--window-s", callback=number(min=0, min_open=True, max=3600))] = None,
    hop_s: Annotated[Optional[float], typer.Option("--hop-s", callback=number(min=0, min_open=True, max=3600))] = None,
    split: Annotated[str, typer.Option("--split", help="manifest (the dataset's own, else seeded) or seeded.")] = "manifest",
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (an earlier run there is resumed; "
                                                          "any other non-empty folder is refused).")] = Path("runs/default"),
    device: Annotated[str, typer.Option("--device", help="Device profile name or .toml.")] = "nrf52840",
    budget: Annotated[Optional[Path], typer.Option("--budget", help="Budget TOML checked in the profile stage.")] = None,
    from_stage: Annotated[Optional[str], typer.Option("--from", help="Re-run from this stage.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.", min=0, max=2**32 - 1)] = 0,
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Run data -> teacher -> distil -> prune -> quantize -> export -> gate -> simulate -> profile -> report
    on the synthetic cohort, or data -> teacher -> model -> gate -> simulate -> profile -> report on
    imported recordings.

    Example: edgefm data import troika ../shared/data/troika -o data/troika && edgefm pipeline run --data data/troika -o runs/troika
    """
    from edgefm.pipeline import PipelineConfig, run_pipeline
    res = run_pipeline(PipelineConfig(out=out, data=data, quick=quick, device=device, budget=budget,
                                      from_stage=from_stage, seed=seed, overwrite=overwrite, task=task,
                                      sensors=sensors, fs_hz=fs_hz, window_s=window_s, hop_s=hop_s, split=split))
    if as_json:
        print_json(res.summary())
    else:
        typer.echo(str(res.report_html))
    budget_rows = res.stages.get("profile").summary.get("budget") if "profile" in res.stages else None
    if budget_rows and not all(r.get("pass") for r in budget_rows):
        err.print("budget failed: " + ", ".join(r["row"] for r in budget_rows if not r.get("pass")), highlight=False)
        raise typer.Exit(1)


@app.command("stages")
def stages() -> None:
    """List the stages in order (names for --from)."""
    from edgefm.pipeline import STAGES
    for s in STAGES:
        typer.echo(s)


@app.command("status")
@handle_errors
def status(run_dir: Annotated[Path, typer.Argument(help="Run directory.")], as_json: JsonOpt = False) -> None:
    """Which stages of a run have finished, with their time and input hash."""
    from edgefm.pipeline import STAGES
    from edgefm.pipeline.core import read_stage
    rows = {}
    for s in STAGES:
        r = read_stage(run_dir, s)
        rows[s] = None if r is None else {"seconds": r.seconds, "input_hash": r.manifest["input_hash"][:12],
                                          "finished_at": r.manifest.get("finished_at")}
    if as_json:
        print_json(rows)
    else:
        for s, r in rows.items():
            typer.echo(f"{s:10s} " + ("not run" if r is None else f"{r['seconds']:8.1f} s  {r['finished_at']}  {r['input_hash']}"))
