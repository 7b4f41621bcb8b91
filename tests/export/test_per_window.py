"""Per-window verification of every artifact: |artifact - fp32 eager| p50/p99/max for a regression
output, argmax agreement and label metrics for class logits (int8 in all four formats), and a
budget that bounds them from each artifact's manifest."""

from __future__ import annotations

import numpy as np
import pytest
import torch

T = 64
CHANNELS = ["acc_x", "acc_y", "acc_z"]
CLASSES = ["sit", "walk", "run"]


def _spec(output_spec):
    from edgefm.export import ArtifactSpec
    return ArtifactSpec(source={"checkpoint": "toy.pt", "sha256": "0" * 64},
                        input_spec={"preset": "toy", "channels": CHANNELS, "fs_hz": 32.0, "window": T, "hop": 32,
                                    "normalisation": {"mean": [0, 0, 0], "std": [1, 1, 1]}},
                        output_spec=output_spec)


class Tiny(torch.nn.Module):
    """Conv1d + ReLU + global mean + Linear: (B, 3, T) -> (B, k); ``scale``/``offset`` map a
    regression output to bpm."""

    def __init__(self, k: int, scale: float = 1.0, offset: float = 0.0):
        super().__init__()
        self.conv = torch.nn.Conv1d(3, 8, 5)
        self.act = torch.nn.ReLU()
        self.fc = torch.nn.Linear(8, k)
        self.scale, self.offset = scale, offset

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean(-1)) * self.scale + self.offset


def _class_data(n: int, seed: int):
    """Windows whose class is the channel carrying an offset (well separated: argmax is stable)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 3, T)).astype(np.float32) * 0.5
    x[np.arange(n), y] += 1.5
    return x, y


def _train(model, x, y, loss_fn, steps=150):
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(model(xt), yt).backward()
        opt.step()
    return model.eval()


def _artifact_outputs(path, fmt, x):
    """The artifact's own outputs, run here through the public runtime (not the export's code)."""
    import runtime
    m = runtime.load(path, backend="tflm" if fmt == "tflm" else None)
    return np.concatenate([np.asarray(m.predict(x[i:i + 1])).reshape(1, -1) for i in range(len(x))])


def _eager(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy().reshape(len(x), -1)


@pytest.fixture(scope="module")
def hr(tmp_path_factory):
    """A tiny bpm model exported int8 to all four formats plus fp32 ONNX, with its held-out windows."""
    from edgefm.export import export
    rng = np.random.default_rng(0)
    x = rng.standard_normal((160, 3, T)).astype(np.float32)
    y = (x[:, 0].mean(1) * 300 + 100).astype(np.float32)           # ~70-130 bpm
    model = _train(Tiny(1, 30.0, 100.0), x[:128], y[:128], lambda p, t: ((p[:, 0] - t) ** 2).mean() / 900)
    held = (x[128:], y[128:])                                       # 32 windows
    out = tmp_path_factory.mktemp("hr")
    spec = _spec({"name": "heart_rate", "unit": "bpm"})
    res = export(model, "all", out, x[:64], int8=True, heldout=held, spec=spec)
    res += export(model, "onnx", out, x[:64], int8=False, heldout=held, spec=spec)
    return model, held, out, res


@pytest.fixture(scope="module")
def cls(tmp_path_factory):
    """A tiny 3-class model exported int8 to all four formats, held-out labels with unknowns."""
    from edgefm.export import export
    x, y = _class_data(192, 1)
    model = _train(Tiny(3), x[:128], y[:128], torch.nn.functional.cross_entropy)
    hy = y[128:160].copy()
    hy[::7] = -1                                                    # unknown labels are skipped
    out = tmp_path_factory.mktemp("cls")
    spec = _spec({"name": "activity", "kind": "classes", "classes": CLASSES})
    res = export(model, "all", out, x[:64], int8=True, heldout=(x[128:160], hy), spec=spec)
    return model, (x[128:160], hy), out, res


def test_abs_err_is_the_per_window_error_of_each_artifact(hr):
    from edgefm.manifest import read_artifact_manifest
    model, (hx, _), _, res = hr
    assert sorted((r.format, r.path.name) for r in res) == [
        ("onnx", "student.onnx"), ("onnx", "student_qdq.onnx"), ("pte", "student_xnnpack_q8.pte"),
        ("tflite", "student_int8.tflite"), ("tflm", "model_data.cc")]
    eager = _eager(model, hx)
    for r in res:
        err = np.abs(_artifact_outputs(r.path, r.format, hx)[:, 0] - eager[:, 0])
        want = {"p50": np.percentile(err, 50), "p99": np.percentile(err, 99), "max": err.max()}
        got, man = r.verification["abs_err"], read_artifact_manifest(r.path)
        assert got == man["verification"]["abs_err"]
        for k in ("p50", "p99", "max"):
            assert got[k] == pytest.approx(want[k], abs=1e-4), (r.path.name, k, got, want)
        if man["quantization"]["dtype"] == "int8":
            # int8: real errors, within a couple of output steps (30-230 bpm in 256 steps)
            assert 0 < got["max"] < 2.0 and got["p50"] <= got["p99"] <= got["max"], (r.path.name, got)
        else:
            assert got["max"] < 1e-3, got
        assert "mae" in r.verification and "agreement" not in r.verification


def test_verify_reports_abs_err(hr, tmp_path):
    from edgefm.export.verify import verify, verify_artifact
    model, (hx, hy), _, res = hr
    r = next(r for r in res if r.path.name == "student_int8.tflite")
    eager = _eager(model, hx)
    err = np.abs(_artifact_outputs(r.path, "tflite", hx)[:, 0] - eager[:, 0])
    rep = verify(r.path, hx, hy, reference=model)
    assert rep["abs_err"]["p99"] == pytest.approx(np.percentile(err, 99), abs=1e-4)
    assert rep["abs_err"]["max"] == pytest.approx(err.max(), abs=1e-4)
    # `edgefm export verify` without the checkpoint: against the stored reference outputs
    np.save(tmp_path / "w.npy", hx[:8])
    rep = verify_artifact(r.path, tmp_path / "w.npy")
    assert "stored reference" in rep["reference"]
    assert rep["abs_err"]["max"] == pytest.approx(err.max(), abs=1e-4)   # the stored windows are these 32


def test_class_export_in_all_four_formats(cls):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
    from edgefm.export.verify import verify
    from edgefm.manifest import read_artifact_manifest
    model, (hx, hy), _, res = cls
    assert sorted(r.format for r in res) == ["onnx", "pte", "tflite", "tflm"]
    eager = _eager(model, hx)
    ok = hy >= 0
    assert (eager.argmax(1)[ok] == hy[ok]).mean() > 0.9                   # the toy model learnt its task
    for r in res:
        man = read_artifact_manifest(r.path)
        assert man["output_spec"] == {"name": "activity", "kind": "classes", "classes": CLASSES}
        assert man["quantization"]["dtype"] == "int8"
        v = r.verification
        assert man["verification"]["agreement"] == v["agreement"]
        pred = _artifact_outputs(r.path, r.format, hx)
        assert pred.shape == (len(hx), 3)
        assert v["agreement"] >= 0.99 and v["agreement"] == pytest.approx((pred.argmax(1) == eager.argmax(1)).mean())
        p = pred.argmax(1)[ok]
        assert v["n_labelled"] == int(ok.sum())
        assert v["accuracy"] == pytest.approx(accuracy_score(hy[ok], p), abs=1e-5)
        assert v["macro_f1"] == pytest.approx(f1_score(hy[ok], p, average="macro"), abs=1e-5)
        assert v["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(hy[ok], p), abs=1e-5)
        assert v["sqnr_db"] > 10 and "abs_err" not in v          # over logits; abs_err is for regression
    rep = verify(res[0].path, hx, hy, reference=model)
    assert rep["agreement"] >= 0.99 and "macro_f1" in rep


def test_class_spec_must_match_the_model(tmp_path):
    from edgefm.errors import ConfigError
    from edgefm.export import export_onnx
    x, _ = _class_data(8, 2)
    with pytest.raises(ConfigError, match="names 2 classes, the model returns 3") as e:
        export_onnx(Tiny(3).eval(), tmp_path, x, spec=_spec({"name": "a", "kind": "classes", "classes": ["a", "b"]}))
    assert e.value.field == "output_spec.classes"
    with pytest.raises(ConfigError) as e:
        export_onnx(Tiny(3).eval(), tmp_path, x, spec=_spec({"name": "a", "kind": "classes"}))
    assert e.value.field == "output_spec.classes"
    assert not list(tmp_path.iterdir())                                   # nothing half-written


def test_budget_bounds_int8_error_from_each_manifest(hr, cls, tmp_path):
    from edgefm.errors import BudgetExceeded
    from edgefm.manifest import read_artifact_manifest
    from edgefm.profile import check_budget, load_budget, profile
    _, _, out, res = hr
    b = tmp_path / "b.toml"
    b.write_text("int8_p99_abs_err = 0.000001\n")
    prof = profile([out], budget=b, runs=3, warmup=0, per_layer=False)
    rows = [r for r in prof.budget if r.name.startswith("int8_p99_abs_err")]
    # one row per int8 artifact profiled (pte, tflite, qdq onnx), each its manifest's figure
    assert sorted(r.name for r in rows) == ["int8_p99_abs_err (student_int8.tflite)",
                                            "int8_p99_abs_err (student_qdq.onnx)",
                                            "int8_p99_abs_err (student_xnnpack_q8.pte)"]
    by_name = {r.path.name: r for r in res}
    for row in rows:
        name = row.name.split("(")[1].rstrip(")")
        assert row.measured == by_name[name].verification["abs_err"]["p99"] > 0 and not row.passed
    with pytest.raises(BudgetExceeded, match="int8_p99_abs_err"):
        prof.raise_for_problems()

    arts = [(r.path.name, read_artifact_manifest(r.path)) for r in res]
    b.write_text("int8_p99_abs_err = 2.0\n")
    rows = check_budget(load_budget(b), variant_row=None, sim=None, manifest={}, int8_artifacts=arts[:4])
    assert rows and all(r.passed for r in rows)
    # fp32 only: no figure, the row says so and fails
    rows = check_budget(load_budget(b), variant_row=None, sim=None, manifest={}, int8_artifacts=[])
    assert len(rows) == 1 and rows[0].measured is None and not rows[0].passed and "no int8" in rows[0].note
    # a class model under the regression bound, a regression one under the agreement bound
    cman = [(r.path.name, read_artifact_manifest(r.path)) for r in cls[3]]
    rows = check_budget(load_budget(b), variant_row=None, sim=None, manifest={}, int8_artifacts=cman[:1])
    assert rows[0].measured is None and not rows[0].passed and "int8_min_agreement" in rows[0].note
    b.write_text("int8_min_agreement = 0.99\n")
    rows = check_budget(load_budget(b), variant_row=None, sim=None, manifest={}, int8_artifacts=cman + arts[:1])
    assert [r.passed for r in rows] == [True] * len(cman) + [False]
    assert "int8_p99_abs_err" in rows[-1].note and rows[-1].measured is None


def test_budget_agreement_is_a_fraction(tmp_path):
    from edgefm.errors import ConfigError
    from edgefm.profile import load_budget
    b = tmp_path / "b.toml"
    b.write_text("int8_min_agreement = 99\n")
    with pytest.raises(ConfigError) as e:
        load_budget(b)
    assert e.value.field == "int8_min_agreement"
