"""`edgefm gate ...` commands: calibrate the opportunistic-inference motion gate, evaluate one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, err, handle_errors, number, out, print_json

app = typer.Typer(no_args_is_help=True)

DataArg = Annotated[Path, typer.Argument(help="Labelled recordings: a cohort (uses traces/), its traces/, "
                                              "or an imported dataset (e.g. Daphnet).")]


def _summary(name: str, r: dict | None) -> str:
    if not r:
        return f"{name:12s} (none: one subject only, figures are on the calibration data)"
    return (f"{name:12s} skip {r['skip']:.3f}  recall {r['recall']:.3f}  "
            f"delay median {r['delay_s_median']:.1f} s, p90 {r['delay_s_p90']:.1f} s  "
            f"({r['windows']} windows, {r['event_windows']} events, "
            f"{r['episodes_missed']}/{r['episodes']} episodes missed)")


def _check_report_out(out_path: Path, data: Path, overwrite: bool) -> None:
    """The report JSON and the PNG beside it: neither may replace a file without --overwrite, nor
    be or lie inside the data.

    Raises:
        ConfigError: naming the file and --out.
    """
    from edgefm.errors import ConfigError
    from edgefm.manifest import check_output
    if out_path.suffix.lower() == ".png":
        raise ConfigError("the report is JSON and its curve is written beside it as .png", path=out_path,
                          field="--out", hint="pass a .json file to --out")
    check_output(out_path, overwrite=overwrite, sources=(data,), option="--out")   # refuses '.' too
    check_output(out_path.with_suffix(".png"), overwrite=overwrite, sources=(data,), option="--out")


@app.command("calibrate")
@handle_errors
def calibrate_cmd(
    data: DataArg,
    target_recall: Annotated[float, typer.Option("--target-recall", help="Event-window recall to keep.", callback=number(min=0, max=1, min_open=True))] = 0.95,
    out_path: Annotated[Path, typer.Option("--out", "-o", help="Gate report JSON (PNG curve beside it).")] = Path("gate.json"),
    window_s: Annotated[float, typer.Option("--window-s", help="Model window, seconds.", callback=number(min=0, max=3600, min_open=True))] = 8.0,
    hop_s: Annotated[float, typer.Option("--hop-s", help="Model hop, seconds.", callback=number(min=0, max=3600, min_open=True))] = 2.0,
    fs_hz: Annotated[float, typer.Option("--fs-hz", help="Rate the gate runs at (data are resampled).", callback=number(min=1, max=1000))] = 32.0,
    block_s: Annotated[float, typer.Option("--block-s", help="Gate feature block, seconds.")] = 1.0,
    wake_every_s: Annotated[float, typer.Option("--wake-every-s", help="Periodic wake when off (0 = never).")] = 0.0,
    cv: Annotated[str, typer.Option("--cv", help="Held-out figures: 'split' (dataset test split) or 'loso' "
                                                 "(leave one subject out, for small datasets).")] = "split",
    overwrite: OverwriteOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Pick gate thresholds meeting --target-recall of activity/freezing windows, skipping most."""
    from runtime.calibrate import calibrate
    from runtime.gate import GateConfig
    _check_report_out(out_path, data, overwrite)
    base = GateConfig(fs_hz=fs_hz, block_s=block_s, wake_every_s=wake_every_s)
    err.print(f"calibrating the gate on {data} ...")
    r = calibrate(data, target_recall, out=out_path, window_s=window_s, hop_s=hop_s, base=base, cv=cv)
    if as_json:
        print_json(r)
        return
    g = r["gate"]
    out.print(f"gate         on {g['on_threshold']:.4f} g, off {g['off_threshold']:.4f} g, "
              f"min on {g['min_on_s']:g} s, off-hold {g['off_hold_s']:g} s, wake every {g['wake_every_s']:g} s  "
              f"({r['cost']['ops_per_sample']:.1f} ops/sample)", highlight=False, soft_wrap=True)
    out.print(_summary("calibration", r["calibration"]), highlight=False, soft_wrap=True)
    out.print(_summary("held-out", r["held_out"]), highlight=False, soft_wrap=True)
    if not r["met_target"]:
        err.print(f"[yellow]warning:[/yellow] no gate reaches recall {target_recall} on the calibration data; "
                  "the most sensitive one was kept")
    out.print(f"wrote {out_path} and {out_path.with_suffix('.png')}", highlight=False, soft_wrap=True)


@app.command("evaluate")
@handle_errors
def evaluate_cmd(
    data: DataArg,
    gate: Annotated[Path, typer.Option("--gate", help="gate.json from `edgefm gate calibrate` (or a GateConfig dict).")],
    window_s: Annotated[float, typer.Option("--window-s", callback=number(min=0, max=3600, min_open=True))] = 8.0,
    hop_s: Annotated[float, typer.Option("--hop-s", callback=number(min=0, max=3600, min_open=True))] = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Skip fraction, event recall and detection delay of a gate on labelled recordings."""
    from edgefm.data.store import read_recordings
    from edgefm.errors import ConfigError
    from edgefm.manifest import read_json
    from runtime.calibrate import evaluate, prepare, recordings_dir
    from runtime.gate import GateConfig
    d = read_json(gate)
    try:
        cfg = GateConfig.from_dict(d.get("gate", d))
    except (TypeError, ValueError) as e:
        raise ConfigError(f"not a gate config ({e})", path=gate) from e
    window, hop = int(round(window_s * cfg.fs_hz)), int(round(hop_s * cfg.fs_hz))
    traces = [prepare(r, cfg, window, hop) for r in read_recordings(recordings_dir(data))]
    r = evaluate(traces, cfg, window, hop)
    if as_json:
        print_json(r)
    else:
        out.print(_summary("all", r), highlight=False, soft_wrap=True)
