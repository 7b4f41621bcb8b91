"""Every robustness case table, in one list (the pytest files and the benchmark use this).

Cases whose id names a ``control`` feed the commands valid input: they prove the set-up works
(a broken fixture would otherwise make every error case pass for the wrong reason) and are
counted under the class ``control``."""

from __future__ import annotations

from tests.robustness import (cases_artifacts, cases_checkpoints, cases_cli, cases_debris, cases_demo, cases_device,
                              cases_importers, cases_outputs, cases_properties, cases_readers)

TABLES = {
    "importer": cases_importers.CASES,
    "reader": cases_readers.CASES,
    "cli_number": cases_cli.CASES,
    "output": cases_outputs.CASES,
    "artifact": cases_artifacts.CASES,
    "checkpoint": cases_checkpoints.CASES,
    "device_budget": cases_device.CASES,
    "demo_server": cases_demo.CASES,
    "debris": cases_debris.CASES,
    "property": cases_properties.CASES,
}

ALL_CASES = [c for cases in TABLES.values() for c in cases]
for _c in ALL_CASES:
    if "/control" in _c.id:
        _c.klass = "control"

_ids = [c.id for c in ALL_CASES]
assert len(_ids) == len(set(_ids)), sorted({i for i in _ids if _ids.count(i) > 1})
