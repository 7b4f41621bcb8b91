"""The 26 per-minute signals of LSM (Narayanswamy et al., ICLR 2025, Table 18), in order.

Ordered by sensor (PPG, ACC, EDA, TEMP, ALT) as LSM lays them out in its sensor matrix.
``edgefm.data.features.minutely_features`` computes them from raw signals.
"""

from __future__ import annotations

from edgefm.data.recording import ChannelSpec

MINUTE_HZ = 1.0 / 60.0

# (name, modality, unit)
_SIGNALS = [
    ("hr", "ppg", "bpm"),
    ("rr_pct_valid", "ppg", "%"),
    ("rr_p80", "ppg", "ms"),
    ("rr_p20", "ppg", "ms"),
    ("rr_median", "ppg", "ms"),
    ("rr_mean", "ppg", "ms"),
    ("rr_entropy", "ppg", "nats"),
    ("rr_diff_entropy", "ppg", "nats"),
    ("pnn30", "ppg", "%"),
    ("rmssd", "ppg", "ms"),
    ("sdnn", "ppg", "ms"),
    ("on_wrist", "ppg", "bool"),
    ("jerk_ratio", "acc", "a.u."),
    ("steps", "acc", "steps"),
    ("log_energy", "acc", "a.u."),
    ("cov_condition", "acc", "a.u."),
    ("log_energy_ratio", "acc", "a.u."),
    ("zc_std", "acc", "s"),
    ("zc_mean", "acc", "s"),
    ("arm_tilt", "acc", "a.u."),
    ("kurtosis", "acc", "a.u."),
    ("sleep_coef", "acc", "a.u."),
    ("scl_value", "eda", "uS"),
    ("scl_slope", "eda", "uS/min"),
    ("skin_temp", "temp", "degC"),
    ("alt_std", "alt", "hPa"),
]

LSM_SIGNALS: tuple[ChannelSpec, ...] = tuple(
    ChannelSpec(name=f"f_{n}", modality=m, unit=u, fs_hz=MINUTE_HZ) for n, m, u in _SIGNALS)
LSM_SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in LSM_SIGNALS)
ACC_SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in LSM_SIGNALS if s.modality == "acc")
PPG_SIGNAL_NAMES: tuple[str, ...] = tuple(s.name for s in LSM_SIGNALS if s.modality == "ppg")
assert len(LSM_SIGNALS) == 26
