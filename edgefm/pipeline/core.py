"""Stage orchestration: hashing, skipping, ``--from``, progress with ETA, stage manifests.

A stage is a function ``fn(ctx, inputs) -> summary`` where ``inputs`` maps each dependency's
name to its :class:`StageRecord` (its directory, summary and output hash) and ``ctx`` is a
:class:`StageContext` whose ``dir`` is a temporary directory that becomes ``RUN/<stage>/``
when the stage returns (``atomic_dir``: a failed stage never leaves a half-written folder).
The returned summary (JSON-able dict) is stored in ``RUN/<stage>/stage.json`` with:

``input_hash``   sha256 of (stage name, its params, its dependencies' output hashes, code version)
``output_hash``  sha256 over every file the stage wrote (relative path + file sha256)
``params``, ``inputs`` (dependency -> output hash), ``outputs`` (file -> sha256, bytes),
``summary``, ``seconds``, ``versions``, ``finished_at``

On a re-run a stage is skipped when its stored ``input_hash`` equals the new one and its files
still match ``outputs``; ``from_stage`` forces that stage and every later one to re-run.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rich.console import Console

from edgefm.errors import ConfigError, EdgefmError, ManifestError
from edgefm.manifest import (atomic_dir, atomic_write_json, dumps, is_temporary, package_versions, read_json,
                             remove_stale_temporaries, sha256_file)

STAGE_FILE = "stage.json"
STAGE_SCHEMA = 1


class StageError(EdgefmError):
    """A pipeline stage failed or could not run (its module is missing or refused the input)."""


@dataclass(frozen=True)
class Stage:
    """One step of the pipeline.

    name: directory name under the run (``RUN/<name>/``) and ``--from`` value.
    fn: ``fn(ctx, inputs) -> summary dict``.
    deps: names of earlier stages whose outputs this one reads.
    params: everything that configures it (hashed; changing any re-runs the stage).
    eta_s: expected seconds on 2 cores, for the progress ETA before a run has been timed.
    """

    name: str
    fn: Callable[["StageContext", dict], dict]
    deps: tuple[str, ...] = ()
    params: dict = field(default_factory=dict)
    eta_s: float = 10.0
    doc: str = ""


@dataclass
class StageRecord:
    """What a finished (or skipped) stage left: its folder, manifest, summary and output hash."""

    name: str
    dir: Path
    manifest: dict
    skipped: bool = False

    @property
    def summary(self) -> dict:
        return self.manifest.get("summary", {})

    @property
    def output_hash(self) -> str:
        return self.manifest["output_hash"]

    @property
    def seconds(self) -> float:
        return float(self.manifest.get("seconds", 0.0))


@dataclass
class StageContext:
    """Handed to each stage: where to write (``dir``), the run, and a progress callback."""

    name: str
    dir: Path                  # temporary; becomes RUN/<name>/ on success
    run_dir: Path
    params: dict
    log: Callable[[str], None]

    def final_path(self, *parts: str) -> Path:
        """Where ``dir/parts`` will live once the stage has finished (for paths stored in summaries)."""
        return self.run_dir / self.name / Path(*parts)


def _tree_outputs(d: Path) -> dict[str, dict]:
    """Every file a stage wrote (path relative to its folder -> sha256, bytes); a writer's leftover
    temporary inside the folder is not an output."""
    out = {}
    for p in sorted(d.rglob("*")):
        rel = p.relative_to(d)
        if p.is_file() and p.name != STAGE_FILE and not is_temporary(rel):
            out[str(rel)] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return out


def sweep_stale(run_dir: Path, names) -> list[Path]:
    """Remove the temporaries (``.STAGE.tmp-PID-*``) that killed runs left in ``run_dir``."""
    removed = []
    for name in names:
        removed += remove_stale_temporaries(run_dir, name)
    return removed


def _hash(obj: Any) -> str:
    return hashlib.sha256(dumps(obj).encode()).hexdigest()


def input_hash(stage: Stage, inputs: dict[str, StageRecord], code_version: str) -> str:
    return _hash({"stage": stage.name, "params": stage.params, "code": code_version,
                  "inputs": {k: v.output_hash for k, v in sorted(inputs.items())}})


def read_stage(run_dir: Path, name: str) -> StageRecord | None:
    """The stored record of a stage, or None when it never finished."""
    p = run_dir / name / STAGE_FILE
    if not p.exists():
        return None
    try:
        m = read_json(p)
    except ManifestError:
        return None
    if m.get("schema") != STAGE_SCHEMA or "output_hash" not in m:
        return None
    return StageRecord(name, run_dir / name, m)


def _still_valid(rec: StageRecord) -> bool:
    """Every output file is still there with the recorded sha256."""
    for rel, meta in rec.manifest.get("outputs", {}).items():
        p = rec.dir / rel
        if not p.is_file() or p.stat().st_size != meta["bytes"] or sha256_file(p) != meta["sha256"]:
            return False
    return True


def _fmt_s(s: float) -> str:
    s = max(0.0, s)
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min"


def _seed_everything(seed: int) -> None:
    """Reset the global RNGs before a stage: models built before a training loop seeds itself
    (teacher, students) must not depend on what ran earlier in the process (another pipeline run,
    a skipped stage), or one preset gives different figures from one invocation to the next."""
    import random

    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_stages(stages: list[Stage], run_dir: str | Path, *, from_stage: str | None = None,
               code_version: str = "", console: Console | None = None) -> dict[str, StageRecord]:
    """Run ``stages`` in order into ``run_dir``; returns every stage's record by name.

    Raises:
        ConfigError: ``from_stage`` is not a stage name, or a dependency is not an earlier stage.
        StageError: a stage failed (the message names the stage; its folder is not written).
    """
    run_dir = Path(run_dir)
    console = console or Console(stderr=True)
    names = [s.name for s in stages]
    if from_stage is not None and from_stage not in names:
        raise ConfigError(f"unknown stage {from_stage!r}", field="--from", hint=f"one of: {', '.join(names)}")
    for i, s in enumerate(stages):
        bad = [d for d in s.deps if d not in names[:i]]
        if bad:
            raise ConfigError(f"stage {s.name} depends on {bad}, which do not run before it", field="deps")
    forced = set(names[names.index(from_stage):]) if from_stage else set()
    for p in sweep_stale(run_dir, names):
        console.print(f"removed {p.name}, left by a run that was killed", highlight=False)
    done: dict[str, StageRecord] = {}
    t_run = time.perf_counter()
    # ETA: last run's time for a stage when we have it, else the preset's estimate
    est = {}
    for s in stages:
        old = read_stage(run_dir, s.name)
        est[s.name] = old.seconds if old is not None and old.seconds > 0 else s.eta_s
    for i, s in enumerate(stages, 1):
        inputs = {d: done[d] for d in s.deps}
        h = input_hash(s, inputs, code_version)
        old = read_stage(run_dir, s.name)
        remaining = sum(est[x.name] for x in stages[i - 1:])
        head = f"[{i}/{len(stages)}] {s.name}"
        if s.name not in forced and old is not None and old.manifest.get("input_hash") == h and _still_valid(old):
            old.skipped = True
            done[s.name] = old
            est[s.name] = 0.0
            console.print(f"{head}: inputs unchanged, skipped (was {_fmt_s(old.seconds)})", highlight=False)
            continue
        console.print(f"{head}: {s.doc or 'running'} · ETA {_fmt_s(est[s.name])} "
                      f"(pipeline ≈ {_fmt_s(remaining)} left)", highlight=False)
        t0 = time.perf_counter()
        try:
            with atomic_dir(run_dir / s.name, overwrite=True) as tmp:   # the run owns its stage folders
                ctx = StageContext(s.name, tmp, run_dir, s.params,
                                   log=lambda m, _n=s.name: console.print(f"    {_n}: {m}", highlight=False))
                _seed_everything(int(s.params.get("seed", 0)))
                summary = s.fn(ctx, inputs) or {}
                seconds = time.perf_counter() - t0
                outputs = _tree_outputs(tmp)
                manifest = {"schema": STAGE_SCHEMA, "stage": s.name, "input_hash": h, "params": s.params,
                            "inputs": {k: v.output_hash for k, v in inputs.items()},
                            "outputs": outputs, "output_hash": _hash(outputs | {"summary": summary}),
                            "summary": summary, "seconds": round(seconds, 3),
                            "versions": package_versions("torch", "numpy"),
                            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                atomic_write_json(tmp / STAGE_FILE, manifest)
        except EdgefmError as e:
            if isinstance(e, StageError):
                raise
            raise StageError(f"stage {s.name} failed: {type(e).__name__}: {e.one_line()}",
                             hint=f"fix it, then re-run with --from {s.name}") from e
        except Exception as e:       # a bug or an unexpected library error inside a stage
            raise StageError(f"stage {s.name} failed: {type(e).__name__}: {e}",
                             hint=f"EDGEFM_DEBUG=1 shows the traceback; re-run with --from {s.name}") from e
        done[s.name] = StageRecord(s.name, run_dir / s.name, manifest)
        est[s.name] = 0.0
        console.print(f"{head}: done in {_fmt_s(seconds)} · total {_fmt_s(time.perf_counter() - t_run)}",
                      highlight=False)
    return done
