"""Importers on the real recordings (skipped without ../shared/data) and on small bad files."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from edgefm.data.importers import import_dataset, reference_window_counts
from edgefm.data.store import info, open_manifest, read_recordings
from edgefm.data.windows import window_recording
from edgefm.errors import ConfigError, DataError


# ------------------------------------------------------------------ real data

@pytest.fixture(scope="module")
def wesad(shared_data, tmp_path_factory):
    return import_dataset("e4", shared_data / "wesad_e4", tmp_path_factory.mktemp("imp") / "wesad")


@pytest.fixture(scope="module")
def troika(shared_data, tmp_path_factory):
    return import_dataset("troika", shared_data / "troika", tmp_path_factory.mktemp("imp") / "troika")


def _mmss(v: str) -> float:
    mm, _, ss = v.partition(".")
    return int(mm) * 60 + (int(ss.ljust(2, "0")) if ss else 0)


def test_wesad_subjects_hours_rates_labels(wesad, shared_data):
    i = info(wesad)
    assert i["subjects"] == 15 and i["recordings"] == 15
    src = shared_data / "wesad_e4"
    hours, base_n, beats_n = 0.0, 0, {}
    for d in sorted(p for p in src.iterdir() if p.is_dir()):
        e4 = d / f"{d.name}_E4_Data"
        durs, starts = [], []
        for f, fs in (("ACC", 32), ("BVP", 64), ("EDA", 4), ("TEMP", 4), ("HR", 1)):
            lines = (e4 / f"{f}.csv").read_text().splitlines()
            starts.append(float(lines[0].split(",")[0]))
            durs.append((starts[-1], (len(lines) - 2) / fs))
        t0 = min(starts)
        hours += max(s - t0 + du for s, du in durs) / 3600
        q = {r.split(";")[0]: r.split(";")[1:] for r in (d / f"{d.name}_quest.csv").read_text().splitlines()}
        k = q["# ORDER"].index("Base")
        # default alignment: E4 time = quest time + (E4 end - last phase END - 300 s)
        last_end = max(_mmss(q["# END"][j]) for j, nm in enumerate(q["# ORDER"])
                       if nm in ("Base", "TSST", "Fun", "Medi 1", "Medi 2"))
        off = max(s - t0 + du for s, du in durs) - last_end - 300
        base_n += round((_mmss(q["# END"][k]) + off) * 4) - round((_mmss(q["# START"][k]) + off) * 4)
        beats_n[d.name] = len((e4 / "IBI.csv").read_text().splitlines()) - 1
    assert i["hours"] == pytest.approx(hours, abs=2e-3)
    assert 25 < i["hours"] < 35
    assert {n: c["fs_hz"] for n, c in i["channels"].items()} == {
        "acc_x": 32, "acc_y": 32, "acc_z": 32, "ppg": 64, "eda": 4, "temp": 4, "hr": 1}
    assert i["channels"]["acc_x"]["unit"] == "g"
    assert i["labels"]["stress"]["baseline"] == base_n
    assert set(i["labels"]["stress"]) == {"baseline", "stress", "amusement", "meditation"}
    for rec in read_recordings(wesad, subjects=["S2", "S10"]):
        acc = np.stack([rec.streams[f"acc_{a}"].data for a in "xyz"])
        assert np.nanmedian(np.linalg.norm(acc, axis=0)) == pytest.approx(1.0, abs=0.15)  # 1/64 g -> g
        assert rec.events["beats"].size == beats_n[rec.subject]  # every E4 IBI is in 0.2-2.5 s
        hr = rec.labels["hr"].values
        assert 40 < np.nanmedian(hr) < 130
        r = rec.labels["rmssd"].values
        assert np.isfinite(r).sum() > 100 and 5 < np.nanmedian(r) < 300


def test_wesad_phase_alignment_is_physiological(wesad):
    """TSST raises heart rate and skin conductance over baseline: the phase labels must agree."""
    hr_up = eda_up = 0
    for rec in read_recordings(wesad):
        qa = rec.meta["quest_alignment"]
        assert qa["method"] == "end-anchored" and 10 * 60 < qa["offset_s"] < 30 * 60
        st = rec.labels["stress"].values[::4]  # 4 Hz -> 1 Hz
        hr = np.asarray(rec.labels["hr"].values, float)
        eda = np.asarray(rec.streams["eda"].data, float)[::4]
        n = min(st.size, hr.size, eda.size)
        st, hr, eda = st[:n], hr[:n], eda[:n]
        hr_up += np.nanmean(hr[st == 1]) > np.nanmean(hr[st == 0])
        eda_up += np.nanmean(eda[st == 1]) > np.nanmean(eda[st == 0])
    assert hr_up >= 13 and eda_up >= 12  # with offset 0 it was 0 of 15 for HR


def test_wesad_rmssd_matches_direct_computation(wesad, shared_data):
    rec = next(read_recordings(wesad, subjects=["S3"]))
    lines = (shared_data / "wesad_e4/S3/S3_E4_Data/IBI.csv").read_text().splitlines()[1:]
    a = np.array([[float(v) for v in ln.split(",")] for ln in lines])
    t, ibi = a[:, 0], a[:, 1]
    tc = 1800.0  # centre of a 60 s window
    sel = [k for k in range(1, len(t)) if abs(t[k] - ibi[k] - t[k - 1]) < 0.03 and tc - 30 <= t[k] < tc + 30]
    if len(sel) >= 20:
        want = np.sqrt(np.mean([((ibi[k] - ibi[k - 1]) * 1e3) ** 2 for k in sel]))
        assert rec.labels["rmssd"].values[int(tc)] == pytest.approx(want, rel=1e-4)
    else:
        assert np.isnan(rec.labels["rmssd"].values[int(tc)])


def test_wesad_provenance_lists_every_file_with_sha(wesad, shared_data):
    prov = open_manifest(wesad)["provenance"]
    files = {f["path"]: f for f in prov["files"]}
    assert len([p for p in files if p.endswith("ACC.csv")]) == 15
    f = files["S5/S5_E4_Data/BVP.csv"]
    assert f["sha256"] == hashlib.sha256((shared_data / "wesad_e4" / f["path"]).read_bytes()).hexdigest()
    assert any(p.endswith("_quest.csv") for p in files)


def test_wesad_wrist_raw_windows(wesad):
    rec = next(read_recordings(wesad, subjects=["S4"]))
    w = window_recording(rec, "wrist-raw")
    n = int(np.floor(rec.duration_s * 32))
    assert len(w) == (n - 256) // 64 + 1
    assert w.x.shape[1:] == (4, 256) and w.mask.mean() > 0.99
    assert set(np.unique(w.labels["stress"])) == {-1, 0, 1, 2, 3}


def test_troika_reference_per_window(troika, shared_data):
    i = info(troika)
    assert i["subjects"] == 12 and i["recordings"] == 13
    assert {c["fs_hz"] for c in i["channels"].values()} == {125}
    counts = reference_window_counts(troika)
    total = 0
    for rec in read_recordings(troika):
        f = rec.meta["hr_reference"]["source"]
        bpm_f = next((shared_data / "troika").rglob(f))
        bpm0 = sio.loadmat(str(bpm_f))["BPM0"].ravel()
        assert counts[rec.id] == len(bpm0)
        w = window_recording(rec, "wrist-raw")
        assert len(w) == len(bpm0)
        np.testing.assert_allclose(w.labels["hr"], bpm0, atol=1e-3)  # wrist-raw reproduces BPM0
        assert w.start_time[1] - w.start_time[0] == 2.0
        acc = np.stack([rec.streams[f"acc_{a}"].data for a in "xyz"])
        assert 0.8 < np.median(np.linalg.norm(acc, axis=0)) < 1.6
        total += len(bpm0)
    assert total == 1875
    ids = {r.id: r.subject for r in read_recordings(troika)}
    assert ids["troika-04-extra"] == ids["troika-04"] == "troika-04"
    split = open_manifest(troika)["split"]
    assert sum("troika-04" in v for v in split.values()) == 1


def test_troika_without_extra(shared_data, tmp_path):
    p = import_dataset("troika", shared_data / "troika", tmp_path / "t", include_extra=False)
    i = info(p)
    assert i["subjects"] == 12 and i["recordings"] == 12
    assert sum(reference_window_counts(p).values()) == 1875 - 107


def test_daphnet_real(shared_data, tmp_path):
    p = import_dataset("daphnet", shared_data / "daphnet", tmp_path / "d")
    i = info(p)
    assert i["subjects"] == 3 and i["recordings"] == 5
    raw = [np.loadtxt(f) for f in sorted((shared_data / "daphnet").glob("*.txt"))]
    assert i["labels"]["freeze"]["yes"] == sum(int((a[:, 10] == 2).sum()) for a in raw)
    assert i["labels"]["freeze"]["no"] == sum(int((a[:, 10] == 1).sum()) for a in raw)
    assert i["hours"] == pytest.approx(sum(len(a) for a in raw) / 64 / 3600, rel=1e-3)
    assert i["channels"]["trunk_acc_z"] == {"modality": "acc", "unit": "g", "fs_hz": 64.0}
    rec = next(read_recordings(p))
    np.testing.assert_allclose(rec.streams["acc_x"].data[:3], raw[0][:3, 1] / 1000, rtol=1e-6)


def test_sp_sw_har_real(shared_data, tmp_path):
    p = import_dataset("sp-sw-har", shared_data / "sp_sw_har", tmp_path / "h")
    i = info(p)
    assert i["subjects"] == 18 and i["recordings"] == 175
    assert set(i["labels"]["activity"]) == {"seated", "standing_up", "walking", "turning", "sitting_down"}
    assert {c["fs_hz"] for c in i["channels"].values()} == {100.0}
    rec = next(read_recordings(p, subjects=["s01"]))
    acc = np.stack([rec.streams[f"acc_{a}"].data for a in "xyz"])
    assert np.nanmedian(np.linalg.norm(acc, axis=0)) == pytest.approx(1.0, abs=0.1)  # m/s^2 -> g
    assert rec.meta["resampling"]["duplicate_rows_merged"] > 0
    assert rec.meta["subject_info"]["age"] == 54 and rec.meta["execution_info"]["orientation"] == "back_inv"


# ------------------------------------------------------------------ small synthetic E4 folders

def make_e4(root: Path, name="S99", n_s=120, **override) -> Path:
    """A minimal, valid E4 subject folder of ``n_s`` seconds (override file texts by key)."""
    d = root / name
    e4 = d / f"{name}_E4_Data"
    e4.mkdir(parents=True)
    t0 = 1_500_000_000
    rng = np.random.default_rng(0)
    files = {
        "ACC": f"{t0}, {t0}, {t0}\n32, 32, 32\n" + "".join(f"{a},{b},{c}\n" for a, b, c in
                                                        rng.integers(-10, 10, (32 * n_s, 3)) + [0, 0, 64]),
        "BVP": f"{t0}\n64\n" + "".join(f"{v:.2f}\n" for v in rng.normal(size=64 * n_s)),
        "EDA": f"{t0}\n4\n" + "0.5\n" * (4 * n_s),
        "TEMP": f"{t0}\n4\n" + "33.0\n" * (4 * n_s),
        "HR": f"{t0 + 10}\n1\n" + "70.0\n" * (n_s - 10),
        "IBI": f"{t0}, IBI\n" + "".join(f"{1 + 0.8 * k:.3f},0.800\n" for k in range(n_s - 2)),
    }
    files.update(override)
    for k, v in files.items():
        if v is not None:
            (e4 / f"{k}.csv").write_text(v)
    (d / f"{name}_quest.csv").write_text(
        f"# Subj;{name};;\n# ORDER;Base;TSST;sRead\n# START;0.10;1.00;1.30\n# END;0.50;1.30;1.40\n")
    return d


def test_e4_small_folder_exact_values(tmp_path):
    d = make_e4(tmp_path / "src")
    p = import_dataset("e4", d.parent, tmp_path / "out")
    rec = next(read_recordings(p))
    acc_lines = (d / "S99_E4_Data/ACC.csv").read_text().splitlines()[2:]
    np.testing.assert_allclose(rec.streams["acc_z"].data[:5], [int(r.split(",")[2]) / 64 for r in acc_lines[:5]])
    hr = rec.streams["hr"]
    assert hr.n == 120 and not hr.valid[:10].any() and hr.valid[10:].all()  # front-padded 10 s
    st = rec.labels["stress"].values  # 4 Hz; Base 0:10-0:50, TSST 1:00-1:30
    assert (st == 0).sum() == 40 * 4 and (st == 1).sum() == 30 * 4 and st[0] == -1
    assert rec.events["beats"][0] == pytest.approx(1.0)
    assert np.nanmax(rec.labels["rmssd"].values) == pytest.approx(0.0)  # constant IBIs


def test_e4_quest_offset(tmp_path):
    d = make_e4(tmp_path / "src", n_s=400)
    (d / "S99_E4_Data/tags.csv").write_text("1500000390.0\n")  # session stopped at 390 s
    rec = next(read_recordings(import_dataset("e4", d.parent, tmp_path / "a")))
    # end-anchored: 390 - 90 (last END, TSST 1:30) - 300 = 0 s
    assert rec.meta["quest_alignment"]["offset_s"] == 0.0
    (d / "S99_E4_Data/tags.csv").write_text("1500000400.0\n")
    rec = next(read_recordings(import_dataset("e4", d.parent, tmp_path / "b")))
    st = rec.labels["stress"].values
    assert rec.meta["quest_alignment"]["offset_s"] == 10.0
    assert np.flatnonzero(st == 0)[0] == (10 + 10) * 4 and (st == 1).sum() == 30 * 4
    rec = next(read_recordings(import_dataset("e4", d.parent, tmp_path / "c", quest_offset_s=100.0)))
    assert rec.meta["quest_alignment"]["method"] == "given"
    assert np.flatnonzero(rec.labels["stress"].values == 1)[0] == (60 + 100) * 4


def test_e4_truncated_and_nan_are_missing(tmp_path):
    t0 = 1_500_000_000
    acc = f"{t0}, {t0}, {t0}\n32, 32, 32\n" + "1,2,64\n" * 100 + "1,2"  # truncated last row
    bvp = f"{t0}\n64\n" + "1.0\nnan\n" * 100 + "inf\n"
    p = import_dataset("e4", make_e4(tmp_path / "src", ACC=acc, BVP=bvp).parent, tmp_path / "o")
    rec = next(read_recordings(p))
    assert rec.streams["acc_z"].n == 101 and not rec.streams["acc_z"].valid[-1]
    assert rec.streams["acc_x"].valid[:100].all()
    ppg = rec.streams["ppg"]
    assert ppg.valid.sum() == 100 and not ppg.valid[-1] and np.isnan(ppg.data[1])


@pytest.mark.parametrize("key,text,field", [
    ("ACC", "1500000000, 1500000000, 1500000000\n64, 64, 64\n1,2,3\n", "fs_hz"),        # wrong rate header
    ("ACC", "1500000000\n32\n1\n", "header"),                                             # wrong columns
    ("ACC", "1500000000, 1500000000, 1500000000\n", "header"),                           # truncated header
    ("ACC", "1500000000, 1500000000, 1500000000\n32, 32, 32\n1,2,3\n1,x,3\n4,5,6\n", "column 1"),  # garbage
    ("BVP", "abc\n64\n1\n", "start_time"),
    ("ACC", None, "ACC"),                                                                 # missing file
])
def test_e4_bad_files_raise_typed_errors(tmp_path, key, text, field):
    d = make_e4(tmp_path / "src", **{key: text})
    with pytest.raises(DataError) as ei:
        import_dataset("e4", d.parent, tmp_path / "o")
    assert ei.value.field == field
    assert ei.value.path and key in ei.value.path
    assert not (tmp_path / "o").exists()  # nothing half-written


def test_e4_bad_quest_and_binary_file(tmp_path):
    d = make_e4(tmp_path / "src")
    (d / "S99_quest.csv").write_text("# ORDER;Base\n# START;1.75\n# END;2.00\n")  # 75 "seconds"
    with pytest.raises(DataError, match="mm.ss"):
        import_dataset("e4", d.parent, tmp_path / "o")
    (d / "S99_quest.csv").write_text("# ORDER;Base\n# START;1.00\n# END;2.00\n")
    (d / "S99_E4_Data/EDA.csv").write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(DataError, match="binary"):
        import_dataset("e4", d.parent, tmp_path / "o")


def test_import_failure_midway_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    make_e4(src, "S1")
    make_e4(src, "S2", BVP="1500000000\n64\n1\n2\n1,2\n3\n")  # bad row in the middle of subject 2
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("old dataset")
    with pytest.raises(ConfigError, match="--overwrite"):  # never replaced unless told
        import_dataset("e4", src, tmp_path / "o")
    with pytest.raises(DataError):
        import_dataset("e4", src, tmp_path / "o", overwrite=True)
    assert (tmp_path / "o" / "keep.txt").read_text() == "old dataset"  # old output untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_unknown_format_and_options(tmp_path):
    with pytest.raises(ConfigError, match="unknown import format"):
        import_dataset("fitbit", tmp_path, tmp_path / "o")
    with pytest.raises(DataError, match="not found"):
        import_dataset("e4", tmp_path / "nope", tmp_path / "o")
    d = make_e4(tmp_path / "src")
    with pytest.raises(ConfigError, match="unknown option"):
        import_dataset("e4", d.parent, tmp_path / "o", include_extra=True)
    with pytest.raises(ConfigError, match="mapping"):
        import_dataset("e4", d.parent, tmp_path / "o", mapping={"fs_hz": 1})


# ------------------------------------------------------------------ TROIKA bad input

def make_troika(root: Path, n_s=60, n_bpm=None, sig=None) -> Path:
    d = root / "Training_data"
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    if sig is None:
        sig = rng.normal(size=(6, int(125 * n_s)))
        sig[5] += 1.0  # gravity on z
    n_win = int((n_s - 8) // 2) + 1
    bpm = 80 + 10 * np.sin(np.arange(n_bpm or n_win) / 5)
    sio.savemat(str(d / "DATA_01_TYPE01.mat"), {"sig": sig})
    sio.savemat(str(d / "DATA_01_TYPE01_BPMtrace.mat"), {"BPM0": bpm[:, None]})
    return root


def test_troika_small_exact(tmp_path):
    src = make_troika(tmp_path / "src", n_s=60)
    p = import_dataset("troika", src, tmp_path / "o")
    rec = next(read_recordings(p))
    bpm = sio.loadmat(str(src / "Training_data/DATA_01_TYPE01_BPMtrace.mat"))["BPM0"].ravel()
    w = window_recording(rec, "wrist-raw")
    assert len(w) == len(bpm) == 27
    np.testing.assert_allclose(w.labels["hr"], bpm, atol=1e-3)


def test_troika_bad_inputs(tmp_path):
    src = make_troika(tmp_path / "a")
    (src / "Training_data/DATA_01_TYPE01.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 50)
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert "DATA_01_TYPE01.mat" in ei.value.path
    src = make_troika(tmp_path / "b")
    (src / "Training_data/DATA_01_TYPE01_BPMtrace.mat").unlink()
    with pytest.raises(DataError, match="reference file is missing"):
        import_dataset("troika", src, tmp_path / "o")
    src = make_troika(tmp_path / "c", sig=np.zeros((5, 7500)))
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.field == "sig"
    src = make_troika(tmp_path / "d", n_bpm=60)  # BPM trace of another (longer) recording
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.field == "BPM0"
    sio.savemat(str(src / "Training_data/DATA_01_TYPE01_BPMtrace.mat"), {"HR": np.ones((27, 1))})
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.field == "BPM0"
    assert not (tmp_path / "o").exists()


def test_troika_nan_samples_are_missing(tmp_path):
    sig = np.random.default_rng(2).normal(size=(6, 125 * 30))
    sig[5] += 1
    sig[1, 100:200] = np.nan
    p = import_dataset("troika", make_troika(tmp_path / "s", n_s=30, sig=sig), tmp_path / "o")
    rec = next(read_recordings(p))
    assert rec.streams["ppg"].valid.sum() == 125 * 30 - 100
    w = window_recording(rec, "wrist-raw")
    assert not w.mask[0, 0].all() and w.mask[0, 1:].all()


# ------------------------------------------------------------------ Daphnet bad input

def daphnet_text(n=640, t0=15, step=15.625, labels=None, drop=()):
    rows = []
    for k in range(n):
        if k in drop:
            continue
        lab = 1 if labels is None else labels[k]
        rows.append(f"{int(round(t0 + k * step))} 10 20 -1000 1 2 3 4 5 6 {lab}")
    return "\n".join(rows) + "\n"


def test_daphnet_gaps_and_labels(tmp_path):
    f = tmp_path / "S09R01.txt"
    labs = [0] * 100 + [1] * 300 + [2] * 240
    f.write_text(daphnet_text(labels=labs, drop=range(200, 264)))
    p = import_dataset("daphnet", f, tmp_path / "o")
    rec = next(read_recordings(p))
    assert rec.subject == "daphnet-S09" and rec.streams["acc_z"].n == 640
    v = rec.streams["acc_z"].valid
    assert v.sum() == 640 - 64 and not v[200:264].any()
    assert rec.streams["acc_z"].data[0] == pytest.approx(-1.0)  # mg -> g
    fr = rec.labels["freeze"].values
    assert (fr == -1).sum() == 100 + 64 and (fr == 0).sum() == 300 - 64 and (fr == 1).sum() == 240


@pytest.mark.parametrize("text,field", [
    (daphnet_text(step=10.0), "time_ms"),                                   # 100 Hz, not 64
    ("\n".join(daphnet_text(n=10).splitlines()[::-1]) + "\n", "time_ms"),  # backwards
    (daphnet_text(n=5, labels=[1, 1, 3, 1, 1]), "label"),
    (daphnet_text(n=5).replace("10 20", "10 abc", 1), "ankle_y"),
])
def test_daphnet_bad_files(tmp_path, text, field):
    f = tmp_path / "S01R01.txt"
    f.write_text(text)
    with pytest.raises(DataError) as ei:
        import_dataset("daphnet", f, tmp_path / "o")
    assert ei.value.field == field and ei.value.path == str(f)


def test_daphnet_truncated_last_row(tmp_path):
    f = tmp_path / "S01R01.txt"
    f.write_text(daphnet_text(n=100) + "1578 10 20\n")  # a short last row: its missing fields are missing
    rec = next(read_recordings(import_dataset("daphnet", f, tmp_path / "o")))
    assert rec.streams["acc_x"].n == 101 and not rec.streams["trunk_acc_z"].valid[-1]
    assert rec.streams["acc_y"].valid[-1] and rec.labels["freeze"].values[-1] == -1
    f.write_text(daphnet_text(n=100) + "1578 10 2")  # cut mid-number (no newline): the row is dropped
    rec = next(read_recordings(import_dataset("daphnet", f, tmp_path / "o2")))
    assert rec.streams["acc_x"].n == 100 and rec.streams["acc_y"].valid.all()


# ------------------------------------------------------------------ smartwatch HAR bad input

HAR_HEADER = "x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label\n"


def har_text(ts, label="WALKING"):
    return HAR_HEADER + "".join(f"0,0,9.80665,0.1,0.2,0.3,{t},{label}\n" for t in ts)


def test_har_duplicates_gaps(tmp_path):
    d = tmp_path / "src" / "s01"
    d.mkdir(parents=True)
    ts = sorted(list(range(1000, 2000, 10)) + [1500])  # one duplicated timestamp
    ts += list(range(2300, 2500, 10))  # a 300 ms gap
    (d / "s01_01_sw.csv").write_text(har_text(ts))
    rec = next(read_recordings(import_dataset("sp-sw-har", tmp_path / "src", tmp_path / "o")))
    s = rec.streams["acc_z"]
    assert s.spec.fs_hz == 100 and s.n == 150
    assert s.data[0] == pytest.approx(1.0)
    assert not s.valid[100:130].any() and s.valid[:99].all() and s.valid[130:].all()
    assert rec.meta["resampling"]["duplicate_rows_merged"] == 1
    lab = rec.labels["activity"].values
    assert (lab == 2).sum() == s.valid.sum() and (lab[~s.valid] == -1).all()


@pytest.mark.parametrize("text,field", [
    (har_text([1000, 1010, 1005, 1020]), "timestamp"),
    (har_text([1000, 1010]).replace("x_gyro,", ""), "x_gyro"),
    (har_text([1000, 1010], label="JUMPING"), "label"),
    (har_text([1000, 1010, 1020]).replace("0.2,", "zz,", 1), "y_gyro"),
])
def test_har_bad_files(tmp_path, text, field):
    d = tmp_path / "src" / "s01"
    d.mkdir(parents=True)
    (d / "s01_01_sw.csv").write_text(text)
    with pytest.raises(DataError) as ei:
        import_dataset("sp-sw-har", tmp_path / "src", tmp_path / "o")
    assert ei.value.field == field


# ------------------------------------------------------------------ generic CSV

def test_csv_json_and_toml_mapping(tmp_path):
    rows = "t,ax,ay,state,bpm\n" + "".join(f"{k * 20},{k},{2 * k},{'walk' if k >= 50 else 'rest'},{60 + k}\n"
                                           for k in range(100))
    (tmp_path / "rec.csv").write_text(rows)
    mp = {"fs_hz": 50, "timestamp": "t", "timestamp_unit": "ms", "subject": "p1",
          "columns": {"ax": {"channel": "acc_x", "modality": "acc", "unit": "g", "scale": 0.001},
                      "ay": {"channel": "acc_y", "modality": "acc", "unit": "mg"}},  # 0..198: inside +-64 g
          "labels": {"state": {"name": "activity", "kind": "categorical", "classes": ["rest", "walk"]},
                     "bpm": {"name": "hr", "kind": "continuous", "unit": "bpm"}}}
    (tmp_path / "m.json").write_text(json.dumps(mp))
    (tmp_path / "m.toml").write_text(
        'fs_hz = 50\ntimestamp = "t"\ntimestamp_unit = "ms"\nsubject = "p1"\n'
        '[columns.ax]\nchannel = "acc_x"\nmodality = "acc"\nunit = "g"\nscale = 0.001\n'
        '[columns.ay]\nchannel = "acc_y"\nmodality = "acc"\nunit = "mg"\n'
        '[labels.state]\nname = "activity"\nkind = "categorical"\nclasses = ["rest", "walk"]\n'
        '[labels.bpm]\nname = "hr"\nkind = "continuous"\nunit = "bpm"\n')
    for m in ("m.json", "m.toml"):
        p = import_dataset("csv", tmp_path / "rec.csv", tmp_path / f"o{m}", mapping=tmp_path / m)
        rec = next(read_recordings(p))
        assert rec.subject == "p1" and rec.streams["acc_x"].spec.fs_hz == 50
        np.testing.assert_allclose(rec.streams["acc_x"].data, np.arange(100) * 1e-3, rtol=1e-6)
        np.testing.assert_allclose(rec.streams["acc_y"].data, 2 * np.arange(100))
        assert (rec.labels["activity"].values == (np.arange(100) >= 50)).all()
        np.testing.assert_allclose(rec.labels["hr"].values, 60 + np.arange(100))
        files = [f["path"] for f in open_manifest(p)["provenance"]["files"]]
        assert files == sorted(["rec.csv", m])


def test_csv_bad_mapping_and_data(tmp_path):
    (tmp_path / "rec.csv").write_text("t,ax\n0,1\n1,2\n2,3\n")
    good = {"fs_hz": 1, "timestamp": "t", "columns": {"ax": {"channel": "acc_x", "modality": "acc", "unit": "g"}}}
    with pytest.raises(ConfigError) as ei:
        import_dataset("csv", tmp_path / "rec.csv", tmp_path / "o", mapping={**good, "fs_hz": -1})
    assert ei.value.field == "fs_hz"
    with pytest.raises(ConfigError):
        import_dataset("csv", tmp_path / "rec.csv", tmp_path / "o")
    with pytest.raises(ConfigError) as ei:
        import_dataset("csv", tmp_path / "rec.csv", tmp_path / "o",
                       mapping={**good, "columns": {"ax": {"channel": "acc_x"}}})
    assert ei.value.field == "columns.ax.modality"
    with pytest.raises(DataError, match="does not match"):  # ms timestamps declared as s at 1 Hz
        import_dataset("csv", tmp_path / "rec.csv", tmp_path / "o", mapping={**good, "fs_hz": 100})
    with pytest.raises(DataError) as ei:
        import_dataset("csv", tmp_path / "rec.csv", tmp_path / "o",
                       mapping={**good, "columns": {"ay": {"channel": "acc_y", "modality": "acc", "unit": "g"}}})
    assert ei.value.field == "ay"
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError):
        import_dataset("csv", tmp_path / "rec.csv", tmp_path / "o", mapping=tmp_path / "bad.json")
    assert not (tmp_path / "o").exists()

