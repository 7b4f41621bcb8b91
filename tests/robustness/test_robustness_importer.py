"""Robustness cases of the table 'importer' (tests/robustness/cases.py): each must end as it expects."""

import pytest

from tests.robustness.cases import TABLES
from tests.robustness.harness import run_case


@pytest.mark.parametrize("case", TABLES["importer"], ids=lambda c: c.id)
def test_importer(case, tmp_path):
    o = run_case(case, tmp_path / "sandbox")
    assert o.klass == "ok", str(o)
