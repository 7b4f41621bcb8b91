"""Pipeline configuration, presets, and the up-front validation of user input.

``PipelineConfig`` says where the data comes from, where the run goes, which preset, device
and budget. ``validate(config)`` runs before any stage: an empty or malformed data directory,
a budget file with unknown keys, or a device profile that does not exist fails here with one
line, before any training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from edgefm.errors import ConfigError, DataError, ManifestError

STAGES = ("data", "teacher", "distil", "prune", "quantize", "export", "gate", "simulate", "profile", "report")

# Every knob of a preset, per stage. distil.probes picks the deployable HR head: linear only, because
# distill's MLPHead normalises with a div op that TFLite Micro cannot run (UnsupportedOpError at export). `quick`: tiny models, little data, < 3 min on 2 cores.
# `default`: < 15 min on 2 cores, sized to meet the other issues' goals.
# The teacher trains to a fixed number of steps (max_minutes None), not to a wall-clock budget: a
# budget makes its step count, and every figure after it, depend on how loaded the machine is.
PRESETS: dict[str, dict[str, dict]] = {
    "quick": {
        "data": {"subjects": 8, "days": 0.15, "raw_minutes": 6.0, "freezing_fraction": 0.5, "start_hour": 9.0},
        "teacher": {"size": "tiny", "steps": 50, "max_minutes": None, "batch_size": 32, "eval_windows": 64},
        "distil": {"student": "cnn1d_tiny", "epochs": 4, "batch_size": 64, "max_train_windows": 1024,
                   "fractions": [0.1, 1.0], "seeds": [0], "ssl_epochs": 2, "supervised_epochs": 3,
                   "max_windows": 1024, "probes": ["linear"], "finetune_epochs": 4},
        "prune": {"amount": 0.5, "recover_epochs": 1},
        "quantize": {"calib_windows": 256, "eval_windows": 128},
        "export": {"formats": ["pte", "tflite", "onnx", "tflm"], "precisions": ["fp32", "int8"], "verify_windows": 128},
        "gate": {"target_recall": 0.95},
        "simulate": {"days": 1.0},
        "profile": {"runs": 20, "warmup": 3},
    },
    "default": {
        "data": {"subjects": 24, "days": 1.0, "raw_minutes": 20.0, "freezing_fraction": 0.2, "start_hour": 6.0},
        "teacher": {"size": "tiny", "steps": 700, "max_minutes": None, "batch_size": 64, "eval_windows": 512},
        "distil": {"student": "cnn1d_small", "epochs": 15, "batch_size": 128, "max_train_windows": 20000,
                   "fractions": [0.01, 0.1, 1.0], "seeds": [0, 1, 2], "ssl_epochs": 10,
                   "supervised_epochs": 15, "max_windows": 20000, "probes": ["linear"],
                     "finetune_epochs": 8},
        "prune": {"amount": 0.5, "recover_epochs": 5},
        "quantize": {"calib_windows": 512, "eval_windows": 256},
        "export": {"formats": ["pte", "tflite", "onnx", "tflm"], "precisions": ["fp32", "int8"], "verify_windows": 256},
        "gate": {"target_recall": 0.95},
        "simulate": {"days": 1.0},
        "profile": {"runs": 200, "warmup": 20},
    },
}
# Expected seconds per stage on 2 cores (progress ETA before a stage has been timed once).
ETA_S = {"quick": {"data": 10, "teacher": 35, "distil": 40, "prune": 10, "quantize": 15, "export": 30,
                   "gate": 5, "simulate": 5, "profile": 15, "report": 5},
         "default": {"data": 90, "teacher": 300, "distil": 240, "prune": 40, "quantize": 40, "export": 60,
                     "gate": 20, "simulate": 20, "profile": 60, "report": 10}}


@dataclass(frozen=True)
class PipelineConfig:
    """One pipeline run.

    out: the run directory (``RUN/<stage>/`` per stage).
    data: a cohort-layout directory (``raw/`` wrist-raw windows with ppg + acc and ``traces/``
        continuous ACC recordings with activity labels), e.g. ``edgefm data synth`` output;
        None = generate the built-in synthetic cohort.
    quick: the quick preset (tests, demos) instead of the default one.
    device: firmware-simulator device profile name or TOML path.
    budget: a budget TOML for the profile stage (None: report only, nothing fails).
    from_stage: re-run from this stage even if its inputs are unchanged.
    overrides: {stage: {param: value}} on top of the preset.
    overwrite: replace an existing ``out`` (a fresh run, swapped in when it finishes). Without it
        an earlier run directory is resumed and any other non-empty folder is refused.
    """

    out: Path = Path("runs/default")
    data: Path | None = None
    quick: bool = False
    device: str = "nrf52840"
    budget: Path | None = None
    from_stage: str | None = None
    seed: int = 0
    overrides: dict = field(default_factory=dict)
    overwrite: bool = False
    task: str | None = None
    sensors: str = "led_on"
    fs_hz: float | None = None
    window_s: float | None = None
    hop_s: float | None = None
    split: str = "manifest"

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))
        if self.data is not None:
            object.__setattr__(self, "data", Path(self.data))
        if self.budget is not None:
            object.__setattr__(self, "budget", Path(self.budget))
        from edgefm.pipeline.recordings import STAGES as REC_STAGES
        known = STAGES + tuple(s for s in REC_STAGES if s not in STAGES)
        if self.from_stage is not None and self.from_stage not in known:
            raise ConfigError(f"unknown stage {self.from_stage!r}", field="--from", hint=f"one of: {', '.join(known)}")
        if self.sensors not in ("led_on", "led_off"):
            raise ConfigError(f"must be led_on or led_off, got {self.sensors!r}", field="--sensors")
        if self.split not in ("manifest", "seeded"):
            raise ConfigError(f"unknown split {self.split!r}", field="--split", hint="manifest or seeded")
        bad = set(self.overrides) - set(STAGES)
        if bad:
            raise ConfigError(f"overrides for unknown stages {sorted(bad)}", field="overrides")
        for st, kv in self.overrides.items():
            unknown = set(kv) - set(PRESETS["default"][st]) if st in PRESETS["default"] else set()
            if unknown:
                raise ConfigError(f"unknown {st} parameters {sorted(unknown)}", field=f"overrides.{st}",
                                  hint=f"known: {', '.join(PRESETS['default'][st])}")

    @property
    def preset(self) -> str:
        return "quick" if self.quick else "default"

    def params(self, stage: str) -> dict:
        p = dict(PRESETS[self.preset].get(stage, {}))
        p.update(self.overrides.get(stage, {}))
        p["seed"] = self.seed
        return p

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def validate_data(path: Path) -> dict:
    """Check a user data directory has what the pipeline needs; returns its manifest."""
    from edgefm.manifest import read_json
    if not path.exists():
        raise DataError("data directory does not exist", path=path)
    if not path.is_dir():
        raise DataError("--data must be a directory", path=path)
    if not any(path.iterdir()):
        raise DataError("data directory is empty", path=path,
                        hint="point --data at `edgefm data import` or `edgefm data synth` output, or leave it out")
    if not (path / "manifest.json").exists():
        raise ManifestError("no manifest.json: not an edgefm dataset", path=path,
                            hint="create it with `edgefm data synth` or `edgefm data import`")
    m = read_json(path / "manifest.json")
    if m.get("kind") == "recordings":           # `edgefm data import` output: the recordings pipeline
        return m
    for part in ("raw", "traces"):
        if not (path / part / "manifest.json").exists():
            raise DataError(f"lacks the '{part}' part (wrist-raw windows and continuous ACC traces)",
                            path=path, field=part, hint="use the cohort layout of `edgefm data synth`")
    raw = read_json(path / "raw" / "manifest.json")
    if raw.get("kind") != "windows":
        raise ManifestError(f"raw/ is a {raw.get('kind')!r} dataset, expected windows", path=path / "raw")
    names = [c["name"] for c in raw.get("channels", [])]
    missing = [c for c in ("ppg", "acc_x", "acc_y", "acc_z") if c not in names]
    if missing:
        raise DataError(f"raw windows lack channels {missing}", path=path / "raw", field="channels",
                        hint="the teacher needs PPG and the student 3-axis ACC")
    if int(raw.get("n_windows", 0)) == 0:
        raise DataError("raw windows dataset holds no windows", path=path / "raw")
    return m


BUDGET_KEYS_FALLBACK = ("p99_latency_ms", "ram_kb", "flash_kb", "battery_days", "min_accuracy")


def load_budget(path: Path) -> dict:
    """Parse and validate a budget TOML with the profile module's own parser."""
    if not path.exists():
        raise ConfigError("budget file not found", path=path)
    try:
        from edgefm.profile import load_budget as _load
    except ImportError:
        _load = None
    if _load is not None:
        b = _load(path)
        return b if isinstance(b, dict) else dataclasses.asdict(b) if dataclasses.is_dataclass(b) else dict(vars(b))
    import tomllib
    try:
        d = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"not valid TOML ({e})", path=path) from e
    flat = d.get("budget", d)
    unknown = sorted(set(flat) - set(BUDGET_KEYS_FALLBACK))
    if unknown:
        raise ConfigError(f"unknown budget keys {unknown}", path=path, field=unknown[0],
                          hint=f"known keys: {', '.join(BUDGET_KEYS_FALLBACK)}")
    return flat


def validate(config: PipelineConfig) -> dict:
    """Everything that can be checked before training: data, device, budget. Returns what it read."""
    out = {}
    if config.data is not None:
        out["data_manifest"] = validate_data(config.data)
    try:
        from firmware_sim.device import load_device
    except ImportError as e:
        raise ConfigError(f"the firmware simulator is not installed ({e})", field="device") from e
    out["device"] = load_device(config.device)          # ConfigError naming the known profiles
    if config.budget is not None:
        out["budget"] = load_budget(config.budget)
    return out
