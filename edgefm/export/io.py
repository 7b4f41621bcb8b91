"""Loading what the compress/export commands work on: model checkpoints and window data.

Checkpoints: a distilled student (``edgefm-student``, via :func:`distill.deploy.load_student`)
or a compressed model written by :func:`save_model` (``edgefm-model``: the pickled module,
since pruning changes the architecture, plus its input spec and source).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgefm.errors import DataError, ManifestError
from edgefm.manifest import atomic_write_bytes, sha256_file, write_artifact_manifest

FORMAT = "edgefm-model"


@dataclass
class LoadedModel:
    model: torch.nn.Module                # (B, C, T) -> (B, 1) bpm, eval mode
    input_spec: dict
    source: dict
    meta: dict = field(default_factory=dict)


def load_model(path: str | Path) -> LoadedModel:
    path = Path(path)
    if not path.is_file():
        raise ManifestError("checkpoint not found", path=path, hint="pass a student checkpoint (edgefm distill run)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:
        raise ManifestError(f"cannot read checkpoint ({type(e).__name__})", path=path,
                            hint="the file is corrupted or not a torch checkpoint") from e
    if isinstance(ck, dict) and ck.get("format") == "edgefm-student":
        from distill.deploy import load_student
        ls = load_student(path)
        return LoadedModel(ls.deployable(), ls.input_spec,
                           {"checkpoint": str(path), "sha256": ls.meta["sha256"],
                            "config": {"arch": ls.meta.get("arch"), "student": ls.meta.get("student_config")}})
    if isinstance(ck, dict) and ck.get("format") == FORMAT and isinstance(ck.get("model"), torch.nn.Module):
        src = dict(ck.get("source") or {})
        src.update(checkpoint=str(path), sha256=sha256_file(path))
        return LoadedModel(ck["model"].eval(), ck.get("input_spec") or {}, src, ck.get("meta") or {})
    if isinstance(ck, torch.nn.Module):
        return LoadedModel(ck.eval(), {}, {"checkpoint": str(path), "sha256": sha256_file(path)})
    raise ManifestError("not an edgefm student or model checkpoint", path=path, field="format",
                        hint="use a checkpoint written by `edgefm distill run` or `edgefm compress prune`")


def save_model(path: str | Path, model: torch.nn.Module, *, input_spec: dict, source: dict, meta: dict) -> Path:
    """Write a (pruned) model checkpoint atomically with its manifest."""
    path = Path(path)
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": 1, "model": model.eval(), "input_spec": input_spec,
                "source": source, "meta": meta}, buf)
    atomic_write_bytes(path, buf.getvalue())
    write_artifact_manifest(path, {"format": "torch-checkpoint", "kind": FORMAT, "source": source,
                                   "input_spec": input_spec, "output_spec": {"name": "hr", "unit": "bpm"},
                                   "quantization": {"dtype": "float32"}, "meta": meta})
    return path


def load_windows(data: str | Path, split: str, channels=None, max_n: int | None = None,
                 label: str | None = "hr") -> tuple[np.ndarray, np.ndarray | None]:
    """(x (N, C, T) float32 normalised ACC, y (N,) or None) from a windows dataset directory
    (``cohort/raw``; a cohort directory is accepted too) or a ``.npy`` array of (N, C, T)."""
    data = Path(data)
    if data.suffix == ".npy":
        try:
            x = np.load(data).astype(np.float32)
        except Exception as e:
            raise DataError(f"cannot read windows ({type(e).__name__})", path=data) from e
        if x.ndim != 3 or not np.isfinite(x).all():
            raise DataError(f"expected finite (N, C, T) windows, got shape {x.shape}", path=data)
        return x[:max_n], None
    if (data / "raw" / "manifest.json").exists():
        data = data / "raw"
    from distill.data import acc_view, load_split
    from distill.data import label as get_label
    w = load_split(data, split, max_n=max_n)
    x = acc_view(w, tuple(channels) if channels else None)
    y = None
    if label and label in w.labels:
        y = get_label(w, label).astype(np.float32)
        ok = np.isfinite(y)
        x, y = x[ok], y[ok]
    if len(x) == 0:
        raise DataError(f"no windows in split {split!r}", path=data, field="split")
    return x, y
