from __future__ import annotations

import numpy as np
import pytest

from quantize.sqnr import SQNR_CAP_DB, sqnr_db


def test_sqnr_matches_definition():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=1000)
    noise = 0.01 * rng.normal(size=1000)
    expected = 10 * np.log10(np.sum(ref ** 2) / np.sum(noise ** 2))
    assert sqnr_db(ref, ref + noise) == pytest.approx(expected, rel=1e-9)
    assert sqnr_db(ref, ref) == SQNR_CAP_DB
    assert sqnr_db(ref, 0.5 * ref) == pytest.approx(10 * np.log10(4.0), rel=1e-9)
    with pytest.raises(ValueError):
        sqnr_db(ref, ref[:10])
