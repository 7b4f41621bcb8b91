"""The opportunistic-inference motion gate (after LIFT-PD, Soumma et al. 2024).

The network runs only while the wrist moves. The gate is deliberately tiny and exactly
specified, so that firmware (C), the phone demo (JavaScript, from ``GateConfig.to_dict()``)
and this module make the same decisions.

Per sample ``n`` (ACC in g at ``fs_hz``)::

    m[n] = sqrt(ax^2 + ay^2 + az^2)                  # magnitude, g
    s1 += m[n];  s2 += m[n]^2;  k += 1               # O(1) state, float64

At the end of each block of ``B = block_s * fs_hz`` samples (blocks start at sample 0)::

    f[b] = sqrt(max(s2/B - (s1/B)^2, 0))  if every sample of the block is valid, else -inf
    s1 = s2 = 0                                      # motion feature: std of |a| in g

Decision per block (``on`` starts False, ``since`` = 0, ``low`` = 0;
``min_on = round(min_on_s / block_s)``, ``hold = round(off_hold_s / block_s)``,
``wake = round(wake_every_s / block_s)``, 0 = no periodic wake)::

    low = low + 1 if f[b] < off_threshold else 0     # consecutive quiet blocks
    if not on:
        if f[b] >= on_threshold or (wake > 0 and b - since >= wake):
            on, since = True, b
    elif low >= hold and b - since >= min_on:
        on, since = False, b
    gate[b] = on

A model window (``window`` samples, ``hop`` samples apart, starting at sample 0) is inferred
iff ``gate[b]`` is on for any block ``b`` inside the window's last hop, i.e. the gate was on
at some point since the previous decision. ``window`` and ``hop`` must be whole numbers of
blocks. Invalid blocks (gaps, NaN, off-wrist) never switch the gate on.

:class:`StreamingGate` does this per pushed chunk with O(1) state; :func:`gate_offline`
does it vectorised over a whole recording (looping over on-episodes, not blocks); a test
checks they agree exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgefm.errors import ConfigError, ShapeError

GATE_KIND = "acc-magnitude-std/v1"


@dataclass(frozen=True)
class GateConfig:
    """Thresholds in g (std of the acceleration magnitude over one block).

    on_threshold: a block with feature >= this switches the gate on.
    off_threshold: while on, a block below this may switch it off (hysteresis: <= on).
    min_on_s: once on, stay on at least this long (seconds, multiple of block_s).
    off_hold_s: switch off only after this long continuously below off_threshold
        (seconds, a positive multiple of block_s; catches stillness right after movement,
        e.g. freezing of gait).
    wake_every_s: when off this long, wake for one decision anyway (0 = never).
    block_s: feature block length in seconds; fs_hz: ACC rate the gate runs at.
    """

    on_threshold: float = 0.03
    off_threshold: float = 0.02
    min_on_s: float = 8.0
    off_hold_s: float = 1.0
    wake_every_s: float = 0.0
    block_s: float = 1.0
    fs_hz: float = 32.0

    def __post_init__(self):
        for k in ("on_threshold", "off_threshold", "min_on_s", "off_hold_s", "wake_every_s", "block_s",
                  "fs_hz"):
            v = getattr(self, k)
            if not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
                raise ConfigError(f"{k} must be a finite number >= 0, got {v!r}", field=k)
        if self.block_s <= 0 or self.fs_hz <= 0:
            raise ConfigError("block_s and fs_hz must be positive", field="block_s/fs_hz")
        if self.off_threshold > self.on_threshold:
            raise ConfigError(f"off_threshold {self.off_threshold} is above on_threshold {self.on_threshold}",
                              field="off_threshold", hint="hysteresis needs off <= on")
        b = self.block_s * self.fs_hz
        if abs(b - round(b)) > 1e-6 or round(b) < 2:
            raise ConfigError(f"block_s={self.block_s} s is not a whole number (>= 2) of samples at "
                              f"{self.fs_hz} Hz", field="block_s")
        if self.off_hold_s < self.block_s - 1e-9:
            raise ConfigError(f"off_hold_s={self.off_hold_s} is shorter than one block ({self.block_s} s)",
                              field="off_hold_s")
        for k in ("min_on_s", "off_hold_s", "wake_every_s"):
            n = getattr(self, k) / self.block_s
            if abs(n - round(n)) > 1e-6:
                raise ConfigError(f"{k}={getattr(self, k)} is not a multiple of block_s={self.block_s}", field=k)

    @property
    def block(self) -> int:
        """Block length in samples."""
        return int(round(self.block_s * self.fs_hz))

    @property
    def min_on_blocks(self) -> int:
        return int(round(self.min_on_s / self.block_s))

    @property
    def hold_blocks(self) -> int:
        return int(round(self.off_hold_s / self.block_s))

    @property
    def wake_blocks(self) -> int:
        return int(round(self.wake_every_s / self.block_s))

    def blocks_per(self, samples: int, what: str = "hop") -> int:
        if samples % self.block:
            raise ConfigError(f"{what} of {samples} samples is not a whole number of gate blocks "
                              f"({self.block} samples)", field="block_s",
                              hint="choose block_s dividing the model's window and hop")
        return samples // self.block

    def cost(self) -> dict:
        """Operations the gate costs on an MCU (counted from the algorithm above)."""
        per_sample = {"mul": 4, "add": 4, "sqrt": 1, "cmp": 1}   # 3 sq + m^2; 2 sums + s1,s2,k
        per_block = {"mul": 3, "add": 2, "div": 2, "sqrt": 1, "cmp": 5}
        total = sum(per_sample.values()) + sum(per_block.values()) / self.block
        return {"per_sample": per_sample, "per_block": per_block, "block": self.block,
                "ops_per_sample": total, "ops_per_second": total * self.fs_hz,
                "state_bytes": 8 * 2 + 4 * 5}  # s1, s2 (float64); k, on, since, b, low (int32)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["kind"] = GATE_KIND
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GateConfig":
        d = dict(d)
        kind = d.pop("kind", GATE_KIND)
        if kind != GATE_KIND:
            raise ConfigError(f"unknown gate kind {kind!r}", field="kind", hint=f"expected {GATE_KIND}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown gate fields {sorted(unknown)}", field="gate")
        return cls(**{k: float(v) for k, v in d.items()})


# ---------------------------------------------------------------- features

def block_features(acc: np.ndarray, valid: np.ndarray | None, block: int) -> np.ndarray:
    """``acc: (n, 3)`` g with ``n`` a multiple of ``block`` -> ``(n // block,)`` std of |a| (g).

    Blocks with any invalid (or non-finite) sample give ``-inf``.
    """
    acc = np.asarray(acc, np.float64)
    if acc.ndim != 2 or acc.shape[1] != 3 or acc.shape[0] % block:
        raise ShapeError(f"acc must be (k*{block}, 3), got {acc.shape}", field="acc")
    nb = acc.shape[0] // block
    if nb == 0:
        return np.zeros(0, np.float64)
    m = np.sqrt(np.einsum("ij,ij->i", acc, acc)).reshape(nb, block)
    s1 = m.sum(1) / block
    s2 = (m * m).sum(1) / block
    f = np.sqrt(np.maximum(s2 - s1 * s1, 0.0))
    bad = ~np.isfinite(m).all(1)
    if valid is not None:
        bad |= ~np.asarray(valid, bool).reshape(nb, block, -1).all((1, 2))
    f[bad] = -np.inf
    return f


def _decide_loop(f: np.ndarray, cfg: GateConfig, state: list) -> np.ndarray:
    """The per-block state machine; ``state = [on, since, b, low]`` is updated in place."""
    on, since, b, low = state
    on_t, off_t, mo, wk = cfg.on_threshold, cfg.off_threshold, cfg.min_on_blocks, cfg.wake_blocks
    hold = cfg.hold_blocks
    out = np.empty(len(f), bool)
    for i, v in enumerate(f.tolist()):
        low = low + 1 if v < off_t else 0
        if not on:
            if v >= on_t or (wk > 0 and b - since >= wk):
                on, since = True, b
        elif low >= hold and b - since >= mo:
            on, since = False, b
        out[i] = on
        b += 1
    state[:] = [on, since, b, low]
    return out


def gate_offline(f: np.ndarray, cfg: GateConfig) -> np.ndarray:
    """Vectorised gate over a whole feature series ``f: (nb,)`` -> ``(nb,)`` bool (on).

    Loops over on/off episodes, not blocks: the next switch-on is the first block at or
    after the current one that is above ``on_threshold`` (or the wake deadline); the next
    switch-off is the first block at or after ``on + min_on`` ending ``hold`` quiet blocks.
    """
    f = np.asarray(f, np.float64)
    nb = len(f)
    out = np.zeros(nb, bool)
    ups = np.flatnonzero(f >= cfg.on_threshold)
    quiet = f < cfg.off_threshold
    # run length of consecutive quiet blocks ending at each block
    idx = np.arange(1, nb + 1)
    last_loud = np.maximum.accumulate(np.where(quiet, 0, idx))
    low = idx - last_loud
    downs = np.flatnonzero(low >= cfg.hold_blocks)
    mo, wk = cfg.min_on_blocks, cfg.wake_blocks
    b, since = 0, 0          # b: first block whose decision is still open; gate is off at b
    while b < nb:
        i = np.searchsorted(ups, b)
        up = int(ups[i]) if i < len(ups) else nb
        if wk > 0:
            up = min(up, max(b, since + wk))
        if up >= nb:
            break
        # on at `up`; off at first block d > up with d - up >= mo and f[d] < off
        j = np.searchsorted(downs, max(up + mo, up + 1))
        down = int(downs[j]) if j < len(downs) else nb
        out[up:down] = True
        b, since = down + 1, down
    return out


def window_decisions(gate_blocks: np.ndarray, window: int, hop: int, cfg: GateConfig) -> np.ndarray:
    """Block gate states -> ``(N,)`` bool, one per window (window ``i`` starts at ``i * hop``)."""
    wb, hb = cfg.blocks_per(window, "window"), cfg.blocks_per(hop, "hop")
    nb = len(gate_blocks)
    n_win = 0 if nb < wb else (nb - wb) // hb + 1
    if n_win == 0:
        return np.zeros(0, bool)
    g = np.asarray(gate_blocks, bool)[wb - hb: wb - hb + n_win * hb].reshape(n_win, hb)
    return g.any(1)


def gate_recording(acc: np.ndarray, valid: np.ndarray | None, cfg: GateConfig,
                   window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Offline gate over one trace ``acc: (n, 3)`` g at ``cfg.fs_hz`` -> (block states, window decisions)."""
    n = (len(acc) // cfg.block) * cfg.block
    f = block_features(acc[:n], None if valid is None else valid[:n], cfg.block)
    g = gate_offline(f, cfg)
    return g, window_decisions(g, window, hop, cfg)


class StreamingGate:
    """The gate, one chunk of samples at a time; state is O(1) (a partial block + 3 numbers).

    ``push(acc (n, 3), valid (n,) or (n, 3))`` -> the on/off states of the blocks completed by
    this chunk, in order. ``blocks_done`` counts all completed blocks.
    """

    def __init__(self, cfg: GateConfig):
        self.cfg = cfg
        self._pend = np.zeros((cfg.block, 3), np.float64)
        self._pend_v = np.ones(cfg.block, bool)
        self._k = 0
        self._state = [False, 0, 0, 0]
        self.samples = 0

    @property
    def blocks_done(self) -> int:
        return self._state[2]

    @property
    def on(self) -> bool:
        return bool(self._state[0])

    def push(self, acc: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        acc = np.asarray(acc)
        n = len(acc)
        if valid is None:
            valid = np.ones(n, bool)
        elif valid.ndim == 2:
            valid = valid.all(1)
        self.samples += n
        B, k = self.cfg.block, self._k
        if k + n < B:
            self._pend[k:k + n] = acc
            self._pend_v[k:k + n] = valid
            self._k = k + n
            return np.zeros(0, bool)
        # complete the pending block, then whole blocks, then keep the rest
        take = B - k
        nb_full = (n - take) // B
        end = take + nb_full * B
        if k:
            self._pend[k:] = acc[:take]
            self._pend_v[k:] = valid[:take]
            a = np.concatenate([self._pend, acc[take:end]])
            v = np.concatenate([self._pend_v, valid[take:end]])
        else:
            a, v = acc[:end], valid[:end]
        f = block_features(a, v, B)
        rest = n - end
        self._pend[:rest] = acc[end:]
        self._pend_v[:rest] = valid[end:]
        self._k = rest
        return _decide_loop(f, self.cfg, self._state)
