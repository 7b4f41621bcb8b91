"""Session set-up for the robustness suite: the shared inputs live in one temporary folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# the repository root first, so that ``distill``/``runtime`` are the packages, not test folders
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
for _name in ("distill", "runtime"):
    if _name in sys.modules and getattr(sys.modules[_name], "__file__", None) is None:
        del sys.modules[_name]


@pytest.fixture(scope="session", autouse=True)
def robustness_fixtures(tmp_path_factory):
    from tests.robustness import fixtures
    fixtures.configure(tmp_path_factory.mktemp("robustness_fixtures"))
    yield


def run_and_assert(case, tmp_path):
    from tests.robustness.harness import run_case
    o = run_case(case, tmp_path / "sandbox")
    assert o.klass == "ok", str(o)
