"""Shared fixtures. Tests use tiny models and small data and assert real numbers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("EDGEFM_SHARED_DATA", REPO.parent / "shared" / "data"))

requires_shared_data = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"real recordings not found at {SHARED_DATA} (../shared/data)")


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory) -> Path:
    """A small synthetic cohort (8 subjects, 6 h each), generated once per test session."""
    from edgefm.data.synth import SynthConfig, synthesize
    out = tmp_path_factory.mktemp("cohort") / "tiny"
    return synthesize(SynthConfig(subjects=8, days=0.25, seed=1, raw_minutes=6.0, freezing_fraction=0.5), out)
