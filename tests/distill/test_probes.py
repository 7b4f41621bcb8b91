import numpy as np
import pytest

from distill.evaluate import EmbeddedSplit, bland_altman, probe_suite
from distill.probes import (LinearClassifierProbe, MLPProbe, RidgeProbe, classification_metrics,
                            label_subset, mae, retrieval_topk)
from edgefm.errors import DataError


def test_ridge_recovers_coefficients():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 6)) * [1, 2, 3, 0.5, 1, 4] + 3
    w = np.array([1.5, -2.0, 0.0, 4.0, 0.3, -0.7])
    y = X @ w + 60 + 0.01 * rng.normal(size=500)
    p = RidgeProbe().fit(X, y)
    assert np.allclose(p.coef_, w, atol=0.01)
    assert p.intercept_ == pytest.approx(60, abs=0.1)
    # the torch head computes the same numbers
    import torch
    lin = p.to_module()
    assert np.allclose(lin(torch.tensor(X, dtype=torch.float32))[:, 0].detach().numpy(), p.predict(X), atol=1e-3)


def test_ridge_ignores_unlabelled_and_regularises():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 3)); y = X @ [1.0, 2.0, 3.0]
    y[::7] = np.nan
    p = RidgeProbe().fit(X, y)
    assert np.isfinite(p.coef_).all()
    strong = RidgeProbe(alpha=1e6).fit(X, y)
    assert np.abs(strong.coef_).sum() < 0.05 * np.abs(p.coef_).sum()


def test_mlp_probe_fits_nonlinear_target():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 2)).astype(np.float32)
    y = 60 + 20 * np.abs(X[:, 0]) + 5 * X[:, 1]
    lin = RidgeProbe().fit(X[:1000], y[:1000])
    mlp = MLPProbe(seed=0).fit(X[:1000], y[:1000])
    assert mae(y[1000:], mlp.predict(X[1000:])) < 0.5 * mae(y[1000:], lin.predict(X[1000:]))


def test_classification_probes_and_metrics():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 1.2).astype(int)
    for pr in (LinearClassifierProbe(), MLPProbe(task="classification")):
        m = classification_metrics(y[400:], pr.fit(X[:400], y[:400]).predict(X[400:]))
        assert m["balanced_accuracy"] > 0.7
    m = classification_metrics(np.array([0, 0, 1, 1, -1]), np.array([0, 1, 1, 1, 0]))
    assert m["balanced_accuracy"] == pytest.approx(0.75)  # (1/2 + 2/2) / 2, unknown (-1) ignored
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)


def test_retrieval_perfect_and_chance():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(640, 16))
    r = retrieval_topk(k + 1e-3 * rng.normal(size=k.shape), k, batch=64)
    assert r["top1"] == 1.0 and r["top5"] == 1.0 and r["n_batches"] == 10
    rand = retrieval_topk(rng.normal(size=(64 * 200, 16)), rng.normal(size=(64 * 200, 16)), batch=64)
    assert rand["chance_top1"] == pytest.approx(1 / 64)
    assert rand["top1"] == pytest.approx(1 / 64, abs=0.006)
    assert rand["top5"] == pytest.approx(5 / 64, abs=0.015)
    with pytest.raises(DataError):
        retrieval_topk(k[:10], k[:10], batch=64)


def test_label_subset_is_per_subject_seeded_and_skips_unknown():
    subj = np.repeat(["a", "b", "c"], 100)
    y = np.arange(300, dtype=float); y[:50] = np.nan
    i1 = label_subset(subj, y, 0.1, seed=0)
    assert len(i1) == 5 + 10 + 10
    assert np.isfinite(y[i1]).all()
    assert np.array_equal(i1, label_subset(subj, y, 0.1, seed=0))
    assert not np.array_equal(i1, label_subset(subj, y, 0.1, seed=1))
    assert len(label_subset(subj, y, 0.001, seed=0)) == 3      # at least one per subject
    assert len(label_subset(subj, y, 1.0)) == 250


def test_probe_suite_and_bland_altman():
    rng = np.random.default_rng(0)
    def split(n):
        e = rng.normal(size=(n, 5))
        return EmbeddedSplit(e, {"hr": 70 + 10 * e[:, 0]}, np.repeat(["s1", "s2"], n // 2))
    res = probe_suite(split(400), split(100), split(200), {"hr": "regression"}, (0.1, 1.0), (0, 1))
    assert res["hr"]["100%"]["linear"]["mae"] < 1e-3
    assert res["hr"]["10%"]["n_labels"] == 40
    ba = bland_altman(np.array([60.0, 70, 80]), np.array([62.0, 72, 82]))
    assert ba["bias"] == pytest.approx(2.0) and ba["loa_low"] == pytest.approx(2.0)
