"""On-disk datasets: a directory with ``manifest.json`` and memory-mapped ``.npy`` files.

Two kinds, told apart by ``manifest["kind"]``:

``recordings``  continuous recordings as imported or generated
    recordings/<id>/<channel>.npy (float32) and <channel>.valid.npy (bool),
    labels/<name>.npy, events/<name>.npy (float64 seconds from start)
``windows``     model-ready windows of one preset, sharded by split
    shards/<split>-<k>.x.npy (N,C,T) float32, .mask.npy (N,C,T) bool,
    .meta.npz (subject codes, start times, labels)

Both carry: schema version, channel specs, subject-level train/val/test split, provenance
(generator parameters or source files with sha256). Windows also carry the per-channel
normalisation (train split, observed samples only). Writes are atomic (``atomic_dir``);
reading streams shards through ``np.load(mmap_mode="r")``, so a dataset larger than memory
trains and evaluates.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.windows import Preset, Windows, get_preset, window_recording
from edgefm.errors import ConfigError, DataError, ManifestError
from edgefm.manifest import SCHEMA_VERSION, atomic_dir, atomic_write_json, read_json, safe_name, sha256_file

SPLITS = ("train", "val", "test")


# ---------------------------------------------------------------- splits

def subject_split(subjects: Iterable[str], fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict[str, list[str]]:
    """Deterministic subject-level split: subjects sorted by a seeded hash, then cut.

    Every split gets at least one subject when there are at least three subjects.
    """
    subs = sorted(set(map(str, subjects)))
    key = lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest()
    subs.sort(key=key)
    n = len(subs)
    if n == 0:
        return {k: [] for k in SPLITS}
    n_val = max(1, int(round(fractions[1] * n))) if n >= 3 else 0
    n_test = max(1, int(round(fractions[2] * n))) if n >= 3 else (1 if n == 2 else 0)
    n_train = n - n_val - n_test
    return {"train": sorted(subs[:n_train]), "val": sorted(subs[n_train:n_train + n_val]),
            "test": sorted(subs[n_train + n_val:])}


def file_provenance(paths: Iterable[str | Path], root: str | Path | None = None) -> list[dict]:
    """[{path, sha256, bytes}] for source files.

    ``path`` is relative to ``root`` when the file lies inside it (both resolved), else the
    file's absolute resolved path (e.g. a CSV mapping kept in another folder).
    """
    out = []
    rr = Path(root).resolve() if root else None
    for p in sorted(map(Path, paths)):
        rp = p.resolve()
        rel = str(rp.relative_to(rr)) if rr is not None and rp.is_relative_to(rr) else \
            (str(rp) if rr is not None else str(p))
        try:
            out.append({"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size})
        except OSError as e:
            raise DataError(f"cannot read source file: {e.strerror or e}", path=p) from e
    return out


# ---------------------------------------------------------------- outputs

def prepare_output(out: str | Path, *, overwrite: bool = False, sources: tuple = (),
                   option: str = "--out") -> Path:
    """Check a data output before any work: :func:`edgefm.manifest.check_output` (never the
    working folder, a symlink, a source or anything around or inside one; an existing non-empty
    path only with ``overwrite``), then that it can be created (its nearest existing ancestor
    is a writable folder, not a file). Raises :class:`ConfigError` naming ``option``."""
    from edgefm.manifest import check_output
    out = check_output(out, overwrite=overwrite, sources=tuple(s for s in sources if s is not None),
                       option=option)
    full = Path(os.path.abspath(out))
    for p in (full, *full.parents):
        if not p.exists():
            continue
        if p != full:
            if not p.is_dir():
                raise ConfigError(f"cannot be created: {p} is a file, not a folder", path=out, field=option,
                                  hint=f"choose another {option}")
            if not os.access(p, os.W_OK | os.X_OK):
                raise ConfigError(f"cannot be created: {p} is not writable", path=out, field=option,
                                  hint=f"choose another {option}")
        break
    return out


@contextlib.contextmanager
def output_errors(out: str | Path, option: str = "--out") -> Iterator[None]:
    """Turn an OSError raised while writing ``out`` (a read-only or virtual file system, a full
    disk, a path component that is a file) into a :class:`ConfigError` naming it and ``option``;
    one about another file (a source read) into a :class:`DataError` naming that file."""
    try:
        yield
    except OSError as e:
        fn = Path(os.path.abspath(e.filename)) if isinstance(e.filename, (str, Path)) else None
        full = Path(os.path.abspath(out))
        ours = fn is None or fn == full or fn in full.parents or (
            fn.is_relative_to(full.parent) and fn.relative_to(full.parent).parts[0].lstrip(".").startswith(full.name))
        if ours:
            raise ConfigError(f"cannot write the output: {e.strerror or e}", path=e.filename or out, field=option,
                              hint=f"choose an {option} in a writable folder with free space") from e
        raise DataError(f"cannot read: {e.strerror or e}", path=e.filename) from e


# ---------------------------------------------------------------- recordings store

def write_recordings(recs: Iterable[Recording], out: str | Path, *, provenance: dict,
                     split: dict[str, list[str]] | None = None, seed: int = 0,
                     overwrite: bool = False) -> Path:
    """Write recordings atomically to ``out``; returns ``out``.

    ``provenance``: {"source": "...", "files": [...]} or {"generator": {...params}}; it is
    serialised after the last recording was consumed (an importer may fill in counts while
    ``recs`` streams). An existing non-empty ``out`` is replaced only with ``overwrite``.
    Stream, label and event names must be safe file names (:func:`edgefm.manifest.safe_name`);
    a recording id becomes a safe folder name (:func:`recording_dir`).
    """
    out = Path(out)
    with output_errors(out), atomic_dir(out, overwrite=overwrite) as tmp:
        entries, subjects = [], []
        for rec in recs:
            rd = tmp / "recordings" / recording_dir(rec.id)
            if rd.exists():
                raise DataError(f"two recordings share the id {rec.id!r}", path=out, field="id",
                                hint="give each recording a unique id")
            for kind, names in (("channel", rec.streams), ("label", rec.labels), ("event", rec.events)):
                for name in names:
                    safe_name(name, what=kind, path=out)
            rd.mkdir(parents=True)
            streams = {}
            for name, s in rec.streams.items():
                np.save(rd / f"{name}.npy", s.data)
                np.save(rd / f"{name}.valid.npy", s.valid)
                streams[name] = {**s.spec.to_dict(), "n": s.n}
            labels = {}
            for name, lt in rec.labels.items():
                np.save(rd / f"label.{name}.npy", lt.values)
                labels[name] = {"kind": lt.kind, "fs_hz": lt.fs_hz, "unit": lt.unit,
                                "classes": list(lt.classes), "n": int(lt.values.shape[0])}
            events = {}
            for name, e in rec.events.items():
                np.save(rd / f"event.{name}.npy", e)
                events[name] = {"n": int(e.shape[0])}
            entries.append({"id": rec.id, "dir": rd.name, "subject": rec.subject,
                            "start_time": rec.start_time, "duration_s": rec.duration_s,
                            "streams": streams, "labels": labels, "events": events,
                            "meta": rec.meta})
            subjects.append(rec.subject)
        if not entries:
            raise DataError("no recordings to write", path=out, hint="check the source folder")
        split = split or subject_split(subjects, seed=seed)
        atomic_write_json(tmp / "manifest.json", {
            "schema_version": SCHEMA_VERSION, "kind": "recordings",
            "subjects": sorted(set(subjects)), "hours": sum(e["duration_s"] for e in entries) / 3600,
            "split": split, "provenance": provenance, "recordings": entries})
    return out


def recording_dir(rec_id: str) -> str:
    """The folder name of a recording: its id with every character other than ASCII letters,
    digits and ``- _ . +`` replaced by ``_``, ``..`` broken up, a leading non-alphanumeric
    prefixed with ``r``, and ids over 100 characters cut and suffixed with a hash. The result
    always passes :func:`edgefm.manifest.safe_name` (one path component, inside the output)."""
    s = "".join(c if (c.isascii() and c.isalnum()) or c in "-_.+" else "_" for c in str(rec_id))
    while ".." in s:
        s = s.replace("..", "_.")
    if not s[:1].isalnum():
        s = "r" + s
    if len(s) > 100:
        s = s[:83] + "-" + hashlib.sha256(str(rec_id).encode()).hexdigest()[:16]
    return safe_name(s, what="recording id")


def open_manifest(path: str | Path, kind: str | None = None) -> dict:
    """The dataset manifest at ``path/manifest.json``, checked before anyone indexes into it.

    Raises :class:`ManifestError` naming ``manifest.json`` and the field for a missing or
    unparsable file, an unknown schema or kind, a missing or mistyped key, a member name that
    is not one safe path component, or inconsistent sizes (normalisation vs. channels).
    """
    path = Path(path)
    if not path.is_dir():
        raise ManifestError("not a dataset directory", path=path,
                            hint="run `edgefm data synth` or `edgefm data import` first")
    mf = path / "manifest.json"
    m = read_json(mf)
    if not isinstance(m, dict):
        raise ManifestError(f"must be a JSON object, got {type(m).__name__}", path=mf)
    if m.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(f"unknown schema_version {m.get('schema_version')!r}", path=mf, field="schema_version")
    if kind and m.get("kind") != kind:
        raise ManifestError(f"is a {m.get('kind')!r} dataset, expected {kind!r}", path=path, field="kind")
    _check_manifest(m, mf)
    return m


class _Check:
    """Field checks for one manifest; every failure is a ManifestError naming file and field."""

    def __init__(self, mf: Path):
        self.mf = mf

    def fail(self, field: str, msg: str):
        raise ManifestError(msg, path=self.mf, field=field,
                            hint="the dataset is corrupt or was edited; write it again")

    def get(self, d: dict, key: str, typ, field: str):
        if not isinstance(d, dict) or key not in d:
            self.fail(field, "missing")
        v = d[key]
        if typ is float:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
                self.fail(field, f"must be a finite number, got {str(v)[:40]!r}")
        elif typ is int:
            if isinstance(v, bool) or not isinstance(v, int):
                self.fail(field, f"must be a whole number, got {str(v)[:40]!r}")
        elif not isinstance(v, typ):
            self.fail(field, f"must be a {getattr(typ, '__name__', typ)}, got {type(v).__name__}")
        return v

    def name(self, v, field: str) -> str:
        try:
            return safe_name(v, what=field)
        except DataError as e:
            self.fail(field, e.message)

    def channel(self, d, field: str) -> ChannelSpec:
        for k in ("name", "modality", "unit"):
            self.get(d, k, str, f"{field}.{k}")
        if self.get(d, "fs_hz", float, f"{field}.fs_hz") <= 0:
            self.fail(f"{field}.fs_hz", "must be positive")
        return ChannelSpec.from_dict(d)

    def count(self, d, key: str, field: str, required: bool = False):
        if key in d or required:
            if self.get(d, key, int, field) < 0:
                self.fail(field, "must be >= 0")


def _check_manifest(m: dict, mf: Path) -> None:
    c = _Check(mf)
    kind = m.get("kind")
    subjects = c.get(m, "subjects", list, "subjects")
    if not all(isinstance(s, str) for s in subjects):
        c.fail("subjects", "must be a list of names")
    if c.get(m, "hours", float, "hours") < 0:
        c.fail("hours", "must be >= 0")
    split = c.get(m, "split", dict, "split")
    for k, v in split.items():
        if not isinstance(v, list):
            c.fail(f"split.{k}", "must be a list of subjects")
    if kind == "recordings":
        recs = c.get(m, "recordings", list, "recordings")
        for i, e in enumerate(recs):
            f = f"recordings[{i}]"
            c.get(e, "id", str, f"{f}.id")
            c.name(c.get(e, "dir", str, f"{f}.dir"), f"{f}.dir")
            c.get(e, "subject", str, f"{f}.subject")
            c.get(e, "start_time", float, f"{f}.start_time")
            dur = c.get(e, "duration_s", float, f"{f}.duration_s")
            longest = 0.0
            for n, d in c.get(e, "streams", dict, f"{f}.streams").items():
                c.name(n, f"{f}.streams")
                spec = c.channel(d, f"{f}.streams.{n}")
                c.count(d, "n", f"{f}.streams.{n}.n")
                longest = max(longest, d.get("n", 0) / spec.fs_hz)
            sized = all("n" in d for d in e["streams"].values())
            if dur < 0 or (sized and dur > longest + 1.0):  # readers size arrays by it: match the streams
                c.fail(f"{f}.duration_s", f"must be the longest stream's duration ({longest:g} s), got {dur:g}")
            for n, d in c.get(e, "labels", dict, f"{f}.labels").items():
                c.name(n, f"{f}.labels")
                if c.get(d, "kind", str, f"{f}.labels.{n}.kind") not in ("continuous", "categorical"):
                    c.fail(f"{f}.labels.{n}.kind", "must be continuous or categorical")
                if c.get(d, "fs_hz", float, f"{f}.labels.{n}.fs_hz") <= 0:
                    c.fail(f"{f}.labels.{n}.fs_hz", "must be positive")
                if not isinstance(d.get("classes", []), list):
                    c.fail(f"{f}.labels.{n}.classes", "must be a list")
                c.count(d, "n", f"{f}.labels.{n}.n")
            for n, d in c.get(e, "events", dict, f"{f}.events").items():
                c.name(n, f"{f}.events")
                c.get(e["events"], n, dict, f"{f}.events.{n}")
                c.count(d, "n", f"{f}.events.{n}.n")
    elif kind == "windows":
        p = c.get(m, "preset", dict, "preset")
        if c.get(p, "fs_hz", float, "preset.fs_hz") <= 0:
            c.fail("preset.fs_hz", "must be positive")
        for k in ("window", "hop"):
            if c.get(p, k, int, f"preset.{k}") <= 0:
                c.fail(f"preset.{k}", "must be positive")
        chans = c.get(m, "channels", list, "channels")
        if not chans:
            c.fail("channels", "must not be empty")
        for i, d in enumerate(chans):
            c.channel(d, f"channels[{i}]")
        nm = c.get(m, "normalisation", dict, "normalisation")
        for k in ("mean", "std"):
            v = c.get(nm, k, list, f"normalisation.{k}")
            if len(v) != len(chans) or not all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                and np.isfinite(x) for x in v):
                c.fail(f"normalisation.{k}", f"must be {len(chans)} finite numbers (one per channel)")
        if not all(x > 0 for x in nm["std"]):
            c.fail("normalisation.std", "must be positive")
        for i, sh in enumerate(c.get(m, "shards", list, "shards")):
            c.name(c.get(sh, "name", str, f"shards[{i}].name"), f"shards[{i}].name")
            if c.get(sh, "split", str, f"shards[{i}].split") not in SPLITS:
                c.fail(f"shards[{i}].split", f"must be one of {', '.join(SPLITS)}")
            c.count(sh, "n", f"shards[{i}].n", required=True)
        c.count(m, "n_windows", "n_windows", required=True)
        for n, d in c.get(m, "labels", dict, "labels").items():
            c.get(m["labels"], n, dict, f"labels.{n}")
            if not isinstance(d.get("classes", []), list):
                c.fail(f"labels.{n}.classes", "must be a list")
        mf_ = c.get(m, "missing_fraction", list, "missing_fraction")
        if len(mf_) != len(chans):
            c.fail("missing_fraction", f"must have {len(chans)} entries (one per channel)")
    elif kind == "cohort":
        for name, part in c.get(m, "parts", dict, "parts").items():
            c.get(m["parts"], name, dict, f"parts.{name}")
            c.name(part.get("path", name), f"parts.{name}.path")
    else:
        c.fail("kind", f"unknown dataset kind {kind!r} (expected recordings, windows or cohort)")


def load_member(path: Path, *, shape: tuple | None = None, kinds: str = "fiub", mmap: bool = True,
                what: str = "array") -> np.ndarray:
    """One ``.npy`` member of a dataset, checked: a missing, unreadable, pickled, or wrongly
    typed or shaped file is a :class:`DataError` naming it. ``shape`` entries of None are free.
    Opened memory-mapped first (only the header is read), so a header that claims a huge shape
    cannot allocate; ``mmap=False`` copies it into memory after the checks."""
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{what} file is missing", path=path,
                        hint="the dataset is incomplete; write it again") from None
    except Exception as e:  # OSError, ValueError (bad header, pickled data), EOFError, ...
        raise DataError(f"cannot read {what}: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}",
                        path=path, hint="the file is corrupt; write the dataset again") from e
    if not isinstance(a, np.ndarray) or a.dtype.kind not in kinds:
        raise DataError(f"{what} has dtype {getattr(a, 'dtype', type(a).__name__)}, expected "
                        f"{'/'.join({'f': 'float', 'i': 'int', 'u': 'uint', 'b': 'bool'}[k] for k in kinds)}",
                        path=path)
    if shape is not None and (a.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape, a.shape))):
        want = tuple("*" if w is None else w for w in shape)
        raise DataError(f"{what} has shape {a.shape}, the manifest says {want}",
                        path=path, hint="the file is truncated or from another dataset")
    return a if mmap else np.array(a)


def _entry_arrays(path: Path, e: dict, mmap: bool = True):
    """(streams, labels, events) of one manifest entry, every member checked."""
    rd = path / "recordings" / e["dir"]
    streams = {}
    for n, d in e["streams"].items():
        shp = (d.get("n"),)
        data = load_member(rd / f"{n}.npy", shape=shp, kinds="f", mmap=mmap, what=f"channel {n}")
        valid = load_member(rd / f"{n}.valid.npy", shape=(data.shape[0],), kinds="b", mmap=mmap,
                            what=f"validity of channel {n}")
        streams[n] = (ChannelSpec.from_dict(d), data, valid)
    labels = {n: load_member(rd / f"label.{n}.npy", shape=(d.get("n"),),
                             kinds="f" if d["kind"] == "continuous" else "iu", mmap=False, what=f"label {n}")
              for n, d in e["labels"].items()}
    events = {n: load_member(rd / f"event.{n}.npy", shape=(d.get("n"),), kinds="fiu", mmap=False,
                             what=f"event {n}")
              for n, d in e["events"].items()}
    return streams, labels, events


def read_recordings(path: str | Path, subjects: Iterable[str] | None = None,
                    mmap: bool = True) -> Iterator[Recording]:
    """Stream recordings back (arrays memory-mapped). A missing or corrupt member is a
    :class:`DataError` naming the file."""
    path = Path(path)
    m = open_manifest(path, "recordings")
    want = set(subjects) if subjects is not None else None
    for e in m["recordings"]:
        if want is not None and e["subject"] not in want:
            continue
        rd = path / "recordings" / e["dir"]
        sa, la, ev = _entry_arrays(path, e, mmap)
        try:
            streams = {n: Stream(spec, data, valid) for n, (spec, data, valid) in sa.items()}
            labels = {n: LabelTrack(n, d["kind"], d["fs_hz"], la[n], unit=d.get("unit", ""),
                                    classes=tuple(d.get("classes", ())))
                      for n, d in e["labels"].items()}
            rec = Recording(e["subject"], e["start_time"], streams, labels, ev, e.get("meta", {}), id=e["id"])
        except DataError as ex:
            raise DataError(f"cannot read recording {e['id']}: {ex.message}", path=rd, field=ex.field) from ex
        yield rec


# ---------------------------------------------------------------- windows store

class _Stats:
    """Per-channel running sums over observed samples (for z-scoring)."""

    def __init__(self, C: int):
        self.n = np.zeros(C, np.float64)
        self.s = np.zeros(C, np.float64)
        self.ss = np.zeros(C, np.float64)

    def add(self, x: np.ndarray, m: np.ndarray):
        xm = np.where(m, x, 0.0).astype(np.float64)
        self.n += m.sum((0, 2))
        self.s += xm.sum((0, 2))
        self.ss += (xm * xm).sum((0, 2))

    def result(self) -> tuple[list[float], list[float]]:
        n = np.maximum(self.n, 1)
        mean = self.s / n
        var = np.maximum(self.ss / n - mean ** 2, 0)
        std = np.sqrt(var)
        std[std < 1e-8] = 1.0
        mean[self.n == 0] = 0.0
        return mean.tolist(), std.tolist()


def write_windows(recs: Iterable[Recording], out: str | Path, preset: Preset | str, *,
                  provenance: dict, split: dict[str, list[str]] | None = None,
                  subjects: list[str] | None = None, shard_size: int = 4096,
                  normalise: bool = True, overwrite: bool = False) -> Path:
    """Window ``recs`` with ``preset`` and write a sharded, normalised-on-read dataset.

    ``split`` maps split -> subjects; subjects not in it go to train. Normalisation statistics
    come from the train split's observed samples only. An existing non-empty ``out`` is
    replaced only with ``overwrite``.
    """
    preset = get_preset(preset)
    out = Path(out)
    split = split or {}
    where = {s: k for k, subs in split.items() for s in subs}
    if not (isinstance(shard_size, (int, np.integer)) and shard_size > 0):
        raise ConfigError(f"shard_size must be a positive whole number, got {shard_size!r}", field="shard_size")
    with output_errors(out), atomic_dir(out, overwrite=overwrite) as tmp:
        (tmp / "shards").mkdir()
        buf: dict[str, list[Windows]] = {k: [] for k in SPLITS}
        counts = {k: 0 for k in SPLITS}
        shards: list[dict] = []
        subj_codes: dict[str, int] = {}
        label_info: dict[str, dict] = {}
        stats = _Stats(len(preset.channels))
        hours = 0.0
        obs = np.zeros(len(preset.channels), np.int64)
        tot = 0

        def flush(k: str, final: bool = False):
            while buf[k] and (final or sum(len(w) for w in buf[k]) >= shard_size):
                w = Windows.concat(buf[k])
                take, rest = w.select(slice(0, shard_size)), w.select(slice(shard_size, None))
                buf[k] = [rest] if len(rest) else []
                name = f"{k}-{counts[k]:05d}"
                counts[k] += 1
                np.save(tmp / "shards" / f"{name}.x.npy", take.x)
                np.save(tmp / "shards" / f"{name}.mask.npy", take.mask)
                np.savez(tmp / "shards" / f"{name}.meta.npz",
                         subject=np.array([subj_codes[s] for s in take.subject], np.int32),
                         start_time=take.start_time,
                         **{f"label_{lk}": lv for lk, lv in take.labels.items()})
                shards.append({"name": name, "split": k, "n": len(take)})
                if final and not buf[k]:
                    break

        for rec in recs:
            hours += rec.duration_s / 3600
            w = window_recording(rec, preset)
            for lk, li in w.label_info.items():
                label_info.setdefault(lk, li)
            for lk, li in label_info.items():  # every shard carries every label seen so far
                if lk not in w.labels:
                    cont = li["kind"] == "continuous"
                    w.labels[lk] = np.full(len(w), np.nan if cont else -1, np.float32 if cont else np.int16)
            subj_codes.setdefault(rec.subject, len(subj_codes))
            if not len(w):
                continue
            k = where.get(rec.subject, "train")
            if k == "train":
                stats.add(w.x, w.mask)
            obs += w.mask.sum((0, 2))
            tot += w.x.shape[0] * w.x.shape[2]
            buf[k].append(w)
            flush(k)
        for k in SPLITS:
            flush(k, final=True)
        if not shards:
            raise DataError("no windows were produced", path=out,
                            hint=f"recordings are shorter than {preset.window_s} s or too sparse")
        # every shard must carry every label key (a recording without a label gets NaN/-1)
        mean, std = stats.result() if normalise else ([0.0] * len(preset.channels), [1.0] * len(preset.channels))
        subjects_all = sorted(subj_codes, key=subj_codes.get)
        full_split = {k: sorted(s for s in subjects_all if where.get(s, "train") == k) for k in SPLITS}
        atomic_write_json(tmp / "manifest.json", {
            "schema_version": SCHEMA_VERSION, "kind": "windows", "preset": preset.spec(),
            "channels": [c.to_dict() for c in preset.channels],
            "normalisation": {"method": "zscore", "scope": "train split, observed samples",
                              "mean": mean, "std": std},
            "labels": label_info, "subjects": subjects_all, "split": full_split,
            "hours": hours, "n_windows": int(sum(s["n"] for s in shards)),
            "missing_fraction": (1 - obs / max(tot, 1)).tolist(),
            "shards": shards, "provenance": provenance})
    return out


def load_shard_meta(path: Path, n: int, n_subjects: int) -> dict[str, np.ndarray]:
    """A shard's ``.meta.npz`` (subject codes, start times, ``label_*`` per label),
    read into memory and checked: a :class:`DataError` naming the file for a missing, corrupt,
    pickled or inconsistent member."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise DataError("shard metadata file is missing", path=path, hint="the dataset is incomplete") from None
    except Exception as e:  # BadZipFile, ValueError (pickled), OSError, EOFError, AttributeError (not an npz)
        raise DataError(f"cannot read shard metadata: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}",
                        path=path, hint="the file is corrupt; write the dataset again") from e
    for k in ("subject", "start_time"):  # a label_* member may be absent (a shard written before it was seen)
        if k not in meta:
            raise DataError("member missing", path=path, field=k)
    for k, v in meta.items():
        if v.shape != (n,) or v.dtype.kind not in "fiub":
            raise DataError(f"has shape {v.shape} and dtype {v.dtype}, expected ({n},) numbers", path=path, field=k)
    sub = meta["subject"]
    if sub.dtype.kind not in "iu" or (n and (sub.min() < 0 or sub.max() >= n_subjects)):
        raise DataError(f"subject codes must index the manifest's {n_subjects} subjects", path=path, field="subject")
    return meta


@dataclass
class WindowDataset:
    """A windows dataset on disk, read lazily.

    >>> ds = WindowDataset("runs/x/data/wrist-raw")
    >>> for b in ds.iter_batches("train", 256, shuffle=True, seed=0): b["x"].shape  # (256, C, T)
    """

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)
        self.manifest = open_manifest(self.path, "windows")
        self.channels = tuple(ChannelSpec.from_dict(d) for d in self.manifest["channels"])
        p = self.manifest["preset"]
        self.fs_hz, self.window, self.hop = float(p["fs_hz"]), int(p["window"]), int(p["hop"])
        nm = self.manifest["normalisation"]
        self.mean = np.asarray(nm["mean"], np.float32)[None, :, None]
        self.std = np.asarray(nm["std"], np.float32)[None, :, None]
        self.subjects = list(self.manifest["subjects"])
        self.labels = dict(self.manifest.get("labels", {}))

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

    def shards(self, split: str | None = None) -> list[dict]:
        if split is not None and split not in SPLITS:
            raise DataError(f"unknown split {split!r}", field="split")
        return [s for s in self.manifest["shards"] if split is None or s["split"] == split]

    def __len__(self) -> int:
        return int(self.manifest["n_windows"])

    def n(self, split: str | None = None) -> int:
        return sum(s["n"] for s in self.shards(split))

    def _open(self, name: str):
        """(x, mask, meta) of one shard, memory-mapped; every member checked against the
        manifest (shape, dtype, label keys, subject codes): a :class:`DataError` naming the file."""
        d = self.path / "shards"
        n = next((s["n"] for s in self.manifest["shards"] if s["name"] == name), None)
        shape = (n, len(self.channels), self.window)
        x = load_member(d / f"{name}.x.npy", shape=shape, kinds="f", what="shard windows")
        m = load_member(d / f"{name}.mask.npy", shape=x.shape, kinds="b", what="shard mask")
        meta = load_shard_meta(d / f"{name}.meta.npz", x.shape[0], len(self.subjects))
        return x, m, meta

    def normalise(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """z-score with the manifest's statistics; missing positions stay 0."""
        return np.where(mask, (x - self.mean) / self.std, 0.0).astype(np.float32)

    def denormalise(self, z: np.ndarray) -> np.ndarray:
        return (z * self.std + self.mean).astype(np.float32)

    def _batch(self, x, m, meta, idx, normalise: bool) -> dict:
        xb, mb = np.asarray(x[idx], np.float32), np.asarray(m[idx], bool)
        b = {"x": self.normalise(xb, mb) if normalise else xb, "mask": mb,
             "subject": np.asarray([self.subjects[i] for i in meta["subject"][idx]]),
             "start_time": meta["start_time"][idx]}
        for k, v in meta.items():
            if k.startswith("label_"):
                b[k[6:]] = v[idx]
        return b

    def iter_batches(self, split: str, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                     rank: int = 0, world: int = 1, normalise: bool = True,
                     drop_last: bool = False) -> Iterator[dict]:
        """Yield dict batches (x, mask, subject, start_time, each label) shard by shard.

        With ``world > 1`` rank r reads only shards r, r+world, ... (disjoint per rank).
        Memory stays at one shard plus one batch.
        """
        rng = np.random.default_rng(seed)
        shards = self.shards(split)[rank::world]
        order = rng.permutation(len(shards)) if shuffle else range(len(shards))
        carry = None
        for si in order:
            x, m, meta = self._open(shards[si]["name"])
            n = x.shape[0]
            idx = rng.permutation(n) if shuffle else np.arange(n)
            if shuffle:
                idx.sort()  # keep mmap reads sequential within the random subset order below
                idx = rng.permutation(idx)
            for a in range(0, n, batch_size):
                sel = idx[a:a + batch_size]
                b = self._batch(x, m, meta, np.sort(sel) if not shuffle else sel, normalise)
                if len(sel) < batch_size and not drop_last:
                    carry = b if carry is None else {k: np.concatenate([carry[k], b[k]]) for k in b}
                    if len(carry["x"]) >= batch_size:  # full batches only; keep the rest
                        yield {k: v[:batch_size] for k, v in carry.items()}
                        carry = {k: v[batch_size:] for k, v in carry.items()} \
                            if len(carry["x"]) > batch_size else None
                    continue
                if len(sel) == batch_size:
                    yield b
        if carry is not None and not drop_last:
            yield carry

    def load(self, split: str | None = None, max_n: int | None = None, normalise: bool = True) -> Windows:
        """Load a split into memory as :class:`Windows` (for evaluation on small splits)."""
        parts = []
        got = 0
        for s in self.shards(split):
            x, m, meta = self._open(s["name"])
            k = x.shape[0] if max_n is None else min(x.shape[0], max_n - got)
            b = self._batch(x, m, meta, np.arange(k), normalise)
            labels = {lk: b[lk] for lk in self.labels if lk in b}
            parts.append(Windows(b["x"], b["mask"], labels, b["subject"], b["start_time"],
                                 self.channels, self.fs_hz, label_info=self.labels))
            got += k
            if max_n is not None and got >= max_n:
                break
        if not parts:
            raise DataError(f"split {split!r} has no windows", path=self.path, field="split")
        return Windows.concat(parts)


# ---------------------------------------------------------------- inspection

def info(path: str | Path) -> dict:
    """Summary of a dataset of either kind: subjects, hours, channels, rates, missing, labels."""
    path = Path(path)
    m = open_manifest(path)
    if m.get("kind") == "cohort":  # a synthetic cohort: aggregate, with each part's own info
        parts = {name: info(path / p.get("path", name)) for name, p in m["parts"].items()}
        return {"path": str(path), "kind": "cohort", "subjects": len(m["subjects"]),
                "subject_ids": m["subjects"], "hours": round(float(m["hours"]), 3),
                "split": {k: len(v) for k, v in m["split"].items()}, "parts": parts}
    out = {"path": str(path), "kind": m["kind"], "subjects": len(m["subjects"]),
           "subject_ids": m["subjects"], "hours": round(float(m["hours"]), 3),
           "split": {k: len(v) for k, v in m["split"].items()}}
    if m["kind"] == "recordings":
        chans, miss, lab = {}, {}, {}
        for e in m["recordings"]:
            streams, labels, _ = _entry_arrays(path, e)  # every member opened and checked
            for n, d in e["streams"].items():
                chans.setdefault(n, {"modality": d["modality"], "unit": d["unit"], "fs_hz": d["fs_hz"]})
                v = streams[n][2]
                a = miss.setdefault(n, [0, 0])
                a[0] += int(v.size - np.count_nonzero(v)); a[1] += int(v.size)
            for n, d in e["labels"].items():
                vals = labels[n]
                c = lab.setdefault(n, {})
                if d["kind"] == "categorical":
                    for code, cnt in zip(*np.unique(vals[vals >= 0], return_counts=True)):
                        cl = d.get("classes", [])
                        name = str(cl[code]) if code < len(cl) else str(code)
                        c[name] = c.get(name, 0) + int(cnt)
                else:
                    c["n_known"] = c.get("n_known", 0) + int(np.isfinite(vals).sum())
        out["recordings"] = len(m["recordings"])
        out["channels"] = chans
        out["missing_fraction"] = {n: round(a[0] / max(a[1], 1), 4) for n, a in miss.items()}
        out["labels"] = lab
        oor = m.get("provenance", {}).get("out_of_range") if isinstance(m.get("provenance"), dict) else None
        if isinstance(oor, dict):
            out["out_of_range"] = oor
    else:
        out["preset"] = str(m["preset"].get("preset", ""))
        out["n_windows"] = m["n_windows"]
        out["channels"] = {c["name"]: {"modality": c["modality"], "unit": c["unit"], "fs_hz": c["fs_hz"]}
                           for c in m["channels"]}
        out["missing_fraction"] = {c["name"]: round(f, 4) for c, f in zip(m["channels"], m["missing_fraction"])}
        ds = WindowDataset(path)
        lab = {}
        for s in ds.shards():
            _, _, meta = ds._open(s["name"])  # x, mask and meta checked against the manifest
            for k, v in meta.items():
                if not k.startswith("label_"):
                    continue
                name = k[6:]
                li = m["labels"].get(name, {})
                c = lab.setdefault(name, {})
                if li.get("kind") == "categorical":
                    for code, cnt in zip(*np.unique(v[v >= 0], return_counts=True)):
                        cl = li.get("classes", [])
                        key = str(cl[code]) if code < len(cl) else str(code)
                        c[key] = c.get(key, 0) + int(cnt)
                else:
                    c["n_known"] = c.get("n_known", 0) + int(np.isfinite(v).sum())
        out["labels"] = lab
    return out
