"""`edgefm pipeline`: data -> teacher -> distil -> prune -> quantize -> export -> gate ->
simulate -> profile -> report, as one API call.

    from edgefm.pipeline import PipelineConfig, run_pipeline
    result = run_pipeline(PipelineConfig(out="runs/quick", quick=True))
    result.report_html            # RUN/report/report.html

Each stage writes its artifacts and ``stage.json`` into ``RUN/<stage>/`` (see
:mod:`edgefm.pipeline.core`); a re-run skips stages whose inputs are unchanged,
``from_stage`` re-runs from one. Bad input fails in :func:`validate` before any training.

The run directory is the pipeline's own: an earlier run (it has ``pipeline.json``) is resumed,
an empty or new folder is used, and any other non-empty folder is refused unless
``overwrite=True``, which runs afresh into a temporary sibling that replaces it at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from edgefm.manifest import atomic_dir, atomic_write_json, check_output, remove_stale_temporaries
from edgefm.pipeline.config import ETA_S, PRESETS, STAGES, PipelineConfig, validate
from edgefm.pipeline.core import Stage, StageError, StageRecord, run_stages, sweep_stale
from edgefm.pipeline import stages as S

__all__ = ["PipelineConfig", "RunResult", "run_pipeline", "build_stages", "validate", "STAGES", "PRESETS",
           "StageError", "is_run_dir"]

# bump when a stage's code changes what it produces (part of every stage's input hash)
CODE_VERSION = "pipeline/2"   # 2: the prune stage writes a code-free checkpoint with a manifest
RUN_FILE = "pipeline.json"          # marks a run directory (written before the first stage)

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


def stage_names(config: PipelineConfig) -> tuple[str, ...]:
    """The stages a config runs: the cohort pipeline, or the recordings one for imported data."""
    from edgefm.pipeline import recordings as R
    return R.STAGES if config.data is not None and R.is_recordings(config.data) else STAGES


def _recording_stages(config: PipelineConfig) -> list[Stage]:
    from edgefm.pipeline import recordings as R
    pre = R.PRESET[config.preset]
    common = {"seed": config.seed}
    params = {
        "data": {**common, "path": str(config.data.resolve()), "task": config.task, "sensors": config.sensors,
                 "fs_hz": config.fs_hz, "window_s": config.window_s, "hop_s": config.hop_s, "split": config.split,
                 "epochs": pre["epochs"]},
        "teacher": common,
        "model": {**common, "sensors": config.sensors, "fs_hz": config.fs_hz, "window_s": config.window_s,
                  "hop_s": config.hop_s, "epochs": pre["epochs"]},
        "gate": {**common, "target_recall": PRESETS[config.preset]["gate"]["target_recall"]},
        "simulate": {**common, "device": config.device},
        "profile": {**common, "device": config.device, "runs": pre["runs"], "warmup": pre["warmup"]},
        "report": common}
    if config.budget is not None:
        from edgefm.manifest import sha256_file
        params["profile"]["budget"] = {"path": str(config.budget.resolve()), "sha256": sha256_file(config.budget)}
    return [Stage(n, getattr(R, f"stage_{n}"), R.DEPS[n], params[n], eta_s=R.ETA_S[config.preset][n], doc=R.DOC[n])
            for n in R.STAGES]


def build_stages(config: PipelineConfig, context: dict | None = None) -> list[Stage]:
    """The stage list for a config (params from its preset, the device, budget and data)."""
    context = context or {}
    if stage_names(config) is not STAGES:
        return _recording_stages(config)
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


def is_run_dir(path: str | Path) -> bool:
    """True when ``path`` is a run directory this pipeline wrote (a readable ``pipeline.json`` with
    its ``config``, ``stages`` and ``code_version``): a later run may resume it in place."""
    path = Path(path)
    p = path / RUN_FILE
    if path.is_symlink() or not p.is_file():
        return False
    try:
        m = json.loads(p.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(m, dict) and isinstance(m.get("stages"), list) and {"config", "code_version"} <= set(m)


def _has_content(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _run_into(run_dir: Path, config: PipelineConfig, stages: list[Stage], console: Console) -> dict[str, StageRecord]:
    names = stage_names(config)
    for p in sweep_stale(run_dir, names):
        console.print(f"removed {p.name}, left by a run that was killed", highlight=False)
    atomic_write_json(run_dir / RUN_FILE, {"config": config.to_dict(), "preset": config.preset,
                                           "stages": list(names), "code_version": CODE_VERSION})
    return run_stages(stages, run_dir, from_stage=config.from_stage, code_version=CODE_VERSION, console=console)


def run_pipeline(config: PipelineConfig, console: Console | None = None) -> RunResult:
    """Validate the input, then run every stage into ``config.out``.

    ``config.out`` may be new, empty, or an earlier run (resumed: unchanged stages are skipped).
    Any other non-empty path is refused unless ``config.overwrite``; then the run goes into a
    temporary sibling that replaces ``out`` only when every stage has finished.

    Raises:
        ConfigError: ``out`` is not empty and not a run (without ``overwrite``), is a symlink, or
            is / contains / lies inside ``--data``, the budget or the device file.
        ConfigError / DataError / ManifestError: bad input, before any stage runs.
        StageError: a stage failed (named, with the next thing to try).
    """
    console = console or Console(stderr=True)
    t0 = time.perf_counter()
    out = config.out
    resume = not config.overwrite and is_run_dir(out)
    device_file = Path(config.device) if config.device.endswith(".toml") else None
    check_output(out, overwrite=config.overwrite, sources=(config.data, config.budget, device_file),
                 option="--out", resumable=resume)
    context = validate(config)
    stages = build_stages(config, context)
    console.print(f"edgefm pipeline ({config.preset} preset) → {out}", highlight=False)
    if config.overwrite and _has_content(out):
        with atomic_dir(out, overwrite=True) as tmp:         # the old folder stays until the run succeeds
            recs = _run_into(tmp, config, stages, console)
        recs = {k: StageRecord(k, out / k, r.manifest, r.skipped) for k, r in recs.items()}
    else:
        remove_stale_temporaries(out.parent, out.name)       # an --overwrite run that was killed
        out.mkdir(parents=True, exist_ok=True)
        recs = _run_into(out, config, stages, console)
    res = RunResult(out, recs, time.perf_counter() - t0)
    console.print(f"pipeline finished in {res.seconds:.1f} s; report: {res.report_html}", highlight=False)
    return res
