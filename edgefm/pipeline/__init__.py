"""`edgefm pipeline`: data -> teacher -> distil -> prune -> quantize -> export -> gate ->
simulate -> profile -> report, as one API call.

    from edgefm.pipeline import PipelineConfig, run_pipeline
    result = run_pipeline(PipelineConfig(out="runs/quick", quick=True))
    result.report_html            # RUN/report/report.html

Each stage writes its artifacts and ``stage.json`` into ``RUN/<stage>/`` (see
:mod:`edgefm.pipeline.core`); a re-run skips stages whose inputs are unchanged,
``from_stage`` re-runs from one. Bad input fails in :func:`validate` before any training.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from edgefm.manifest import atomic_write_json
from edgefm.pipeline.config import ETA_S, PRESETS, STAGES, PipelineConfig, validate
from edgefm.pipeline.core import Stage, StageError, StageRecord, run_stages
from edgefm.pipeline import stages as S

__all__ = ["PipelineConfig", "RunResult", "run_pipeline", "build_stages", "validate", "STAGES", "PRESETS",
           "StageError"]

# bump when a stage's code changes what it produces (part of every stage's input hash)
CODE_VERSION = "pipeline/1"

_DOC = {"data": "synthetic cohort", "teacher": "pretrain the MAE teacher", "distil": "PPG→ACC distillation",
        "prune": "structured pruning + recovery", "quantize": "int8 PTQ per backend",
        "export": "export all formats + verify", "gate": "calibrate the motion gate",
        "simulate": "firmware/battery simulation", "profile": "host latency + budget",
        "report": "HTML/Markdown/JSON report"}
_DEPS = {"data": (), "teacher": ("data",), "distil": ("data", "teacher"), "prune": ("data", "distil"),
         "quantize": ("data", "prune"), "export": ("data", "distil", "prune", "quantize"),
         "gate": ("data", "export"), "simulate": ("data", "export", "gate"),
         "profile": ("data", "teacher", "distil", "export", "gate", "simulate"),
         "report": ("data", "teacher", "distil", "prune", "quantize", "export", "gate", "simulate", "profile")}


@dataclass
class RunResult:
    """What a pipeline run produced: the run folder and every stage's record."""

    run_dir: Path
    stages: dict[str, StageRecord]
    seconds: float

    @property
    def report_html(self) -> Path:
        return self.run_dir / "report" / "report.html"

    @property
    def skipped(self) -> list[str]:
        return [k for k, v in self.stages.items() if v.skipped]

    def summary(self) -> dict:
        return {"run_dir": str(self.run_dir), "seconds": round(self.seconds, 2), "skipped": self.skipped,
                "stages": {k: {"seconds": v.seconds, "skipped": v.skipped} for k, v in self.stages.items()},
                "report": str(self.report_html)}


def build_stages(config: PipelineConfig, context: dict | None = None) -> list[Stage]:
    """The stage list for a config (params from its preset, the device, budget and data)."""
    context = context or {}
    out = []
    for name in STAGES:
        params = config.params(name)
        if name == "data" and config.data is not None:
            params = {"path": str(config.data.resolve()), "seed": config.seed}
        if name in ("simulate", "profile"):
            params["device"] = config.device
        if name == "profile" and config.budget is not None:
            from edgefm.manifest import sha256_file
            params["budget"] = {"path": str(config.budget.resolve()), "sha256": sha256_file(config.budget)}
        out.append(Stage(name, getattr(S, f"stage_{name}"), _DEPS[name], params,
                         eta_s=ETA_S[config.preset][name], doc=_DOC[name]))
    return out


def run_pipeline(config: PipelineConfig, console: Console | None = None) -> RunResult:
    """Validate the input, then run every stage into ``config.out``.

    Raises:
        ConfigError / DataError / ManifestError: bad input, before any stage runs.
        StageError: a stage failed (named, with the next thing to try).
    """
    console = console or Console(stderr=True)
    t0 = time.perf_counter()
    context = validate(config)
    config.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config.out / "pipeline.json", {"config": config.to_dict(), "preset": config.preset,
                                                    "stages": list(STAGES), "code_version": CODE_VERSION})
    console.print(f"edgefm pipeline ({config.preset} preset) → {config.out}", highlight=False)
    recs = run_stages(build_stages(config, context), config.out, from_stage=config.from_stage,
                      code_version=CODE_VERSION, console=console)
    res = RunResult(config.out, recs, time.perf_counter() - t0)
    console.print(f"pipeline finished in {res.seconds:.1f} s; report: {res.report_html}", highlight=False)
    return res
