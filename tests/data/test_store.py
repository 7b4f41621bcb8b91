"""On-disk datasets (edgefm.data.store): round trips, atomic writes, streaming, normalisation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.store import (WindowDataset, file_provenance, info, read_recordings, subject_split,
                               write_recordings, write_windows)
from edgefm.data.windows import window_recording
from edgefm.errors import DataError, ManifestError


def rec(subject: str, dur_s: float = 40.0, seed: int = 0, gap=None) -> Recording:
    rng = np.random.default_rng(seed)
    streams = {"ppg": Stream(ChannelSpec("ppg", "ppg", "a.u.", 32.0), rng.normal(5, 2, int(dur_s * 32)))}
    for k, a in enumerate("xyz"):
        d = rng.normal(k, 0.5, int(dur_s * 32))
        v = np.ones(d.size, bool)
        if gap is not None:
            v[gap[0] * 32:gap[1] * 32] = False
        streams[f"acc_{a}"] = Stream(ChannelSpec(f"acc_{a}", "acc", "g", 32.0), d, v)
    hr = LabelTrack("hr", "continuous", 1.0, 60 + rng.normal(size=int(dur_s)), unit="bpm")
    act = LabelTrack("activity", "categorical", 1.0, rng.integers(-1, 3, int(dur_s)), classes=("a", "b", "c"))
    return Recording(subject, 1e9 + seed, streams, {"hr": hr, "activity": act},
                     {"beats": np.sort(rng.uniform(0, dur_s, 30))}, {"note": seed}, id=f"{subject}-r{seed}")


def test_recordings_round_trip(tmp_path):
    recs = [rec("s1", seed=1, gap=(5, 9)), rec("s2", 25.5, seed=2)]
    p = write_recordings(recs, tmp_path / "r", provenance={"generator": {"x": 1}})
    back = list(read_recordings(p))
    assert [r.id for r in back] == ["s1-r1", "s2-r2"]
    for a, b in zip(recs, back):
        assert a.subject == b.subject and a.start_time == b.start_time and b.meta == a.meta
        for k in a.streams:
            np.testing.assert_array_equal(np.asarray(b.streams[k].data), a.streams[k].data)
            np.testing.assert_array_equal(np.asarray(b.streams[k].valid), a.streams[k].valid)
            assert b.streams[k].spec == a.streams[k].spec
        for k in a.labels:
            np.testing.assert_array_equal(b.labels[k].values, a.labels[k].values)
            assert b.labels[k].classes == a.labels[k].classes
        np.testing.assert_array_equal(b.events["beats"], a.events["beats"])
    i = info(p)
    assert i["subjects"] == 2 and i["hours"] == pytest.approx((40 + 25.5) / 3600, abs=1e-3)
    assert i["missing_fraction"]["acc_x"] == pytest.approx(4 * 32 / ((40 + 25.5) * 32), abs=1e-4)
    assert list(read_recordings(p, subjects=["s2"]))[0].id == "s2-r2"


def test_atomic_write_failure_leaves_nothing(tmp_path):
    def gen():
        yield rec("s1", seed=1)
        raise DataError("boom while reading subject 2")
    with pytest.raises(DataError, match="boom"):
        write_recordings(gen(), tmp_path / "r", provenance={})
    assert list(tmp_path.iterdir()) == []  # no dataset, no temp dir
    p = write_recordings([rec("s1")], tmp_path / "r", provenance={})
    with pytest.raises(ManifestError, match="already exists"):  # never replaced unless told
        write_recordings([rec("s2")], p, provenance={})
    with pytest.raises(DataError):
        write_recordings(gen(), p, provenance={}, overwrite=True)
    assert len(list(read_recordings(p))) == 1  # the old dataset survived the failed overwrite
    with pytest.raises(DataError, match="no windows"):
        write_windows([rec("s1", dur_s=3)], tmp_path / "w", "wrist-raw", provenance={})
    assert not (tmp_path / "w").exists()


@pytest.fixture(scope="module")
def windows_ds(tmp_path_factory):
    recs = [rec(f"s{k}", dur_s=30 + 4 * k, seed=k, gap=(3, 6) if k % 2 else None) for k in range(6)]
    split = {"train": ["s0", "s1", "s2", "s3"], "val": ["s4"], "test": ["s5"]}
    p = write_windows(recs, tmp_path_factory.mktemp("w") / "w", "wrist-raw", provenance={"t": 1},
                      split=split, shard_size=7)
    return p, recs, split


def test_streaming_returns_every_window_exactly_once(windows_ds):
    p, recs, split = windows_ds
    ds = WindowDataset(p)
    want = {k: sorted((r.subject, round(t, 3)) for r in recs if r.subject in v
                      for t in window_recording(r, "wrist-raw").start_time) for k, v in split.items()}
    assert len(ds) == sum(len(v) for v in want.values())
    assert len(ds.shards("train")) > 2  # really sharded
    for k in ("train", "val", "test"):
        for kw in ({}, {"shuffle": True, "seed": 3}):
            got = [(s, round(t, 3)) for b in ds.iter_batches(k, 5, **kw)
                   for s, t in zip(b["subject"], b["start_time"])]
            assert sorted(got) == want[k], (k, kw)
        sizes = [len(b["x"]) for b in ds.iter_batches(k, 5, shuffle=True)]
        assert all(n == 5 for n in sizes[:-1]) and 0 < sizes[-1] <= 5  # shard tails are re-batched
        ranks = [[(s, round(t, 3)) for b in ds.iter_batches(k, 4, rank=r, world=2)
                  for s, t in zip(b["subject"], b["start_time"])] for r in range(2)]
        assert sorted(ranks[0] + ranks[1]) == want[k] and not set(ranks[0]) & set(ranks[1])


def test_normalisation_equals_numpy_on_train_observed(windows_ds):
    p, recs, split = windows_ds
    ds = WindowDataset(p)
    xs, ms = [], []
    for r in recs:
        if r.subject in split["train"]:
            w = window_recording(r, "wrist-raw")
            xs.append(w.x)
            ms.append(w.mask)
    x, m = np.concatenate(xs), np.concatenate(ms)
    for c in range(4):
        v = x[:, c][m[:, c]].astype(np.float64)
        assert ds.mean[0, c, 0] == pytest.approx(v.mean(), rel=1e-5)
        assert ds.std[0, c, 0] == pytest.approx(v.std(), rel=1e-4)
    b = next(ds.iter_batches("train", 1000))
    z = b["x"]
    assert (z[~b["mask"]] == 0).all()
    obs = z[:, 1][b["mask"][:, 1]]
    assert abs(obs.mean()) < 1e-3 and obs.std() == pytest.approx(1.0, rel=1e-3)
    raw = next(ds.iter_batches("train", 1000, normalise=False))
    np.testing.assert_allclose(ds.denormalise(z)[b["mask"]], raw["x"][raw["mask"]], rtol=1e-4, atol=1e-4)


def test_windows_labels_and_info(windows_ds):
    p, recs, _ = windows_ds
    ds = WindowDataset(p)
    w = ds.load("val", normalise=False)
    direct = window_recording(recs[4], "wrist-raw")
    np.testing.assert_array_equal(w.x, direct.x)
    np.testing.assert_allclose(w.labels["hr"], direct.labels["hr"])
    np.testing.assert_array_equal(w.labels["activity"], direct.labels["activity"])
    i = info(p)
    assert i["n_windows"] == len(ds) and i["subjects"] == 6 and i["split"] == {"train": 4, "val": 1, "test": 1}
    assert sum(i["labels"]["activity"].values()) == sum(
        int((window_recording(r, "wrist-raw").labels["activity"] >= 0).sum()) for r in recs)


def test_corrupt_dataset_errors(windows_ds, tmp_path):
    import shutil

    p, _, _ = windows_ds
    q = tmp_path / "copy"
    shutil.copytree(p, q)
    shard = WindowDataset(q).shards("train")[0]["name"]
    (q / "shards" / f"{shard}.x.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DataError) as ei:
        list(WindowDataset(q).iter_batches("train", 4))
    assert shard in ei.value.path
    m = json.loads((q / "manifest.json").read_text())
    m["schema_version"] = 999
    (q / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ManifestError):
        WindowDataset(q)
    with pytest.raises(ManifestError):
        WindowDataset(tmp_path / "missing")
    with pytest.raises(DataError):
        WindowDataset(p).shards("holdout")


def test_subject_split_and_provenance(tmp_path):
    subs = [f"s{k:02d}" for k in range(20)]
    a, b = subject_split(subs, seed=0), subject_split(list(reversed(subs)), seed=0)
    assert a == b
    assert sorted(sum(a.values(), [])) == subs and [len(a[k]) for k in ("train", "val", "test")] == [14, 3, 3]
    assert subject_split(subs, seed=1) != a
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    assert file_provenance([f], root=tmp_path) == [{
        "path": "x.bin", "bytes": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]


def test_real_troika_windows_dataset(shared_data, tmp_path):
    from edgefm.data.importers import import_dataset
    from edgefm.data.store import open_manifest

    r = import_dataset("troika", shared_data / "troika", tmp_path / "r")
    p = write_windows(read_recordings(r), tmp_path / "w", "wrist-raw", provenance={},
                      split=open_manifest(r)["split"])
    i = info(p)
    assert i["n_windows"] == 1875 and i["labels"]["hr"]["n_known"] == 1875
    assert i["missing_fraction"] == {"ppg": 0.0, "acc_x": 0.0, "acc_y": 0.0, "acc_z": 0.0}
