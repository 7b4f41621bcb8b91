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

Every edgefm checkpoint (teacher, student, compressed model) is read through
:func:`read_torch_checkpoint`: ``torch.load(weights_only=True)``, so a file that would need
arbitrary objects unpickled (and could run code) is refused, never loaded; the manifest's sha256
is always checked, and a file without a manifest is refused unless the caller passes
``unverified=True`` (CLI ``--unverified``; :func:`accept_unverified` for a whole command).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Iterator

import torch

from edgefm.errors import ManifestError
from edgefm.manifest import (atomic_write_bytes, manifest_path_for, read_artifact_manifest, sha256_file,
                             write_artifact_manifest)

FORMAT = "edgefm-teacher"
VERSION = 1

UNVERIFIED_HINT = "pass --unverified to load it anyway; every report then says 'unverified'"

# what the command line's --unverified sets for every checkpoint a command loads
_ACCEPT_UNVERIFIED = contextvars.ContextVar("edgefm_accept_unverified", default=False)


@contextlib.contextmanager
def accept_unverified(flag: bool = True) -> Iterator[None]:
    """Within this block, loaders called without ``unverified=`` accept files without a manifest
    (the CLI wraps a command's work in it for ``--unverified``). A file whose sha256 contradicts
    its manifest is refused regardless."""
    token = _ACCEPT_UNVERIFIED.set(bool(flag))
    try:
        yield
    finally:
        _ACCEPT_UNVERIFIED.reset(token)


def plain_data(v):
    """numpy arrays and scalars as lists and Python numbers, recursively through dicts, lists and
    tuples (tensors and everything else unchanged): checkpoint metadata holds plain data only."""
    import numpy as np
    if isinstance(v, (np.ndarray, np.generic)):
        return v.tolist()
    if isinstance(v, dict):
        return {k: plain_data(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return type(v)(plain_data(x) for x in v)
    return v


def teacher_path(path: str | Path) -> Path:
    """A teacher checkpoint's file: ``teacher.pt`` inside a run folder, else the path itself."""
    path = Path(path)
    return path / "teacher.pt" if path.is_dir() else path


def without_manifest(*paths: str | Path) -> list[str]:
    """Which of these checkpoints (a teacher run folder means its ``teacher.pt``) have no manifest:
    what a command accepted only because of ``--unverified``, for its report to say so."""
    out = []
    for p in paths:
        p = teacher_path(p)
        if p.is_file() and not manifest_path_for(p).exists():
            out.append(str(p))
    return out


def torch_payload_bytes(payload: dict, path: str | Path) -> bytes:
    """Serialise a checkpoint payload, refusing anything but tensors and plain data: what is written
    must load again with ``torch.load(weights_only=True)``."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ManifestError(f"the checkpoint would hold objects other than tensors and plain data "
                            f"({_unpickler_detail(e)})", path=path,
                            hint="store state dicts and configs as dicts, lists, numbers and strings") from None
    return data


def save_torch_checkpoint(path: str | Path, payload: dict, manifest: dict) -> Path:
    """Write ``payload`` atomically (tensors and plain data only) plus ``NAME.manifest.json``."""
    path = Path(path)
    atomic_write_bytes(path, torch_payload_bytes(payload, path))
    write_artifact_manifest(path, manifest)
    return path


def save_checkpoint(path: str | Path, payload: dict) -> Path:
    """Write ``payload`` (see module docstring) atomically plus its artifact manifest."""
    return save_torch_checkpoint(path, {"format": FORMAT, "version": VERSION, **payload}, {
        "format": "torch-checkpoint", "kind": FORMAT, "step": payload.get("step"),
        "size": payload.get("size"), "model_config": payload.get("model_config"),
        "input_spec": payload.get("input_spec"), "dataset": payload.get("dataset"),
        "output_spec": {"name": "reconstruction", "unit": "normalised (z-score)"}})


def _unpickler_detail(e: Exception) -> str:
    """The useful part of torch's long weights-only message: the object it would have to import
    (e.g. ``posix.system``) or the pickle instruction it refused."""
    text = str(e)
    m = re.search(r"GLOBAL ([\w.]+)", text)
    if m:
        return f"it needs {m.group(1)}"
    m = re.search(r"Unsupported operand[^\n]*", text)
    return (m.group(0) if m else text.strip().splitlines()[-1] if text.strip() else type(e).__name__)[:120]


def safe_torch_load(path: Path, *, map_location="cpu", hint_corrupt: str = "the file is corrupted or not "
                    "a torch checkpoint") -> object:
    """``torch.load(weights_only=True)`` with typed errors. Nothing in the file can run code: a file
    that needs arbitrary Python objects unpickled is refused (:class:`ManifestError`), never loaded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e):
            raise ManifestError(
                f"refused: loading it would unpickle arbitrary Python objects, which can run code "
                f"({_unpickler_detail(e)})", path=path,
                hint="edgefm checkpoints hold state dicts and configs only; re-create the file with edgefm "
                     "and never load checkpoints from an untrusted source") from None
        raise ManifestError(f"cannot read checkpoint ({type(e).__name__}: {e})"[:300], path=path,
                            hint=hint_corrupt) from None
    except Exception as e:  # torch raises many types for corrupt files
        raise ManifestError(f"cannot read checkpoint ({type(e).__name__}: {e})"[:300], path=path,
                            hint=hint_corrupt) from None


def _verified_manifest(path: Path) -> dict | None:
    """The file's manifest after checking its sha256 (:class:`IntegrityError` on a mismatch), or
    None when it has none."""
    if not manifest_path_for(path).exists():
        return None
    return read_artifact_manifest(path, verify=True)


def read_torch_checkpoint(path: str | Path, formats: dict[str, int], what: str, *, map_location="cpu",
                          unverified: bool | None = None, hint_missing: str,
                          hint_corrupt: str) -> dict:
    """Load a self-describing edgefm checkpoint dict with typed errors for a missing, tampered,
    corrupt, code-carrying or foreign file. Shared by teacher, student and model checkpoints.

    ``formats``: accepted ``{format: version}``. The manifest's sha256 is always checked; a file
    without a manifest is refused unless ``unverified`` (None: the enclosing
    :func:`accept_unverified`). The returned dict gains ``path``, ``sha256`` and ``unverified``.
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{what} checkpoint not found", path=path, hint=hint_missing)
    manifest = _verified_manifest(path)
    ck = safe_torch_load(path, map_location=map_location, hint_corrupt=hint_corrupt)
    fmt = ck.get("format") if isinstance(ck, dict) else None
    if not isinstance(fmt, str) or fmt not in formats:
        raise ManifestError(f"not an edgefm {what} checkpoint", path=path, field="format")
    if ck.get("version") != formats[fmt]:
        raise ManifestError(f"unknown checkpoint version {ck.get('version')!r} (this edgefm reads "
                            f"{fmt} version {formats[fmt]})", path=path, field="version",
                            hint="re-create it with this edgefm")
    accept = _ACCEPT_UNVERIFIED.get() if unverified is None else bool(unverified)
    if manifest is None and not accept:
        raise ManifestError(f"has no manifest ({manifest_path_for(path).name}): its integrity cannot be "
                            "checked", path=path, field="manifest", hint=UNVERIFIED_HINT)
    ck.update(path=str(path), sha256=manifest["sha256"] if manifest else sha256_file(path),
              unverified=manifest is None)
    return ck


def load_checkpoint(path: str | Path, map_location="cpu", *, unverified: bool | None = None) -> dict:
    """Read a teacher checkpoint dict (see :func:`read_torch_checkpoint`); typed errors for missing,
    tampered, corrupt or foreign files."""
    path = teacher_path(path)
    return read_torch_checkpoint(path, {FORMAT: VERSION}, "teacher", map_location=map_location,
                                 unverified=unverified,
                                 hint_missing="train one with `edgefm teacher train DATA --out DIR`",
                                 hint_corrupt="the file is corrupted or not a torch checkpoint; retrain or resume")


def teacher_from_checkpoint(ck: dict):
    """Rebuild the teacher (eval mode, with ``meta``) from a dict read by :func:`load_checkpoint`."""
    from edgefm.models.lsm_mae import LSMConfig, MaskedAutoencoder
    try:
        model = MaskedAutoencoder(LSMConfig.from_dict(ck["model_config"]))
        model.load_state_dict(ck["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ManifestError(f"weights do not fit the stored config: {type(e).__name__}: {e}"[:300],
                            path=ck["path"], field="model") from None
    model.eval()
    model.meta = {k: ck.get(k) for k in ("input_spec", "dataset", "step", "total_steps", "size", "path",
                                         "sha256", "train_config", "train_seconds", "unverified")}
    return model


def load_teacher(path: str | Path, map_location="cpu", *, unverified: bool | None = None):
    """Rebuild the teacher from a checkpoint alone; returns the model in eval mode.

    The model carries ``model.meta`` = {input_spec, dataset, step, total_steps, size, path,
    sha256, train_config, train_seconds, unverified}; use
    ``model.meta["input_spec"]["normalisation"]`` to z-score new data the same way.
    ``unverified``: accept a file without a manifest (then ``meta["unverified"]`` is True).
    """
    return teacher_from_checkpoint(load_checkpoint(path, map_location, unverified=unverified))
