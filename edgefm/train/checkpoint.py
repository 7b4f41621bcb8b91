"""Self-describing teacher checkpoints.

A checkpoint (``teacher.pt``, written atomically, with ``teacher.manifest.json`` beside it)
holds everything needed to rebuild and audit the model without the command line that made it:

  format, version       "edgefm-teacher", 1
  model_config          :class:`LSMConfig` as a dict
  size                  tiny / small / base / large / custom
  model                 state dict
  optimizer             AdamW state (for resume)
  step, total_steps     optimiser steps done / planned
  train_config          :class:`TrainConfig` as a dict
  input_spec            preset, channels (ChannelSpec dicts), fs_hz, window, hop,
                        normalisation {mean, std} (what the data was z-scored with)
  dataset               {path, manifest_sha256}
  history               [{step, loss, lr, seconds}]
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from edgefm.errors import ManifestError
from edgefm.manifest import atomic_write_bytes, sha256_file, write_artifact_manifest

FORMAT = "edgefm-teacher"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (see module docstring) atomically plus its artifact manifest."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **payload}, buf)
    atomic_write_bytes(path, buf.getvalue())
    write_artifact_manifest(path, {
        "format": "torch-checkpoint", "kind": FORMAT, "step": payload.get("step"),
        "size": payload.get("size"), "model_config": payload.get("model_config"),
        "input_spec": payload.get("input_spec"), "dataset": payload.get("dataset"),
        "output_spec": {"name": "reconstruction", "unit": "normalised (z-score)"}})
    return path


def read_torch_checkpoint(path: Path, fmt: str, version: int, what: str, *, map_location="cpu",
                          hint_missing: str, hint_corrupt: str) -> dict:
    """Load a self-describing edgefm checkpoint dict (``format``/``version`` keys) with typed errors
    for a missing, corrupt or foreign file. Shared by teacher and student checkpoints."""
    if not path.exists():
        raise ManifestError(f"{what} checkpoint not found", path=path, hint=hint_missing)
    try:
        ck = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises many types for corrupt files
        raise ManifestError(f"cannot read checkpoint ({type(e).__name__}: {e})", path=path,
                            hint=hint_corrupt) from e
    if not isinstance(ck, dict) or ck.get("format") != fmt:
        raise ManifestError(f"not an edgefm {what} checkpoint", path=path, field="format")
    if ck.get("version") != version:
        raise ManifestError(f"unknown checkpoint version {ck.get('version')!r}", path=path, field="version")
    return ck


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Read a teacher checkpoint dict; typed errors for missing, corrupt or foreign files."""
    path = Path(path)
    if path.is_dir():
        path = path / "teacher.pt"
    ck = read_torch_checkpoint(path, FORMAT, VERSION, "teacher", map_location=map_location,
                               hint_missing="train one with `edgefm teacher train DATA --out DIR`",
                               hint_corrupt="the file is corrupted or not a torch checkpoint; retrain or resume")
    ck["path"] = str(path)
    ck["sha256"] = sha256_file(path)
    return ck


def load_teacher(path: str | Path, map_location="cpu"):
    """Rebuild the teacher from a checkpoint alone; returns the model in eval mode.

    The model carries ``model.meta`` = {input_spec, dataset, step, total_steps, size, path,
    sha256, train_config, train_seconds}; use
    ``model.meta["input_spec"]["normalisation"]`` to z-score new data the same way.
    """
    from edgefm.models.lsm_mae import LSMConfig, MaskedAutoencoder
    ck = load_checkpoint(path, map_location)
    model = MaskedAutoencoder(LSMConfig.from_dict(ck["model_config"]))
    try:
        model.load_state_dict(ck["model"])
    except RuntimeError as e:
        raise ManifestError(f"weights do not fit the stored config: {e}", path=ck["path"], field="model") from e
    model.eval()
    model.meta = {k: ck.get(k) for k in ("input_spec", "dataset", "step", "total_steps", "size",
                                         "path", "sha256", "train_config", "train_seconds")}
    return model
