"""The recording type: named channels, each with its modality, unit and sampling rate.

An array never travels without its rate and channel names. Missing data (gaps, off-wrist,
sensor off, NaN) is marked in each stream's validity mask and stays marked: nothing here
imputes it.

Conventions (importers and the synthetic cohort follow them, presets rely on them):
  channels   ``ppg`` (primary PPG, a.u.), ``ppg2``; ``acc_x|y|z`` (g); ``gyro_*`` (rad/s);
             ``eda`` (uS); ``temp`` (degC); ``alt`` (hPa); ``hr`` (bpm, a device's estimate);
             ``ecg`` (mV)
  labels     ``hr`` (reference heart rate, bpm, continuous), ``rmssd`` (ms, continuous),
             ``activity`` / ``stress`` / ``freeze`` (categorical, class names in ``classes``)
  events     ``beats`` (beat times in seconds from ``start_time``)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from edgefm.errors import DataError, ShapeError


class Modality(str, Enum):
    PPG = "ppg"
    ACC = "acc"
    GYRO = "gyro"
    EDA = "eda"
    TEMP = "temp"
    ALT = "alt"
    HR = "hr"
    ECG = "ecg"
    FEATURE = "feature"


#: Order in which modalities are laid out in a sensor matrix (LSM: clustered by sensor type).
MODALITY_ORDER = ("ppg", "hr", "ecg", "acc", "gyro", "eda", "temp", "alt", "feature")


@dataclass(frozen=True)
class ChannelSpec:
    """One channel: ``name`` (e.g. ``acc_x``), ``modality`` (e.g. ``acc``), ``unit``, ``fs_hz``."""

    name: str
    modality: str
    unit: str
    fs_hz: float

    def __post_init__(self):
        if not self.name:
            raise DataError("channel name is empty", field="name")
        if not (np.isfinite(self.fs_hz) and self.fs_hz > 0):
            raise DataError(f"sampling rate must be a positive finite number, got {self.fs_hz}",
                            field=f"{self.name}.fs_hz")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ChannelSpec":
        return cls(name=str(d["name"]), modality=str(d["modality"]), unit=str(d["unit"]),
                   fs_hz=float(d["fs_hz"]))


@dataclass
class Stream:
    """A channel's samples ``data: (n,)`` at ``spec.fs_hz`` and ``valid: (n,)`` (True = observed).

    Non-finite samples are marked invalid on construction (missing, not an error); their
    stored value is kept as NaN so that nothing downstream can mistake them for data.
    """

    spec: ChannelSpec
    data: np.ndarray
    valid: np.ndarray | None = None

    def __post_init__(self):
        d = np.asarray(self.data)
        if d.ndim != 1:
            raise ShapeError(f"stream data must be 1-D, got shape {d.shape}", field=self.spec.name)
        if not np.issubdtype(d.dtype, np.number) or np.iscomplexobj(d):
            raise DataError(f"stream data must be real numbers, got {d.dtype}", field=self.spec.name)
        d = d.astype(np.float32, copy=False)
        finite = np.isfinite(d)
        if self.valid is None:
            v = finite
        else:
            v = np.asarray(self.valid)
            if v.shape != d.shape:
                raise ShapeError(f"validity mask shape {v.shape} differs from data {d.shape}",
                                 field=self.spec.name)
            v = v.astype(bool) & finite
        if not finite.all():
            d = np.where(finite, d, np.float32(np.nan))
        self.data, self.valid = d, v

    @property
    def n(self) -> int:
        return int(self.data.shape[0])

    @property
    def duration_s(self) -> float:
        return self.n / self.spec.fs_hz


@dataclass
class LabelTrack:
    """Labels sampled at ``fs_hz``. Continuous: float values, NaN = unknown.
    Categorical: int codes into ``classes``, -1 = unknown."""

    name: str
    kind: str  # "continuous" | "categorical"
    fs_hz: float
    values: np.ndarray
    unit: str = ""
    classes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.kind not in ("continuous", "categorical"):
            raise DataError(f"label kind must be continuous or categorical, got {self.kind!r}",
                            field=f"labels.{self.name}")
        if not (np.isfinite(self.fs_hz) and self.fs_hz > 0):
            raise DataError(f"label rate must be positive, got {self.fs_hz}", field=f"labels.{self.name}")
        v = np.asarray(self.values)
        if v.ndim != 1:
            raise ShapeError(f"label values must be 1-D, got {v.shape}", field=f"labels.{self.name}")
        if self.kind == "continuous":
            if v.dtype.kind not in "fiub":
                raise DataError(f"label values must be numbers, got {v.dtype}", field=f"labels.{self.name}")
            v = v.astype(np.float32)
            v[~np.isfinite(v)] = np.nan
        else:
            if v.dtype.kind == "f":  # NaN/inf = unknown; 1.5 is not a class code
                v = np.where(np.isfinite(v), v, -1)
                if (v != np.round(v)).any():
                    raise DataError("categorical codes must be whole numbers", field=f"labels.{self.name}")
            elif v.dtype.kind not in "iub":
                raise DataError(f"categorical codes must be integers, got {v.dtype}", field=f"labels.{self.name}")
            if v.size and v.max() > np.iinfo(np.int16).max:
                raise DataError("categorical code beyond int16", field=f"labels.{self.name}")
            v = np.maximum(v, -1).astype(np.int16)
            if len(self.classes) and (v >= len(self.classes)).any():
                raise DataError("categorical code beyond the class list", field=f"labels.{self.name}")
            v[v < 0] = -1
        self.values = v
        self.classes = tuple(self.classes)


@dataclass
class Recording:
    """One subject's recording: streams at their own rates, labels, events, absolute start.

    ``start_time`` is Unix seconds (UTC) of sample 0 of every stream.
    """

    subject: str
    start_time: float
    streams: dict[str, Stream]
    labels: dict[str, LabelTrack] = field(default_factory=dict)
    events: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    id: str = ""

    def __post_init__(self):
        if not self.id:
            self.id = str(self.subject)
        if not np.isfinite(self.start_time):
            raise DataError("start_time is not finite", field="start_time")
        for k, s in self.streams.items():
            if k != s.spec.name:
                raise DataError(f"stream key {k!r} differs from its spec name {s.spec.name!r}", field=k)
        for k, e in list(self.events.items()):
            e = np.asarray(e, dtype=np.float64)
            if e.ndim != 1:
                raise ShapeError("event times must be 1-D", field=f"events.{k}")
            e = e[np.isfinite(e)]
            if (np.diff(e) < 0).any():
                raise DataError("event times are not monotonic", field=f"events.{k}")
            self.events[k] = e

    @property
    def duration_s(self) -> float:
        return max((s.duration_s for s in self.streams.values()), default=0.0)

    @property
    def channels(self) -> list[ChannelSpec]:
        return [s.spec for s in self.streams.values()]

    def stream(self, name: str) -> Stream:
        try:
            return self.streams[name]
        except KeyError:
            raise DataError(f"recording {self.id} has no channel {name!r} "
                            f"(has: {', '.join(self.streams)})", field=name) from None

    def has(self, *names: str) -> bool:
        return all(n in self.streams for n in names)

    def slice_s(self, t0: float, t1: float) -> "Recording":
        """The part between ``t0`` and ``t1`` seconds from start (streams, labels, events)."""
        streams = {}
        for k, s in self.streams.items():
            a, b = int(round(t0 * s.spec.fs_hz)), int(round(t1 * s.spec.fs_hz))
            streams[k] = Stream(s.spec, s.data[a:b], s.valid[a:b])
        labels = {}
        for k, lt in self.labels.items():
            a, b = int(round(t0 * lt.fs_hz)), int(round(t1 * lt.fs_hz))
            labels[k] = dataclasses.replace(lt, values=lt.values[a:b])
        events = {k: e[(e >= t0) & (e < t1)] - t0 for k, e in self.events.items()}
        return Recording(self.subject, self.start_time + t0, streams, labels, events,
                         dict(self.meta), id=f"{self.id}@{t0:g}")


def order_by_modality(specs: list[ChannelSpec]) -> list[ChannelSpec]:
    """Sort channels by modality (LSM's clustered order), keeping order within a modality."""
    rank = {m: i for i, m in enumerate(MODALITY_ORDER)}
    return sorted(specs, key=lambda s: rank.get(s.modality, len(rank)))
