"""TROIKA test set as published (TestData/TEST_*.mat, 5-row sig without ECG, TrueBPM/True_*.mat)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio
from typer.testing import CliRunner

from edgefm.cli.main import app
from edgefm.data.importers import import_dataset
from edgefm.data.store import open_manifest, read_recordings
from edgefm.data.windows import window_recording
from edgefm.errors import ConfigError, DataError

FS = 125


def _sig(rows: int, n_s: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sig = rng.normal(size=(rows, int(FS * n_s)))
    sig[-1] += 1.0  # gravity on z (the last row)
    return sig


def _bpm(n_s: float, offset: float = 0.0) -> np.ndarray:
    n_win = int((n_s - 8) // 2) + 1
    return 70 + offset + 15 * np.sin(np.arange(n_win) / 4)


def make_test_set(root: Path, sessions=((1, 1, 40), (1, 2, 30), (3, 2, 36)), true_dir="TrueBPM") -> Path:
    """TestData/TEST_S0k_T0j.mat (+ True files in ``true_dir`` relative to root)."""
    (root / "TestData").mkdir(parents=True, exist_ok=True)
    (root / true_dir).mkdir(parents=True, exist_ok=True)
    for i, (k, j, n_s) in enumerate(sessions):
        sio.savemat(str(root / "TestData" / f"TEST_S{k:02d}_T{j:02d}.mat"), {"sig": _sig(5, n_s, i)})
        sio.savemat(str(root / true_dir / f"True_S{k:02d}_T{j:02d}.mat"), {"BPM0": _bpm(n_s, 5 * i)[:, None]})
    return root


def make_training(root: Path, n_s: float = 40) -> Path:
    d = root / "Training_data"
    d.mkdir(parents=True, exist_ok=True)
    sio.savemat(str(d / "DATA_01_TYPE01.mat"), {"sig": _sig(6, n_s, 9)})
    sio.savemat(str(d / "DATA_01_TYPE01_BPMtrace.mat"), {"BPM0": _bpm(n_s)[:, None]})
    return root


def test_test_set_imports_with_own_subjects_and_exact_reference(tmp_path):
    src = make_test_set(make_training(tmp_path / "troika"))
    p = import_dataset("troika", src, tmp_path / "out")
    recs = {r.id: r for r in read_recordings(p)}
    assert set(recs) == {"troika-01", "troika-test-S01-T01", "troika-test-S01-T02", "troika-test-S03-T02"}
    # test subjects never collide with the training ids; two sessions share one subject
    assert recs["troika-01"].subject == "troika-01"
    assert recs["troika-test-S01-T01"].subject == recs["troika-test-S01-T02"].subject == "troika-test-S01"
    assert recs["troika-test-S03-T02"].subject == "troika-test-S03"
    t = recs["troika-test-S01-T02"]
    assert set(t.streams) == {"ppg", "ppg2", "acc_x", "acc_y", "acc_z"} and "ecg" in recs["troika-01"].streams
    assert t.streams["ppg"].spec.fs_hz == FS and t.streams["acc_z"].spec.unit == "g"
    sig = sio.loadmat(str(src / "TestData/TEST_S01_T02.mat"))["sig"]
    np.testing.assert_allclose(t.streams["ppg2"].data, sig[1], rtol=1e-6)
    np.testing.assert_allclose(t.streams["acc_x"].data, sig[2], rtol=1e-6)
    assert t.meta["set"] == "test" and recs["troika-01"].meta["set"] == "training"
    bpm = sio.loadmat(str(src / "TrueBPM/True_S01_T02.mat"))["BPM0"].ravel()
    w = window_recording(t, "wrist-raw")
    assert len(w) == len(bpm)
    np.testing.assert_allclose(w.labels["hr"], bpm, atol=1e-3)
    assert t.meta["hr_reference"]["source"] == "True_S01_T02.mat"
    m = open_manifest(p)
    files = {f["path"] for f in m["provenance"]["files"]}
    assert {"TestData/TEST_S03_T02.mat", "TrueBPM/True_S03_T02.mat"} <= files
    assert "test-set" in m["provenance"]["notes"]
    # the subject-level split keeps both sessions of test subject 1 on one side
    assert sum("troika-test-S01" in v for v in m["split"].values()) == 1


def test_true_files_beside_test_files_or_outside_src(tmp_path):
    # True file in the same folder as the TEST file
    src = make_test_set(tmp_path / "a", sessions=((2, 1, 30),), true_dir="TestData")
    rec = next(read_recordings(import_dataset("troika", src, tmp_path / "oa")))
    assert rec.id == "troika-test-S02-T01"
    # src = TestData itself: its sibling TrueBPM/ is found though it lies outside src
    src = make_test_set(tmp_path / "b", sessions=((4, 1, 30),))
    p = import_dataset("troika", src / "TestData", tmp_path / "ob")
    files = [f["path"] for f in open_manifest(p)["provenance"]["files"]]
    assert any(f.endswith("TrueBPM/True_S04_T01.mat") for f in files)
    # ... and an output inside that outside reference folder is refused before any work
    with pytest.raises(ConfigError, match="inside the input") as ei:
        import_dataset("troika", src / "TestData", src / "TrueBPM", overwrite=True)
    assert (src / "TrueBPM/True_S04_T01.mat").is_file()


def test_test_file_without_true_file_is_a_typed_error(tmp_path):
    src = make_test_set(tmp_path / "s", sessions=((5, 1, 30), (6, 1, 30)))
    (src / "TrueBPM/True_S06_T01.mat").unlink()
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.path.endswith("TEST_S06_T01.mat") and ei.value.field == "BPM0"
    assert "True_S06_T01.mat" in str(ei.value)
    assert not (tmp_path / "o").exists()


def test_six_row_test_file_and_five_row_training_file_are_refused(tmp_path):
    src = make_test_set(tmp_path / "s", sessions=((1, 1, 30),))
    sio.savemat(str(src / "TestData/TEST_S01_T01.mat"), {"sig": _sig(6, 30, 0)})
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.path.endswith("TEST_S01_T01.mat") and ei.value.field == "sig"
    assert "expected 5 x N" in str(ei.value) and "no ECG" in str(ei.value)
    src = make_training(tmp_path / "t")
    sio.savemat(str(src / "Training_data/DATA_01_TYPE01.mat"), {"sig": _sig(5, 40, 0)})
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.path.endswith("DATA_01_TYPE01.mat") and "expected 6 x N" in str(ei.value)
    assert not (tmp_path / "o").exists()


def test_wrong_variable_length_and_ambiguous_reference(tmp_path):
    src = make_test_set(tmp_path / "s", sessions=((1, 1, 30),))
    sio.savemat(str(src / "TrueBPM/True_S01_T01.mat"), {"BPM": _bpm(30)[:, None]})
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.path.endswith("True_S01_T01.mat") and ei.value.field == "BPM0"
    sio.savemat(str(src / "TrueBPM/True_S01_T01.mat"), {"BPM0": _bpm(80)[:, None]})  # another recording's
    with pytest.raises(DataError) as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.field == "BPM0" and "do not belong together" in ei.value.hint
    # two candidate True files elsewhere under src (none beside it or in ../TrueBPM): ambiguous
    src = make_test_set(tmp_path / "u", sessions=((2, 2, 30),), true_dir="refs/a")
    (src / "refs/b").mkdir()
    (src / "refs/b/True_S02_T02.mat").write_bytes((src / "refs/a/True_S02_T02.mat").read_bytes())
    with pytest.raises(DataError, match="2 candidate references") as ei:
        import_dataset("troika", src, tmp_path / "o")
    assert ei.value.field == "BPM0"
    (src / "refs/b/True_S02_T02.mat").unlink()
    assert next(read_recordings(import_dataset("troika", src, tmp_path / "o"))).id == "troika-test-S02-T02"


def test_cli_imports_test_set(tmp_path):
    src = make_test_set(tmp_path / "troika", sessions=((7, 1, 30), (8, 1, 30)))
    r = CliRunner().invoke(app, ["data", "import", "troika", str(src), "--out", str(tmp_path / "o"), "--json"])
    assert r.exit_code == 0, r.output
    i = json.loads(r.output)
    assert i["subjects"] == 2 and i["recordings"] == 2
    assert set(i["hours_per_subject"]) == {"troika-test-S07", "troika-test-S08"}
    assert "ecg" not in i["channels"]
    (src / "TrueBPM/True_S08_T01.mat").unlink()
    r = CliRunner().invoke(app, ["data", "import", "troika", str(src), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 1 and "TEST_S08_T01.mat" in r.output and "BPM0" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "o2").exists()
