"""`edgefm export ...` commands: a thin layer over :mod:`edgefm.export`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, UnverifiedOpt, err, handle_errors, out, print_json

app = typer.Typer(no_args_is_help=True)


class Format(str, Enum):
    pte = "pte"
    tflite = "tflite"
    onnx = "onnx"
    tflm = "tflm"
    all = "all"


@app.command("run")
@handle_errors
def run(ckpt: Annotated[Path, typer.Argument(help="Student or compressed model checkpoint.")],
        format: Annotated[Format, typer.Option("--format", "-f", help="Artifact format.")] = Format.all,
        int8: Annotated[bool, typer.Option("--int8", help="int8 via the backend's quantizer (tflm: always).")] = False,
        calib: Annotated[Path, typer.Option("--calib", help="Windows dataset (train split) or .npy (N, C, T).")] = ...,
        out_dir: Annotated[Path, typer.Option("--out", "-o", help="Output directory.")] = Path("artifacts"),
        name: Annotated[str, typer.Option("--name", help="Artifact name prefix.")] = "student",
        n_calib: Annotated[int, typer.Option("--n-calib", help="Calibration windows.")] = 256,
        n_heldout: Annotated[int, typer.Option("--n-heldout", help="Held-out (test split) windows for verification.")] = 512,
        check_only: Annotated[bool, typer.Option("--check-only", help="Only list ops the target cannot run.")] = False,
        overwrite: OverwriteOpt = False,
        unverified: UnverifiedOpt = False,
        json_: JsonOpt = False) -> None:
    """Export CKPT to .pte / .tflite / .onnx / TFLite Micro C source, each with a manifest and
    its stored reference outputs, verified in its real runtime on held-out windows. An existing
    non-empty --out is refused unless --overwrite."""
    import numpy as np
    import torch
    from edgefm.export import ArtifactSpec, export
    from edgefm.export.io import load_model, load_windows
    from edgefm.export.opcheck import unsupported_ops
    from edgefm.errors import ConfigError
    from edgefm.manifest import atomic_dir, check_output, safe_name
    safe_name(name, what="--name")                       # it names files inside --out
    for opt, v, lo in (("--n-calib", n_calib, 1), ("--n-heldout", n_heldout, 1)):
        if not lo <= v <= 1_000_000:
            raise ConfigError(f"must be a whole number in [{lo}, 1000000], got {v}", field=opt)
    if not check_only:
        check_output(out_dir, overwrite=overwrite, sources=(ckpt, calib))
    lm = load_model(ckpt, unverified=True if unverified else None)   # source.unverified says so
    if lm.source.get("unverified"):
        err.print(f"[yellow]warning:[/yellow] {ckpt} has no manifest (unverified); the artifacts' manifests "
                  "record source.unverified = true", highlight=False, soft_wrap=True)
    chans = lm.input_spec.get("channels")
    x, _ = load_windows(calib, "train", chans, label=None)
    rng = np.random.default_rng(0)
    x = x[np.sort(rng.choice(len(x), size=min(n_calib, len(x)), replace=False))]
    if check_only:
        targets = {"pte": ["xnnpack"], "tflite": ["litert"], "onnx": [], "tflm": ["tflm"],
                   "all": ["xnnpack", "litert", "tflm"]}[format.value]
        rep = {t: unsupported_ops(lm.model, (torch.from_numpy(x[:1]),), t) for t in targets}
        print_json(rep) if json_ else [out.print(f"{t}: {r or 'all ops supported'}") for t, r in rep.items()]
        return
    held = None
    if Path(calib).suffix != ".npy":
        try:
            hx, hy = load_windows(calib, "test", chans, max_n=n_heldout)
            held = (hx, hy)
        except Exception as e:  # no test split: verify on calibration windows
            err.print(f"no held-out test split ({e}); verifying on calibration windows")
    spec = ArtifactSpec(source=lm.source, input_spec=lm.input_spec)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:   # all artifacts appear at once, or none
        results = export(lm.model, format.value, tmp, x, int8=int8, heldout=held, spec=spec, name=name)
    rows = [{"format": r.format, "path": str(out_dir / r.path.name), "manifest": str(out_dir / r.manifest.name),
             **r.verification, **r.extra} for r in results]
    if json_:
        print_json(rows)
    else:
        for r in rows:
            out.print(f"{r['format']:7s} {r['path']}  SQNR {r['sqnr_db']} dB"
                      + (f"  HR MAE {r['mae']} (float {r['mae_float']})" if "mae" in r else "")
                      + (f"  arena {r['arena_bytes']} B" if "arena_bytes" in r else ""))


@app.command("verify")
@handle_errors
def verify_cmd(artifact: Annotated[Path, typer.Argument(help="Exported artifact (with its manifest).")],
               data: Annotated[Path, typer.Option("--data", help="Windows dataset (its test split is run) or a .npy of normalised (N, C, T) windows.")] = ...,
               n: Annotated[int, typer.Option("--n", help="Windows to run.")] = 256,
               reference: Annotated[Optional[Path], typer.Option("--reference", help="The checkpoint ARTIFACT was exported from (default: the manifest's source.checkpoint, if found); its sha256 must match the manifest's.")] = None,
               json_: JsonOpt = False) -> None:
    """Check ARTIFACT against its manifest (sha256, and the input spec against the artifact, the
    data and the reference) and run the data in its runtime against an independent reference:
    the eager source model, or the reference outputs stored at export. Exit 1 on any mismatch."""
    from edgefm.export.verify import verify_artifact
    rep = verify_artifact(artifact, data, n=n, reference=reference)
    if json_:
        print_json(rep)
        return
    out.print(f"{artifact}: verified against {rep['reference']}", highlight=False, soft_wrap=True)
    out.print(f"  input spec {rep['input_spec']}; data: {rep['data']}", highlight=False, soft_wrap=True)
    line = f"  SQNR {rep['sqnr_db']} dB, max |diff| {rep['max_abs_diff']:.4g} on {rep['sqnr_windows']} windows"
    if rep.get("mae") is not None:
        line += f"; MAE vs labels {rep['mae']}" + (f" (eager {rep['mae_float']})" if "mae_float" in rep else "") \
            + f" on {rep['n']} windows of the data"
    out.print(line, highlight=False, soft_wrap=True)
