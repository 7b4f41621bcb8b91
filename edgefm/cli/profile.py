"""`edgefm profile ...` commands: host latency/memory/size per variant, target estimate, budget.

    edgefm profile run runs/default --device nrf52840 --budget budget.toml --out runs/default/profile
    edgefm profile check-budget budget.toml
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, UnverifiedOpt, err, handle_errors, out, print_json

app = typer.Typer(no_args_is_help=True)


def _render(res) -> None:
    from rich.table import Table
    from edgefm.profile.report import integrity_lines, policy_table, target_lines, variant_table
    head, body = variant_table(res)
    t = Table(title="host latency per variant (1 thread)")
    for h in head:
        t.add_column(h, justify="left" if h == "variant" else "right")
    for row in body:
        t.add_row(*row)
    out.print(t)
    main = {k: v for k, v in res.ratios.items() if k.startswith("ratio_")}
    if main:
        t = Table(title="ratios (p50, same run)")
        t.add_column("ratio")
        t.add_column("x", justify="right")
        for k, v in main.items():
            t.add_row(k, f"{v:,.1f}")
        out.print(t)
    if res.sim:
        for line in target_lines(res.sim):
            out.print(line, highlight=False)
        head, body = policy_table(res.sim)
        t = Table(title=f"battery projection on {res.sim['device']}")
        for h in head:
            t.add_column(h, justify="left" if h == "policy" else "right")
        for row in body:
            t.add_row(*row)
        out.print(t)
    if res.budget:
        t = Table(title=f"budget {res.budget_path}: {'PASS' if res.passed else 'FAIL'}")
        for h in ("check", "measured", "limit", "result", "note"):
            t.add_column(h)
        for r in res.budget:
            t.add_row(r.name, "—" if r.measured is None else f"{r.measured:,.2f}",
                      f"{'<=' if r.direction == 'max' else '>='} {r.limit:,.2f} {r.unit}",
                      "[green]pass[/green]" if r.passed else "[red]FAIL[/red]", r.note)
        out.print(t)
    for line in integrity_lines(res):
        out.print(line, highlight=False, soft_wrap=True)


def _sources(out_dir: Path, inputs: list[Path], *others) -> tuple:
    """What ``--out`` must not overwrite: every input file, the budget and trace, and a run
    directory the output would replace or contain (reports inside a run directory are fine:
    ``--out runs/default/profile``)."""
    o = out_dir.resolve()
    keep = [p for p in inputs if not p.is_dir()]
    keep += [p for p in inputs if p.is_dir() and (p.resolve() == o or p.resolve().is_relative_to(o))]
    return (*keep, *others)


@app.command("run")
@handle_errors
def run(
    inputs: Annotated[list[Path], typer.Argument(help="Artifacts (.pte/.tflite/.onnx/.pt) and/or run directories.")],
    device: Annotated[Optional[str], typer.Option("--device", "-d", help="Device profile for target estimates (e.g. nrf52840).")] = None,
    budget: Annotated[Optional[Path], typer.Option("--budget", "-b", help="Budget TOML; exit 1 if any row fails.")] = None,
    trace: Annotated[Optional[Path], typer.Option("--trace", help="ACC traces (cohort dir or recordings store) for the simulation; default: built-in reference day.")] = None,
    runs: Annotated[int, typer.Option("--runs", "-n", help="Timed runs per variant.")] = 100,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed warm-up runs per variant.")] = 10,
    per_layer: Annotated[bool, typer.Option("--per-layer/--no-per-layer", help="Per-layer breakdown where the backend has one.")] = True,
    etdump: Annotated[bool, typer.Option("--etdump", help="Also record an ExecuTorch ETDump per .pte and read it with the devtools Inspector (slow to import).")] = False,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write profile.json/.md/.html here.")] = None,
    overwrite: OverwriteOpt = False,
    unverified: UnverifiedOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Measure every variant, estimate it on a device, and check a budget. Exit 1 when any
    variant is refused (sha256 differs from its manifest, or no manifest) or fails to run, or
    any budget row fails; the reports are written first and say why."""
    from edgefm.manifest import check_output
    from edgefm.profile import profile, write_reports
    if out_dir is not None:
        check_output(out_dir, overwrite=overwrite, sources=_sources(out_dir, inputs, budget, trace))
    res = profile(inputs, device=device, budget=budget, trace=trace, runs=runs, warmup=warmup,
                  per_layer=per_layer, etdump=etdump, unverified=unverified,
                  progress=lambda m: err.print(f"[dim]{m}[/dim]", highlight=False, soft_wrap=True))
    if out_dir is not None:
        write_reports(res, out_dir, overwrite=overwrite)
        err.print(f"reports: {out_dir}/profile.{{json,md,html}}", highlight=False)
    if json_:
        print_json(res.to_dict())
    else:
        _render(res)
    res.raise_for_problems()


@app.command("check-budget")
@handle_errors
def check_budget_cmd(budget: Annotated[Path, typer.Argument(help="Budget TOML to validate.")]) -> None:
    """Validate a budget file (keys, types, device) without measuring anything."""
    from edgefm.profile import load_budget
    b = load_budget(budget)
    if b.device:
        from firmware_sim import load_device
        load_device(b.device)
    out.print(f"{budget}: ok", highlight=False)
