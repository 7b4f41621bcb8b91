"""runtime.track: the heart-rate tracker against an independent dense forward filter."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.track import HRTracker, expected_bpm, track, tracker_macs

BINS = np.arange(30.0, 232.0, 2.0)


def dense_filter(scores, sigma, floor):
    """The same Bayesian filter written out with scipy's Gaussian and no banding shortcuts."""
    from scipy.stats import norm
    K = norm.pdf(BINS[:, None], loc=BINS[None, :], scale=sigma)
    K[np.abs(BINS[:, None] - BINS[None, :]) > 4 * sigma] = 0
    K /= K.sum(0, keepdims=True)
    post, out = None, []
    for s in scores:
        like = np.exp(s - s.max())
        like /= like.sum()
        if post is None:
            post = like
        else:
            post = ((1 - floor) * K @ post + floor / len(BINS)) * like
            post /= post.sum()
        out.append(BINS @ post)
    return np.array(out)


def test_tracker_matches_dense_filter():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, len(BINS))) * 3
    got = track(scores, np.zeros(40), np.arange(40) * 2.0, bins_bpm=BINS, sigma_bpm=5.0, floor=1e-3)
    np.testing.assert_allclose(got, dense_filter(scores, 5.0, 1e-3), rtol=1e-10)
    # the first window is the per-window expectation
    assert got[0] == pytest.approx(expected_bpm(scores[:1], BINS)[0])


def test_tracker_rejects_a_single_outlier_window():
    """A steady 100 bpm pulse with one window whose strongest peak is a 160 bpm motion peak."""
    def bump(c):
        return np.exp(-0.5 * ((BINS - c) / 3) ** 2)
    s = np.tile(10 * bump(100), (20, 1))
    s[10] = 10 * bump(160) + 7 * bump(100)
    per = expected_bpm(s, BINS)
    trk = track(s, np.zeros(20), np.arange(20) * 2.0, bins_bpm=BINS, sigma_bpm=4.0)
    assert per[10] > 140 and abs(trk[10] - 100) < 2


def test_tracker_resets_on_gaps_and_keeps_recordings_apart():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(10, len(BINS)))
    start = np.array([0, 2, 4, 6, 100, 102, 104, 106, 108, 110.0])
    got = track(s, np.zeros(10), start, bins_bpm=BINS, sigma_bpm=5.0)
    np.testing.assert_allclose(got[:4], dense_filter(s[:4], 5.0, 1e-3))
    np.testing.assert_allclose(got[4:], dense_filter(s[4:], 5.0, 1e-3))
    # two recordings interleaved in the input: each tracked on its own, output in input order
    rec = np.array(["a", "b"] * 5)
    got2 = track(s, rec, np.repeat(np.arange(5) * 2.0, 2), bins_bpm=BINS, sigma_bpm=5.0)
    np.testing.assert_allclose(got2[0::2], dense_filter(s[0::2], 5.0, 1e-3))
    np.testing.assert_allclose(got2[1::2], dense_filter(s[1::2], 5.0, 1e-3))


def test_tracker_macs_counts_the_banded_kernel():
    sigma = 6.0
    band = np.abs(BINS[:, None] - BINS[None, :]) <= 4 * sigma
    assert tracker_macs({"bins_bpm": BINS, "sigma_bpm": sigma}) == int(band.sum()) + 3 * len(BINS)


def test_tracker_refuses_bad_settings():
    with pytest.raises(ValueError):
        HRTracker(BINS, 0.0)
    with pytest.raises(ValueError):
        HRTracker(BINS, 2.0, floor=1.0)


def test_class_filter_matches_an_independent_hmm_forward_pass():
    from runtime.track import class_transitions, track_classes
    rng = np.random.default_rng(2)
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, -1, 0])
    T = class_transitions(y, np.zeros(10), np.arange(10.0), 3, pseudo=1.0)
    counts = np.ones((3, 3))
    for a, b in [(0, 0), (0, 0), (0, 1), (1, 1), (1, 2), (2, 2), (2, 2)]:
        counts[a, b] += 1
    np.testing.assert_allclose(T, counts / counts.sum(1, keepdims=True))
    s = rng.normal(size=(12, 3)) * 2
    got = track_classes(s, np.zeros(12), np.arange(12.0), transition=T, floor=0.01)
    e = np.exp(s - s.max(1, keepdims=True))
    e /= e.sum(1, keepdims=True)
    alpha = e[0]
    ref = [alpha]
    for t in range(1, 12):
        prior = np.array([sum(T[i, j] * alpha[i] for i in range(3)) for j in range(3)]) * 0.99 + 0.01 / 3
        alpha = prior * e[t] / np.sum(prior * e[t])
        ref.append(alpha)
    np.testing.assert_allclose(got, np.array(ref), rtol=1e-10)
