"""`edgefm export ...` commands: a thin layer over :mod:`edgefm.export`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from edgefm.cli.common import JsonOpt, err, handle_errors, out, print_json

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
        json_: JsonOpt = False) -> None:
    """Export CKPT to .pte / .tflite / .onnx / TFLite Micro C source, each with a manifest,
    verified in its real runtime on held-out windows."""
    import numpy as np
    import torch
    from edgefm.export import ArtifactSpec, export
    from edgefm.export.io import load_model, load_windows
    from edgefm.export.opcheck import unsupported_ops
    lm = load_model(ckpt)
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
    results = export(lm.model, format.value, out_dir, x, int8=int8, heldout=held, spec=spec, name=name)
    rows = [{"format": r.format, "path": str(r.path), "manifest": str(r.manifest), **r.verification, **r.extra}
            for r in results]
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
               data: Annotated[Path, typer.Option("--data", help="Windows dataset (test split) or .npy.")] = ...,
               n: Annotated[int, typer.Option("--n", help="Windows to run.")] = 256,
               json_: JsonOpt = False) -> None:
    """Check ARTIFACT's sha256 against its manifest and run held-out windows in its runtime."""
    from edgefm.export.io import load_windows
    from edgefm.export.verify import verify
    from edgefm.manifest import read_artifact_manifest
    m = read_artifact_manifest(artifact)
    x, y = load_windows(data, "test", m.get("input_spec", {}).get("channels"), max_n=n)
    rep = verify(artifact, x, y)
    print_json(rep) if json_ else out.print(rep)
