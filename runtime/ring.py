"""A fixed-capacity ring buffer of multichannel samples with their validity mask.

Memory is allocated once (``capacity x C`` float32 + bool) and never grows, however long
the stream. Samples are addressed by their absolute index since the stream started, so
accounting is exact: ``written == dropped + size`` always holds.
"""

from __future__ import annotations

import numpy as np

from edgefm.errors import ShapeError


class RingBuffer:
    """``capacity`` samples of ``channels`` channels.

    write(x (n, C), valid (n, C)) appends (n <= free); read(n) returns the oldest ``n``
    samples as contiguous copies ``(C, n)``; drop(n) forgets the oldest ``n``.
    """

    def __init__(self, capacity: int, channels: int):
        if capacity <= 0 or channels <= 0:
            raise ShapeError(f"ring buffer needs capacity and channels > 0, got {capacity}, {channels}")
        self.capacity, self.channels = int(capacity), int(channels)
        self._x = np.zeros((self.capacity, self.channels), np.float32)
        self._v = np.zeros((self.capacity, self.channels), bool)
        self._head = 0          # index in storage of the oldest sample
        self.size = 0           # samples held
        self.written = 0        # samples ever written
        self.dropped = 0        # samples ever dropped (consumed)

    @property
    def free(self) -> int:
        return self.capacity - self.size

    @property
    def start_index(self) -> int:
        """Absolute index (since the stream started) of the oldest sample held."""
        return self.dropped

    def write(self, x: np.ndarray, valid: np.ndarray) -> None:
        n = len(x)
        if n > self.free:
            raise ShapeError(f"ring buffer overflow: {n} samples into {self.free} free")
        if x.shape != (n, self.channels) or valid.shape != (n, self.channels):
            raise ShapeError(f"expected ({n}, {self.channels}) samples and mask, got {x.shape}, {valid.shape}")
        tail = (self._head + self.size) % self.capacity
        first = min(n, self.capacity - tail)
        self._x[tail:tail + first] = x[:first]
        self._v[tail:tail + first] = valid[:first]
        if first < n:
            self._x[:n - first] = x[first:]
            self._v[:n - first] = valid[first:]
        self.size += n
        self.written += n

    def read(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The oldest ``n`` samples (not dropped): ``x (n, C)`` float32, ``valid (n, C)`` bool."""
        if n > self.size:
            raise ShapeError(f"ring buffer holds {self.size} samples, {n} requested")
        idx = (self._head + np.arange(n)) % self.capacity if self._head + n > self.capacity else None
        if idx is None:
            return self._x[self._head:self._head + n].copy(), self._v[self._head:self._head + n].copy()
        return self._x[idx], self._v[idx]

    def drop(self, n: int) -> None:
        n = min(int(n), self.size)
        self._head = (self._head + n) % self.capacity
        self.size -= n
        self.dropped += n
