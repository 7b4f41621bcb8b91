"""Generative evaluation: baselines against hand-computed values, tasks, the whole report."""

import json

import numpy as np
import pytest
import torch

from edgefm.eval import EvalConfig, evaluate, linear_fill, mean_fill, mice_fill, nearest_fill, run_eval
from edgefm.eval.baselines import fit_mice, fit_smooth, smooth_fill
from edgefm.eval.generative import make_tasks


def test_linear_interpolation_of_a_ramp_is_exact():
    t = np.arange(20, dtype=np.float32)
    x = np.stack([t, 3 - 2 * t])[None]                    # (1, 2, 20)
    avail = np.ones_like(x, bool)
    avail[0, :, 5:12] = False
    avail[0, 1, 15:] = False                              # trailing gap: held at the last value
    out = linear_fill(x, avail)
    assert np.allclose(out[0, 0], t)
    assert np.allclose(out[0, 1, :15], 3 - 2 * t[:15])
    assert np.allclose(out[0, 1, 15:], 3 - 2 * 14)


def test_nearest_and_mean_by_hand():
    x = np.array([[[1, 0, 0, 0, 5, 0, 9]]], np.float32)
    avail = np.array([[[1, 0, 0, 0, 1, 0, 1]]], bool)
    assert np.array_equal(nearest_fill(x, avail)[0, 0], [1, 1, 1, 5, 5, 5, 9])   # tie at t=2 -> earlier
    assert np.allclose(mean_fill(x, avail)[0, 0], [1, 5, 5, 5, 5, 5, 9])
    none = np.zeros_like(avail)
    assert np.array_equal(linear_fill(x, none), np.zeros_like(x))                 # nothing seen: train mean 0


def test_smooth_fill_k1_is_linear_and_tuned_k_follows_the_noise():
    rng = np.random.default_rng(0)
    N, T = 40, 120
    t = np.arange(T)
    level = rng.normal(size=(N, 1, 1))
    trend = np.sin(2 * np.pi * t / 240)[None, None] * 2.0
    x = np.concatenate([level + trend + rng.normal(scale=1.0, size=(N, 1, T)),    # noisy: wants a wide mean
                        level + trend + rng.normal(scale=0.01, size=(N, 1, T))],  # smooth: wants k = 1
                       1).astype(np.float32)
    avail = np.ones_like(x, bool)
    hide = np.zeros_like(x, bool)
    hide[:, :, 50:70] = True
    see = avail & ~hide
    np.testing.assert_allclose(smooth_fill(x, see, 1), linear_fill(x, see), atol=1e-6)
    k = fit_smooth(x, avail, hide)
    assert k[0] >= 8 and k[1] <= 2
    err = lambda f: np.abs(f - x)[hide].mean()  # noqa: E731
    assert err(smooth_fill(x, see, k)) < 0.8 * err(linear_fill(x, see))
    # one side only (extrapolation): the mean of the last k samples
    h2 = np.zeros_like(hide)
    h2[:, :, -10:] = True
    out = smooth_fill(x, avail & ~h2, 4)
    np.testing.assert_allclose(out[:, :, -1], x[:, :, -14:-10].mean(-1), rtol=1e-5, atol=1e-5)


def test_mice_recovers_a_linear_relation_between_channels():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 1, 50)).astype(np.float32)
    x = np.concatenate([a, 2 * a + 0.5], 1)                # channel 1 = 2 * channel 0 + 0.5
    avail = np.ones_like(x, bool)
    imp = fit_mice(x, avail)
    hide = np.zeros_like(avail)
    hide[:, 1, 10:30] = True
    out = mice_fill(x, avail & ~hide, imputer=imp)
    assert np.abs(out[hide] - x[hide]).max() < 1e-2


def test_tasks_geometry():
    N, C, T = 5, 26, 300
    tasks = {t.name: t for t in make_tasks(N, C, T, 1 / 60, 10, ["ppg"] * 12 + ["acc"] * 10 + ["eda"] * 4,
                                           np.zeros((N, C, T), bool), EvalConfig(), minutely=True)}
    it = tasks["interp_30"].hide
    assert (it.sum(2) == 30).all() and not it[:, :, :10].any() and not it[:, :, -10:].any()
    assert tasks["interp_30"].span_s == 1800
    ex = tasks["extrap_60"].hide
    assert ex[:, :, -60:].all() and not ex[:, :, :-60].any()
    sp = tasks["sensor_ppg"].hide
    assert sp[:, :12].all() and not sp[:, 12:].any()
    assert "interp_120" in tasks


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from edgefm.train.toydata import write_toy_minutely
    return write_toy_minutely(tmp_path_factory.mktemp("ev") / "m", subjects=6, days=1.0, hop_min=60)


def test_evaluate_scores_only_hidden_observed(toy, tmp_path):
    from edgefm.models import build_teacher
    torch.manual_seed(0)
    m = build_teacher("tiny", "lsm-minutely", enc_dim=32, enc_heads=2, dec_dim=32, dec_heads=2)
    cfg = EvalConfig(max_windows=8, gaps_min=(30,), mice_max_fit_rows=500)
    res = run_eval(m, toy, tmp_path / "ev", cfg)
    assert (tmp_path / "ev" / "eval.json").exists() and (tmp_path / "ev" / "reconstructions.png").stat().st_size > 1000
    r = res["tasks"]["interp_30"]
    assert set(r["methods"]) == {"teacher", "mean", "nearest", "linear", "smooth", "mice"}
    assert len(r["smooth_k"]) == 26 and min(r["smooth_k"]) >= 1
    # independent count of scored positions: hidden (30 min, all channels) AND observed
    from edgefm.eval.generative import load_eval_windows
    x, mask, _, _ = load_eval_windows(m, toy, cfg)
    assert r["n_scored"] <= 8 * 26 * 30 and r["n_scored"] > 0
    assert r["gain_vs_linear"] == pytest.approx(1 - r["methods"]["teacher"]["mae"] / r["methods"]["linear"]["mae"])
    assert all(np.isfinite(v["mae"]) and v["mse"] >= v["mae"] ** 2 - 1e-9 for v in r["methods"].values())
    json.loads((tmp_path / "ev" / "eval.json").read_text())


def test_cli_train_info_eval(toy, tmp_path):
    from typer.testing import CliRunner
    from edgefm.cli.main import app
    r = CliRunner().invoke(app, ["teacher", "train", str(toy), "--out", str(tmp_path / "t"), "--steps", "2",
                                 "--batch-size", "8", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["step"] == 2
    r = CliRunner().invoke(app, ["teacher", "info", str(tmp_path / "t" / "teacher.pt"), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["params"] > 2_000_000
    r = CliRunner().invoke(app, ["teacher", "info", str(tmp_path / "missing.pt")])
    assert r.exit_code == 1 and "not found" in r.output


def test_cli_train_with_the_benchmark_teacher_options(toy, tmp_path):
    from typer.testing import CliRunner
    from edgefm.cli.main import app
    from edgefm.train import load_checkpoint
    r = CliRunner().invoke(app, ["teacher", "train", str(toy), "--out", str(tmp_path / "t"), "--steps", "2",
                                 "--batch-size", "8", "--residual", "linear", "--decoder-baseline", "--loss", "l1",
                                 "--decoder-context", "3,9", "--context-residual", "--mask-mix",
                                 "interpolate=0.6,extrapolate=0.4", "--span-max", "0.2", "--json"])
    assert r.exit_code == 0, r.output
    ck = load_checkpoint(tmp_path / "t" / "teacher.pt")
    mc, tc = ck["model_config"], ck["train_config"]
    assert (mc["residual"], mc["decoder_sees_baseline"], mc["loss"]) == ("linear", True, "l1")
    assert mc["decoder_context"] == [3, 9] and mc["context_residual"]
    assert tc["mask_mix"] == {"interpolate": 0.6, "extrapolate": 0.4} and tuple(tc["span_frac"]) == (0.0, 0.2)
    r = CliRunner().invoke(app, ["teacher", "train", str(toy), "--out", str(tmp_path / "w"), "--steps", "2",
                                 "--mask-mix", "interpolate=0.6,forecast=0.4"])
    assert r.exit_code != 0 and "forecast" in r.output and not (tmp_path / "w").exists()
    r = CliRunner().invoke(app, ["teacher", "train", str(toy), "--out", str(tmp_path / "v"), "--steps", "2",
                                 "--residual", "linear", "--decoder-baseline", "--decoder-context", "3,x"])
    assert r.exit_code != 0 and "--decoder-context" in r.output and not (tmp_path / "v").exists()
    r = CliRunner().invoke(app, ["teacher", "train", str(toy), "--out", str(tmp_path / "u"), "--steps", "2",
                                 "--decoder-baseline"])
    assert r.exit_code != 0 and "decoder_sees_baseline" in r.output
