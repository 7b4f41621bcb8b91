"""Checkpoints never run code, are always integrity-checked, and their writers never replace what
the user has.

A hostile ``.pt`` (an object whose ``__reduce__`` creates a marker file) is fed to every loader
and to the CLI; a tampered or manifest-less real checkpoint is refused unless the user passes
``--unverified``; pruned models round-trip through the code-free format with identical outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edgefm.cli.main import app
from edgefm.errors import IntegrityError, ManifestError
from edgefm.manifest import manifest_path_for, write_artifact_manifest

SPEC = {"preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": 32.0, "window": 256,
        "hop": 64, "normalisation": {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}}


class Evil:
    """Unpickling this creates ``marker``: stands for any code a hostile checkpoint would run."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _evil(tmp_path: Path, kind: str, manifest: bool = True) -> tuple[Path, Path]:
    """(hostile checkpoint, marker): ``kind`` "bare" pickles the object alone, otherwise inside a
    dict of that edgefm format. With ``manifest`` it gets a matching manifest (a sha256 is not a
    signature: an attacker can write one), so the loader itself is what must refuse it."""
    marker = tmp_path / f"PWNED-{kind}"
    p = tmp_path / f"evil-{kind}.pt"
    obj = Evil(marker) if kind == "bare" else {"format": kind, "version": 1, "model": Evil(marker),
                                               "student": Evil(marker)}
    torch.save(obj, p)
    if manifest:
        write_artifact_manifest(p, {"format": "torch-checkpoint", "kind": kind})
    return p, marker


def _tiny_teacher_ckpt(path: Path) -> Path:
    from edgefm.models.lsm_mae import LSMConfig, MaskedAutoencoder, preset_config
    from edgefm.train.checkpoint import save_checkpoint
    torch.manual_seed(0)
    cfg = LSMConfig(**preset_config("wrist-raw", enc_dim=32, enc_depth=1, enc_heads=2,
                                    dec_dim=32, dec_depth=1, dec_heads=2))
    m = MaskedAutoencoder(cfg)
    return save_checkpoint(path, {"model_config": cfg.to_dict(), "model": m.state_dict(), "size": "custom",
                                  "step": 0})


def _tiny_student_ckpt(path: Path) -> Path:
    from distill import build_student, head_from_probe, save_student
    from distill.probes import RidgeProbe
    torch.manual_seed(0)
    s = build_student("cnn1d_tiny", teacher_dim=16)
    head = head_from_probe(RidgeProbe().fit(np.random.default_rng(0).standard_normal((8, 64)), np.arange(8.0)))
    return save_student(path, s, head, input_spec=SPEC, metrics={"hr_mae_val_bpm": 3.0})


def _flip_byte(p: Path) -> None:
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0x01
    p.write_bytes(bytes(data))


def _one_line_error(r, name: str = "") -> None:
    assert r.exit_code == 1, r.output
    assert "Traceback" not in r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert name in lines[0], r.output


def _loaders():
    from distill.deploy import load_student
    from edgefm.export.io import load_model
    from edgefm.profile._worker import _load_eager
    from edgefm.train.checkpoint import load_checkpoint, load_teacher
    return {"load_checkpoint": load_checkpoint, "load_teacher": load_teacher, "load_student": load_student,
            "load_model": load_model, "_load_eager": lambda p: _load_eager(str(p))}


# ---------------------------------------------------------------- no code runs

@pytest.mark.parametrize("loader", ["load_checkpoint", "load_teacher", "load_student", "load_model", "_load_eager"])
@pytest.mark.parametrize("kind", ["bare", "edgefm-teacher", "edgefm-student", "edgefm-model"])
def test_hostile_pickle_is_refused_by_every_loader(tmp_path, loader, kind):
    p, marker = _evil(tmp_path, kind)
    with pytest.raises(ManifestError, match="code") as e:
        _loaders()[loader](p)
    assert not marker.exists(), "the checkpoint ran code"
    assert str(p) in e.value.one_line()


@pytest.mark.parametrize("cmd", [["teacher", "info"], ["distill", "info"]])
@pytest.mark.parametrize("with_manifest", [True, False])
def test_hostile_pickle_is_refused_by_the_cli(tmp_path, cmd, with_manifest):
    p, marker = _evil(tmp_path, "edgefm-teacher" if cmd[0] == "teacher" else "edgefm-student", with_manifest)
    r = CliRunner().invoke(app, [*cmd, str(p), *([] if with_manifest else ["--unverified"])])
    _one_line_error(r, "ManifestError")
    assert "code" in r.output and not marker.exists()


def test_hostile_model_is_refused_by_compress(tmp_path):
    p, marker = _evil(tmp_path, "edgefm-model")
    np.save(tmp_path / "calib.npy", np.zeros((4, 3, 256), np.float32))
    r = CliRunner().invoke(app, ["compress", "quantize", str(p), "--calib", str(tmp_path / "calib.npy")])
    _one_line_error(r, "ManifestError")
    assert not marker.exists()


def test_torch_export_programs_are_not_loaded(tmp_path):
    """torch.export.load unpickles arbitrary objects: a .pt2 is refused before it is opened."""
    from edgefm.profile._worker import _load_eager
    p, marker = _evil(tmp_path, "bare")
    pt2 = p.rename(tmp_path / "evil.pt2")
    with pytest.raises(ManifestError, match="pt2"):
        _load_eager(str(pt2))
    assert not marker.exists()


# ---------------------------------------------------------------- integrity always on

def test_tampered_teacher_is_refused(tmp_path):
    from edgefm.train.checkpoint import load_teacher
    p = _tiny_teacher_ckpt(tmp_path / "teacher.pt")
    assert load_teacher(p).meta["unverified"] is False
    _flip_byte(p)
    with pytest.raises(IntegrityError, match="sha256"):
        load_teacher(p)
    for extra in ([], ["--unverified"]):         # --unverified never accepts a file that contradicts its manifest
        r = CliRunner().invoke(app, ["teacher", "info", str(p), *extra])
        _one_line_error(r, "IntegrityError")
        assert str(p) in r.output


def test_tampered_student_and_model_are_refused(tmp_path):
    from distill.deploy import load_student
    from edgefm.export.io import load_model, save_model
    s = _tiny_student_ckpt(tmp_path / "s.pt")
    m = save_model(tmp_path / "m.pt", load_student(s).deployable(), input_spec=SPEC, source={}, meta={})
    for p in (s, m):
        _flip_byte(p)
    with pytest.raises(IntegrityError):
        load_student(s)
    with pytest.raises(IntegrityError):
        load_model(m)
    r = CliRunner().invoke(app, ["distill", "info", str(s)])
    _one_line_error(r, "IntegrityError")


def test_teacher_without_manifest_needs_unverified(tmp_path):
    from edgefm.train.checkpoint import accept_unverified, load_checkpoint, load_teacher
    p = _tiny_teacher_ckpt(tmp_path / "teacher.pt")
    manifest_path_for(p).unlink()
    with pytest.raises(ManifestError, match="manifest"):
        load_teacher(p)
    with pytest.raises(ManifestError, match="manifest"):
        load_checkpoint(p)
    assert load_teacher(p, unverified=True).meta["unverified"] is True
    with accept_unverified(True):                # what the CLI wraps library calls in
        assert load_teacher(p).meta["unverified"] is True
    r = CliRunner().invoke(app, ["teacher", "info", str(p)])
    _one_line_error(r, "ManifestError")
    assert "--unverified" in r.output
    r = CliRunner().invoke(app, ["teacher", "info", str(p), "--unverified", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["integrity"] == "unverified"
    r = CliRunner().invoke(app, ["teacher", "info", str(p), "--unverified"])
    assert r.exit_code == 0 and "unverified" in r.output


def test_student_and_model_without_manifest_need_unverified(tmp_path):
    from distill.deploy import load_student
    from edgefm.export.io import load_model, save_model
    s = _tiny_student_ckpt(tmp_path / "s.pt")
    m = save_model(tmp_path / "m.pt", load_student(s).deployable(), input_spec=SPEC, source={}, meta={})
    for p in (s, m):
        manifest_path_for(p).unlink()
    with pytest.raises(ManifestError, match="manifest"):
        load_student(s)
    with pytest.raises(ManifestError, match="manifest"):
        load_model(m)
    assert load_student(s, unverified=True).meta["unverified"] is True
    assert load_model(m, unverified=True).source["unverified"] is True
    assert load_model(s, unverified=True).source["unverified"] is True
    r = CliRunner().invoke(app, ["distill", "info", str(s)])
    _one_line_error(r, "ManifestError")
    r = CliRunner().invoke(app, ["distill", "info", str(s), "--unverified", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["integrity"] == "unverified"


# ---------------------------------------------------------------- code-free pruned models

def _deployable(name: str, head: str):
    from distill import build_student, deployable
    from distill.deploy import LinearHead, MLPHead
    torch.manual_seed(0)
    s = build_student(name, teacher_dim=16).eval()
    h = MLPHead(s.embed_dim, 8) if head == "mlp" else LinearHead(s.embed_dim, 1)
    return deployable(s, h)


def _round_trip(tmp_path, model) -> torch.nn.Module:
    from edgefm.export.io import load_model, save_model
    p = save_model(tmp_path / "m.pt", model, input_spec=SPEC, source={"student": "x"}, meta={"note": 1})
    raw = torch.load(p, weights_only=True)        # plain data: loads without unpickling any object
    assert not any(isinstance(v, torch.nn.Module) for v in raw.values())
    lm = load_model(p)
    assert lm.input_spec == SPEC and lm.source["unverified"] is False
    x = torch.randn(4, 3, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), lm.model(x))
    assert str(lm.model) == str(model)
    assert [n for n, _ in lm.model.state_dict().items()] == list(model.state_dict())
    return lm.model


@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_pruned_cnn1d_round_trips_code_free(tmp_path, head):
    from quantize.prune import PruneConfig, prune_
    m = _deployable("cnn1d_tiny", head)
    rep = prune_(m, PruneConfig(ratio=0.5, ignore=("encoder.embed",)), (torch.zeros(1, 3, 256),))
    assert rep.channels["encoder.stem.0"] == [16, 8]
    back = _round_trip(tmp_path, m)
    assert back.encoder.stem[0].out_channels == 8 and back.encoder.blocks[0].dw[0].groups == 8


def test_tiny_transformer_round_trips_code_free(tmp_path):
    """Structured pruning does not support the transformer's fused qkv; unstructured does."""
    from quantize.prune import PruneConfig, prune_
    m = _deployable("tiny_transformer_tiny", "mlp")
    prune_(m, PruneConfig(ratio=0.5, method="unstructured"), (torch.zeros(1, 3, 256),))
    _round_trip(tmp_path, m)


def test_model_format_refuses_foreign_classes_and_unstorable_modules(tmp_path):
    from edgefm.errors import ExportError
    from edgefm.export.io import load_model, save_model
    m = _deployable("cnn1d_tiny", "linear")
    p = save_model(tmp_path / "m.pt", m, input_spec=SPEC, source={}, meta={})
    ck = torch.load(p, weights_only=True)
    ck["structure"]["class"] = "subprocess:Popen"
    torch.save(ck, p)
    write_artifact_manifest(p, {"format": "torch-checkpoint", "kind": "edgefm-model"})
    with pytest.raises(ManifestError, match="not allowed"):
        load_model(p)
    m.hr_head.fn = lambda x: x                    # behaviour that is code cannot be stored
    with pytest.raises(ExportError, match="fn"):
        save_model(tmp_path / "code.pt", m, input_spec=SPEC, source={}, meta={})
    assert not (tmp_path / "code.pt").exists()


def test_pipeline_prune_stage_writes_a_code_free_checkpoint(tmp_path, tiny_cohort):
    from edgefm.pipeline.core import StageContext, StageRecord
    from edgefm.pipeline.stages import _load_pruned, stage_prune
    _tiny_student_ckpt(tmp_path / "distil" / "s.pt")
    inputs = {"data": StageRecord("data", tmp_path, {"summary": {"cohort": str(tiny_cohort)}}),
              "distil": StageRecord("distil", tmp_path / "distil", {"summary": {"checkpoint": "s.pt"}})}
    (tmp_path / "prune").mkdir()
    ctx = StageContext("prune", tmp_path / "prune", tmp_path, {"amount": 0.5, "recover_epochs": 0, "seed": 0},
                       log=lambda s: None)
    summary = stage_prune(ctx, inputs)
    ck = tmp_path / "prune" / summary["checkpoint"]
    torch.load(ck, weights_only=True)
    assert manifest_path_for(ck).exists()
    model, spec, out_spec = _load_pruned(StageRecord("prune", tmp_path / "prune", {"summary": summary}))
    assert sum(p.numel() for p in model.parameters()) == summary["after"]["params"] < summary["before"]["params"]
    assert spec == SPEC and out_spec["unit"] == "bpm"
    evil, marker = _evil(tmp_path / "prune", "bare")
    with pytest.raises(ManifestError, match="code"):
        _load_pruned(StageRecord("prune", tmp_path / "prune", {"summary": {"checkpoint": evil.name}}))
    assert not marker.exists()


# ---------------------------------------------------------------- outputs are never replaced silently

def _precious(p: Path, folder: bool) -> Path:
    if folder:
        p.mkdir(parents=True)
        (p / "a.txt").write_text("precious")
        return p / "a.txt"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("precious")
    return p


@pytest.mark.parametrize("case", ["teacher-train", "teacher-eval", "distill-run", "distill-eval", "compress-prune"])
def test_existing_outputs_need_overwrite(tmp_path, case):
    d, t, s = tmp_path / "nodata", tmp_path / "t.pt", tmp_path / "s.pt"   # inputs need not exist: refused first
    out = tmp_path / ("keep" if case in ("teacher-train", "teacher-eval", "distill-eval") else "keep.pt")
    keep = _precious(out, folder=out.suffix != ".pt")
    argv = {"teacher-train": ["teacher", "train", str(d)],
            "teacher-eval": ["teacher", "eval", str(t), str(d)],
            "distill-run": ["distill", "run", str(d), "--teacher", str(t)],
            "distill-eval": ["distill", "eval", str(s), str(d), "--teacher", str(t)],
            "compress-prune": ["compress", "prune", str(s), "--data", str(d)]}[case] + ["--out", str(out)]
    r = CliRunner().invoke(app, argv)
    _one_line_error(r, "already exists")
    assert keep.read_text() == "precious"
    r = CliRunner().invoke(app, argv + ["--overwrite"])       # accepted; then fails on the missing input
    _one_line_error(r)
    assert "already exists" not in r.output, r.output
    assert keep.read_text() == "precious"


def test_output_may_not_be_an_input_but_a_resume_continues_its_run(tmp_path):
    s = _tiny_student_ckpt(tmp_path / "s.pt")
    before = s.read_bytes()
    r = CliRunner().invoke(app, ["compress", "prune", str(s), "--data", str(tmp_path / "d"), "--out", str(s),
                                 "--overwrite"])
    _one_line_error(r, "input")
    assert s.read_bytes() == before
    r = CliRunner().invoke(app, ["teacher", "train", str(tmp_path), "--out", str(tmp_path / "run"), "--overwrite"])
    _one_line_error(r, "input")
    run = tmp_path / "run"
    _tiny_teacher_ckpt(run / "teacher.pt")
    r = CliRunner().invoke(app, ["teacher", "train", str(tmp_path / "nodata"), "--out", str(run), "--resume"])
    _one_line_error(r, "nodata")                  # its own run folder is accepted; the missing data is not


def test_compress_prune_overwrite_replaces_the_output(tmp_path):
    from edgefm.export.io import load_model, save_model
    from quantize.testing import TinyHR
    torch.manual_seed(0)
    ck = save_model(tmp_path / "m.pt", TinyHR(width=8, blocks=1), input_spec={**SPEC, "window": 64},
                    source={}, meta={})
    np.save(tmp_path / "x.npy", np.random.default_rng(0).standard_normal((16, 3, 64)).astype(np.float32))
    out = tmp_path / "pruned.pt"
    keep = _precious(out, folder=False)
    argv = ["compress", "prune", str(ck), "--data", str(tmp_path / "x.npy"), "--out", str(out),
            "--recover-epochs", "0", "--n", "16", "--json"]
    r = CliRunner().invoke(app, argv)
    _one_line_error(r, "already exists")
    assert keep.read_text() == "precious"
    r = CliRunner().invoke(app, argv + ["--overwrite"])
    assert r.exit_code == 0, r.output
    assert load_model(out).model.stem[0].out_channels == 4
