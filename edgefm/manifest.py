"""Manifests and atomic writes, shared by datasets, checkpoints and every exported artifact.

Every artifact ``NAME.ext`` gets ``NAME.manifest.json`` beside it (a dataset directory gets
``manifest.json`` inside it). Writes go to a temporary sibling and are renamed into place,
so a failure never leaves a half-written file or directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgefm.errors import IntegrityError, ManifestError

SCHEMA_VERSION = 1


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_default(o: Any):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__dataclass_fields__"):
        import dataclasses
        return dataclasses.asdict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    """Deterministic JSON (sorted keys, fixed indentation) so manifests diff and hash stably."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default, allow_nan=False)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; artifacts are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (dumps(obj) + "\n").encode())


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory; on success it replaces ``path``, on failure it is removed.

    >>> with atomic_dir("out/ds") as tmp:   # write everything under tmp
    ...     (tmp / "manifest.json").write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            if not overwrite:
                raise ManifestError("already exists", path=path, hint="choose another --out or remove it")
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ManifestError("manifest not found", path=path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ManifestError(f"not valid JSON ({e})", path=path) from e


def manifest_path_for(artifact: str | Path) -> Path:
    """``model.tflite`` -> ``model.manifest.json``; a directory -> ``dir/manifest.json``."""
    artifact = Path(artifact)
    if artifact.is_dir():
        return artifact / "manifest.json"
    return artifact.with_name(artifact.stem + ".manifest.json")


def package_versions(*names: str) -> dict[str, str]:
    """Installed versions of edgefm and the named distributions (missing ones: 'absent')."""
    out = {}
    for n in ("edgefm", *names):
        try:
            out[n] = importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            out[n] = "absent"
    return out


def write_artifact_manifest(artifact: str | Path, fields: dict, backends: tuple[str, ...] = ()) -> Path:
    """Write ``NAME.manifest.json`` for an artifact file: its sha256, size, versions and ``fields``."""
    artifact = Path(artifact)
    m = {
        "schema_version": SCHEMA_VERSION,
        "artifact": artifact.name,
        "sha256": sha256_file(artifact),
        "bytes": artifact.stat().st_size,
        "versions": package_versions("torch", "numpy", *backends),
        **fields,
    }
    p = manifest_path_for(artifact)
    atomic_write_json(p, m)
    return p


def read_artifact_manifest(artifact: str | Path, verify: bool = True) -> dict:
    """Read an artifact's manifest; with ``verify``, refuse a file whose sha256 differs."""
    artifact = Path(artifact)
    if not artifact.exists():
        raise ManifestError("artifact not found", path=artifact)
    m = read_json(manifest_path_for(artifact))
    if verify:
        got = sha256_file(artifact)
        if got != m.get("sha256"):
            raise IntegrityError(
                f"sha256 {got[:12]}… differs from its manifest's {str(m.get('sha256'))[:12]}…",
                path=artifact, field="sha256",
                hint="the file is corrupted or was modified; re-export it")
    return m
