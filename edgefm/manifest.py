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
import re
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


TMP_MARK = ".tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(parent: str | Path, name: str) -> list[Path]:
    """Remove ``.NAME.tmp-PID-*`` / ``.NAME.old-PID`` siblings left by a process that no longer
    runs (killed mid-write). Returns what was removed. A live writer's temporaries are kept."""
    parent = Path(parent)
    removed = []
    if not parent.is_dir():
        return removed
    for p in parent.glob(f".{name}.*"):
        rest = p.name[len(name) + 2:]
        for mark in ("tmp-", "old-"):
            if rest.startswith(mark):
                pid_s = rest[len(mark):].split("-")[0]
                if pid_s.isdigit() and not _pid_alive(int(pid_s)):
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            p.unlink()
                    removed.append(p)
    return removed


def is_temporary(path: str | Path) -> bool:
    """True for a path inside (or being) a writer's temporary (``.NAME.tmp-*``/``.NAME.old-*``):
    such a folder is never read as a result."""
    return any(part.startswith(".") and (TMP_MARK in part or ".old-" in part) for part in Path(path).parts)


def _resolved(p: Path) -> Path:
    return Path(os.path.realpath(p))


def check_output(out: str | Path, *, overwrite: bool = False, sources: tuple = (),
                 option: str = "--out", resumable: bool = False) -> Path:
    """Refuse an output that would destroy what the user has.

    - ``out`` may never be one of ``sources``, contain one, or lie inside one.
    - an existing non-empty ``out`` is refused unless ``overwrite`` (or ``resumable``: the caller
      has already checked that it is its own earlier output, e.g. a pipeline run directory).
    - an existing regular file where a folder is expected, or the reverse, is refused.

    Raises:
        ConfigError: naming ``out`` and the option, with what to do next.
    """
    from edgefm.errors import ConfigError
    out = Path(out)
    if str(out).strip() in ("", ".", "..") or _resolved(out) == _resolved(Path.cwd()) or \
            _resolved(out) == Path(_resolved(out).anchor):
        raise ConfigError("refusing to write into the current directory, its parent or the root",
                          path=out, field=option, hint=f"pass a new folder name to {option}")
    ro = _resolved(out)
    for s in sources:
        if s is None:
            continue
        rs = _resolved(Path(s))
        if ro == rs or rs.is_relative_to(ro) or ro.is_relative_to(rs):
            raise ConfigError(f"the output would overwrite or lie inside the input {s}", path=out,
                              field=option, hint=f"choose an {option} outside the input")
    if out.is_symlink():
        raise ConfigError("the output is a symbolic link; refusing to write through it", path=out,
                          field=option, hint=f"pass a real path to {option}")
    full = Path(os.path.abspath(out))
    for anc in full.parents:                 # the nearest existing ancestor must be a writable folder
        if anc.exists():
            if not anc.is_dir():
                raise ConfigError(f"cannot be created: {anc} is a file, not a folder", path=out,
                                  field=option, hint=f"choose another {option}")
            if not out.exists():
                try:                         # a real probe: permissions, read-only or virtual file systems
                    os.rmdir(tempfile.mkdtemp(prefix=".edgefm-probe-", dir=anc))
                except OSError as e:
                    raise ConfigError(f"cannot be created: {anc} is not writable ({e.strerror or e})",
                                      path=out, field=option, hint=f"choose another {option}") from e
            break
    if out.exists() and not (overwrite or resumable):
        if out.is_dir():
            if any(out.iterdir()):
                raise ConfigError("already exists and is not empty", path=out, field=option,
                                  hint=f"choose another {option}, or pass --overwrite to replace it")
        else:
            raise ConfigError("already exists", path=out, field=option,
                              hint=f"choose another {option}, or pass --overwrite to replace it")
    return out


@contextlib.contextmanager
def atomic_dir(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``path``, on failure it is removed.

    An existing ``path`` is replaced only with ``overwrite=True`` (the caller has the user's
    ``--overwrite``, or owns the folder); otherwise :class:`ManifestError`. Stale temporaries of
    killed writers are removed first.

    >>> with atomic_dir("out/ds") as tmp:   # write everything under tmp
    ...     (tmp / "manifest.json").write_text("{}")
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    if path.exists() and not overwrite and (path.is_file() or any(path.iterdir())):
        raise ManifestError("already exists", path=path, hint="choose another --out, or pass --overwrite")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TMP_MARK}{os.getpid()}-", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)      # mkdtemp makes 0700; outputs are ordinary folders
    try:
        yield tmp
        if path.exists() or path.is_symlink():
            if path.exists() and not overwrite and (path.is_file() or any(path.iterdir())):
                raise ManifestError("already exists", path=path, hint="choose another --out, or pass --overwrite")
            old = path.with_name(f".{path.name}.old-{os.getpid()}-{os.urandom(3).hex()}")
            os.replace(path, old)
            os.replace(tmp, path)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                old.unlink()
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")


def safe_name(name: object, *, what: str, path: str | Path | None = None) -> str:
    """Return ``name`` if it is safe as one path component (letters, digits, ``_ . + -``; no
    separators, no leading dot, no ``..``), else a :class:`DataError` naming the file and field.
    Every name that comes from data or a config (channels, labels, subjects, files) passes here
    before it touches a path."""
    from edgefm.errors import DataError
    s = str(name)
    if not SAFE_NAME.fullmatch(s) or ".." in s:
        raise DataError(f"unsafe {what} name {s[:60]!r}: only letters, digits and _ . + - are allowed "
                        "(no path separators, no leading dot)", path=path, field=what,
                        hint="rename it in the source or mapping file")
    return s


def read_json(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise ManifestError("manifest not found", path=path)
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as e:
        raise ManifestError(f"not valid JSON ({e})", path=path) from e
    except OSError as e:
        raise ManifestError(f"cannot read ({e.strerror or type(e).__name__})", path=path) from e


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
    if not isinstance(m, dict):
        raise ManifestError(f"a manifest must be a JSON object, got {type(m).__name__}",
                            path=manifest_path_for(artifact), hint="re-export the artifact")
    if verify:
        got = sha256_file(artifact)
        if got != m.get("sha256"):
            raise IntegrityError(
                f"sha256 {got[:12]}… differs from its manifest's {str(m.get('sha256'))[:12]}…",
                path=artifact, field="sha256",
                hint="the file is corrupted or was modified; re-export it")
    return m
