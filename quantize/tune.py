"""Accuracy-aware int8 tuning with Intel Neural Compressor's tuning loop.

    res = tune(model, TuneConfig(backend="tflite", calibration=calib, tolerable_loss=0.01), x, y)
    res.keep_float      # layers left in float (most sensitive first), [] when all-int8 is good
    res.trials          # [{keep_float, mae, rel_loss}]

Layers are ranked by per-layer SQNR of the all-int8 model (lowest = most sensitive). Neural
Compressor's ``TuningConfig`` / ``init_tuning`` drive the search: each trial is an
``INT8StaticQuantConfig`` whose ``set_local(layer, fp32)`` entries name the layers kept in float;
the shared int8 quantizer then builds that trial's model, and INC's tuning monitor stops at
the first trial within ``tolerable_loss`` (relative HR-MAE loss vs float).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from edgefm.errors import ConfigError, DataError
from quantize.ptq import QuantConfig, quantize_


@dataclass(frozen=True)
class TuneConfig:
    """backend: pte | tflite | onnx; calibration: (N, C, T); tolerable_loss: relative task-metric
    loss accepted (0.01 = 1%); max_float_layers: at most this many layers kept in float."""

    backend: str
    calibration: np.ndarray
    tolerable_loss: float = 0.01
    max_float_layers: int = 4
    per_channel: bool = True

    def __post_init__(self):
        if not 0.0 <= self.tolerable_loss < 1.0:
            raise ConfigError(f"tolerable_loss must be in [0, 1), got {self.tolerable_loss}", field="tolerable_loss")
        if self.max_float_layers < 0:
            raise ConfigError("max_float_layers must be >= 0", field="max_float_layers")


@dataclass
class TuneResult:
    keep_float: list[str]
    mae_float: float
    mae: float
    rel_loss: float
    met: bool
    trials: list[dict] = field(default_factory=list)
    ranking: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _mae(fn, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        pred = np.concatenate([np.asarray(fn(torch.from_numpy(x[i:i + 1]))).reshape(1, -1) for i in range(len(x))])
    return float(np.mean(np.abs(pred[:, 0] - y)))


def _sensitive_layers(rows: list[dict], model: torch.nn.Module) -> list[dict]:
    """Weight layers (conv/linear module paths) ordered by their output SQNR, lowest first."""
    weight_layers = {n for n, m in model.named_modules()
                     if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))}
    best: dict[str, float] = {}
    for r in rows:
        lay = r["layer"]
        owner = next((w for w in sorted(weight_layers, key=len, reverse=True)
                      if lay == w or lay.startswith(w + ".")), None)
        if owner is not None:
            best[owner] = min(best.get(owner, 1e9), r["sqnr_db"])
    return [{"layer": k, "sqnr_db": v} for k, v in sorted(best.items(), key=lambda kv: (kv[1], kv[0]))]


def tune(model: torch.nn.Module, config: TuneConfig, x: np.ndarray, y: np.ndarray) -> TuneResult:
    """Find the fewest float layers that keep int8 within ``tolerable_loss`` of float HR MAE on
    held-out ``x`` (N, C, T) / ``y`` (N,) bpm."""
    from neural_compressor.common.base_tuning import TuningConfig, init_tuning
    from neural_compressor.torch.quantization.config import INT8StaticQuantConfig
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if x.ndim != 3 or len(x) != len(y) or not np.isfinite(x).all() or not np.isfinite(y).all():
        raise DataError(f"tuning data must be finite x (N, C, T) and y (N,), got {x.shape}, {y.shape}", field="x")
    model = model.eval()
    mae_f = _mae(model, x, y)
    base = quantize_(model, QuantConfig(backend=config.backend, calibration=config.calibration,
                                        per_channel=config.per_channel))
    ranking = _sensitive_layers(base.layer_sqnr, model)
    candidates = [[r["layer"] for r in ranking[:k]] for k in range(0, min(config.max_float_layers, len(ranking)) + 1)]
    config_set = []
    for keep in candidates:
        c = INT8StaticQuantConfig()
        for lay in keep:
            c.set_local(lay, INT8StaticQuantConfig(w_dtype="fp32", act_dtype="fp32"))
        config_set.append(c)
    logging.getLogger("neural_compressor").setLevel(logging.WARNING)
    loader, _, monitor = init_tuning(TuningConfig(config_set=config_set, tolerable_loss=config.tolerable_loss,
                                                  max_trials=len(config_set)))
    monitor.set_baseline(1.0 / mae_f)          # INC maximises; 1/MAE turns "loss" into MAE increase
    trials, results = [], {}
    for i, cfg in enumerate(loader, 1):
        keep = sorted(cfg.local_config, key=lambda k: [r["layer"] for r in ranking].index(k)) if cfg.local_config else []
        qm = base if not keep else quantize_(model, QuantConfig(backend=config.backend, calibration=config.calibration,
                                                                 per_channel=config.per_channel, keep_float=tuple(keep)))
        mae = _mae(qm, x, y)
        results[i] = (keep, mae)
        trials.append({"keep_float": keep, "mae": round(mae, 4), "rel_loss": round((mae - mae_f) / mae_f, 5)})
        monitor.add_trial_result(i, 1.0 / mae, cfg)
        if monitor.need_stop():
            break
    best_i = monitor.get_best_trial_record().trial_index
    keep, mae = results[best_i]
    rel = (mae - mae_f) / mae_f
    return TuneResult(keep_float=keep, mae_float=round(mae_f, 4), mae=round(mae, 4), rel_loss=round(rel, 5),
                      met=rel <= config.tolerable_loss, trials=trials, ranking=ranking)
