"""Data-layer safety (importers, dataset readers and writers, the synthetic generator, `edgefm data`).

Each case asserts a real outcome: the exit code, a one-line typed error naming the file or the
option, nothing written (or left behind), precious files intact, nothing outside the output, and
values outside a channel's physical range marked missing and counted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefm.cli.main import app
from edgefm.data.importers import import_dataset
from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.store import WindowDataset, file_provenance, info, open_manifest, read_recordings, \
    write_recordings, write_windows
from edgefm.data.synth import SynthConfig
from edgefm.data.windows import WRIST_RAW, Preset
from edgefm.errors import ConfigError, DataError, ManifestError
from edgefm.manifest import safe_name

runner = CliRunner()
T0 = 1_500_000_000


def cli(*args):
    """(exit code, stdout, stderr); an exception that escaped the CLI fails the test at once."""
    r = runner.invoke(app, [str(a) for a in args])
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise AssertionError(f"traceback instead of a typed error: {r.exception!r}") from r.exception
    return r.exit_code, r.stdout, r.stderr


def typed_error(res, kind: str, *words: str) -> str:
    """Assert exit 1 with one line `error: KIND: ...` that contains every word; returns the line."""
    code, stdout, stderr = res
    assert code == 1, (stdout, stderr)
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {kind}:"), stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "Traceback" not in stdout + stderr
    return lines[0]


def precious(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    f = folder / "a.txt"
    f.write_text("precious")
    return f


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# ------------------------------------------------------------------ tiny sources

def make_e4(root: Path, name="S1", n_s=20, **override) -> Path:
    """A minimal valid E4 subject folder of ``n_s`` seconds under ``root``; returns ``root``."""
    e4 = root / name / f"{name}_E4_Data"
    e4.mkdir(parents=True)
    files = {
        "ACC": f"{T0}, {T0}, {T0}\n32, 32, 32\n" + "1,2,64\n" * (32 * n_s),
        "BVP": f"{T0}\n64\n" + "".join(f"{math.sin(k / 10):.3f}\n" for k in range(64 * n_s)),
        "EDA": f"{T0}\n4\n" + "0.5\n" * (4 * n_s),
        "TEMP": f"{T0}\n4\n" + "33.0\n" * (4 * n_s),
        "HR": f"{T0}\n1\n" + "70.0\n" * n_s,
    }
    files.update(override)
    for k, v in files.items():
        if v is not None:
            (e4 / f"{k}.csv").write_text(v)
    return root


HAR_HEADER = "x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label\n"


def make_har(root: Path, ts, acc_z=9.80665) -> Path:
    d = root / "s01"
    d.mkdir(parents=True)
    (d / "s01_01_sw.csv").write_text(HAR_HEADER + "".join(f"0,0,{acc_z},0.1,0.2,0.3,{t},WALKING\n" for t in ts))
    return root


CSV_MAP = {"fs_hz": 50, "timestamp": "t", "timestamp_unit": "ms",
           "columns": {"ax": {"channel": "acc_x", "modality": "acc", "unit": "g"}}}


def make_csv(folder: Path, n=100, *, last_t=None, ax=None, code=None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["t,ax,state"]
    for k in range(n):
        t = last_t if (last_t is not None and k == n - 1) else k * 20
        v = ax if (ax is not None and k == 10) else 0.5
        c = code if (code is not None and k == 10) else 1
        rows.append(f"{t},{v},{c}")
    f = folder / "rec.csv"
    f.write_text("\n".join(rows) + "\n")
    return f


def small_recording(rid="a-r1", subject="a", dur_s=20) -> Recording:
    t = np.arange(64 * dur_s) / 64
    acc = {f"acc_{a}": Stream(ChannelSpec(f"acc_{a}", "acc", "g", 32.0), np.full(32 * dur_s, k * 0.5))
           for k, a in enumerate("xyz")}
    return Recording(subject, 1e9, {"ppg": Stream(ChannelSpec("ppg", "ppg", "a.u.", 64.0), np.sin(7 * t)), **acc},
                     {"hr": LabelTrack("hr", "continuous", 1.0, np.full(dur_s, 72.0), unit="bpm"),
                      "activity": LabelTrack("activity", "categorical", 1.0, np.ones(dur_s, int), classes=("a", "b"))},
                     {"beats": np.arange(0.5, dur_s, 0.8)}, id=rid)


@pytest.fixture
def recs_ds(tmp_path) -> Path:
    return write_recordings([small_recording(), small_recording("b-r1", "b")], tmp_path / "ds", provenance={})


@pytest.fixture
def win_ds(tmp_path) -> Path:
    return write_windows([small_recording(), small_recording("b-r1", "b")], tmp_path / "win", WRIST_RAW,
                         provenance={}, split={"train": ["a"], "test": ["b"]})


# ------------------------------------------------------------------ outputs: never destroy what the user has

def test_import_refuses_a_non_empty_out_and_replaces_it_only_with_overwrite(tmp_path):
    src = make_e4(tmp_path / "src")
    keep = precious(tmp_path / "keep")
    typed_error(cli("data", "import", "e4", src, "--out", keep.parent), "ConfigError", "keep", "--overwrite")
    assert keep.read_text() == "precious"
    code, stdout, stderr = cli("data", "import", "e4", src, "--out", keep.parent, "--overwrite")
    assert code == 0, stderr
    assert not keep.exists() and open_manifest(keep.parent)["kind"] == "recordings"


def test_import_api_refuses_a_non_empty_out_before_reading_the_source(tmp_path):
    keep = precious(tmp_path / "keep")
    # the source is broken: a refusal that came after reading it would be a DataError
    with pytest.raises(ConfigError) as ei:
        import_dataset("e4", make_e4(tmp_path / "src", ACC="garbage"), keep.parent)
    assert ei.value.field == "--out" and keep.read_text() == "precious"
    with pytest.raises(DataError):
        import_dataset("e4", tmp_path / "src", keep.parent, overwrite=True)
    assert keep.read_text() == "precious"  # a failed import leaves the old output untouched


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_import_output_is_never_the_source_or_around_it(tmp_path, where):
    src = make_e4(tmp_path / "src")
    before = tree(src)
    out = {"same": src, "inside": src / "out", "around": tmp_path}[where]
    if where == "around":
        src = src / "S1"
    typed_error(cli("data", "import", "e4", src, "--out", out, "--overwrite"), "ConfigError", "--out", "input")
    assert tree(tmp_path / "src") == before


@pytest.mark.parametrize("out", ["same", "inside"])
def test_window_never_writes_over_or_inside_its_source(recs_ds, out):
    before = tree(recs_ds)
    target = recs_ds if out == "same" else recs_ds / "w"
    typed_error(cli("data", "window", recs_ds, "--preset", "wrist-raw", "--out", target, "--overwrite"),
                "ConfigError", "--out")
    assert tree(recs_ds) == before and open_manifest(recs_ds)["kind"] == "recordings"


def test_window_refuses_a_non_empty_out_without_overwrite(recs_ds, tmp_path):
    keep = precious(tmp_path / "keep")
    typed_error(cli("data", "window", recs_ds, "--preset", "wrist-raw", "--out", keep.parent), "ConfigError",
                "--overwrite")
    assert keep.read_text() == "precious"
    code, _, stderr = cli("data", "window", recs_ds, "--preset", "wrist-raw", "--out", keep.parent, "--overwrite")
    assert code == 0, stderr
    assert WindowDataset(keep.parent).n() > 0


def test_synth_refuses_a_non_empty_out_and_overwrites_only_when_asked(tmp_path):
    keep = precious(tmp_path / "keep")
    args = ("data", "synth", "--out", keep.parent, "--subjects", "1", "--days", "0.01", "--raw-minutes", "1",
            "--no-traces")
    typed_error(cli(*args), "ConfigError", "--out", "--overwrite")
    assert keep.read_text() == "precious"
    code, _, stderr = cli(*args, "--overwrite")
    assert code == 0, stderr
    assert not keep.exists() and open_manifest(keep.parent)["kind"] == "cohort"


@pytest.mark.parametrize("cmd", ["synth", "import", "window"])
def test_the_working_folder_is_never_an_output(tmp_path, monkeypatch, cmd, recs_ds):
    keep = precious(tmp_path / "cwd")
    monkeypatch.chdir(keep.parent)
    src = make_e4(tmp_path / "src")
    args = {"synth": ("data", "synth", "--subjects", "1", "--days", "0.01", "--raw-minutes", "1"),
            "import": ("data", "import", "e4", src),
            "window": ("data", "window", recs_ds, "--preset", "wrist-raw")}[cmd]
    typed_error(cli(*args, "--out", ".", "--overwrite"), "ConfigError", "--out")
    assert sorted(p.name for p in keep.parent.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("cmd", ["synth", "import", "window", "plot"])
def test_an_unwritable_out_is_a_typed_error(tmp_path, cmd, recs_ds):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    src = make_e4(tmp_path / "src")
    args = {"synth": ("data", "synth", "--subjects", "1", "--days", "0.01", "--raw-minutes", "1", "--no-traces"),
            "import": ("data", "import", "e4", src),
            "window": ("data", "window", recs_ds, "--preset", "wrist-raw"),
            "plot": ("data", "plot", recs_ds)}[cmd]
    out = blocker / ("x.png" if cmd == "plot" else "out")
    typed_error(cli(*args, "--out", out), "ConfigError", "--out", "file.txt")
    assert blocker.read_text() == "not a folder"


def test_plot_refuses_an_existing_png_and_a_png_inside_the_dataset(recs_ds, tmp_path):
    png = tmp_path / "x.png"
    png.write_bytes(b"old")
    typed_error(cli("data", "plot", recs_ds, "--out", png), "ConfigError", "x.png", "--overwrite")
    assert png.read_bytes() == b"old"
    code, _, stderr = cli("data", "plot", recs_ds, "--out", png, "--overwrite", "--seconds", "5")
    assert code == 0, stderr
    assert png.read_bytes()[:4] == b"\x89PNG"
    before = tree(recs_ds)
    typed_error(cli("data", "plot", recs_ds, "--out", recs_ds / "p.png"), "ConfigError", "--out")
    assert tree(recs_ds) == before


def test_writer_apis_refuse_to_replace_unless_told(tmp_path):
    keep = precious(tmp_path / "keep")
    with pytest.raises(ManifestError):
        write_recordings([small_recording()], keep.parent, provenance={})
    with pytest.raises(ManifestError):
        write_windows([small_recording()], keep.parent, WRIST_RAW, provenance={})
    assert keep.read_text() == "precious"
    write_windows([small_recording()], keep.parent, WRIST_RAW, provenance={}, overwrite=True)
    p = write_recordings([small_recording()], keep.parent, provenance={}, overwrite=True)
    assert [r.id for r in read_recordings(p)] == ["a-r1"]


# ------------------------------------------------------------------ names never escape the output

UNSAFE = ["../../evil", "sub/evil", ".evil", "..", "a\\evil", "ev il", "é"]


@pytest.mark.parametrize("name", UNSAFE + ["ABS"])
@pytest.mark.parametrize("where", ["channel", "label"])
def test_csv_mapping_names_cannot_escape_the_output(tmp_path, name, where):
    work = tmp_path / "w" / "x" / "y"
    csv = make_csv(work / "src")
    if name == "ABS":
        name = str(tmp_path / "evil")
    mp = json.loads(json.dumps(CSV_MAP))
    if where == "channel":
        mp["columns"]["ax"]["channel"] = name
    else:
        mp["labels"] = {"state": {"name": name, "kind": "categorical", "classes": ["a", "b"]}}
    (work / "src" / "m.json").write_text(json.dumps(mp))
    before = tree(tmp_path)
    line = typed_error(cli("data", "import", "csv", csv, "--mapping", work / "src" / "m.json", "--out", work / "out"),
                       "DataError", "m.json")
    assert ("columns.ax.channel" if where == "channel" else "labels.state.name") in line
    assert tree(tmp_path) == before  # nothing written anywhere, the output included


@pytest.mark.parametrize("name", ["../../evil", "/abs/evil", ".hidden"])
def test_store_refuses_unsafe_stream_label_and_event_names(tmp_path, name):
    out = tmp_path / "a" / "b" / "out"
    for kind in ("stream", "label", "event"):
        r = small_recording()
        if kind == "stream":
            r.streams = {name: Stream(ChannelSpec(name, "acc", "g", 32.0), np.zeros(64))}
        elif kind == "label":
            r.labels = {name: LabelTrack(name, "continuous", 1.0, np.zeros(2))}
        else:
            r.events = {name: np.zeros(2)}
        with pytest.raises(DataError) as ei:
            write_recordings([r], out, provenance={})
        assert ei.value.field and name[:20] in str(ei.value)
    assert tree(tmp_path) == {"a", "a/b"}


@pytest.mark.parametrize("rid", ["../../evil", "..", ".", "/abs/evil", ".hidden", "a/../../b", "x" * 300])
def test_recording_ids_always_become_a_folder_inside_the_output(tmp_path, rid):
    out = tmp_path / "a" / "out"
    p = write_recordings([small_recording(rid=rid)], out, provenance={})
    assert {q.name for q in tmp_path.iterdir()} == {"a"} and {q.name for q in (tmp_path / "a").iterdir()} == {"out"}
    (d,) = list((p / "recordings").iterdir())
    assert d.is_dir() and safe_name(d.name, what="dir") == d.name
    assert [r.id for r in read_recordings(p)] == [rid]


def test_csv_mapping_outside_the_csv_folder_is_recorded_by_absolute_path(tmp_path):
    csv = make_csv(tmp_path / "data")
    (tmp_path / "cfg").mkdir()
    mp = tmp_path / "cfg" / "m.json"
    mp.write_text(json.dumps(CSV_MAP))
    code, _, stderr = cli("data", "import", "csv", csv, "--mapping", mp, "--out", tmp_path / "out")
    assert code == 0, stderr
    files = {f["path"]: f for f in open_manifest(tmp_path / "out")["provenance"]["files"]}
    assert set(files) == {"rec.csv", str(mp.resolve())}
    assert files[str(mp.resolve())]["bytes"] == mp.stat().st_size


def test_file_provenance_never_crashes_on_a_file_outside_root(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "in.txt").write_text("1")
    (tmp_path / "out.txt").write_text("22")
    got = file_provenance([tmp_path / "r" / "in.txt", tmp_path / "out.txt"], root=tmp_path / "r")
    assert {g["path"]: g["bytes"] for g in got} == {"in.txt": 1, str((tmp_path / "out.txt").resolve()): 2}


# ------------------------------------------------------------------ bounds before allocation

def _head_tail(f: Path, last: str):
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:-1] + [last]) + "\n")


@pytest.mark.parametrize("fmt,build,file,field", [
    ("e4", lambda d: make_e4(d, HR="0\n1\n" + "70\n" * 20), "HR.csv", "start_time"),      # one file at Unix 0
    ("e4", lambda d: make_e4(d, EDA=f"{T0 + 10 ** 9}\n4\n" + "1\n" * 8), "EDA.csv", "start_time"),  # 31 years later
    ("csv", lambda d: make_csv(d / "c", last_t=1e18), "rec.csv", "t"),
    ("sp-sw-har", lambda d: make_har(d, list(range(1000, 2000, 10)) + [1e18]), "s01_01_sw.csv", "timestamp"),
    ("daphnet", None, "S01R01.txt", "time_ms"),
])
def test_a_file_implying_an_absurd_duration_is_a_typed_error(tmp_path, fmt, build, file, field):
    if fmt == "daphnet":
        src = tmp_path / "S01R01.txt"
        src.write_text("".join(f"{round(15 + k * 15.625)} 10 20 -1000 1 2 3 4 5 6 1\n" for k in range(200))
                       + "1e18 10 20 -1000 1 2 3 4 5 6 1\n")
    else:
        src = build(tmp_path / "src")
    args = ["data", "import", fmt, src, "--out", tmp_path / "out"]
    if fmt == "csv":
        (tmp_path / "m.json").write_text(json.dumps(CSV_MAP))
        args += ["--mapping", tmp_path / "m.json"]
    typed_error(cli(*args), "DataError", file, f"field '{field}'")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("args,option", [
    (("--days", "1e9"), "--days"), (("--days", "nan"), "--days"), (("--days", "inf"), "--days"),
    (("--days", "-1"), "--days"), (("--days", "0"), "--days"),
    (("--subjects", "0"), "--subjects"), (("--subjects", "-3"), "--subjects"), (("--subjects", "100000000"), "--subjects"),
    (("--raw-minutes", "nan"), "--raw-minutes"), (("--raw-minutes", "-1"), "--raw-minutes"),
    (("--freezing", "nan"), "--freezing"), (("--freezing", "2"), "--freezing"),
])
def test_synth_numbers_are_checked_and_named(tmp_path, args, option):
    base = {"--days": "0.01", "--subjects": "1", "--raw-minutes": "1"}
    base.update(dict([args]))
    flat = [x for kv in base.items() for x in kv]
    typed_error(cli("data", "synth", "--out", tmp_path / "o", *flat), "ConfigError", option)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e30"])
def test_import_quest_offset_is_checked_and_named(tmp_path, value):
    src = make_e4(tmp_path / "src")
    (src / "S1" / "S1_quest.csv").write_text("# ORDER;Base\n# START;0.01\n# END;0.10\n")
    typed_error(cli("data", "import", "e4", src, "--out", tmp_path / "o", "--quest-offset-s", value),
                "ConfigError", "--quest-offset-s")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args,option", [
    (("--seconds", "nan"), "--seconds"), (("--seconds", "0"), "--seconds"), (("--seconds", "-5"), "--seconds"),
    (("--seconds", "inf"), "--seconds"), (("--index", "-1"), "--index"),
])
def test_plot_numbers_are_checked_and_named(recs_ds, tmp_path, args, option):
    typed_error(cli("data", "plot", recs_ds, "--out", tmp_path / "p.png", *args), "ConfigError", option)
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize("kw,field", [
    (dict(window_s=float("nan")), "window_s"), (dict(window_s=float("inf")), "window_s"),
    (dict(window_s=0.0), "window_s"), (dict(hop_s=float("nan")), "hop_s"), (dict(hop_s=-2.0), "hop_s"),
    (dict(fs_hz=float("nan")), "fs_hz"), (dict(fs_hz=0.0), "fs_hz"), (dict(fs_hz=float("inf")), "fs_hz"),
    (dict(min_valid=float("nan")), "min_valid"), (dict(min_valid=1.5), "min_valid"),
    (dict(window_s=1e9), "window_s"),
])
def test_window_presets_check_their_numbers(kw, field):
    base = dict(name="p", channels=WRIST_RAW.channels, fs_hz=32.0, window_s=8.0, hop_s=2.0, min_valid=0.5)
    with pytest.raises(ConfigError) as ei:
        Preset(**{**base, **kw})
    assert ei.value.field == field


@pytest.mark.parametrize("kw,field", [
    (dict(days=1e9), "days"), (dict(days=40.0), "days"), (dict(subjects=10 ** 8), "subjects"),
    (dict(acc_range_g=float("nan")), "acc_range_g"), (dict(acc_range_g=float("inf")), "acc_range_g"),
    (dict(wake_hour=float("nan")), "wake_hour"), (dict(bed_hour=99.0), "bed_hour"),
    (dict(hr_tau_on_s=0.0), "hr_tau_on_s"), (dict(hr_rest_mean=float("inf")), "hr_rest_mean"),
    (dict(ppg_snr_db=float("nan")), "ppg_snr_db"), (dict(walk_bout_median_min=0.0), "walk_bout_median_min"),
])
def test_synth_config_bounds(kw, field):
    with pytest.raises(ConfigError) as ei:
        SynthConfig(**{"subjects": 1, "days": 0.01, "raw_minutes": 1.0, **kw})
    assert ei.value.field == field


# ------------------------------------------------------------------ physical ranges, codes, units, empty files

def test_e4_values_outside_physical_range_are_missing_and_counted(tmp_path):
    n = 20
    acc = f"{T0}, {T0}, {T0}\n32, 32, 32\n" + "1,2,64\n" * 5 + f"{64e30:g},2,64\n" + "1,2,64\n" * (32 * n - 6)
    src = make_e4(tmp_path / "src", ACC=acc, EDA=f"{T0}\n4\n-5\n" + "0.5\n" * (4 * n - 1),
                  TEMP=f"{T0}\n4\n" + "33\n" * 7 + "80\n" + "33\n" * (4 * n - 8), HR=f"{T0}\n1\n500\n" + "70\n" * (n - 1))
    code, stdout, stderr = cli("data", "import", "e4", src, "--out", tmp_path / "o", "--json")
    assert code == 0, stderr
    summary = json.loads(stdout)["out_of_range"]
    assert summary["total"] == 4 and summary["channels"] == {"acc_x": 1, "eda": 1, "temp": 1, "hr": 1}
    rec = next(read_recordings(tmp_path / "o"))
    assert not rec.streams["acc_x"].valid[5] and np.isnan(rec.streams["acc_x"].data[5])
    assert rec.streams["acc_x"].valid[[4, 6]].all() and rec.streams["acc_y"].valid[5]
    assert not rec.streams["eda"].valid[0] and not rec.streams["temp"].valid[7] and not rec.streams["hr"].valid[0]
    assert np.nanmax(np.abs(rec.streams["acc_x"].data)) < 64
    assert info(tmp_path / "o")["out_of_range"]["total"] == 4
    code, stdout, _ = cli("data", "import", "e4", src, "--out", tmp_path / "o2")
    assert code == 0 and "4 samples outside their physical range" in " ".join(stdout.split())


@pytest.mark.parametrize("fmt", ["csv", "sp-sw-har", "daphnet"])
def test_acc_of_1e30_g_is_never_stored_as_valid(tmp_path, fmt):
    args = []
    if fmt == "csv":
        src = make_csv(tmp_path / "c", ax="1e30")
        (tmp_path / "m.json").write_text(json.dumps(CSV_MAP))
        args = ["--mapping", tmp_path / "m.json"]
    elif fmt == "sp-sw-har":
        src = make_har(tmp_path / "h", range(1000, 2000, 10), acc_z="1e30")
    else:
        src = tmp_path / "S01R01.txt"
        src.write_text("".join(f"{round(15 + k * 15.625)} 1e30 20 -1000 1 2 3 4 5 6 1\n" for k in range(200)))
    code, stdout, stderr = cli("data", "import", fmt, src, "--out", tmp_path / "o", "--json", *args)
    assert code == 0, stderr
    assert json.loads(stdout)["out_of_range"]["total"] > 0
    for rec in read_recordings(tmp_path / "o"):
        for s in rec.streams.values():
            assert np.all(np.abs(np.asarray(s.data)[np.asarray(s.valid)]) < 1e3)


@pytest.mark.parametrize("code_", ["65537", "32768", "-5", "256"])
def test_csv_categorical_codes_are_range_checked_before_any_cast(tmp_path, code_):
    csv = make_csv(tmp_path / "c", code=code_)
    mp = {**CSV_MAP, "labels": {"state": {"name": "activity", "kind": "categorical"}}}
    (tmp_path / "m.json").write_text(json.dumps(mp))
    typed_error(cli("data", "import", "csv", csv, "--mapping", tmp_path / "m.json", "--out", tmp_path / "o"),
                "DataError", "rec.csv", "field 'state'", code_)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("scale", [1000, 1e-3])   # µs or s where the format says ms
def test_sp_sw_har_timestamp_unit_is_checked_against_the_rate(tmp_path, scale):
    src = make_har(tmp_path / "h", [1_600_000_000_000 * scale + k * 10 * scale for k in range(3000)])
    typed_error(cli("data", "import", "sp-sw-har", src, "--out", tmp_path / "o"), "DataError", "s01_01_sw.csv",
                "field 'timestamp'", "unit")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("key", ["ACC", "BVP"])
def test_e4_required_file_with_zero_rows_is_a_typed_error(tmp_path, key):
    header = {"ACC": f"{T0}, {T0}, {T0}\n32, 32, 32\n", "BVP": f"{T0}\n64\n"}[key]
    src = make_e4(tmp_path / "src", **{key: header})
    typed_error(cli("data", "import", "e4", src, "--out", tmp_path / "o"), "DataError", f"{key}.csv", "rows")
    assert not (tmp_path / "o").exists()


# ------------------------------------------------------------------ readers: missing or corrupt members

def _corrupt(f: Path, how: str):
    if how == "missing":
        f.unlink()
    elif how == "garbage":
        f.write_bytes(b"\x93NUMPY garbage")
    elif how == "short":
        np.save(f, np.zeros(3, np.load(f).dtype))
    elif how == "object":
        np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)


@pytest.mark.parametrize("member", ["ppg.valid.npy", "ppg.npy", "label.hr.npy", "label.activity.npy",
                                    "event.beats.npy"])
@pytest.mark.parametrize("how", ["missing", "garbage", "short", "object"])
def test_recordings_readers_name_a_missing_or_corrupt_member(recs_ds, tmp_path, member, how):
    if how == "short" and member.startswith("event"):
        how = "object"
    f = recs_ds / "recordings" / "a-r1" / member
    _corrupt(f, how)
    for args in (("info", recs_ds), ("plot", recs_ds, "--out", tmp_path / "p.png"),
                 ("window", recs_ds, "--preset", "wrist-raw", "--out", tmp_path / "w")):
        typed_error(cli("data", *args), "DataError", member)
    with pytest.raises(DataError) as ei:
        for r in read_recordings(recs_ds):
            pass
    assert member in str(ei.value)
    assert not (tmp_path / "p.png").exists() and not (tmp_path / "w").exists()


@pytest.mark.parametrize("member,how", [
    ("train-00000.meta.npz", "missing"), ("train-00000.meta.npz", "garbage"), ("train-00000.meta.npz", "no_start"),
    ("train-00000.meta.npz", "bad_subject"), ("train-00000.meta.npz", "short"),
    ("train-00000.x.npy", "missing"), ("train-00000.x.npy", "garbage"), ("train-00000.x.npy", "shape"),
    ("train-00000.mask.npy", "missing"), ("train-00000.mask.npy", "shape"), ("train-00000.x.npy", "object"),
])
def test_windows_readers_name_a_missing_or_corrupt_member(win_ds, tmp_path, member, how):
    f = win_ds / "shards" / member
    if member.endswith(".npz") and how in ("no_start", "bad_subject", "short"):
        meta = dict(np.load(f))
        if how == "no_start":
            del meta["start_time"]
        elif how == "bad_subject":
            meta["subject"] = meta["subject"] + 99
        else:
            meta = {k: v[:1] for k, v in meta.items()}
        np.savez(f, **meta)
        f = f.with_name(member)
    elif how == "shape":
        a = np.load(f)
        np.save(f, a[:, :2])
    else:
        _corrupt(f, how)
    for args in (("info", win_ds), ("plot", win_ds, "--out", tmp_path / "p.png")):
        typed_error(cli("data", *args), "DataError", member)
    ds = WindowDataset(win_ds)
    with pytest.raises(DataError) as ei:
        list(ds.iter_batches("train", 4))
    assert member in str(ei.value)
    with pytest.raises(DataError):
        ds.load("train")
    assert not (tmp_path / "p.png").exists()


def _edit_manifest(path: Path, fn):
    m = json.loads((path / "manifest.json").read_text())
    m = fn(m)
    (path / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize("edit", [
    lambda m: [m],
    lambda m: {k: v for k, v in m.items() if k != "recordings"},
    lambda m: {**m, "recordings": "x"},
    lambda m: {**m, "recordings": [{**m["recordings"][0], "dir": "../../x"}]},
    lambda m: {**m, "recordings": [{**m["recordings"][0], "streams": {"../ppg": m["recordings"][0]["streams"]["ppg"]}}]},
    lambda m: {**m, "recordings": [{k: v for k, v in m["recordings"][0].items() if k != "streams"}]},
    lambda m: {**m, "recordings": [{**m["recordings"][0], "labels": {"hr": {"kind": "continuous"}}}]},
    lambda m: {k: v for k, v in m.items() if k != "split"},
    lambda m: {**m, "hours": "lots"},
], ids=["list", "no-recordings", "recordings-str", "dir-escape", "stream-escape", "no-streams",
        "label-no-rate", "no-split", "hours-str"])
def test_a_corrupt_recordings_manifest_is_a_typed_error(recs_ds, tmp_path, edit):
    _edit_manifest(recs_ds, edit)
    for args in (("info", recs_ds), ("window", recs_ds, "--preset", "wrist-raw", "--out", tmp_path / "w"),
                 ("plot", recs_ds, "--out", tmp_path / "p.png")):
        typed_error(cli("data", *args), "ManifestError", "manifest.json")
    with pytest.raises(ManifestError):
        list(read_recordings(recs_ds))


@pytest.mark.parametrize("edit", [
    lambda m: {k: v for k, v in m.items() if k != "shards"},
    lambda m: {**m, "shards": [{"name": "../../x", "split": "train", "n": 1}]},
    lambda m: {**m, "shards": [{"name": "train-00000", "split": "nope", "n": 1}]},
    lambda m: {**m, "normalisation": {"mean": [0.0], "std": [1.0]}},
    lambda m: {**m, "normalisation": {**m["normalisation"], "std": [0.0] * 4}},
    lambda m: {**m, "preset": {**m["preset"], "window": -1}},
    lambda m: {**m, "channels": [{"name": "x"}]},
    lambda m: {k: v for k, v in m.items() if k != "subjects"},
], ids=["no-shards", "shard-escape", "bad-split", "mean-length", "std-zero", "window-negative",
        "channel-incomplete", "no-subjects"])
def test_a_corrupt_windows_manifest_is_a_typed_error(win_ds, tmp_path, edit):
    _edit_manifest(win_ds, edit)
    for args in (("info", win_ds), ("plot", win_ds, "--out", tmp_path / "p.png")):
        typed_error(cli("data", *args), "ManifestError", "manifest.json")
    with pytest.raises(ManifestError):
        WindowDataset(win_ds)


def test_a_cohort_part_path_cannot_leave_the_cohort(tmp_path, recs_ds):
    c = tmp_path / "cohort"
    c.mkdir()
    (c / "manifest.json").write_text(json.dumps({
        "schema_version": 1, "kind": "cohort", "subjects": ["a"], "hours": 1.0, "split": {"train": ["a"]},
        "parts": {"segments": {"kind": "recordings", "path": "../ds"}}}))
    typed_error(cli("data", "info", c), "ManifestError", "manifest.json")
    typed_error(cli("data", "plot", c, "--out", tmp_path / "p.png"), "ManifestError", "manifest.json")
