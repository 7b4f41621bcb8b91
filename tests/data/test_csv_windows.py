"""One-row-per-window CSV (UCI HAR's layout) -> continuous recordings (format ``csv-windows``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefm.cli.main import app
from edgefm.data.importers import import_dataset
from edgefm.data.store import open_manifest, read_recordings
from edgefm.errors import ConfigError, DataError

W, H, FS = 16, 8, 50.0
CLASSES = ["WALKING", "WALKING_UPSTAIRS", "SITTING"]
TOML = '''fs_hz = 50
overlap = 0.5
parts = ["train", "test"]
subject_file = "{part}/subject_{part}.txt"

[channels.acc_x]
file = "{part}/Inertial Signals/total_acc_x_{part}.txt"
modality = "acc"
unit = "g"

[channels.gyro_x]
file = "{part}/Inertial Signals/body_gyro_x_{part}.txt"
modality = "gyro"
unit = "rad/s"

[labels.activity]
file = "{part}/y_{part}.txt"
classes_file = "activity_labels.txt"
'''


def _rows(x: np.ndarray) -> np.ndarray:
    return np.stack([x[k * H:k * H + W] for k in range((x.size - W) // H + 1)])


def _fmt(a: np.ndarray) -> str:
    return "".join(" " + "  ".join(f"{v: .7e}" for v in r) + "\n" for r in a)


def make_har(root: Path) -> dict:
    """A tiny UCI-HAR-like tree. train: subject 1 walks (5 rows) then, after a cut, sits (3 rows);
    subject 3 walks then goes upstairs in one contiguous stretch (6 rows). test: subject 2 (4 rows).
    Returns the continuous signals and row labels per (part, subject, run)."""
    rng = np.random.default_rng(0)
    plan = {"train": [(1, [(1, 5)]), (1, [(3, 3)]), (3, [(1, 3), (2, 3)])], "test": [(2, [(1, 4)])]}
    truth = {}
    for part, runs in plan.items():
        acc, gyro, ys, subj = [], [], [], []
        for si, (s, segs) in enumerate(runs):
            n_rows = sum(r for _, r in segs)
            n = (n_rows - 1) * H + W
            xa, xg = 1 + 0.3 * rng.normal(size=n), rng.normal(size=n)
            truth[(part, s, sum(1 for k in truth if k[:2] == (part, s)) + 1)] = (
                xa, xg, [c for c, r in segs for _ in range(r)])
            acc.append(_rows(xa))
            gyro.append(_rows(xg))
            ys += [c for c, r in segs for _ in range(r)]
            subj += [s] * n_rows
        d = root / part / "Inertial Signals"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"total_acc_x_{part}.txt").write_text(_fmt(np.concatenate(acc)))
        (d / f"body_gyro_x_{part}.txt").write_text(_fmt(np.concatenate(gyro)))
        (root / part / f"y_{part}.txt").write_text("".join(f"{y}\n" for y in ys))
        (root / part / f"subject_{part}.txt").write_text("".join(f"{s}\n" for s in subj))
    (root / "activity_labels.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    return truth


@pytest.fixture
def har(tmp_path):
    src = tmp_path / "UCI HAR Dataset"
    truth = make_har(src)
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps/har.toml").write_text(TOML)
    return src, tmp_path / "maps/har.toml", truth


def test_uci_layout_rebuilds_continuous_runs(har, tmp_path):
    src, mapping, truth = har
    p = import_dataset("csv-windows", src, tmp_path / "out", mapping=mapping)
    recs = {r.id: r for r in read_recordings(p)}
    assert set(recs) == {"s01-train-001", "s01-train-002", "s03-train-001", "s02-test-001"}
    for (part, s, run), (xa, xg, ys) in truth.items():
        r = recs[f"s{s:02d}-{part}-{run:03d}"]
        assert r.subject == f"s{s:02d}" and r.streams["acc_x"].spec.fs_hz == FS
        assert r.streams["gyro_x"].spec.unit == "rad/s" and r.meta["start_time_known"] is False
        np.testing.assert_allclose(r.streams["acc_x"].data, xa, rtol=1e-6)  # 8 significant digits
        np.testing.assert_allclose(r.streams["gyro_x"].data, xg, rtol=1e-6, atol=1e-7)
        lab = r.labels["activity"]
        assert lab.kind == "categorical" and lab.classes == tuple(CLASSES) and lab.fs_hz == FS
        # cutting the stream again with the same window/hop gives each row's label back (majority)
        back = [np.bincount(lab.values[k * H:k * H + W]).argmax() for k in range(len(ys))]
        assert back == [y - 1 for y in ys]
        assert r.meta["windows"]["rows"] == len(ys) and r.meta["windows"]["hop"] == H
    assert recs["s01-train-002"].meta["windows"]["break_before"] == "overlap_mismatch"
    assert recs["s03-train-001"].meta["windows"]["break_before"] == "subject"
    m = open_manifest(p)
    cw = m["provenance"]["csv_windows"]
    assert cw["rows"] == 8 + 6 + 4 and cw["recordings"] == 4
    assert cw["breaks"] == {"subject": 1, "overlap_mismatch": 1}
    assert cw["first_mismatch_rows"] == [{"part": "train", "row": 6}]
    files = [f["path"] for f in m["provenance"]["files"]]
    assert "activity_labels.txt" in files and "test/subject_test.txt" in files
    assert any(f.endswith("maps/har.toml") for f in files) and "train/y_train.txt" in files
    assert m["provenance"]["source"] == "csv-windows"


def test_mapping_beside_its_files_and_source_elsewhere(tmp_path):
    data = tmp_path / "data"
    make_har(data)
    mp = {"fs_hz": 50, "hop": H, "subject": "p7", "channels": {
        "acc_x": {"file": "test/Inertial Signals/total_acc_x_test.txt", "modality": "acc", "unit": "g",
                  "scale": 2.0}},
        "labels": {"activity": {"file": "test/y_test.txt", "classes": {"1": "walk", "2": "up", "3": "sit"}}}}
    (data / "map.json").write_text(json.dumps(mp))
    empty_src = tmp_path / "empty"
    empty_src.mkdir()
    p = import_dataset("csv-windows", empty_src, tmp_path / "o", mapping=data / "map.json")
    (rec,) = list(read_recordings(p))
    assert rec.id == "p7-001" and rec.subject == "p7"
    rows = np.loadtxt(data / "test/Inertial Signals/total_acc_x_test.txt")
    assert rec.streams["acc_x"].n == (len(rows) - 1) * H + W
    np.testing.assert_allclose(rec.streams["acc_x"].data[:W], 2 * rows[0], rtol=1e-6)
    assert rec.labels["activity"].classes == ("walk", "up", "sit")
    # a name found both under the source and beside the mapping (different files) is ambiguous
    (empty_src / "test").mkdir()
    (empty_src / "test/y_test.txt").write_text("1\n1\n1\n1\n")
    with pytest.raises(ConfigError, match="both under the source and beside the mapping") as ei:
        import_dataset("csv-windows", empty_src, tmp_path / "o2", mapping=data / "map.json")
    assert ei.value.field == "labels.activity.file"


def test_nan_samples_are_missing_and_filled_from_the_overlapping_copy(har, tmp_path):
    src, mapping, truth = har
    f = src / "test/Inertial Signals/total_acc_x_test.txt"
    rows = np.loadtxt(f)
    rows[0, W - 1] = np.nan  # also held by row 1 (its sample H - 1): filled from there
    rows[0, 0] = np.nan      # only row 0 holds it: missing
    f.write_text(_fmt(rows).replace("nan", "NaN"))
    p = import_dataset("csv-windows", src, tmp_path / "o", mapping=mapping)
    rec = next(r for r in read_recordings(p) if r.id == "s02-test-001")
    s = rec.streams["acc_x"]
    assert not s.valid[0] and s.valid[1:].all()
    np.testing.assert_allclose(s.data[W - 1], truth[("test", 2, 1)][0][W - 1], rtol=1e-6)


def _bad(src: Path, what: str) -> tuple[Path, str]:
    """Corrupt one file of the UCI tree; returns (file, field) the error must name."""
    x = src / "train/Inertial Signals/total_acc_x_train.txt"
    lines = x.read_text().splitlines(keepends=True)
    if what == "ragged":
        lines[2] = " ".join(lines[2].split()[:-1]) + "\n"
        x.write_text("".join(lines))
        return x, "channels.acc_x"
    if what == "non-numeric":
        parts = lines[4].split()
        parts[3] = "abc"
        lines[4] = " ".join(parts) + "\n"
        x.write_text("".join(lines))
        return x, "channels.acc_x"
    if what == "fewer-rows":
        x.write_text("".join(lines[:-2]))
        return src / "train/Inertial Signals/body_gyro_x_train.txt", "channels.gyro_x"
    if what == "label-short":
        y = src / "train/y_train.txt"
        y.write_text("".join(y.read_text().splitlines(keepends=True)[:-1]))
        return y, "labels.activity"
    if what == "label-unknown":
        y = src / "train/y_train.txt"
        y.write_text(y.read_text().replace("3\n", "9\n", 1))
        return y, "labels.activity"
    if what == "subject-long":
        s = src / "train/subject_train.txt"
        s.write_text(s.read_text() + "1\n")
        return s, "subject_file"
    if what == "subject-unsafe":
        s = src / "train/subject_train.txt"
        s.write_text(s.read_text().replace("3\n", "..\n", 1))
        return s, "subject_file"
    raise AssertionError(what)


@pytest.mark.parametrize("what,match", [
    ("ragged", "row 3 has 15 fields, expected 16"), ("non-numeric", "non-numeric value 'abc' in row 5"),
    ("fewer-rows", "has 14 rows but total_acc_x_train.txt"), ("label-short", "has 13 rows"),
    ("label-unknown", "label '9' in row"), ("subject-long", "has 15 rows"), ("subject-unsafe", "unsafe")])
def test_bad_files_name_file_field_and_row(har, tmp_path, what, match):
    src, mapping, _ = har
    path, field = _bad(src, what)
    with pytest.raises(DataError, match=match) as ei:
        import_dataset("csv-windows", src, tmp_path / "o", mapping=mapping)
    assert Path(ei.value.path).name == path.name and ei.value.field == field
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("edit,field", [
    (lambda t: t.replace("fs_hz = 50\n", ""), "fs_hz"),
    (lambda t: t.replace("overlap = 0.5", "overlap = 0.3"), "overlap"),  # 16 * 0.7 is no whole hop
    (lambda t: t.replace("overlap = 0.5", "overlap = 0.5\nhop = 8"), "overlap"),
    (lambda t: t.replace('parts = ["train", "test"]\n', ""), "subject_file"),  # {part} without parts
    (lambda t: t.replace("[channels.gyro_x]", "[channels.\"gyro/x\"]"), "channels.gyro/x"),
    (lambda t: "window_size = 3\n" + t, "window_size"),
    (lambda t: t + "modality = 3\n", "labels.activity.modality"),
    (lambda t: t.replace("classes_file", "classes"), "labels.activity.classes"),
])
def test_bad_mappings_are_config_errors(har, tmp_path, edit, field):
    src, mapping, _ = har
    mapping.write_text(edit(TOML))
    with pytest.raises((ConfigError, DataError)) as ei:
        import_dataset("csv-windows", src, tmp_path / "o", mapping=mapping)
    assert ei.value.field == field and Path(ei.value.path) == mapping
    assert not (tmp_path / "o").exists()


def test_missing_file_and_missing_mapping(har, tmp_path):
    src, mapping, _ = har
    (src / "test/y_test.txt").unlink()
    with pytest.raises(DataError, match="not found") as ei:
        import_dataset("csv-windows", src, tmp_path / "o", mapping=mapping)
    assert ei.value.field == "labels.activity.file" and "y_test.txt" in ei.value.path
    with pytest.raises(ConfigError, match="needs a mapping"):
        import_dataset("csv-windows", src, tmp_path / "o")
    with pytest.raises(ConfigError, match="inside the input"):  # output would swallow the mapping
        import_dataset("csv-windows", src, mapping.parent, mapping=mapping, overwrite=True)
    assert mapping.is_file()


def test_no_overlap_rows_are_separate_unless_contiguous(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x.txt").write_text("1 2 3 4\n5 6 7 8\n9 10 11 12\n")
    mp = {"fs_hz": 4, "overlap": 0, "subject": "a", "channels": {"acc_x": {"file": "x.txt", "modality": "acc",
                                                                            "unit": "mg"}}}
    p = import_dataset("csv-windows", src, tmp_path / "o1", mapping=mp)
    assert [r.streams["acc_x"].n for r in read_recordings(p)] == [4, 4, 4]
    assert open_manifest(p)["provenance"]["csv_windows"]["single_row_recordings"] == 3
    p = import_dataset("csv-windows", src, tmp_path / "o2", mapping={**mp, "contiguous": True})
    (rec,) = list(read_recordings(p))
    np.testing.assert_array_equal(rec.streams["acc_x"].data, np.arange(1, 13))


def test_cli_csv_windows(har, tmp_path):
    src, mapping, _ = har
    r = CliRunner().invoke(app, ["data", "import", "csv-windows", str(src), "--out", str(tmp_path / "o"),
                                 "--mapping", str(mapping)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())  # rich wraps long lines
    assert "3 subjects, 4 recordings" in text and "18 windows joined into 4 runs" in text
    assert "1 breaks where overlapping rows disagree" in text
    _bad(src, "label-short")
    r = CliRunner().invoke(app, ["data", "import", "csv-windows", str(src), "--out", str(tmp_path / "o2"),
                                 "--mapping", str(mapping)])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "y_train.txt" in text and "labels.activity" in text
    assert "Traceback" not in r.output and not (tmp_path / "o2").exists()
    r = CliRunner().invoke(app, ["data", "import", "troika", str(src), "--out", str(tmp_path / "o3"),
                                 "--mapping", str(mapping)])
    assert r.exit_code == 1 and "mapping" in r.output
