"""Task windows from a recordings dataset, splits, label collapse, and training on training
subjects only (tiny models, tiny data)."""

from __future__ import annotations

import numpy as np
import pytest

from edgefm.data.store import write_recordings
from edgefm.errors import ConfigError, DataError
from edgefm.tasks import FitConfig, fit, load_windows, loso_folds, score, split_subjects, task_for
from edgefm.tasks.fit import tracker_sigma


def test_load_windows_shapes_labels_and_provenance(hr_data):
    tw = load_windows(hr_data, "hr")
    assert tw.channels == ("ppg", "acc_x", "acc_y", "acc_z") and tw.fs_hz == 32 and tw.window == 256 and tw.hop == 64
    # 120 s recordings, 8 s windows every 2 s: (120 - 8) / 2 + 1 = 57 windows each, 5 subjects
    assert tw.x.shape == (5 * 57, 4, 256) and tw.mask.all()
    assert sorted(set(tw.subject)) == [f"s{i}" for i in range(5)]
    s0 = tw.of_subjects(["s0"])
    np.testing.assert_allclose(np.diff(s0.start_s), 2.0)
    # label = mean of the 1 Hz ECG-style track over the window: s0 sweeps 60 -> 150 bpm over 120 s
    hr_at = lambda t: 60 + (150 - 60) * t / 120
    np.testing.assert_allclose(s0.y, hr_at(s0.start_s + 4.0), atol=1.0)
    acc = load_windows(hr_data, "hr", channels=("acc_x", "acc_y", "acc_z"))
    assert acc.x.shape[1] == 3


def test_task_choice_and_typed_errors(hr_data, activity_data, tmp_path, make_activity_recording):
    assert task_for({"hr": {}}).name == "hr" and task_for({"activity": {}}).name == "activity"
    with pytest.raises(DataError, match="needs a 'activity' label"):
        load_windows(hr_data, "activity")
    with pytest.raises(ConfigError, match="unknown task"):
        load_windows(hr_data, "sleep")
    with pytest.raises(DataError, match="no channel 'gyro_x'"):
        load_windows(hr_data, "hr", channels=("gyro_x",))
    one = write_recordings([make_activity_recording("z", 1, one_class=1)], tmp_path / "one", provenance={})
    tw = load_windows(one, "activity")
    with pytest.raises(DataError) as e:
        tw.check_classes("training windows")
    msg = str(e.value)
    assert "collapse to 1 class" in msg and "'walk': " in msg and "'sit': 0" in msg


def test_splits_are_by_subject(hr_data):
    tw = load_windows(hr_data, "hr")
    folds = loso_folds(tw)
    assert len(folds) == 5 and all(h[0] not in tr for tr, h in folds)
    s = split_subjects(tw, {"train": ["s0", "s1"], "val": ["s2"], "test": ["s3", "s4"]})
    assert s["test"] == ["s3", "s4"]
    with pytest.raises(ConfigError, match="does not have"):
        split_subjects(tw, {"train": ["nobody"]})
    seeded = split_subjects(tw, "seeded", seed=3)
    assert sorted(sum(seeded.values(), [])) == sorted(set(tw.subject))


def test_tracker_sigma_is_the_p99_label_step(hr_data):
    tw = load_windows(hr_data, "hr").of_subjects(["s0"])
    d = np.abs(np.diff(tw.y))
    assert tracker_sigma(tw, 2.0) == pytest.approx(max(2.0, np.percentile(d, 99)))


def test_hr_student_learns_the_pulse_on_unseen_subjects(hr_data):
    tw = load_windows(hr_data, "hr")
    train, test = tw.of_subjects(["s1", "s2", "s3", "s4"]), tw.of_subjects(["s0"])
    tm = fit(train, FitConfig(epochs=6, seed=0))
    r = score(tm, test)
    const = float(np.mean(np.abs(test.y - train.y.mean())))
    assert const > 10 and r["hr_mae"] < 3.0, (r, const)
    assert tm.output_spec["kind"] == "bins" and tm.output_spec["range"] == [30.0, 230.0]
    assert tm.num_params() <= 100_000 and tm.macs()["total"] <= 5_000_000
    assert tm.info["train_subjects"] == ["s1", "s2", "s3", "s4"]
    # normalisation comes from the training subjects only
    assert tm.input_spec["normalisation"]["mean"][0] == pytest.approx(float(train.x[:, 0].mean()), abs=1e-4)


def test_activity_student_beats_the_majority_class(activity_data):
    tw = load_windows(activity_data, "activity")
    assert tw.fs_hz == 50 and tw.window == 100 and tw.classes == ("sit", "walk", "run")
    train, test = tw.of_subjects(["a0", "a1", "a2", "a3"]), tw.of_subjects(["a4"])
    tm = fit(train, FitConfig(epochs=8, seed=0))
    r = score(tm, test)
    assert r["macro_f1"] > 0.8 and np.asarray(r["confusion"]).sum() == test.known.sum()
    assert tm.output_spec == {"name": "activity", "kind": "classes", "classes": ["sit", "walk", "run"]}
