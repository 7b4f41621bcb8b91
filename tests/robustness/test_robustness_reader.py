"""Robustness cases of the table 'reader' (tests/robustness/cases.py): each must end as it expects."""

import pytest

from tests.robustness.cases import TABLES
from tests.robustness.harness import run_case


@pytest.mark.parametrize("case", TABLES["reader"], ids=lambda c: c.id)
def test_reader(case, tmp_path):
    o = run_case(case, tmp_path / "sandbox")
    assert o.klass == "ok", str(o)
