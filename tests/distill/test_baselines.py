import numpy as np
import torch

from distill import MaskedPretrainConfig, SupervisedConfig, build_student, pretrain_masked, train_supervised
from distill.baselines import _span_mask
from distill.data import acc_view
from distill.evaluate import predict
from distill.probes import mae


def test_span_mask_ratio_and_shape():
    m = _span_mask(4, 3, 256, 16, 0.5, torch.Generator().manual_seed(0))
    assert m.shape == (4, 1, 256)
    assert m.float().mean().item() == 0.5
    # whole spans: every span of 16 samples is all-masked or all-visible
    spans = m[:, 0].reshape(4, 16, 16)
    assert torch.all(spans.all(-1) | (~spans).all(-1))


def test_supervised_beats_predicting_the_mean(paired_windows):
    w = paired_windows
    x, y = acc_view(w), w.labels["hr"].astype(float)
    tr, va, te = np.arange(0, 128), np.arange(128, 160), np.arange(160, 192)
    torch.manual_seed(0)
    m = train_supervised(build_student("cnn1d_tiny"), x[tr], y[tr], x[va], y[va],
                         SupervisedConfig(epochs=10, batch_size=32, patience=10))
    got = mae(y[te], predict(m, x[te]))
    base = mae(y[te], np.full(len(te), y[tr].mean()))
    assert got < 0.8 * base, (got, base)


def test_masked_pretraining_lowers_reconstruction_loss(paired_windows):
    x = acc_view(paired_windows)
    hist = []
    enc = pretrain_masked(build_student("cnn1d_tiny"), x, MaskedPretrainConfig(epochs=5, batch_size=32),
                          callback=hist.append)
    assert not enc.training
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
