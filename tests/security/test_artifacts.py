"""Integrity is always on for exported artifacts; profile/simulate exit 1 on a refused artifact;
`export verify` compares with an independent reference and checks the manifest's input spec;
device profiles and budgets refuse non-finite, out-of-range, unknown and missing values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgefm.cli.export import app as export_app
from edgefm.cli.profile import app as profile_app
from edgefm.cli.simulate import app as simulate_app
from edgefm.errors import ConfigError, IntegrityError, ManifestError
from edgefm.manifest import sha256_file

CHANNELS = ["acc_x", "acc_y", "acc_z"]
PROFILE = ["--runs", "2", "--warmup", "0", "--no-per-layer"]


def _rec(subject: str, seed: int, dur_s: float = 60.0):
    """A wrist recording whose ACC oscillates at a cadence tied to its HR label (32 Hz)."""
    from edgefm.data.recording import ChannelSpec, LabelTrack, Recording, Stream
    rng = np.random.default_rng(seed)
    n = int(dur_s * 32)
    hr = 60 + 60 * rng.random()
    t = np.arange(n) / 32.0
    streams = {f"acc_{a}": Stream(ChannelSpec(f"acc_{a}", "acc", "g", 32.0),
                                  np.sin(2 * np.pi * hr / 60 * t + k) + 0.3 * rng.normal(size=n), np.ones(n, bool))
               for k, a in enumerate("xyz")}
    labels = {"hr": LabelTrack("hr", "continuous", 1.0, np.full(int(dur_s), hr), unit="bpm")}
    return Recording(subject, 1e9 + seed, streams, labels, {}, {}, id=f"{subject}-r{seed}")


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    from edgefm.data.store import write_windows
    recs = [_rec(f"s{k}", k) for k in range(6)]
    return write_windows(recs, tmp_path_factory.mktemp("ds") / "w", "wrist-raw", provenance={},
                         split={"train": ["s0", "s1", "s2"], "val": ["s3"], "test": ["s4", "s5"]})


@pytest.fixture(scope="module")
def spec():
    """The model takes raw g as they are (the toy data is already unit-scale)."""
    return {"preset": "wrist-raw", "channels": CHANNELS, "fs_hz": 32.0, "window": 256, "hop": 64,
            "window_s": 8.0, "hop_s": 2.0, "normalisation": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}}


@pytest.fixture(scope="module")
def arts(tmp_path_factory, spec):
    """A small trained HR model: its checkpoint, an int8 .tflite and an fp32 .onnx exported from it."""
    from edgefm.export import ArtifactSpec, export_onnx, export_tflite
    from edgefm.export.io import save_model
    from quantize.testing import TinyHR, fit, toy_hr_data
    d = tmp_path_factory.mktemp("arts")
    torch.manual_seed(0)
    x, y = toy_hr_data(160, seed=3)
    model = fit(TinyHR(width=8, blocks=1), x[:96], y[:96], epochs=25)
    ck = save_model(d / "toy.pt", model, input_spec=spec, source={"config": {}}, meta={})
    aspec = ArtifactSpec(source={"checkpoint": str(ck), "sha256": sha256_file(ck)}, input_spec=spec)
    held = (x[96:].numpy(), y[96:].numpy())
    out = d / "export"
    tfl = export_tflite(model, out, x[:64].numpy(), int8=True, heldout=held, spec=aspec).path
    onx = export_onnx(model, out, x[:64].numpy(), heldout=held, spec=aspec).path
    return {"tflite": tfl, "onnx": onx, "ckpt": ck, "dir": out}


def _copy(src: Path, dst_dir: Path, manifest: bool = True) -> Path:
    """Copy an artifact (and, unless ``manifest`` is False, its manifest and stored reference)."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    for p in src.parent.glob(src.stem + ".*"):
        if p == src or manifest:
            shutil.copy(p, dst_dir / p.name)
    return dst_dir / src.name


def _flip(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))


def _edit_manifest(p: Path, fn) -> None:
    mp = p.with_name(p.stem + ".manifest.json")
    m = json.loads(mp.read_text())
    fn(m)
    mp.write_text(json.dumps(m))


def _one_line_error(r) -> str:
    lines = [l for l in r.output.splitlines() if l.startswith("error:")]
    assert len(lines) == 1, r.output
    return lines[0]


# ---------------------------------------------------------------- integrity: profile, simulate, runtime

def test_flipped_byte_is_refused_everywhere(arts, tmp_path):
    import runtime
    p = _copy(arts["tflite"], tmp_path / "run")
    _flip(p)
    with pytest.raises(IntegrityError) as e:
        runtime.load(p)
    assert e.value.field == "sha256" and str(p) in e.value.one_line()
    rep = tmp_path / "rep"
    r = CliRunner().invoke(profile_app, ["run", str(tmp_path / "run"), *PROFILE, "--json", "--out", str(rep)])
    assert r.exit_code == 1, r.output
    assert "IntegrityError" in _one_line_error(r) and "student_int8.tflite" in _one_line_error(r)
    d = json.loads((rep / "profile.json").read_text())
    assert d["passed"] is False and d["problems"][0]["name"] == "student_int8.tflite"
    assert d["variants"][0]["integrity"] == "refused" and "sha256" in d["verdict"]
    assert "passed: false" in (rep / "profile.md").read_text()
    r = CliRunner().invoke(simulate_app, ["run", str(p), "--days", "0.05"])
    assert r.exit_code == 1 and "IntegrityError" in _one_line_error(r), r.output


def test_missing_manifest_is_refused_unless_unverified(arts, spec, tmp_path):
    import runtime
    p = _copy(arts["tflite"], tmp_path / "lone", manifest=False)
    assert sorted(x.name for x in p.parent.iterdir()) == ["student_int8.tflite"]
    with pytest.raises(ManifestError, match="student_int8.manifest.json"):
        runtime.load(p)
    m = runtime.load(p, unverified=True, input_spec=spec)
    assert m.unverified and "UNVERIFIED" in repr(m)
    assert m.predict(np.zeros((2, 3, 256), np.float32)).shape == (2, 1)

    r = CliRunner().invoke(profile_app, ["run", str(p), *PROFILE])
    assert r.exit_code == 1 and "ManifestError" in _one_line_error(r) and "--unverified" in r.output
    rep = tmp_path / "rep"
    r = CliRunner().invoke(profile_app, ["run", str(p), *PROFILE, "--unverified", "--json", "--out", str(rep)])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["passed"] is True and d["unverified"] == ["student_int8.tflite"]
    assert d["variants"][0]["integrity"] == "unverified" and d["variants"][0]["ok"]
    for f in ("profile.md", "profile.html"):
        assert "UNVERIFIED" in (rep / f).read_text() and "student_int8.tflite [unverified]" in (rep / f).read_text()

    r = CliRunner().invoke(simulate_app, ["run", str(p), "--days", "0.05"])
    assert r.exit_code == 1 and "ManifestError" in _one_line_error(r)
    r = CliRunner().invoke(simulate_app, ["run", str(p), "--days", "0.05", "--unverified", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["model_integrity"] == "unverified" and "unverified" in r.stderr
    r = CliRunner().invoke(simulate_app, ["run", str(p), "--days", "0.05", "--unverified"])
    assert r.exit_code == 0 and "UNVERIFIED" in r.stdout


def test_run_dir_with_one_refused_variant_exits_1(arts, tmp_path):
    run = tmp_path / "run"
    _copy(arts["onnx"], run)
    _copy(arts["tflite"], run, manifest=False)
    r = CliRunner().invoke(profile_app, ["run", str(run), *PROFILE, "--json"])
    assert r.exit_code == 1, r.output
    d = json.loads(r.stdout)
    rows = {v["name"]: v for v in d["variants"]}
    assert rows["student.onnx"]["ok"] and rows["student.onnx"]["integrity"] == "verified"
    assert rows["student_int8.tflite"]["integrity"] == "refused" and not rows["student_int8.tflite"]["ok"]
    assert d["passed"] is False and [p["name"] for p in d["problems"]] == ["student_int8.tflite"]
    assert "ManifestError" in _one_line_error(r)
    r = CliRunner().invoke(profile_app, ["run", str(run), *PROFILE, "--json", "--unverified"])
    assert r.exit_code == 0 and json.loads(r.stdout)["passed"] is True, r.output


def test_a_variant_that_fails_to_run_fails_the_profile(tmp_path):
    from edgefm.manifest import write_artifact_manifest
    p = tmp_path / "broken.onnx"
    p.write_bytes(b"not an onnx file")
    write_artifact_manifest(p, {"format": "onnx"})
    r = CliRunner().invoke(profile_app, ["run", str(p), *PROFILE, "--json"])
    assert r.exit_code == 1 and "VerificationError" in _one_line_error(r)
    assert json.loads(r.stdout)["passed"] is False


# ---------------------------------------------------------------- export verify

def _verify(art: Path, ds: Path, *extra):
    return CliRunner().invoke(export_app, ["verify", str(art), "--data", str(ds), "--n", "64", *extra])


def test_verify_intact_artifact_against_the_eager_source_model(arts, ds):
    r = _verify(arts["tflite"], ds, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["reference"].startswith("eager model from")
    assert 5.0 < rep["sqnr_db"] < 100.0 and rep["max_abs_diff"] > 0, json.dumps(rep)   # int8 vs eager: a real figure
    assert 10.0 < rep["stored_reference"]["sqnr_db"] < 100.0 and "mae" in rep and rep["n"] > 0


def test_verify_against_stored_reference_when_the_checkpoint_is_gone(arts, ds, tmp_path):
    p = _copy(arts["tflite"], tmp_path / "a")
    _edit_manifest(p, lambda m: m["source"].update(checkpoint=str(tmp_path / "gone.pt")))
    r = _verify(p, ds, "--json")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)
    assert rep["reference"].startswith("stored reference outputs student_int8.reference.npz")
    assert 10.0 < rep["sqnr_db"] < 100.0
    _edit_manifest(p, lambda m: m.pop("reference"))
    r = _verify(p, ds)
    assert r.exit_code == 1 and "no independent reference" in _one_line_error(r)


@pytest.mark.parametrize("field,edit", [
    ("input_spec.fs_hz", lambda s: s.update(fs_hz=64.0)),
    ("input_spec.window", lambda s: s.update(window=128)),
    ("input_spec.normalisation.mean", lambda s: s["normalisation"].update(mean=[m + 0.5 for m in s["normalisation"]["mean"]])),
    ("input_spec.normalisation.std", lambda s: s["normalisation"].update(std=[2 * v for v in s["normalisation"]["std"]])),
    ("input_spec.channels", lambda s: s.update(channels=["acc_z", "acc_y", "acc_x"])),
], ids=["fs_hz", "window", "mean", "std", "channels"])
@pytest.mark.parametrize("ckpt", [True, False], ids=["with-checkpoint", "stored-reference-only"])
def test_verify_refuses_an_edited_input_spec(arts, ds, tmp_path, field, edit, ckpt):
    """The manifest's sha256 still matches the artifact: the spec check is what catches it."""
    p = _copy(arts["tflite"], tmp_path / "a")

    def fn(m):
        edit(m["input_spec"])
        m["input_spec"].pop("window_s")     # the edit is consistent in itself
        m["input_spec"].pop("hop_s")
        if not ckpt:
            m["source"]["checkpoint"] = "gone.pt"
    _edit_manifest(p, fn)
    r = _verify(p, ds)
    assert r.exit_code == 1, r.output
    line = _one_line_error(r)
    assert "InputSpecError" in line and f"field '{field}'" in line and str(p) in line


def test_verify_refuses_a_swapped_artifact(arts, ds, tmp_path):
    """Another model's bytes with the manifest's sha256 updated to match: only an independent
    reference can tell."""
    from edgefm.export import export_onnx
    from quantize.testing import TinyHR, toy_hr_data
    x, _ = toy_hr_data(8, seed=5)
    torch.manual_seed(1)
    other = export_onnx(TinyHR(width=8, blocks=1), tmp_path / "other", x.numpy()).path
    for ckpt in (True, False):
        p = _copy(arts["onnx"], tmp_path / f"a{ckpt}")
        shutil.copy(other, p)

        def fn(m):
            m["sha256"], m["bytes"] = sha256_file(p), p.stat().st_size
            if not ckpt:
                m["source"]["checkpoint"] = "gone.pt"
        _edit_manifest(p, fn)
        r = _verify(p, ds)
        assert r.exit_code == 1, r.output
        assert "VerificationError" in _one_line_error(r) and "SQNR" in _one_line_error(r)


def test_verify_refuses_a_tampered_reference_or_wrong_checkpoint(arts, ds, tmp_path):
    p = _copy(arts["tflite"], tmp_path / "a")
    _flip(p.with_name("student_int8.reference.npz"))
    r = _verify(p, ds)
    assert r.exit_code == 1 and "IntegrityError" in _one_line_error(r) and "reference.sha256" in r.output
    other = tmp_path / "other.pt"
    shutil.copy(arts["ckpt"], other)
    with open(other, "ab") as f:
        f.write(b"\0")
    r = _verify(arts["tflite"], ds, "--reference", str(other))
    assert r.exit_code == 1 and "source.sha256" in _one_line_error(r)


def test_verify_refuses_data_at_another_rate_or_window(arts, ds, tmp_path):
    for key, value in (("fs_hz", 64.0), ("window", 512)):
        d = tmp_path / f"w-{key}"
        shutil.copytree(ds, d)
        m = json.loads((d / "manifest.json").read_text())
        m["preset"][key] = value
        (d / "manifest.json").write_text(json.dumps(m))
        r = _verify(arts["tflite"], d)
        assert r.exit_code == 1, r.output
        assert f"field 'input_spec.{key}'" in _one_line_error(r) and str(d) in _one_line_error(r)


# ---------------------------------------------------------------- outputs are never replaced silently

def test_outputs_refused_without_overwrite(arts, ds, tmp_path):
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "a.txt").write_text("precious")
    r = CliRunner().invoke(profile_app, ["run", str(arts["onnx"]), *PROFILE, "--out", str(keep)])
    assert r.exit_code == 1 and "--overwrite" in _one_line_error(r) and "measuring" not in r.output
    r = CliRunner().invoke(simulate_app, ["run", str(arts["tflite"]), "--days", "0.05", "--out", str(keep)])
    assert r.exit_code == 1 and "ConfigError" in _one_line_error(r) and "--overwrite" in r.output
    np.save(tmp_path / "calib.npy", np.zeros((4, 3, 256), np.float32))
    r = CliRunner().invoke(export_app, ["run", str(arts["ckpt"]), "--format", "onnx", "--calib",
                                        str(tmp_path / "calib.npy"), "--out", str(keep)])
    assert r.exit_code == 1 and "--overwrite" in _one_line_error(r)
    assert sorted(p.name for p in keep.iterdir()) == ["a.txt"] and (keep / "a.txt").read_text() == "precious"
    r = CliRunner().invoke(simulate_app, ["run", str(arts["tflite"]), "--days", "0.05", "--out", str(keep),
                                          "--overwrite"])
    assert r.exit_code == 0, r.output
    assert (keep / "simulation.json").exists() and not (keep / "a.txt").exists()


@pytest.mark.parametrize("days", ["nan", "-1", "0", "1e9", "inf"])
def test_simulate_days_out_of_range(arts, days):
    r = CliRunner().invoke(simulate_app, ["run", str(arts["tflite"]), "--days", days])
    assert r.exit_code == 1 and "ConfigError" in _one_line_error(r) and "--days" in r.output


# ---------------------------------------------------------------- device profiles and budgets

def _nrf() -> str:
    from firmware_sim.device import DEVICES_DIR
    return (DEVICES_DIR / "nrf52840.toml").read_text()


@pytest.mark.parametrize("old,new,field", [
    ("clock_hz = 64_000_000", "clock_hz = inf", "cpu.clock_hz"),
    ("clock_hz = 64_000_000", "clock_hz = nan", "cpu.clock_hz"),
    ("clock_hz = 64_000_000", "clock_hz = -1", "cpu.clock_hz"),
    ("clock_hz = 64_000_000", "", "cpu.clock_hz"),
    ("clock_hz = 64_000_000", "clock_hz = true", "cpu.clock_hz"),
    ("clock_hz = 64_000_000", "clock_hz = 1e300", "cpu.clock_hz"),
    ("clock_hz = 64_000_000", "clok_hz = 64_000_000", "cpu.clok_hz"),
    ("sleep_current_ua = 3.0", "sleep_current_ua = -inf", "cpu.sleep_current_ua"),
    ("active_current_ma = 3.3", "active_current_ma = inf", "cpu.active_current_ma"),
    ("conv = 3.167", "conv = inf", "cpu.cycles_per_mac.conv"),
    ("capacity_mah = 150", "capacity_mah = 0", "battery.capacity_mah"),
    ("capacity_mah = 150", "capacity_mah = inf", "battery.capacity_mah"),
    ("ram_bytes = 262_144", "ram_bytes = 1e300", "memory.ram_bytes"),
    ("ram_bytes = 262_144", "ram_bytes = 1000.5", "memory.ram_bytes"),
    ("interval_s = 60.0", "interval_s = nan", "radio.interval_s"),
    ("current_ua = 1.8", "current_ua = \"low\"", "sensors.acc.current_ua"),
    ('anchor_model = "ds-cnn-kws"', 'anchor_model = "nope"', "calibration.anchor_model"),
    ("[battery]", "[batery]", "batery"),
])
def test_device_profile_bad_values_name_file_and_field(tmp_path, old, new, field):
    from firmware_sim import load_device
    text = _nrf()
    assert old in text
    p = tmp_path / "bad.toml"
    p.write_text(text.replace(old, new, 1))
    with pytest.raises(ConfigError) as e:
        load_device(p)
    assert e.value.field == field and str(p) in e.value.one_line()
    r = CliRunner().invoke(simulate_app, ["calibrate", str(p)])
    assert r.exit_code == 1 and field in _one_line_error(r)


@pytest.mark.parametrize("content", ["name = [", b"\xff\xfe\x00garbage", "directory"])
def test_corrupt_device_profile_names_the_file(tmp_path, content):
    from firmware_sim import load_device
    p = tmp_path / "bad.toml"
    if content == "directory":
        p.mkdir()
    elif isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_device(p)
    assert str(p) in e.value.one_line()


def test_infinite_clock_no_longer_meets_every_deadline(arts, tmp_path):
    p = tmp_path / "fast.toml"
    p.write_text(_nrf().replace("clock_hz = 64_000_000", "clock_hz = inf"))
    r = CliRunner().invoke(simulate_app, ["run", str(arts["tflite"]), "--days", "0.05", "--device", str(p)])
    assert r.exit_code == 1 and "cpu.clock_hz" in _one_line_error(r) and "latency" not in r.stdout


@pytest.mark.parametrize("text,field", [
    ("p99_latency_ms = inf\n", "p99_latency_ms"), ("ram_kb = nan\n", "ram_kb"), ("battery_days = -1\n", "battery_days"),
    ("flash_kb = -inf\n", "flash_kb"), ("max_error = true\n", "max_error"), ("[budget]\nram_kb = inf\n", "ram_kb"),
])
def test_budget_bad_values_name_file_and_field(tmp_path, text, field):
    from edgefm.profile import load_budget
    p = tmp_path / "b.toml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_budget(p)
    assert e.value.field == field and str(p) in e.value.one_line()
    r = CliRunner().invoke(profile_app, ["check-budget", str(p)])
    assert r.exit_code == 1 and field in _one_line_error(r)


@pytest.mark.parametrize("content", ["p99_latency_ms = ", b"\xff\xfe", "directory"])
def test_corrupt_budget_names_the_file(tmp_path, content):
    from edgefm.profile import load_budget
    p = tmp_path / "b.toml"
    if content == "directory":
        p.mkdir()
    elif isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    with pytest.raises(ConfigError) as e:
        load_budget(p)
    assert str(p) in e.value.one_line()
