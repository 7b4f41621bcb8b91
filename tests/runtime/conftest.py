"""Fixtures for the runtime tests: real artifacts of a small model in all four runtimes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/runtime/ (no __init__.py) would otherwise shadow the top-level ``runtime`` package as
# a namespace package under pytest's default import mode: put the repository first.
_REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(_REPO))
if "runtime" in sys.modules and getattr(sys.modules["runtime"], "__file__", None) is None:
    del sys.modules["runtime"]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    from artifacts import export_all
    out = tmp_path_factory.mktemp("artifacts")
    paths = export_all(out)
    paths["dir"] = out
    return paths
