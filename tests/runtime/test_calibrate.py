"""Gate calibration on constructed labelled recordings, and the `edgefm gate` CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
from edgefm.data.store import write_recordings
from edgefm.errors import DataError
from runtime.calibrate import calibrate, evaluate, prepare, wilson_lower
from runtime.gate import GateConfig, gate_recording

CLASSES = ("sleep", "sedentary", "walking", "running", "cycling", "strength", "freezing")
FS = 32.0


def _recording(subject: str, seed: int, hours: float = 0.5) -> Recording:
    """Still (sedentary/sleep) with walking bouts of varying intensity; 1 Hz activity labels."""
    rng = np.random.default_rng(seed)
    n_s = int(hours * 3600)
    act = np.where(rng.random(n_s) < 0.5, 0, 1).astype(np.int16)
    t = np.arange(int(n_s * FS)) / FS
    acc = np.zeros((len(t), 3))
    acc[:, 2] = 1.0
    acc += rng.normal(size=acc.shape) * 0.003
    s = 60
    while s < n_s - 120:
        dur = int(rng.integers(20, 120))
        amp = rng.uniform(0.02, 0.4)      # some bouts are gentle: recall costs skip
        act[s:s + dur] = 2
        a, b = int(s * FS), int((s + dur) * FS)
        acc[a:b, 2] += amp * np.sin(2 * np.pi * 1.8 * t[a:b])
        acc[a:b, 0] += amp * 0.5 * np.sin(2 * np.pi * 0.9 * t[a:b])
        s += dur + int(rng.integers(200, 600))
    valid = np.ones(len(t), bool)
    valid[int(100 * FS):int(130 * FS)] = False   # off-wrist
    streams = {c: Stream(ChannelSpec(c, "acc", "g", FS), acc[:, i].astype(np.float32), valid)
               for i, c in enumerate(("acc_x", "acc_y", "acc_z"))}
    labels = {"activity": LabelTrack("activity", "categorical", 1.0, act, classes=CLASSES)}
    return Recording(subject, 1.7e9, streams, labels)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    out = tmp_path_factory.mktemp("gate") / "recs"
    recs = [_recording(f"s{i}", i) for i in range(6)]
    return write_recordings(recs, out, provenance={"generator": {"test": "constructed"}},
                            split={"train": ["s0", "s1", "s2", "s3"], "val": [], "test": ["s4", "s5"]})


def test_evaluate_matches_independent_count(store):
    from edgefm.data.store import read_recordings
    cfg = GateConfig(on_threshold=0.05, off_threshold=0.03, min_on_s=4.0, off_hold_s=2.0)
    rec = next(read_recordings(store))
    tr = prepare(rec, cfg, 256, 64)
    r = evaluate([tr], cfg, 256, 64)
    acc = np.stack([rec.streams[c].data for c in ("acc_x", "acc_y", "acc_z")], 1)
    val = rec.streams["acc_x"].valid
    _, d = gate_recording(np.nan_to_num(acc), np.repeat(val[:, None], 3, 1), cfg, 256, 64)
    # labels by hand: window i covers seconds [2i, 2i+8); event if > half its seconds walk
    act = rec.labels["activity"].values
    n = len(d)
    ev = np.array([(act[2 * i:2 * i + 8] == 2).sum() > 4 for i in range(n)])
    ok = np.array([val[64 * i:64 * i + 256].all() for i in range(n)])
    assert r["windows"] == ok.sum() and r["event_windows"] == (ev & ok).sum()
    assert r["recall"] == pytest.approx((d & ev & ok).sum() / (ev & ok).sum())
    assert r["skip"] == pytest.approx(1 - (d & ok).sum() / ok.sum())


def test_calibration_meets_target_and_skips(store, tmp_path):
    out = tmp_path / "gate.json"
    r = calibrate(store, 0.95, out=out, criterion="pooled")
    assert r["met_target"] and r["calibration"]["recall"] >= 0.95
    assert r["calibration"]["subjects"] == ["s0", "s1", "s2", "s3"]
    assert r["held_out"]["subjects"] == ["s4", "s5"] and r["held_out"]["recall"] >= 0.85
    assert r["calibration"]["skip"] > 0.5          # mostly still: most windows skipped
    # a stricter target can only cost skip
    r99 = calibrate(store, 0.99, criterion="pooled")
    assert r99["calibration"]["recall"] >= 0.99 and r99["calibration"]["skip"] <= r["calibration"]["skip"] + 1e-9
    saved = json.loads(out.read_text())
    assert GateConfig.from_dict(saved["gate"]) == GateConfig.from_dict(r["gate"])
    assert (tmp_path / "gate.png").stat().st_size > 1000
    pts = saved["curve"]
    assert all(0 <= p["skip"] <= 1 and 0 <= p["recall"] <= 1 for p in pts)


def test_wilson_bound():
    assert wilson_lower(100, 100) < 1.0 and wilson_lower(100, 100) > 0.97
    assert wilson_lower(20, 20) < 0.95          # 20/20 cannot prove 95 %
    assert np.isnan(wilson_lower(0, 0))


def test_cli_calibrate_and_errors(store, tmp_path):
    from edgefm.cli.main import app
    out = tmp_path / "g.json"
    res = CliRunner().invoke(app, ["gate", "calibrate", str(store), "--target-recall", "0.9", "--out", str(out),
                                   "--cv", "loso"])
    assert res.exit_code == 0, res.output
    assert "held-out" in res.output and out.exists()
    r = json.loads(out.read_text())
    assert r["held_out"]["method"] == "leave-one-subject-out" and len(r["held_out"]["folds"]) == 6
    res = CliRunner().invoke(app, ["gate", "evaluate", str(store), "--gate", str(out), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["windows"] > 0
    res = CliRunner().invoke(app, ["gate", "calibrate", str(tmp_path / "nope")])
    assert res.exit_code == 1 and "not a dataset directory" in res.output


def test_unlabelled_data_is_a_typed_error(tmp_path):
    rec = _recording("s0", 0, hours=0.1)
    rec.labels = {}
    p = write_recordings([rec], tmp_path / "r", provenance={"generator": {}})
    with pytest.raises(DataError, match="activity"):
        calibrate(p, 0.95)
