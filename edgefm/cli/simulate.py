"""`edgefm simulate ...` commands: device profiles, calibration, battery projection.

    edgefm simulate devices
    edgefm simulate calibrate nrf52840
    edgefm simulate run runs/default/export/student_int8.tflite --trace cohort/ --device nrf52840
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, UnverifiedOpt, err, handle_errors, out, print_json

app = typer.Typer(no_args_is_help=True)
MAX_DAYS = 31.0     # the reference trace is built in memory: ~35 MB a day at 32 Hz
MAX_TRACE_SAMPLES = 1e8


@app.command("devices")
@handle_errors
def devices(json_: JsonOpt = False) -> None:
    """List the device profiles."""
    from firmware_sim import available_devices, load_device
    devs = [load_device(n) for n in available_devices()]
    if json_:
        print_json([d.to_dict() for d in devs])
        return
    from rich.table import Table
    t = Table(title="device profiles (firmware_sim/devices)")
    for h in ("name", "core", "MHz", "RAM KiB", "flash KiB", "battery mAh", "ceiling days"):
        t.add_column(h, no_wrap=h in ("name", "core"))
    for d in devs:
        t.add_row(d.name, d.core.split(" (")[0], f"{d.clock_hz / 1e6:g}", f"{d.ram_bytes / 1024:,.0f}",
                  f"{d.flash_bytes / 1024:,.0f}", f"{d.battery_capacity_mah:g}", f"{d.ceiling_days:,.0f}")
    out.print(t)


@app.command("calibrate")
@handle_errors
def calibrate(device: Annotated[str, typer.Argument(help="Device profile name or .toml path.")] = "nrf52840",
              json_: JsonOpt = False) -> None:
    """Show the MLPerf Tiny calibration arithmetic of a profile and how well it reproduces the anchor."""
    from firmware_sim import check_calibration, load_device
    d = load_device(device)
    c = check_calibration(d)
    if c is None:
        out.print(f"{d.name}: no MLPerf Tiny anchor (cycles per MAC are estimates; see the profile's comments)")
        return
    if json_:
        print_json(c)
        return
    out.print(f"[bold]{d.name}[/bold]: {c['anchor']}")
    for line in c["lines"]:
        out.print("  " + line, highlight=False)
    out.print(f"  stored profile reproduces {c['predicted_latency_ms']:.2f} ms vs anchor {c['anchor_latency_ms']:.2f} ms "
              f"({c['relative_error']:+.2%}); on this device's clock: {c['on_device_latency_ms']:.1f} ms", highlight=False)
    if "anchor_energy_uj" in c:
        out.print(f"  energy {c['predicted_energy_uj']:.0f} uJ vs anchor {c['anchor_energy_uj']:.0f} uJ", highlight=False)


@app.command("run")
@handle_errors
def run(
    model: Annotated[Path, typer.Argument(help="Exported .tflite or .onnx (its manifest gives input spec and arena).")],
    trace: Annotated[Optional[Path], typer.Option("--trace", help="Cohort dir or recordings store with ACC traces; default: built-in reference day.")] = None,
    device: Annotated[str, typer.Option("--device", "-d", help="Device profile name or .toml path.")] = "nrf52840",
    days: Annotated[float, typer.Option("--days", help="Length of the reference day trace when no --trace.")] = 1.0,
    on_g: Annotated[float, typer.Option("--gate-on", help="Gate on-threshold (std of |a| per block, g).")] = 0.03,
    off_g: Annotated[float, typer.Option("--gate-off", help="Gate off-threshold (g).")] = 0.02,
    gate_file: Annotated[Optional[Path], typer.Option("--gate", help="JSON with a calibrated gate (runtime GateConfig.to_dict(), or under a 'gate' key); overrides --gate-on/--gate-off.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write simulation.json and plots here.")] = None,
    overwrite: OverwriteOpt = False,
    unverified: UnverifiedOpt = False,
    json_: JsonOpt = False,
) -> None:
    """Project energy, battery life, latency and memory of a model on a device, policy by policy.
    The model's sha256 is checked against its manifest first (exit 1 if it differs or there is
    no manifest, unless --unverified)."""
    from edgefm.errors import ConfigError
    from edgefm.manifest import check_output
    from firmware_sim import GateConfig, default_policies, load_device, load_trace, simulate
    from firmware_sim.reference import reference_day
    from firmware_sim.simulate import load_model_info
    if not (math.isfinite(days) and 0 < days <= MAX_DAYS):
        raise ConfigError(f"must be a number of days in (0, {MAX_DAYS:g}], got {days}", field="--days")
    for name, v in (("--gate-on", on_g), ("--gate-off", off_g)):
        if not (math.isfinite(v) and v >= 0):
            raise ConfigError(f"must be a finite number >= 0 (g), got {v}", field=name)
    if out_dir is not None:
        check_output(out_dir, overwrite=overwrite, sources=(model, trace, gate_file))
    dev = load_device(device)                       # unknown device fails before any work
    if gate_file is not None:
        from edgefm.manifest import read_json
        d = read_json(gate_file)
        gate = GateConfig.from_dict(d.get("gate", d) if isinstance(d, dict) else d)
    else:
        gate = GateConfig(on_threshold=on_g, off_threshold=off_g)
    info = load_model_info(model, unverified=unverified)   # sha256 vs manifest before parsing
    if trace is None and days * 86400 * info.fs_hz > MAX_TRACE_SAMPLES:
        raise ConfigError(f"{days:g} days at {info.fs_hz:g} Hz is more than {MAX_TRACE_SAMPLES:.0e} samples "
                          "to build in memory", field="--days", hint="simulate fewer days, or pass --trace")
    tr = load_trace(trace) if trace else reference_day(days, fs_hz=info.fs_hz)
    res = simulate(info, tr, dev, default_policies(gate))
    d = res.to_dict()
    d["trace_source"] = str(trace) if trace else "built-in reference day (firmware_sim.reference)"
    if d["model_integrity"] == "unverified":
        err.print(f"[yellow]warning:[/yellow] {model} has no manifest: its sha256 was not checked and the "
                  "wrist-raw input defaults were assumed (unverified)", highlight=False, soft_wrap=True)
    if out_dir is not None:
        from edgefm.manifest import atomic_dir, atomic_write_bytes, dumps
        from edgefm.profile.report import plot_battery, plot_energy
        with atomic_dir(out_dir, overwrite=overwrite) as tmp:
            atomic_write_bytes(tmp / "simulation.json", (dumps(d) + "\n").encode())
            atomic_write_bytes(tmp / "energy.png", plot_energy(d))
            atomic_write_bytes(tmp / "battery.png", plot_battery(d))
        err.print(f"wrote {out_dir}/simulation.json, energy.png, battery.png", highlight=False)
    if json_:
        print_json(d)
        return
    from rich.table import Table
    from edgefm.profile.report import policy_table, target_lines
    for line in target_lines(d):
        out.print(line, highlight=False)
    head, body = policy_table(d)
    t = Table(title=f"battery projection on {dev.name}")
    for h in head:
        t.add_column(h, justify="left" if h == "policy" else "right")
    for row in body:
        t.add_row(*row)
    out.print(t)
