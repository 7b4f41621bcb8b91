"""Streaming: sample accounting over random chunkings, gating, invalid windows, timestamps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runtime
from edgefm.errors import DataError, InputSpecError
from runtime.gate import GateConfig, gate_recording
from runtime.ring import RingBuffer
from runtime.stream import GATED, INFERRED, INVALID, Streamer

W, H, FS = 256, 64, 32.0


@pytest.fixture(scope="module")
def model(artifacts):
    return runtime.load(artifacts["onnx"])


def _trace(n, seed=0):
    """Still wrist with bursts of movement, (n, 3) g."""
    rng = np.random.default_rng(seed)
    acc = np.c_[np.zeros(n), np.zeros(n), np.ones(n)] + rng.normal(size=(n, 3)) * 0.003
    t = np.arange(n) / FS
    for a in rng.integers(0, max(1, n - 400), size=max(1, n // 2000)):
        acc[a:a + 400, 2] += 0.3 * np.sin(2 * np.pi * 1.7 * t[a:a + 400])
    return acc.astype(np.float32)


def _windows(x):
    starts = np.arange(0, len(x) - W + 1, H)
    return np.stack([x[s:s + W].T for s in starts]), starts


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 1000), st.lists(st.integers(0, 700), min_size=1, max_size=30))
def test_random_chunks_lose_and_duplicate_nothing(model, seed, chunks):
    x = _trace(sum(chunks), seed)
    s = Streamer(model, fs_hz=FS, start_time=1000.0)
    outs, pos = [], 0
    for c in chunks:
        outs.append(s.push(x[pos:pos + c]))
        pos += c
    tail = s.ring.size
    outs.append(s.flush())
    out = runtime.StreamOutput.concat(outs)
    n = len(x)
    assert s.samples_in == n and s.samples_consumed == n and s.ring.size == 0
    n_win = 0 if n < W else (n - W) // H + 1
    assert len(out) == n_win and s.windows == n_win
    assert tail == (n - ((n_win - 1) * H + W) + W - H if n_win else n)  # what never completed a window
    if n_win:
        xs, starts = _windows(x)
        np.testing.assert_allclose(out.t_start, 1000.0 + starts / FS)
        np.testing.assert_allclose(out.t_end - out.t_start, W / FS)
        # every window's output equals the model on that exact slice: nothing lost or duplicated
        np.testing.assert_allclose(out.y, model.predict(xs), atol=1e-5)
        assert (out.status == INFERRED).all()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 1000), st.lists(st.integers(1, 2000), min_size=1, max_size=12))
def test_gated_stream_equals_offline_gate(model, seed, chunks):
    x = _trace(sum(chunks) + W, seed)
    cfg = GateConfig(on_threshold=0.05, off_threshold=0.02, min_on_s=4.0, wake_every_s=30.0)
    s = Streamer(model, gate=cfg, fs_hz=FS)
    outs, pos = [], 0
    for c in chunks + [W]:
        outs.append(s.push(x[pos:pos + c]))
        pos += c
    out = runtime.StreamOutput.concat(outs)
    _, d = gate_recording(x.astype(np.float64), None, cfg, W, H)
    assert len(out) == len(d)
    np.testing.assert_array_equal(out.status == INFERRED, d)
    assert (out.status[~d] == GATED).all() and np.isnan(out.y[~d]).all()
    if d.any():
        xs, _ = _windows(x)
        np.testing.assert_allclose(out.y[d], model.predict(xs[d]), atol=1e-5)


def test_invalid_windows_are_not_inferred(model):
    x = _trace(W * 4)
    valid = np.ones(len(x), bool)
    valid[300:310] = False           # a short gap
    x[600, 1] = np.nan               # one NaN sample
    s = Streamer(model, fs_hz=FS)
    out = runtime.StreamOutput.concat([s.push(x, valid=valid), s.flush()])
    starts = np.arange(0, len(x) - W + 1, H)
    bad = ((starts <= 309) & (starts + W > 300)) | ((starts <= 600) & (starts + W > 600))
    np.testing.assert_array_equal(out.status == INVALID, bad)
    assert np.isnan(out.y[bad]).all() and np.isfinite(out.y[~bad]).all()
    assert out.counts()["invalid"] == bad.sum()
    # with min_valid < 1 a window with a few missing samples is inferred, missing = channel mean
    s2 = Streamer(model, fs_hz=FS, min_valid=0.9)
    out2 = s2.push(x, valid=valid)
    assert (out2.status == INFERRED).all()
    i = int(np.flatnonzero(bad)[0])
    xi = x[starts[i]:starts[i] + W].T.copy()
    vi = valid[starts[i]:starts[i] + W] & np.isfinite(x[starts[i]:starts[i] + W]).all(1)
    xi[:, ~vi] = model.spec.mean[:, None]
    np.testing.assert_allclose(out2.y[i], model.predict(xi)[0], atol=1e-5)


def test_timestamps_fill_gaps_and_refuse_going_back(model):
    x = _trace(W * 3)
    s = Streamer(model, fs_hz=FS, start_time=0.0)
    s.push(x[:W], t=0.0)
    s.push(x[W:2 * W], t=W / FS + 10.0)          # 10 s = 320 samples missing
    assert s.samples_gap == 320 and s.samples_in == 2 * W
    ts = (2 * W + 320 + np.arange(100)) / FS
    ts[50:] += 1.0                               # a 32-sample jump inside a chunk
    s.push(x[2 * W:2 * W + 100], t=ts)
    assert s.samples_gap == 352 and s.next_index == 2 * W + 352 + 100
    with pytest.raises(DataError, match="backwards"):
        s.push(x[:10], t=1.0)
    s.flush()
    assert s.samples_consumed == s.samples_in + s.samples_gap


def test_wrong_rate_and_channels(model):
    with pytest.raises(InputSpecError, match="64"):
        Streamer(model, fs_hz=64.0)
    with pytest.raises(InputSpecError, match="acc_z"):
        Streamer(model, fs_hz=FS, channels=("acc_x", "acc_y"))
    s = Streamer(model, fs_hz=FS, channels=("ppg", "acc_x", "acc_y", "acc_z"))
    x = np.c_[np.zeros(W), _trace(W)]
    np.testing.assert_allclose(s.push(x).y, model.predict(_trace(W).T[None]), atol=1e-5)
    with pytest.raises(InputSpecError):
        Streamer(model, fs_hz=FS, gate=GateConfig(fs_hz=64.0))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 12), min_size=1, max_size=40), st.integers(1, 10))
def test_ring_buffer_is_fifo_and_counts(chunks, reads):
    """Against a plain list: reads return exactly the oldest samples, wrap-around included."""
    r = RingBuffer(10, 2)
    ref: list[np.ndarray] = []
    k = 0
    for c in chunks:
        c = min(c, r.free)
        x = (k + np.arange(c, dtype=np.float32))[:, None].repeat(2, 1)
        k += c
        r.write(x, np.ones((c, 2), bool))
        ref.extend(x)
        n = min(reads, r.size)
        got, v = r.read(n)
        np.testing.assert_array_equal(got, np.array(ref[:n]).reshape(n, 2))
        assert v.all()
        r.drop(n)
        del ref[:n]
        assert r.written == r.dropped + r.size == k


def test_memory_is_flat(model):
    cfg = GateConfig(on_threshold=0.05, off_threshold=0.02, min_on_s=4.0)
    s = Streamer(model, gate=cfg, fs_hz=FS)
    import tracemalloc
    x = _trace(32 * 600)
    tracemalloc.start()
    for i in range(6):
        s.push(x)
        if i == 1:
            base = tracemalloc.get_traced_memory()[0]
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 200_000, grown   # one hour in: no growth beyond noise
