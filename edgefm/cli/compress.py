"""`edgefm compress ...` commands: a thin layer over :mod:`quantize`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from edgefm.cli.common import JsonOpt, OverwriteOpt, UnverifiedOpt, err, handle_errors, out, print_json

app = typer.Typer(no_args_is_help=True)



class Backend(str, Enum):
    pte = "pte"
    tflite = "tflite"
    onnx = "onnx"


def _calib(ckpt, data, n, split="train", unverified: bool = False):
    import numpy as np
    from edgefm.export.io import load_model, load_windows
    lm = load_model(ckpt, unverified=unverified)
    if lm.source.get("unverified"):
        err.print(f"[yellow]unverified:[/yellow] {ckpt} has no manifest; its sha256 was not checked", highlight=False)
    x, y = load_windows(data, split, lm.input_spec.get("channels"), label="hr")
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(x), size=min(n, len(x)), replace=False))
    return lm, x[idx], (y[idx] if y is not None else None)


@app.command("prune")
@handle_errors
def prune(ckpt: Annotated[Path, typer.Argument(help="Student or model checkpoint.")],
          data: Annotated[Path, typer.Option("--data", help="Windows dataset for recovery (train split).")] = ...,
          out_path: Annotated[Path, typer.Option("--out", "-o", help="Pruned checkpoint (.pt).")] = Path("pruned.pt"),
          ratio: Annotated[float, typer.Option("--ratio", help="Fraction of channels removed.")] = 0.5,
          method: Annotated[str, typer.Option("--method", help="structured | unstructured")] = "structured",
          schedule: Annotated[str, typer.Option("--schedule", help="oneshot | iterative")] = "oneshot",
          steps: Annotated[int, typer.Option("--steps", help="Iterative steps.")] = 1,
          recover_epochs: Annotated[int, typer.Option("--recover-epochs", help="Distillation epochs per step.", min=0)] = 5,
          n: Annotated[int, typer.Option("--n", help="Recovery windows.", min=1)] = 4096,
          overwrite: OverwriteOpt = False,
          unverified: UnverifiedOpt = False,
          json_: JsonOpt = False) -> None:
    """Prune CKPT's channels (Torch-Pruning) and recover by distilling from the unpruned model."""
    import torch
    from edgefm.export.io import save_model
    from edgefm.manifest import check_output
    from quantize.prune import PruneConfig, prune_
    check_output(out_path, overwrite=overwrite, sources=(ckpt, data))
    lm, x, _ = _calib(ckpt, data, n, unverified=unverified)
    cfg = PruneConfig(ratio=ratio, method=method, schedule=schedule,
                      steps=steps if schedule == "iterative" else 1, recover_epochs=recover_epochs)
    rep = prune_(lm.model, cfg, (torch.from_numpy(x[:1]),), data=x if recover_epochs else None)
    save_model(out_path, lm.model, input_spec=lm.input_spec, source=lm.source, meta={"prune": rep.to_dict()},
               output_spec=lm.output_spec)
    d = rep.to_dict() | {"out": str(out_path), "source_integrity": "unverified" if lm.source.get("unverified")
                         else "verified"}
    print_json(d) if json_ else out.print(
        f"{out_path}: params {rep.before.params} -> {rep.after.params}, MACs {rep.before.macs} -> {rep.after.macs} "
        f"(-{rep.macs_reduction:.0%}), eager latency {rep.before.latency_ms:.3f} -> {rep.after.latency_ms:.3f} ms")


@app.command("quantize")
@handle_errors
def quantize(ckpt: Annotated[Path, typer.Argument(help="Student or model checkpoint.")],
             backend: Annotated[Backend, typer.Option("--backend", "-b")] = Backend.tflite,
             calib: Annotated[Path, typer.Option("--calib", help="Windows dataset (train split).")] = ...,
             n: Annotated[int, typer.Option("--n", help="Calibration windows.", min=1)] = 256,
             unverified: UnverifiedOpt = False,
             json_: JsonOpt = False) -> None:
    """int8-quantize CKPT (one PT2E scheme for every backend; BACKEND picks the graph's form) and
    print the per-layer SQNR (dB) report.
    (Write the artifact with `edgefm export run CKPT --int8`.)"""
    from quantize.ptq import QuantConfig, output_range_for, quantize_
    lm, x, _ = _calib(ckpt, calib, n, unverified=unverified)
    qm = quantize_(lm.model, QuantConfig(backend=backend.value, calibration=x,
                                         output_range=output_range_for(lm.output_spec)))
    if json_:
        print_json({"backend": qm.backend, "layer_sqnr": qm.layer_sqnr,
                    "source_integrity": "unverified" if lm.source.get("unverified") else "verified"})
    else:
        for r in qm.layer_sqnr:
            out.print(f"{r['layer']:32s} {r['op']:24s} {r['sqnr_db']:7.2f} dB")


@app.command("tune")
@handle_errors
def tune(ckpt: Annotated[Path, typer.Argument(help="Student or model checkpoint.")],
         backend: Annotated[Backend, typer.Option("--backend", "-b")] = Backend.tflite,
         calib: Annotated[Path, typer.Option("--calib", help="Windows dataset (train / val splits).")] = ...,
         tolerable_loss: Annotated[float, typer.Option("--tolerable-loss", help="Relative HR-MAE loss accepted.")] = 0.01,
         n: Annotated[int, typer.Option("--n", help="Calibration / evaluation windows.", min=1)] = 256,
         unverified: UnverifiedOpt = False,
         json_: JsonOpt = False) -> None:
    """Accuracy-aware int8 (Intel Neural Compressor tuning loop): the fewest layers kept in float."""
    from quantize.tune import TuneConfig, tune as tune_
    lm, x, _ = _calib(ckpt, calib, n, unverified=unverified)
    _, xv, yv = _calib(ckpt, calib, n, split="val", unverified=unverified)
    res = tune_(lm.model, TuneConfig(backend=backend.value, calibration=x, tolerable_loss=tolerable_loss), xv, yv)
    if json_:
        print_json(res.to_dict() | {"source_integrity": "unverified" if lm.source.get("unverified") else "verified"})
    else:
        out.print(f"keep in float: {res.keep_float or 'nothing'}; HR MAE {res.mae} vs float {res.mae_float} "
                  f"({res.rel_loss:+.2%}, goal {'met' if res.met else 'NOT met'})")
