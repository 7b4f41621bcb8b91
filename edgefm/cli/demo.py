"""`edgefm demo ...` commands: build and serve the on-phone web app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgefm.cli.common import OverwriteOpt, err, handle_errors

app = typer.Typer(no_args_is_help=True)


@app.command("build")
@handle_errors
def build(
    source: Annotated[Path, typer.Argument(help="Pipeline run directory, or a student .onnx with its manifest.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the built app.")] = Path("runs/demo"),
    gate: Annotated[Optional[Path], typer.Option("--gate", help="Gate config JSON (default: from the run).")] = None,
    device: Annotated[Optional[Path], typer.Option("--device-json", help="Device summary JSON (default: from the run).")] = None,
    trace: Annotated[Optional[Path], typer.Option("--trace", help="Replay trace JSON (default: from the run).")] = None,
    overwrite: OverwriteOpt = False,
) -> None:
    """Assemble the demo app (ONNX Runtime Web, model, gate, device, trace) into a static folder.

    --out may not be the source or contain it; an existing non-empty --out needs --overwrite."""
    from edgefm.pipeline.demo import build_demo
    p = build_demo(source, out, gate=gate, device=device, trace=trace, overwrite=overwrite)
    typer.echo(str(p))
    err.print(f"serve it with: edgefm demo serve {p} --https", highlight=False)


@app.command("serve")
@handle_errors
def serve(
    folder: Annotated[Path, typer.Argument(help="A folder made by `edgefm demo build`.")],
    host: Annotated[str, typer.Option("--host", help="Address to bind (0.0.0.0 to reach it from a phone).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 8000,
    https: Annotated[bool, typer.Option("--https", help="HTTPS with a self-signed certificate (phones need it for the accelerometer).")] = False,
) -> None:
    """Serve the demo app: its regular files only (no listings, dotfiles or links out of the folder)."""
    from edgefm.pipeline.demo import serve_demo
    srv = serve_demo(folder, host=host, port=port, https=https)
    scheme = "https" if https else "http"
    typer.echo(f"{scheme}://{host}:{srv.server_address[1]}/")
    if https:
        err.print("self-signed certificate: accept the browser's warning once", highlight=False)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
