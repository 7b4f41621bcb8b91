"""Tiny paired PPG/ACC windows and a tiny real teacher for the distillation tests."""

from __future__ import annotations

import sys
from pathlib import Path

# pytest puts tests/ on sys.path (rootdir conftest), where tests/distill/ would shadow the
# top-level ``distill`` package as a namespace package; the repo root makes the real one win.
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
if "distill" in sys.modules and getattr(sys.modules["distill"], "__file__", None) is None:
    del sys.modules["distill"]

import numpy as np
import pytest
import torch

from edgefm.data.windows import WRIST_RAW, Windows


def make_windows(n_subjects: int = 4, per_subject: int = 48, seed: int = 0, T: int = 256,
                 fs_hz: float = 32.0) -> Windows:
    """Normalised wrist-raw-like windows: PPG a pulse at the window's HR; ACC carries a weak
    ballistocardiographic component at the same HR plus subject-specific motion noise."""
    rng = np.random.default_rng(seed)
    N = n_subjects * per_subject
    t = np.arange(T) / fs_hz
    hr = rng.uniform(55, 140, N)
    ph = rng.uniform(0, 2 * np.pi, N)
    f = hr / 60.0
    ppg = np.sin(2 * np.pi * f[:, None] * t + ph[:, None]) + 0.1 * rng.standard_normal((N, T))
    acc = np.stack([0.5 * np.sin(2 * np.pi * f[:, None] * t + ph[:, None] + k) + 0.5 * rng.standard_normal((N, T))
                    for k in range(3)], 1)
    x = np.concatenate([ppg[:, None], acc], 1).astype(np.float32)
    subject = np.repeat([f"S{i}" for i in range(n_subjects)], per_subject)
    act = (hr > 100).astype(np.int16)
    return Windows(x=x, mask=np.ones_like(x, bool),
                   labels={"hr": hr.astype(np.float32), "activity": act},
                   subject=subject, start_time=np.arange(N, dtype=np.float64) * 2.0,
                   channels=WRIST_RAW.channels, fs_hz=fs_hz,
                   label_info={"hr": {"kind": "continuous", "unit": "bpm", "classes": []},
                               "activity": {"kind": "categorical", "unit": "", "classes": ["low", "high"]}})


@pytest.fixture(scope="session")
def paired_windows() -> Windows:
    return make_windows()


@pytest.fixture(scope="session")
def tiny_teacher():
    from edgefm.models.lsm_mae import LSMConfig, MaskedAutoencoder, preset_config
    torch.manual_seed(0)
    cfg = LSMConfig(**preset_config("wrist-raw", enc_dim=32, enc_depth=1, enc_heads=2,
                                    dec_dim=32, dec_depth=1, dec_heads=2))
    return MaskedAutoencoder(cfg).eval()
