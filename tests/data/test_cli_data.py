"""`edgefm data import | info | window | plot` through the real CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefm.cli.main import app

runner = CliRunner()


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    return r.exit_code, " ".join(r.stdout.split()), r.stderr if hasattr(r, "stderr") else ""  # rich wraps lines


@pytest.fixture(scope="module")
def troika_dir(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "troika"
    code, stdout, _ = run("data", "import", "troika", shared_data / "troika", "--out", out, "--json")
    assert code == 0, stdout
    return out, json.loads(stdout)


def test_import_troika_json_reports_references(troika_dir):
    _, i = troika_dir
    assert i["subjects"] == 12 and i["recordings"] == 13
    ref = i["hr_reference_windows"]
    assert ref["total"] == 1875 and ref["per_recording"]["troika-01"] == 148
    assert ref["per_recording"]["troika-04-extra"] == 107


def test_info_text_and_json(troika_dir, shared_data, tmp_path):
    out, _ = troika_dir
    code, stdout, _ = run("data", "info", out)
    assert code == 0 and "subjects=12" in stdout and "1875 windows of 8 s / 2 s" in stdout
    code, stdout, _ = run("data", "import", "troika", shared_data / "troika", "--out", tmp_path / "t12",
                          "--no-include-extra", "--json")
    i = json.loads(stdout)
    assert code == 0 and i["recordings"] == 12 and i["hr_reference_windows"]["total"] == 1768


def test_info_wesad_subjects_and_hours(shared_data, tmp_path):
    code, stdout, _ = run("data", "import", "e4", shared_data / "wesad_e4", "--out", tmp_path / "w")
    assert code == 0 and "15 subjects" in stdout
    code, stdout, _ = run("data", "info", tmp_path / "w", "--json")
    i = json.loads(stdout)
    assert i["subjects"] == 15 and 25 < i["hours"] < 35
    assert i["labels"]["stress"]["stress"] > 0


def test_window_and_plot(troika_dir, tmp_path):
    out, _ = troika_dir
    code, stdout, _ = run("data", "window", out, "--preset", "wrist-raw", "--out", tmp_path / "w")
    assert code == 0 and "1875 windows" in stdout
    import matplotlib.image as mpimg

    for src, idx in ((out, 0), (tmp_path / "w", 100)):
        png = tmp_path / f"p{idx}.png"
        code, stdout, _ = run("data", "plot", src, "--out", png, "--index", idx, "--seconds", 30)
        assert code == 0, stdout
        img = mpimg.imread(png)
        assert img.shape[0] >= 600 and img.shape[1] >= 800
        assert img[..., :3].std() > 0.05  # not blank: traces were drawn


def test_errors_are_one_line_exit_1(tmp_path):
    code, stdout, stderr = run("data", "import", "troika", tmp_path / "nope", "--out", tmp_path / "o")
    assert code == 1 and "Traceback" not in (stdout + stderr)
    (tmp_path / "S01R01.txt").write_text("0 1 2 3 4 5 6 7 8 9 1\n10 1 2 3 4 5 6 7 8 9 1\n5 1 2 3 4 5 6 7 8 9 1\n")
    code, stdout, stderr = run("data", "import", "daphnet", tmp_path / "S01R01.txt", "--out", tmp_path / "o")
    assert code == 1 and not (tmp_path / "o").exists()
    code, _, _ = run("data", "plot", tmp_path, "--out", tmp_path / "x.png")
    assert code == 1 and not (tmp_path / "x.png").exists()


def test_plot_recordings_without_real_data(tmp_path):
    """The plot works on any recordings dataset (a tiny one written here)."""
    from edgefm.data.plot import plot_dataset
    from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
    from edgefm.data.store import write_recordings
    from edgefm.errors import ConfigError, DataError

    t = np.arange(64 * 20) / 64
    v = np.ones(t.size, bool)
    v[300:400] = False
    rec = Recording("a", 0.0, {"ppg": Stream(ChannelSpec("ppg", "ppg", "a.u.", 64.0), np.sin(2 * np.pi * 1.2 * t), v),
                               "acc_x": Stream(ChannelSpec("acc_x", "acc", "g", 32.0), np.zeros(640))},
                    {"hr": LabelTrack("hr", "continuous", 1.0, np.full(20, 72.0), unit="bpm")},
                    {"beats": np.arange(0.5, 20, 0.83)})
    p = write_recordings([rec], tmp_path / "r", provenance={})
    png = plot_dataset(p, tmp_path / "a.png", seconds=10)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(DataError):
        plot_dataset(p, tmp_path / "b.png", index=3)
    with pytest.raises(ConfigError):
        plot_dataset(p, tmp_path / "b.png", seconds=0)
    assert not (tmp_path / "b.png").exists()
