"""Which artifacts to profile: explicit paths, or everything found in a run directory.

A variant is one runnable thing: an ``.pte``, ``.tflite`` or ``.onnx`` artifact, or a torch
checkpoint run eagerly (``.pt``/``.pth``/``.pt2``). Its precision (fp32/int8) comes from its
manifest's ``quantization.dtype``, else from the file name (``int8``, ``q8``, ``qdq``).

Integrity is always on: every variant's sha256 is checked against its manifest. A file whose
manifest disagrees is refused; a file with no manifest is refused unless ``unverified=True``
(the CLI's ``--unverified``), and then every report marks it "unverified".
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
    refused_error: str = ""    # the typed error's class name (IntegrityError, ManifestError)
    unverified: bool = False   # no manifest, accepted with unverified=True: sha256 not checked

    @property
    def integrity(self) -> str:
        """``refused``, ``unverified`` or ``verified`` (sha256 matches the manifest)."""
        return "refused" if self.refused else ("unverified" if self.unverified else "verified")

    @property
    def label(self) -> str:
        return f"{self.role} {self.kind} {self.dtype}" if self.kind == "eager" else f"{self.kind} {self.dtype}"


def _manifest(path: Path, unverified: bool = False) -> dict | None:
    """The artifact's manifest with its sha256 checked; None for a file without one when
    ``unverified`` (else :class:`ManifestError`)."""
    from edgefm.manifest import manifest_path_for
    from runtime.model import verified_manifest
    mp = manifest_path_for(path)
    if not (mp.exists() or mp.is_symlink()):
        if unverified:
            return None
        raise ManifestError(f"no manifest {mp.name} beside it: its sha256 cannot be checked", path=path,
                            field="manifest", hint="re-export it, or pass --unverified to profile it anyway "
                                                   "(every report then says 'unverified')")
    return verified_manifest(path)   # a tampered artifact is refused here


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


def variant_for(path: str | Path, *, role: str | None = None, input_shape=None,
                unverified: bool = False) -> Variant:
    """The variant for one file, its manifest's sha256 checked.

    Raises:
        IntegrityError: the file differs from its manifest.
        ManifestError: no manifest (unless ``unverified``), or an unreadable one.
        ConfigError: a file kind that cannot be profiled.
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError("artifact not found", path=path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise ConfigError(f"cannot profile {path.suffix!r} files (profiles: {', '.join(sorted(KINDS))})",
                          path=path)
    m = _manifest(path, unverified)
    is_unverified = m is None
    m = m or {}
    return Variant(name=path.name, kind=kind, path=path, dtype=_dtype(path, m),
                   role=role or _role(path, m), input_shape=list(input_shape) if input_shape else _input_shape(m),
                   manifest=m, unverified=is_unverified)


def refused_variant(path: Path, error: ManifestError) -> Variant:
    """A row for an artifact that is not run, with the typed error that refused it."""
    return Variant(name=path.name, kind=KINDS[path.suffix.lower()], path=path, dtype=_dtype(path, {}),
                   role=_role(path, {}), refused=f"{type(error).__name__}: {error.one_line()}",
                   refused_error=type(error).__name__)


def discover(run_dir: str | Path, *, unverified: bool = False) -> list[Variant]:
    """Every profilable artifact under ``run_dir`` (hidden and temporary entries skipped); one
    that fails its integrity check is kept as a refused variant (reported, never run)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError("run directory not found", path=run_dir, hint="pass artifacts or a run directory")
    out = []
    for p in sorted(run_dir.rglob("*")):
        if any(part.startswith(".") for part in p.relative_to(run_dir).parts):
            continue
        if p.is_file() and p.suffix.lower() in KINDS:
            try:
                out.append(variant_for(p, unverified=unverified))
            except ManifestError as e:   # one bad artifact is reported, the rest still profiled
                out.append(refused_variant(p, e))
    return out
