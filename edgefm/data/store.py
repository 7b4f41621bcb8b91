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

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.windows import Preset, Windows, get_preset, window_recording
from edgefm.errors import DataError, ManifestError
from edgefm.manifest import SCHEMA_VERSION, atomic_dir, atomic_write_json, read_json, sha256_file

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
    """[{path, sha256, bytes}] for source files (paths relative to ``root`` when given)."""
    out = []
    for p in sorted(map(Path, paths)):
        rel = str(p.relative_to(root)) if root else str(p)
        out.append({"path": rel, "sha256": sha256_file(p), "bytes": p.stat().st_size})
    return out


# ---------------------------------------------------------------- recordings store

def write_recordings(recs: Iterable[Recording], out: str | Path, *, provenance: dict,
                     split: dict[str, list[str]] | None = None, seed: int = 0) -> Path:
    """Write recordings atomically to ``out``; returns ``out``.

    ``provenance``: {"source": "...", "files": [...]} or {"generator": {...params}}.
    """
    out = Path(out)
    with atomic_dir(out) as tmp:
        entries, subjects = [], []
        for rec in recs:
            rd = tmp / "recordings" / _safe(rec.id)
            if rd.exists():
                raise DataError(f"two recordings share the id {rec.id!r}", path=out, field="id",
                                hint="give each recording a unique id")
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


def _safe(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in s)


def open_manifest(path: str | Path, kind: str | None = None) -> dict:
    path = Path(path)
    if not path.is_dir():
        raise ManifestError("not a dataset directory", path=path,
                            hint="run `edgefm data synth` or `edgefm data import` first")
    m = read_json(path / "manifest.json")
    if m.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(f"unknown schema_version {m.get('schema_version')!r}", path=path / "manifest.json",
                            field="schema_version")
    if kind and m.get("kind") != kind:
        raise ManifestError(f"is a {m.get('kind')!r} dataset, expected {kind!r}", path=path, field="kind")
    return m


def read_recordings(path: str | Path, subjects: Iterable[str] | None = None,
                    mmap: bool = True) -> Iterator[Recording]:
    """Stream recordings back (arrays memory-mapped)."""
    path = Path(path)
    m = open_manifest(path, "recordings")
    want = set(subjects) if subjects is not None else None
    mode = "r" if mmap else None
    for e in m["recordings"]:
        if want is not None and e["subject"] not in want:
            continue
        rd = path / "recordings" / e["dir"]
        try:
            streams = {n: Stream(ChannelSpec.from_dict(d), np.load(rd / f"{n}.npy", mmap_mode=mode),
                                 np.load(rd / f"{n}.valid.npy", mmap_mode=mode))
                       for n, d in e["streams"].items()}
            labels = {n: LabelTrack(n, d["kind"], d["fs_hz"], np.load(rd / f"label.{n}.npy"),
                                    unit=d.get("unit", ""), classes=tuple(d.get("classes", ())))
                      for n, d in e["labels"].items()}
            events = {n: np.load(rd / f"event.{n}.npy") for n in e["events"]}
        except (OSError, ValueError) as ex:
            raise DataError(f"cannot read recording {e['id']}: {ex}", path=rd) from ex
        yield Recording(e["subject"], e["start_time"], streams, labels, events, e.get("meta", {}), id=e["id"])


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
                  normalise: bool = True) -> Path:
    """Window ``recs`` with ``preset`` and write a sharded, normalised-on-read dataset.

    ``split`` maps split -> subjects; subjects not in it go to train. Normalisation statistics
    come from the train split's observed samples only.
    """
    preset = get_preset(preset)
    out = Path(out)
    split = split or {}
    where = {s: k for k, subs in split.items() for s in subs}
    with atomic_dir(out) as tmp:
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
        d = self.path / "shards"
        try:
            x = np.load(d / f"{name}.x.npy", mmap_mode="r")
            m = np.load(d / f"{name}.mask.npy", mmap_mode="r")
            meta = dict(np.load(d / f"{name}.meta.npz"))
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read shard {name}: {e}", path=d / name) from e
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
        parts = {name: info(path / p.get("path", name)) for name, p in m.get("parts", {}).items()}
        return {"path": str(path), "kind": "cohort", "subjects": len(m["subjects"]),
                "subject_ids": m["subjects"], "hours": round(float(m["hours"]), 3),
                "split": {k: len(v) for k, v in m["split"].items()}, "parts": parts}
    out = {"path": str(path), "kind": m["kind"], "subjects": len(m["subjects"]),
           "subject_ids": m["subjects"], "hours": round(float(m["hours"]), 3),
           "split": {k: len(v) for k, v in m["split"].items()}}
    if m["kind"] == "recordings":
        chans, miss, lab = {}, {}, {}
        for e in m["recordings"]:
            rd = path / "recordings" / e["dir"]
            for n, d in e["streams"].items():
                chans.setdefault(n, {"modality": d["modality"], "unit": d["unit"], "fs_hz": d["fs_hz"]})
                v = np.load(rd / f"{n}.valid.npy", mmap_mode="r")
                a = miss.setdefault(n, [0, 0])
                a[0] += int(v.size - np.count_nonzero(v)); a[1] += int(v.size)
            for n, d in e["labels"].items():
                vals = np.load(rd / f"label.{n}.npy")
                c = lab.setdefault(n, {})
                if d["kind"] == "categorical":
                    for code, cnt in zip(*np.unique(vals[vals >= 0], return_counts=True)):
                        name = d["classes"][code] if code < len(d["classes"]) else str(code)
                        c[name] = c.get(name, 0) + int(cnt)
                else:
                    c["n_known"] = c.get("n_known", 0) + int(np.isfinite(vals).sum())
        out["recordings"] = len(m["recordings"])
        out["channels"] = chans
        out["missing_fraction"] = {n: round(a[0] / max(a[1], 1), 4) for n, a in miss.items()}
        out["labels"] = lab
    else:
        out["preset"] = m["preset"]["preset"]
        out["n_windows"] = m["n_windows"]
        out["channels"] = {c["name"]: {"modality": c["modality"], "unit": c["unit"], "fs_hz": c["fs_hz"]}
                           for c in m["channels"]}
        out["missing_fraction"] = {c["name"]: round(f, 4) for c, f in zip(m["channels"], m["missing_fraction"])}
        ds = WindowDataset(path)
        lab = {}
        for s in ds.shards():
            meta = dict(np.load(path / "shards" / f"{s['name']}.meta.npz"))
            for k, v in meta.items():
                if not k.startswith("label_"):
                    continue
                name = k[6:]
                li = m["labels"].get(name, {})
                c = lab.setdefault(name, {})
                if li.get("kind") == "categorical":
                    for code, cnt in zip(*np.unique(v[v >= 0], return_counts=True)):
                        cl = li.get("classes", [])
                        key = cl[code] if code < len(cl) else str(code)
                        c[key] = c.get(key, 0) + int(cnt)
                else:
                    c["n_known"] = c.get("n_known", 0) + int(np.isfinite(v).sum())
        out["labels"] = lab
    return out
