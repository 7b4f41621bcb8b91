"""Streaming: samples at sensor rate -> ring buffer -> windows -> gate -> model -> outputs.

    s = Streamer(model, gate=GateConfig(...), fs_hz=32.0, channels=("acc_x", "acc_y", "acc_z"),
                 start_time=t0)
    for chunk in sensor:                 # (n, C) in sensor units, any n >= 0
        out = s.push(chunk)              # or push(chunk, valid=mask, t=timestamps)
        ...out.t_end, out.status, out.y
    out = s.flush()

Every window the model's manifest defines (``window`` samples, ``hop`` apart, starting at
the first sample) gets exactly one row, with one status:

``inferred``  the model ran; ``y`` holds its output
``gated``     the motion gate was off for the window's last hop; ``y`` is NaN
``invalid``   fewer than ``min_valid`` of the window's samples were observed (gap, NaN,
              off-wrist marked in ``valid``); the model did not run; ``y`` is NaN

Rates: the stream must arrive at the model's ``fs_hz``; another rate raises
:class:`~edgefm.errors.InputSpecError` (resample upstream, e.g. with
``edgefm.data.windows.resample_stream``): a silent resampler inside a firmware-shaped
loop would hide a sensor misconfiguration. Timestamps: with ``t`` (a chunk start time or
one time per sample, Unix s) gaps are filled with invalid samples and time going
backwards is a :class:`~edgefm.errors.DataError`.

Accounting: ``samples_in`` (real samples pushed) + ``samples_gap`` (filled) equals
``samples_consumed`` + samples still buffered; after :meth:`flush` nothing is buffered.
Memory is flat: the ring holds one window; gate state is one partial block.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefm.errors import DataError, InputSpecError, ShapeError
from runtime.gate import GateConfig, StreamingGate
from runtime.ring import RingBuffer

STATUS = ("inferred", "gated", "invalid")
INFERRED, GATED, INVALID = 0, 1, 2
_GAP_CHUNK = 1 << 16
_BATCH = 256


@dataclass
class StreamOutput:
    """Windows decided during one push: ``t_start``/``t_end`` (k,) Unix s, ``status`` (k,)
    int8 codes into :data:`STATUS`, ``y`` (k, D) float32 (NaN unless inferred),
    ``valid_frac`` (k,) observed fraction of the window's samples."""

    t_start: np.ndarray
    t_end: np.ndarray
    status: np.ndarray
    y: np.ndarray
    valid_frac: np.ndarray

    def __len__(self) -> int:
        return len(self.status)

    @staticmethod
    def concat(parts: list["StreamOutput"], d: int = 1) -> "StreamOutput":
        if not parts:
            return StreamOutput(np.zeros(0), np.zeros(0), np.zeros(0, np.int8),
                                np.zeros((0, d), np.float32), np.zeros(0, np.float32))
        return StreamOutput(*(np.concatenate([getattr(p, k) for p in parts])
                              for k in ("t_start", "t_end", "status", "y", "valid_frac")))

    def counts(self) -> dict[str, int]:
        return {s: int((self.status == i).sum()) for i, s in enumerate(STATUS)}


class Streamer:
    """Turn a sample stream into timestamped model outputs (see the module docstring).

    Args:
        model: a :class:`runtime.model.Model` (its manifest gives channels, rate, window, hop).
        gate: a :class:`GateConfig` at the model's rate, or None to infer every valid window.
        fs_hz: the sensor stream's rate; must equal the model's.
        channels: names of the pushed columns, in order; must include the model's channels
            and, with a gate, ``acc_x``, ``acc_y``, ``acc_z``.
        start_time: Unix seconds of the first sample.
        min_valid: a window with a smaller observed fraction is ``invalid`` (default 1.0:
            any missing sample). Missing samples of an accepted window are filled with the
            channel mean (normalised 0), as in training.
    """

    def __init__(self, model, *, gate: GateConfig | None = None, fs_hz: float,
                 channels=("acc_x", "acc_y", "acc_z"), start_time: float = 0.0, min_valid: float = 1.0):
        self.model = model
        spec = model.spec
        if abs(float(fs_hz) - spec.fs_hz) > 1e-6:
            raise InputSpecError(f"sensor stream is at {fs_hz} Hz, the model expects {spec.fs_hz} Hz",
                                 path=model.path, field="fs_hz",
                                 hint="resample upstream (edgefm.data.windows.resample_stream)")
        self.fs_hz = float(fs_hz)
        self.channels = tuple(channels)
        missing = [c for c in spec.channels if c not in self.channels]
        if missing:
            raise InputSpecError(f"stream lacks the model's channels {missing} (has {self.channels})",
                                 path=model.path, field="channels")
        self._mi = np.array([self.channels.index(c) for c in spec.channels])
        self.window, self.hop = spec.window, spec.hop
        if self.hop > self.window:
            raise InputSpecError(f"hop {self.hop} > window {self.window} is not supported", field="hop")
        self.gate_cfg = gate
        self._gate = None
        if gate is not None:
            if abs(gate.fs_hz - self.fs_hz) > 1e-6:
                raise InputSpecError(f"gate is configured for {gate.fs_hz} Hz, stream is {self.fs_hz} Hz",
                                     field="gate.fs_hz")
            acc = [c for c in ("acc_x", "acc_y", "acc_z") if c not in self.channels]
            if acc:
                raise InputSpecError(f"the gate needs channels {acc}", field="channels")
            self._gi = np.array([self.channels.index(c) for c in ("acc_x", "acc_y", "acc_z")])
            self._gate = StreamingGate(gate)
            gate.blocks_per(self.window, "window")
            self._hb = gate.blocks_per(self.hop, "hop")
            self._wb = self.window // gate.block
            self._gstates = np.zeros(0, bool)   # states of blocks >= self._gbase
            self._gbase = 0
        if not 0.0 <= min_valid <= 1.0:
            raise InputSpecError(f"min_valid must be in [0, 1], got {min_valid}", field="min_valid")
        self.min_valid = float(min_valid)
        self.start_time = float(start_time)
        self.ring = RingBuffer(self.window, len(self.channels))
        self.samples_in = 0
        self.samples_gap = 0
        self.windows = 0
        self._counts = np.zeros(len(STATUS), np.int64)
        self._mean = model.spec.mean[:, None]
        shp = model.out_details.shape
        self._d = int(np.prod(shp[1:])) if len(shp) > 1 and min(shp[1:]) > 0 else \
            model._predict(np.repeat(self._mean[None], self.window, 2)).shape[1]

    # -- accounting
    @property
    def samples_consumed(self) -> int:
        return self.ring.dropped

    @property
    def next_index(self) -> int:
        """Absolute index of the next sample expected."""
        return self.ring.written

    @property
    def counts(self) -> dict[str, int]:
        return {s: int(c) for s, c in zip(STATUS, self._counts)}

    # -- input
    def push(self, x: np.ndarray, valid: np.ndarray | None = None, t=None) -> StreamOutput:
        """Append samples ``x: (n, C)`` (sensor units, columns = ``channels``) at ``fs_hz``.

        valid: (n, C) or (n,) bool, False = not observed (NaN samples are invalid anyway).
        t: None (contiguous with the previous push), a float (Unix s of ``x[0]``), or
           ``(n,)`` Unix s per sample; later-than-expected samples leave a gap of invalid samples.
        """
        x = np.asarray(x, dtype=np.float32)
        C = len(self.channels)
        if x.ndim == 1 and C == 1:
            x = x[:, None]
        if x.ndim != 2 or x.shape[1] != C:
            raise ShapeError(f"chunk shape {x.shape}, expected (n, {C}) for channels {self.channels}",
                             field="chunk")
        n = len(x)
        if valid is None:
            v = np.ones((n, C), bool)
        else:
            v = np.asarray(valid, bool)
            if v.shape == (n,):
                v = np.repeat(v[:, None], C, 1)
            if v.shape != (n, C):
                raise ShapeError(f"valid mask shape {v.shape}, expected ({n}, {C}) or ({n},)", field="valid")
        fin = np.isfinite(x)
        if not fin.all():
            v = v & fin
            x = np.where(fin, x, np.float32(np.nan))
        parts: list[StreamOutput] = []
        if t is None or n == 0:
            self.samples_in += n
            parts.append(self._feed(x, v))
        else:
            idx = self._sample_index(t, n)
            self.samples_in += n
            # split at jumps; fill each jump with invalid samples
            cuts = np.flatnonzero(np.diff(idx) > 1) + 1
            starts = np.r_[0, cuts]
            ends = np.r_[cuts, n]
            for a, b in zip(starts, ends):
                gap = int(idx[a]) - self.next_index
                parts.extend(self._fill_gap(gap))
                parts.append(self._feed(x[a:b], v[a:b]))
        return StreamOutput.concat(parts, self._d)

    def _sample_index(self, t, n: int) -> np.ndarray:
        t = np.asarray(t, np.float64)
        if t.ndim == 0:
            t = t + np.arange(n) / self.fs_hz
        if t.shape != (n,) or not np.isfinite(t).all():
            raise DataError(f"timestamps must be finite, one per sample ({n}), got shape {t.shape}", field="t")
        idx = np.rint((t - self.start_time) * self.fs_hz).astype(np.int64)
        if idx[0] < self.next_index or (np.diff(idx) <= 0).any():
            raise DataError(f"timestamps go backwards or repeat (sample {int(idx.min())} at "
                            f"{float(t[0]):.3f} s, next expected {self.next_index})", field="t",
                            hint="push samples in time order, each once")
        return idx

    def _fill_gap(self, gap: int) -> list[StreamOutput]:
        out = []
        C = len(self.channels)
        while gap > 0:
            k = min(gap, _GAP_CHUNK)
            out.append(self._feed(np.full((k, C), np.nan, np.float32), np.zeros((k, C), bool)))
            self.samples_gap += k
            gap -= k
        return out

    # -- core
    def _feed(self, x: np.ndarray, v: np.ndarray) -> StreamOutput:
        if self._gate is not None and len(x):
            st = self._gate.push(x[:, self._gi], v[:, self._gi].all(1))
            if len(st):
                self._gstates = np.concatenate([self._gstates, st])
        rows_t, rows_s, rows_f, todo = [], [], [], []
        W, H, ring = self.window, self.hop, self.ring
        pos, n = 0, len(x)
        while pos < n:
            take = min(W - ring.size, n - pos)
            ring.write(x[pos:pos + take], v[pos:pos + take])
            pos += take
            if ring.size < W:
                break
            s_abs = ring.start_index
            xw, vw = ring.read(W)
            vw = vw[:, self._mi]
            frac = float(vw.mean())
            if frac < self.min_valid or frac == 0.0:
                status = INVALID
            elif self._gate is not None and not self._gate_on(s_abs):
                status = GATED
            else:
                status = INFERRED
                xm = xw[:, self._mi].T
                if frac < 1.0:
                    xm = np.where(vw.T, xm, self._mean)
                todo.append((len(rows_t), xm))
            rows_t.append(s_abs)
            rows_s.append(status)
            rows_f.append(frac)
            ring.drop(H)
            self.windows += 1
            self._counts[status] += 1
        return self._emit(rows_t, rows_s, rows_f, todo)

    def _gate_on(self, s_abs: int) -> bool:
        b0 = (s_abs + self.window - self.hop) // self.gate_cfg.block
        i = b0 - self._gbase
        on = bool(self._gstates[i:i + self._hb].any())
        # forget blocks no later window needs (the next window's decision starts one hop later)
        keep = b0 + self._hb - self._gbase
        if keep > 4096:
            self._gstates = self._gstates[keep:]
            self._gbase += keep
        return on

    def _emit(self, rows_t, rows_s, rows_f, todo) -> StreamOutput:
        y = np.full((len(rows_t), self._d), np.nan, np.float32)
        for a in range(0, len(todo), _BATCH):
            part = todo[a:a + _BATCH]
            y[[p[0] for p in part]] = self.model._predict(np.stack([p[1] for p in part]))
        ts = self.start_time + np.asarray(rows_t, np.float64) / self.fs_hz
        return StreamOutput(ts, ts + self.window / self.fs_hz, np.asarray(rows_s, np.int8), y,
                            np.asarray(rows_f, np.float32))

    def flush(self) -> StreamOutput:
        """End of stream: the samples that never completed a window are consumed, unreported."""
        self.ring.drop(self.ring.size)
        return StreamOutput.concat([], self._d)
