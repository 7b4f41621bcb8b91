import numpy as np
import pytest
import torch

from distill import build_student, deployable, head_from_probe, load_student, save_student
from distill.probes import MLPProbe, RidgeProbe
from edgefm.errors import IntegrityError, ManifestError
from edgefm.manifest import read_artifact_manifest

SPEC = {"preset": "wrist-raw", "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": 32.0, "window": 256,
        "hop": 64, "normalisation": {"mean": [0.1, -0.2, 0.9], "std": [0.5, 0.4, 0.3]}}


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_checkpoint_round_trip(tmp_path, kind):
    torch.manual_seed(0)
    s = build_student("cnn1d_tiny", teacher_dim=16)
    s.eval()
    x = torch.randn(32, 3, 256)
    with torch.no_grad():
        e = s(x).numpy()
    y = 70 + 10 * e[:, 0]
    probe = (RidgeProbe() if kind == "linear" else MLPProbe(epochs=20)).fit(e, y)
    head = head_from_probe(probe)
    with torch.no_grad():
        assert np.allclose(head(torch.from_numpy(e))[:, 0].numpy(), probe.predict(e), atol=1e-3)
    p = save_student(tmp_path / "student.pt", s, head, input_spec=SPEC,
                     teacher={"path": "t.pt", "sha256": "ab" * 32}, metrics={"hr_mae_val_bpm": 3.0})
    m = read_artifact_manifest(p)
    assert m["input_spec"]["normalisation"]["std"] == [0.5, 0.4, 0.3]
    assert m["output_spec"]["unit"] == "bpm" and m["source"]["teacher"]["sha256"] == "ab" * 32
    ld = load_student(p)
    dep, dep2 = deployable(s, head), ld.deployable()
    with torch.no_grad():
        a, b = dep(x), dep2(x)
    assert a.shape == (32, 1)
    assert torch.allclose(a, b, atol=1e-5)
    assert np.allclose(a[:, 0].numpy(), probe.predict(e), atol=1e-3)
    assert ld.input_spec == SPEC and ld.meta["metrics"]["hr_mae_val_bpm"] == 3.0
    # the deployable graph carries no projection head
    assert not any("projector" in n for n, _ in dep.named_parameters())


def test_corrupt_and_foreign_checkpoints_are_typed(tmp_path):
    s = build_student("cnn1d_tiny")
    head = torch.nn.Linear(s.embed_dim, 1)
    p = save_student(tmp_path / "s.pt", s, head_from_probe(RidgeProbe().fit(np.random.randn(8, 64), np.arange(8.0))),
                     input_spec=SPEC)
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.pt").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ManifestError):
        load_student(tmp_path / "bad.pt")
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ManifestError, match="not an edgefm student"):
        load_student(tmp_path / "other.pt")
    with pytest.raises(ManifestError, match="not found"):
        load_student(tmp_path / "missing.pt")
    p.write_bytes(bytes(data))
    with pytest.raises(IntegrityError):
        read_artifact_manifest(p)
    with pytest.raises(ManifestError, match="normalisation"):
        save_student(tmp_path / "x.pt", s, head, input_spec={**SPEC, "normalisation": {"mean": [0], "std": [1]}})
