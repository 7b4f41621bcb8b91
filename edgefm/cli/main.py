"""Root of the ``edgefm`` CLI. Each group lives in its own module ``edgefm/cli/<group>.py``."""

from __future__ import annotations

import importlib

import typer

GROUPS = [
    ("data", "Synthesize, import, window, inspect and plot wearable data."),
    ("teacher", "Pretrain and evaluate the LSM-style masked-autoencoder teacher."),
    ("distill", "Distil the PPG-informed teacher into an accelerometer-only student."),
    ("task", "A deployable model for heart rate, activity, freezing or phase on your own recordings."),
    ("compress", "Prune and int8-quantize a model."),
    ("export", "Export to ExecuTorch, LiteRT/TFLite, TFLite Micro and ONNX, with verification."),
    ("gate", "Calibrate and evaluate the opportunistic-inference motion gate."),
    ("simulate", "Project energy, latency, memory and battery life on a named device."),
    ("profile", "Measure latency, memory and size of artifacts and check them against a budget."),
    ("pipeline", "Run the whole path: data -> teacher -> student -> compress -> export -> report."),
    ("demo", "Build and serve the on-phone demo web app."),
]

app = typer.Typer(name="edgefm", help="Wearable foundation models from the lab to the wrist.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)

for _name, _help in GROUPS:
    _mod = importlib.import_module(f"edgefm.cli.{_name}")
    app.add_typer(_mod.app, name=_name, help=_help)


@app.command("version")
def version() -> None:
    """Print edgefm's version and its backends' versions."""
    from edgefm.manifest import package_versions
    from edgefm.cli.common import print_json
    print_json(package_versions("torch", "executorch", "litert-torch", "ai-edge-litert",
                                "tflite-micro", "onnx", "onnxruntime", "neural-compressor-pt",
                                "torch-pruning"))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
