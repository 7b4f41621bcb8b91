"""Which artifacts to profile: explicit paths, or everything found in a run directory.

A variant is one runnable thing: an ``.pte``, ``.tflite`` or ``.onnx`` artifact, or a torch
checkpoint run eagerly (``.pt``/``.pth``/``.pt2``). Its precision (fp32/int8) comes from its
manifest's ``quantization.dtype``, else from the file name (``int8``, ``q8``, ``qdq``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgefm.errors import ConfigError, ManifestError

KINDS = {".pte": "pte", ".tflite": "tflite", ".onnx": "onnx", ".pt": "eager", ".pth": "eager",
         ".pt2": "eager", ".ckpt": "eager"}


@dataclass
class Variant:
    """name: unique label (file name); kind: eager|pte|tflite|onnx; dtype: fp32|int8;
    role: teacher|student|artifact; input_shape: (1, C, T) when the manifest says so."""

    name: str
    kind: str
    path: Path
    dtype: str = "fp32"
    role: str = "artifact"
    input_shape: list[int] | None = None
    manifest: dict = field(default_factory=dict)
    refused: str = ""          # why the artifact is not run (e.g. sha256 differs from its manifest)

    @property
    def label(self) -> str:
        return f"{self.role} {self.kind} {self.dtype}" if self.kind == "eager" else f"{self.kind} {self.dtype}"


def _manifest(path: Path) -> dict:
    from edgefm.manifest import manifest_path_for, read_artifact_manifest
    if not manifest_path_for(path).exists():
        return {}
    return read_artifact_manifest(path, verify=True)   # a tampered artifact is refused here


def _dtype(path: Path, m: dict) -> str:
    q = (m.get("quantization") or {})
    d = str(q.get("dtype", "")).lower() if isinstance(q, dict) else ""
    if d:
        return "int8" if "int8" in d or d in ("qint8", "quint8") else ("fp32" if d in ("float32", "fp32", "none") else d)
    s = path.stem.lower()
    return "int8" if any(t in s for t in ("int8", "q8", "qdq", "_i8", "quant")) else "fp32"


def _role(path: Path, m: dict) -> str:
    s = (path.stem + " " + str(m.get("kind", "")) + " " + str(m.get("role", ""))).lower()
    if "teacher" in s or "lsm" in s:
        return "teacher"
    if "student" in s or KINDS.get(path.suffix.lower()) == "eager":
        return "student"
    return "artifact"


def _input_shape(m: dict) -> list[int] | None:
    spec = m.get("input_spec") or {}
    ch = spec.get("channels")
    win = spec.get("window")
    if ch and win:
        return [1, len(ch), int(win)]
    return None


def variant_for(path: str | Path, *, role: str | None = None, input_shape=None) -> Variant:
    path = Path(path)
    if not path.exists():
        raise ManifestError("artifact not found", path=path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"cannot profile {path.suffix!r} files (profiles: {', '.join(sorted(KINDS))})",
                          path=path)
    m = _manifest(path)
    return Variant(name=path.name, kind=kind, path=path, dtype=_dtype(path, m),
                   role=role or _role(path, m), input_shape=list(input_shape) if input_shape else _input_shape(m),
                   manifest=m)


def discover(run_dir: str | Path) -> list[Variant]:
    """Every profilable artifact under ``run_dir`` (hidden and temporary entries skipped)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError("run directory not found", path=run_dir, hint="pass artifacts or a run directory")
    out = []
    for p in sorted(run_dir.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(run_dir).parts):
            continue
        if p.is_file() and p.suffix.lower() in KINDS:
            try:
                out.append(variant_for(p))
            except ManifestError as e:   # one bad artifact is reported, the rest still profiled
                out.append(Variant(name=p.name, kind=KINDS[p.suffix.lower()], path=p, dtype=_dtype(p, {}),
                                   role=_role(p, {}), refused=f"{type(e).__name__}: {e.one_line()}"))
    return out
