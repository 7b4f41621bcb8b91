import math

import numpy as np
import pytest
import torch

from distill import DistillConfig, build_student, distill, info_nce
from distill.distill import distill_loss
from edgefm.errors import ConfigError


def test_info_nce_equals_hand_computation():
    p = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]])
    t = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    tau = 0.5
    pn = [[c / math.hypot(*v) for c in v] for v in p.tolist()]
    tn = [[c / math.hypot(*v) for c in v] for v in t.tolist()]
    S = [[(a[0] * b[0] + a[1] * b[1]) / tau for b in tn] for a in pn]
    row = -sum(S[i][i] - math.log(sum(math.exp(s) for s in S[i])) for i in range(3)) / 3
    col = -sum(S[i][i] - math.log(sum(math.exp(S[j][i]) for j in range(3))) for i in range(3)) / 3
    assert float(info_nce(p, t, tau)) == pytest.approx(0.5 * (row + col), rel=1e-6)


def test_info_nce_rewards_alignment():
    t = torch.randn(16, 8)
    assert float(info_nce(t, t, 0.1)) < float(info_nce(torch.randn(16, 8), t, 0.1))


def test_loss_weights_combine():
    p, t = torch.randn(8, 4), torch.randn(8, 4)
    cfg = DistillConfig(cosine_weight=0.3, mse_weight=2.0, infonce_weight=0.7, temperature=0.2)
    parts = distill_loss(p, t, cfg)
    want = 0.3 * parts["cos"] + 2.0 * parts["mse"] + 0.7 * parts["nce"]
    assert float(parts["loss"]) == pytest.approx(float(want))
    assert float(parts["mse"]) == pytest.approx(float(((p - t) ** 2).mean()))


@pytest.mark.parametrize("kw", [dict(temperature=0), dict(batch_size=0), dict(cosine_weight=-1),
                                dict(cosine_weight=0, mse_weight=0, infonce_weight=0), dict(lr=float("nan")),
                                dict(teacher_channels=())])
def test_config_validates(kw):
    with pytest.raises(ConfigError):
        DistillConfig(**kw)


def test_short_distillation_lowers_the_loss(paired_windows, tiny_teacher):
    torch.manual_seed(0)
    s = build_student("cnn1d_tiny", teacher_dim=32)
    hist = []
    cfg = DistillConfig(epochs=6, batch_size=32, lr=3e-3, seed=0)
    out = distill(s, tiny_teacher, paired_windows, cfg, callback=hist.append)
    assert out is s and not s.training
    assert len(hist) == 6
    assert hist[-1]["train_loss"] < 0.8 * hist[0]["train_loss"]
    info = s.distill_info
    assert info["acc_channels"] == ["acc_x", "acc_y", "acc_z"]
    # the teacher never saw ACC: its embedding ignores ACC entirely
    w = paired_windows
    x = torch.from_numpy(w.x[:8]); m = torch.from_numpy(w.mask[:8])
    x2 = x.clone(); x2[:, 1:] = torch.randn_like(x2[:, 1:])
    with torch.no_grad():
        assert torch.allclose(tiny_teacher.embed(x, m, channels=["ppg"]),
                              tiny_teacher.embed(x2, m, channels=["ppg"]), atol=1e-5)


def test_teacher_dim_mismatch_is_config_error(paired_windows, tiny_teacher):
    with pytest.raises(ConfigError, match="teacher_dim"):
        distill(build_student("cnn1d_tiny", teacher_dim=7), tiny_teacher, paired_windows, DistillConfig(epochs=1))
