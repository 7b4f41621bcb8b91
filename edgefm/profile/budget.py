"""Budget files: what a firmware CI gates on.

    # budget.toml
    device = "nrf52840"            # device for the target rows (the CLI's --device wins)
    variant = "student_int8.tflite" # host variant the p99 row applies to (default: fastest int8)
    policy = "gated-ppg-off"       # policy the battery row applies to
    p99_latency_ms = 20.0          # host p99 of that variant
    target_latency_ms = 500.0      # simulated worst case per hop on the device
    ram_kb = 200                   # simulated RAM (arena + buffers + reserved)
    flash_kb = 900                 # simulated flash (model + runtime + reserved)
    battery_days = 7.0             # projected battery life under `policy`
    min_accuracy = 0.8             # a metric in the variant's manifest `verification` block ...
    accuracy_metric = "accuracy"   # ... named here (higher is better)
    max_error = 8.0                # or an error metric (lower is better), e.g. HR MAE in bpm
    error_metric = "hr_mae_bpm"
    int8_p99_abs_err = 1.0         # p99 per-window |int8 - fp32 eager| in output units (bpm), per int8 artifact
    int8_min_agreement = 0.99      # fraction of windows where an int8 class artifact's argmax = fp32's

The int8 rows read each int8 artifact's manifest ``verification`` block, written when it was
exported and verified in its runtime (``abs_err.p99``, ``agreement``; nothing is recomputed).
A figure that is not there — no int8 artifact (fp32-only run), a class model under
``int8_p99_abs_err`` or a regression model under ``int8_min_agreement``, an artifact exported
before these figures existed — gives a row that says so and fails.

Unknown keys are refused with one line listing the known ones, before anything runs; every
limit must be a finite number >= 0 (``inf``/``nan`` are refused, naming the file and key).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from edgefm.errors import ConfigError

_NUM = ("p99_latency_ms", "target_latency_ms", "ram_kb", "flash_kb", "battery_days", "min_accuracy",
        "max_error", "int8_p99_abs_err", "int8_min_agreement")
_STR = ("device", "variant", "policy", "accuracy_metric", "error_metric")


@dataclass(frozen=True)
class Budget:
    device: str | None = None
    variant: str | None = None
    policy: str = "gated-ppg-off"
    p99_latency_ms: float | None = None
    target_latency_ms: float | None = None
    ram_kb: float | None = None
    flash_kb: float | None = None
    battery_days: float | None = None
    min_accuracy: float | None = None
    accuracy_metric: str = "accuracy"
    max_error: float | None = None
    error_metric: str = "hr_mae_bpm"
    int8_p99_abs_err: float | None = None
    int8_min_agreement: float | None = None
    path: str = ""

    def __post_init__(self):
        for k in _NUM:
            v = getattr(self, k)
            if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                      and math.isfinite(v) and v >= 0):
                raise ConfigError(f"must be a finite number >= 0, got {v!r}", path=self.path or None, field=k)
        if self.int8_min_agreement is not None and self.int8_min_agreement > 1:
            raise ConfigError(f"is a fraction of windows in [0, 1], got {self.int8_min_agreement!r}",
                              path=self.path or None, field="int8_min_agreement")
        for k in _STR:
            v = getattr(self, k)
            if v is not None and not isinstance(v, str):
                raise ConfigError(f"must be a string, got {v!r}", path=self.path or None, field=k)

    @property
    def needs_device(self) -> bool:
        return any(getattr(self, k) is not None for k in ("target_latency_ms", "ram_kb", "flash_kb", "battery_days"))


KNOWN_KEYS = tuple(f.name for f in fields(Budget) if f.name != "path")


def load_budget(path: str | Path) -> Budget:
    """Parse and validate a budget TOML (top-level keys or a ``[budget]`` table)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("budget file not found" if not path.exists() else "not a file", path=path)
    try:
        d = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"not valid TOML ({(str(e).splitlines() or [type(e).__name__])[0]})", path=path) from e
    except OSError as e:
        raise ConfigError(f"cannot read ({e.strerror or type(e).__name__})", path=path) from e
    if set(d) == {"budget"} and isinstance(d["budget"], dict):
        d = d["budget"]
    unknown = sorted(set(d) - set(KNOWN_KEYS))
    if unknown:
        raise ConfigError(f"unknown budget key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                          f"(known: {', '.join(KNOWN_KEYS)})", path=path, field=unknown[0])
    if not d:
        raise ConfigError("the budget file sets nothing", path=path, hint=f"known keys: {', '.join(KNOWN_KEYS)}")
    return Budget(**d, path=str(path))


@dataclass
class BudgetRow:
    """One check: ``measured`` vs ``limit`` (``direction`` "max" = measured must not exceed)."""

    name: str
    measured: float | None
    limit: float
    unit: str
    direction: str = "max"
    note: str = ""

    @property
    def passed(self) -> bool:
        if self.measured is None:
            return False
        return self.measured <= self.limit if self.direction == "max" else self.measured >= self.limit

    def to_dict(self) -> dict:
        return {"name": self.name, "measured": self.measured, "limit": self.limit, "unit": self.unit,
                "direction": self.direction, "passed": self.passed, "note": self.note}


def _metric(manifest: dict, key: str):
    for block in (manifest.get("verification"), (manifest.get("verification") or {}).get("metrics")
                  if isinstance(manifest.get("verification"), dict) else None, manifest.get("metrics")):
        if isinstance(block, dict) and isinstance(block.get(key), (int, float)):
            return float(block[key])
    # export verification stores the task metric as ``mae`` in the output's unit: an HR model's
    # ``mae`` with output unit bpm *is* ``hr_mae_bpm``
    ver = manifest.get("verification")
    unit = (manifest.get("output_spec") or {}).get("unit")
    if key == "hr_mae_bpm" and unit == "bpm" and isinstance(ver, dict) and isinstance(ver.get("mae"), (int, float)):
        return float(ver["mae"])
    return None


def _is_classes(manifest: dict) -> bool:
    """Whether the manifest's output is class logits (``output_spec.kind == "classes"``)."""
    spec = manifest.get("output_spec")
    return isinstance(spec, dict) and spec.get("kind") == "classes"


def _int8_figure(name: str, manifest: dict, key: str) -> tuple[float | None, str, str]:
    """(figure, unit, note) of one int8 artifact's stored verification for budget key ``key``:
    ``abs_err.p99`` (regression outputs) or ``agreement`` (class outputs). The figure is None,
    and the note says why, where the manifest does not have it."""
    ver = manifest.get("verification") if isinstance(manifest.get("verification"), dict) else {}
    out = manifest.get("output_spec") if isinstance(manifest.get("output_spec"), dict) else {}
    classes, unit = _is_classes(manifest), str(out.get("unit") or "")
    if key == "int8_p99_abs_err":
        if classes:
            return None, unit, f"{name} outputs classes: bound it with int8_min_agreement"
        v = ver.get("abs_err").get("p99") if isinstance(ver.get("abs_err"), dict) else None
    else:
        if not classes:
            return None, "", f"{name} is a regression output: bound it with int8_p99_abs_err"
        v, unit = ver.get("agreement"), ""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        what = "abs_err.p99" if key == "int8_p99_abs_err" else "agreement"
        return None, unit, f"no verification.{what} in {name}'s manifest (re-export it)"
    return float(v), unit, f"verified at export on {ver.get('n', '?')} held-out windows"


def int8_rows(budget: Budget, artifacts: list[tuple[str, dict]]) -> list[BudgetRow]:
    """One row per int8 artifact (``(name, manifest)`` pairs) for each int8 key that is set;
    one failing row saying so when there is no int8 artifact at all."""
    rows: list[BudgetRow] = []
    for key, direction in (("int8_p99_abs_err", "max"), ("int8_min_agreement", "min")):
        limit = getattr(budget, key)
        if limit is None:
            continue
        if not artifacts:
            rows.append(BudgetRow(key, None, limit, "", direction,
                                  note="no int8 artifact among the profiled variants (fp32-only run?)"))
        for name, man in artifacts:
            v, unit, note = _int8_figure(name, man, key)
            rows.append(BudgetRow(f"{key} ({name})", v, limit, unit, direction, note=note))
    return rows


def check_budget(budget: Budget, *, variant_row: dict | None, sim: dict | None, manifest: dict,
                 int8_artifacts: list[tuple[str, dict]] | None = None) -> list[BudgetRow]:
    """Rows for every budget key that is set, plus the device's own limits when simulated.

    ``int8_artifacts``: ``(name, manifest)`` of every int8 artifact profiled, for the
    ``int8_p99_abs_err`` / ``int8_min_agreement`` rows (None: the variant's own ``manifest`` when
    it is int8)."""
    rows: list[BudgetRow] = []
    vname = variant_row["name"] if variant_row else "no variant"
    if budget.p99_latency_ms is not None:
        rows.append(BudgetRow(f"p99_latency_ms ({vname}, host)",
                              variant_row.get("p99_ms") if variant_row else None, budget.p99_latency_ms, "ms",
                              note="" if variant_row and variant_row.get("p99_ms") is not None else "not measured"))
    if sim is not None:
        if budget.target_latency_ms is not None:
            rows.append(BudgetRow(f"target_latency_ms ({sim['device']})", sim["worst_case_latency_ms"],
                                  budget.target_latency_ms, "ms"))
        if budget.ram_kb is not None:
            rows.append(BudgetRow(f"ram_kb ({sim['device']})", sim["ram"]["total_bytes"] / 1024, budget.ram_kb, "KiB"))
        if budget.flash_kb is not None:
            rows.append(BudgetRow(f"flash_kb ({sim['device']})", sim["flash"]["total_bytes"] / 1024,
                                  budget.flash_kb, "KiB"))
        if budget.battery_days is not None:
            days = sim["battery_days"].get(budget.policy)
            rows.append(BudgetRow(f"battery_days ({budget.policy})", days, budget.battery_days, "days", "min",
                                  note="" if days is not None else
                                  f"no policy {budget.policy!r} (have {', '.join(sim['battery_days'])})"))
        rows.append(BudgetRow(f"device RAM limit ({sim['device']})", sim["ram"]["total_bytes"] / 1024,
                              sim["ram"]["limit_bytes"] / 1024, "KiB"))
        rows.append(BudgetRow(f"device flash limit ({sim['device']})", sim["flash"]["total_bytes"] / 1024,
                              sim["flash"]["limit_bytes"] / 1024, "KiB"))
        rows.append(BudgetRow(f"hop deadline ({sim['device']})", sim["worst_case_latency_ms"],
                              sim["deadline_ms"], "ms"))
    elif budget.needs_device:
        for k in ("target_latency_ms", "ram_kb", "flash_kb", "battery_days"):
            if getattr(budget, k) is not None:
                rows.append(BudgetRow(k, None, getattr(budget, k), "", note="no simulation (no device or model)"))
    if budget.min_accuracy is not None:
        v = _metric(manifest, budget.accuracy_metric)
        rows.append(BudgetRow(f"min_accuracy ({budget.accuracy_metric})", v, budget.min_accuracy, "", "min",
                              note="" if v is not None else f"{budget.accuracy_metric!r} not in {vname}'s manifest"))
    if budget.max_error is not None:
        v = _metric(manifest, budget.error_metric)
        rows.append(BudgetRow(f"max_error ({budget.error_metric})", v, budget.max_error, "", "max",
                              note="" if v is not None else f"{budget.error_metric!r} not in {vname}'s manifest"))
    if int8_artifacts is None:
        q = manifest.get("quantization") if isinstance(manifest.get("quantization"), dict) else {}
        int8_artifacts = [(vname, manifest)] if q.get("dtype") == "int8" else []
    rows += int8_rows(budget, int8_artifacts)
    return rows
