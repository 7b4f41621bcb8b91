"""`edgefm data ...`: synth, import, window, info, plot.

Every output (`--out`) is checked before any work: never the working folder, a source, or
inside or around one; an existing non-empty output is replaced only with `--overwrite`.
Numeric options are checked (finite, in range) and a bad one is a ConfigError naming it.
"""

from __future__ import annotations

import math
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, handle_errors, out, print_json
from edgefm.errors import ConfigError

app = typer.Typer(no_args_is_help=True)


class ImportFormat(str, Enum):
    e4 = "e4"
    troika = "troika"
    daphnet = "daphnet"
    sp_sw_har = "sp-sw-har"
    csv = "csv"
    csv_windows = "csv-windows"


class PresetName(str, Enum):
    wrist_raw = "wrist-raw"
    lsm_minutely = "lsm-minutely"




def _number(value: float, option: str, lo: float, hi: float, *, lo_open: bool = False) -> None:
    """A finite number in [lo, hi] (or (lo, hi] with ``lo_open``), else a ConfigError naming the option."""
    ok = math.isfinite(value) and (lo < value if lo_open else lo <= value) and value <= hi
    if not ok:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ConfigError(f"must be a number in {rng}, got {value}", field=option)


@app.command("synth")
@handle_errors
def synth_cmd(
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Cohort directory to write.")],
    subjects: Annotated[int, typer.Option(help="Number of subjects (1..10000).")] = 100,
    days: Annotated[float, typer.Option(help="Days per subject (10 minutes to 31 days).")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed (the cohort is reproducible).")] = 0,
    raw_minutes: Annotated[float, typer.Option(help="Minutes of raw PPG+ACC segments per subject.")] = 20.0,
    freezing: Annotated[float, typer.Option(help="Fraction of subjects with freezing-of-gait episodes.")] = 0.2,
    traces: Annotated[bool, typer.Option(help="Write one continuous raw ACC trace per subject.")] = True,
    overwrite: OverwriteOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Generate the synthetic cohort (the embedded default data)."""
    from edgefm.data.store import prepare_output
    from edgefm.data.synth import MAX_DAYS, MAX_SUBJECTS, MIN_DAYS, SynthConfig, synthesize
    t0 = time.perf_counter()
    _number(subjects, "--subjects", 1, MAX_SUBJECTS)
    _number(days, "--days", MIN_DAYS, MAX_DAYS)
    _number(seed, "--seed", 0, 2 ** 63 - 1)
    _number(raw_minutes, "--raw-minutes", 0, days * 1440 / 2)
    _number(freezing, "--freezing", 0, 1)
    prepare_output(out_dir, overwrite=overwrite)
    cfg = SynthConfig(subjects=subjects, days=days, seed=seed, raw_minutes=raw_minutes,
                      freezing_fraction=freezing, traces=traces)
    path = synthesize(cfg, out_dir, overwrite=overwrite)
    dt = time.perf_counter() - t0
    if json_:
        print_json({"path": str(path), "seconds": dt})
    else:
        out.print(f"wrote {path} in {dt:.1f} s")


@app.command("import")
@handle_errors
def import_cmd(
    fmt: Annotated[ImportFormat, typer.Argument(help="Source format.")],
    src: Annotated[Path, typer.Argument(help="Source folder or file.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Recordings dataset to write.")],
    mapping: Annotated[Optional[Path], typer.Option(
        help="csv and csv-windows only: JSON/TOML mapping (channels, rate, labels; may live anywhere).")] = None,
    include_extra: Annotated[bool, typer.Option(
        help="troika only: also import Extra_TrainingData (S04_T01). Test-set TEST_*.mat files under "
             "the source are always imported, as subjects troika-test-S<k>.")] = True,
    quest_offset_s: Annotated[Optional[float], typer.Option(
        help="e4 only: seconds the E4 started before the RespiBAN (quest.csv time base); "
             "default: estimated from the end of the E4 session.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the subject-level train/val/test split.")] = 0,
    overwrite: OverwriteOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Import real recordings (E4/WESAD, TROIKA training and test sets, Daphnet, smartwatch HAR,
    generic CSV, one-row-per-window CSV such as UCI HAR).

    Samples outside a channel's physical range are stored as missing; the summary counts them.
    """
    from edgefm.data.importers import import_dataset
    from edgefm.data.importers._common import MAX_DURATION_S
    opts: dict = {"seed": seed}
    if fmt == ImportFormat.troika:
        opts["include_extra"] = include_extra
    if fmt == ImportFormat.e4 and quest_offset_s is not None:
        cap = MAX_DURATION_S["e4"]
        _number(quest_offset_s, "--quest-offset-s", -cap, cap)
        opts["quest_offset_s"] = quest_offset_s
    path = import_dataset(fmt.value, src, out_dir, mapping=mapping, overwrite=overwrite, **opts)
    i = _info(path)
    if json_:
        print_json(i)
    else:
        msg = f"wrote {path}: {i['subjects']} subjects, {i['recordings']} recordings, {i['hours']:.2f} h"
        if "hr_reference_windows" in i:
            msg += f", {i['hr_reference_windows']['total']} 8 s windows with an hr label"
        oor = i.get("out_of_range") or {}
        if oor.get("total"):
            per = ", ".join(f"{k} {v}" for k, v in sorted(oor.get("channels", {}).items()))
            msg += f"; {oor['total']} samples outside their physical range marked missing ({per})"
        cw = i.get("csv_windows") or {}
        if cw:
            msg += (f"; {cw['rows']} windows joined into {cw['recordings']} runs, "
                    f"{cw['breaks']['overlap_mismatch']} breaks where overlapping rows disagree")
        out.print(msg)


@app.command("window")
@handle_errors
def window_cmd(
    src: Annotated[Path, typer.Argument(help="Recordings dataset.")],
    preset: Annotated[PresetName, typer.Option(help="Windowing preset.")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Windows dataset to write.")],
    overwrite: OverwriteOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Cut a recordings dataset into a preset's windows (normalised, sharded, split by subject)."""
    from edgefm.data.store import info, open_manifest, prepare_output, read_recordings, write_windows
    prepare_output(out_dir, overwrite=overwrite, sources=(src,))
    m = open_manifest(src, "recordings")
    path = write_windows(read_recordings(src), out_dir, preset.value,
                         provenance={"source": str(src), "source_provenance": m.get("provenance", {})},
                         split=m.get("split"), overwrite=overwrite)
    i = info(path)
    if json_:
        print_json(i)
    else:
        out.print(f"wrote {path}: {i['n_windows']} windows of {i['subjects']} subjects")


@app.command("info")
@handle_errors
def info_cmd(
    path: Annotated[Path, typer.Argument(help="A dataset directory (recordings, windows or cohort).")],
    json_: JsonOpt = False,
) -> None:
    """Subjects, hours, channels, rates, missing fraction and label counts."""
    i = _info(path)
    if json_:
        print_json(i)
        return
    from rich.table import Table
    out.print(f"[bold]{path}[/bold]  kind={i['kind']}  subjects={i['subjects']}  hours={i['hours']:.2f}  "
              f"split={i.get('split')}")
    if i.get("channels"):
        t = Table("channel", "modality", "unit", "fs_hz", "missing")
        for n, c in i["channels"].items():
            t.add_row(n, c["modality"], c["unit"], f"{c['fs_hz']:g}", f"{i['missing_fraction'].get(n, 0):.1%}")
        out.print(t)
    for n, c in i.get("labels", {}).items():
        out.print(f"label {n}: {c}")
    for k in ("n_windows", "recordings"):
        if k in i:
            out.print(f"{k}: {i[k]}")
    for name, p in i.get("parts", {}).items():
        extra = f"{p['n_windows']} windows ({p.get('preset')})" if p["kind"] == "windows" \
            else f"{p.get('recordings', 0)} recordings"
        chans = ", ".join(f"{n}@{c['fs_hz']:g}Hz" for n, c in list(p.get("channels", {}).items())[:8])
        out.print(f"part [bold]{name}[/bold]: {p['kind']}, {p['subjects']} subjects, {p['hours']:.2f} h, "
                  f"{extra}; channels {chans}{' ...' if len(p.get('channels', {})) > 8 else ''}")
    if "hours_per_subject" in i:
        out.print("hours per subject: " + ", ".join(f"{k} {v:.2f}" for k, v in i["hours_per_subject"].items()))
    if "hr_reference_windows" in i:
        r = i["hr_reference_windows"]
        out.print(f"hr label: {r['total']} windows of 8 s / 2 s have one "
                  f"(over {len(r['per_recording'])} recordings)")


def _info(path: Path) -> dict:
    """store.info plus, for recordings with an ``hr`` label, the 8 s / 2 s windows it covers."""
    from edgefm.data.store import info
    i = info(path)
    if i.get("kind") == "recordings":
        from edgefm.data.store import open_manifest
        cw = (open_manifest(path, "recordings").get("provenance") or {}).get("csv_windows")
        if cw:
            i["csv_windows"] = cw
        per: dict[str, float] = {}
        for e in open_manifest(path, "recordings")["recordings"]:
            per[e["subject"]] = per.get(e["subject"], 0.0) + e["duration_s"] / 3600
        i["hours_per_subject"] = {k: round(v, 3) for k, v in per.items()}
    if i.get("kind") == "recordings" and "hr" in i.get("labels", {}):
        from edgefm.data.importers import reference_window_counts
        per = reference_window_counts(path, "hr")
        i["hr_reference_windows"] = {"total": sum(per.values()), "per_recording": per,
                                     "window_s": 8.0, "hop_s": 2.0}
    return i


@app.command("plot")
@handle_errors
def plot_cmd(
    path: Annotated[Path, typer.Argument(help="A dataset directory.")],
    out_png: Annotated[Path, typer.Option("--out", "-o", help="PNG to write.")] = Path("window.png"),
    index: Annotated[int, typer.Option(help="Window (or recording) index.")] = 0,
    seconds: Annotated[float, typer.Option(help="Seconds to show for a recordings dataset.")] = 60.0,
    overwrite: OverwriteOpt = False,
) -> None:
    """Plot one window: PPG, ACC, HR, mask."""
    from edgefm.data.plot import MAX_SECONDS, plot_dataset
    _number(index, "--index", 0, 2 ** 63 - 1)
    _number(seconds, "--seconds", 0, MAX_SECONDS, lo_open=True)
    p = plot_dataset(path, out_png, index=index, seconds=seconds, overwrite=overwrite)
    out.print(f"wrote {p}")
