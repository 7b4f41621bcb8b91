import pytest
import torch
from torch import nn

from distill.students import DEFAULT_STUDENT, FACTORIES, build_student, student_from_config
from distill.students.cnn1d import CNN1DConfig
from edgefm.errors import ConfigError

# Modules whose int8 kernels exist in XNNPACK, LiteRT and TFLite Micro (BN folds into conv).
ALLOWED_CNN = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU6, nn.ReLU, nn.Linear, nn.Sequential, nn.Identity)


def test_default_student_meets_size_targets():
    s = build_student(DEFAULT_STUDENT)
    assert s.num_params() <= 100_000
    assert s.macs() <= 5_000_000
    assert s(torch.randn(2, 3, 256)).shape == (2, s.embed_dim)
    assert s.project(s(torch.randn(2, 3, 256))).shape == (2, 192)


def test_macs_match_hand_count():
    # stem conv 3->4 k3 stride 2 on T=16 -> T'=8; one DS block 4->8 stride 1 (dw k3 + pw); embed 8->5
    s = build_student("cnn1d_small", window=16, stem_width=4, stem_kernel=3, blocks=((8, 1),),
                      kernel=3, embed_dim=5)
    stem = 4 * 8 * 3 * 3
    dw = 4 * 8 * 1 * 3
    pw = 8 * 8 * 4
    emb = 5 * 8
    assert s.macs() == stem + dw + pw + emb
    n = sum(p.numel() for n_, p in s.named_parameters() if not n_.startswith("projector"))
    assert s.num_params() == n


def test_cnn_uses_only_int8_friendly_modules():
    s = build_student(DEFAULT_STUDENT)
    leaf_types = {type(m) for m in s.modules() if not list(m.children())}
    bad = [t.__name__ for t in leaf_types if not issubclass(t, ALLOWED_CNN)]
    assert not bad, bad
    # and the traced graph holds only whitelisted aten ops (no gelu / layer_norm / conv1d)
    ep = torch.export.export(s.eval(), (torch.randn(1, 3, 256),))
    ops = {str(n.target) for n in ep.graph.nodes if n.op == "call_function"}
    allowed = ("aten.view", "aten.reshape", "aten.conv2d", "aten._native_batch_norm_legit", "aten.batch_norm",
               "aten.hardtanh", "aten.relu", "aten.add", "aten.mean", "aten.linear", "aten.addmm",
               "aten.unsqueeze", "aten.squeeze", "aten.t", "aten.permute", "aten.convolution")
    unknown = sorted(o for o in ops if not o.startswith(allowed) and "getitem" not in o)
    assert not unknown, unknown


@pytest.mark.parametrize("name", list(FACTORIES))
def test_every_factory_round_trips_config(name):
    s = build_student(name)
    s2 = student_from_config(s.arch, s.config.to_dict())
    s2.load_state_dict(s.state_dict())
    x = torch.randn(2, 3, 256)
    s.eval(); s2.eval()
    assert torch.allclose(s(x), s2(x))


def test_bad_config_is_typed_error():
    with pytest.raises(ConfigError):
        CNN1DConfig(blocks=((32, 3),))
    with pytest.raises(ConfigError):
        build_student("nope")
    with pytest.raises(ConfigError):
        build_student("tiny_transformer_small", patch=7)


def test_minutely_student_takes_the_acc_features():
    from distill.data import acc_channels
    from edgefm.data.lsm_signals import ACC_SIGNAL_NAMES, LSM_SIGNAL_NAMES
    chans = acc_channels(LSM_SIGNAL_NAMES)
    assert chans == ACC_SIGNAL_NAMES and len(chans) == 10
    s = build_student(DEFAULT_STUDENT, in_channels=len(chans), window=300)
    assert s(torch.randn(2, 10, 300)).shape == (2, s.embed_dim)
    assert s.num_params() <= 100_000 and s.macs() <= 5_000_000
