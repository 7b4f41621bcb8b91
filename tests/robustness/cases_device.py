"""Device-profile and budget TOML cases: malformed TOML, ``clock_hz`` of inf/nan/0/-1, missing
keys and tables, negative currents, wrong types, unknown keys, binary or missing files; used by
``simulate calibrate/run``, ``profile run --device/--budget``, ``profile check-budget`` and
``pipeline run --device/--budget`` (which must refuse them before any stage runs).

Rule: every reader turns a bad file into a typed error naming the file and the field, before any
work ("0 ms, latency ok" from ``clock_hz = inf`` is the silent failure this guards against)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.robustness import fixtures as fx
from tests.robustness.harness import Case

CASES: list[Case] = []
OWNER = "C"


def _base_device() -> str:
    import firmware_sim
    return (Path(firmware_sim.__file__).parent / "devices" / "nrf52840.toml").read_text()


def _set(key, value, section=None):
    """Replace the first ``key = ...`` line (inside ``[section]`` when given)."""
    def edit(t):
        start = 0
        if section:
            m = re.search(rf"^\[{re.escape(section)}\]\s*$", t, re.M)
            assert m, section
            start = m.end()
        m = re.compile(rf"^{re.escape(key)}\s*=.*$", re.M).search(t, start)
        assert m, key
        return t[:m.start()] + f"{key} = {value}" + t[m.end():]
    return edit


def _drop_line(key, section=None):
    def edit(t):
        return _set(key, "", section)(t).replace(f"{key} = \n", "")
    return edit


def _drop_table(name):
    def edit(t):
        m = re.search(rf"^\[{re.escape(name)}\]\s*$", t, re.M)
        assert m, name
        nxt = re.compile(r"^\[", re.M).search(t, m.end())
        return t[:m.start()] + (t[nxt.start():] if nxt else "")
    return edit


DEVICE = {
    "malformed-toml": lambda t: t.replace("clock_hz = 64_000_000", "clock_hz = = 64"),
    "empty-file": lambda t: "",
    "binary-file": lambda t: b"\x00\xff\x01\x02",
    "clock-inf": _set("clock_hz", "inf"),
    "clock-nan": _set("clock_hz", "nan"),
    "clock-zero": _set("clock_hz", "0"),
    "clock-negative": _set("clock_hz", "-1"),
    "clock-1e30": _set("clock_hz", "1e30"),
    "clock-string": _set("clock_hz", '"64 MHz"'),
    "clock-missing": _drop_line("clock_hz"),
    "battery-table-missing": _drop_table("battery"),
    "cpu-table-missing": _drop_table("cpu"),
    "name-missing": _drop_line("name"),
    "active-current-negative": _set("active_current_ma", "-3.3"),
    "sleep-current-negative": _set("sleep_current_ua", "-3.0"),
    "acc-current-negative": _set("current_ua", "-1.8", "sensors.acc"),
    "ppg-power-nan": _set("power_mw", "nan", "sensors.ppg"),
    "battery-capacity-zero": _set("capacity_mah", "0"),
    "battery-voltage-inf": _set("voltage_v", "inf", "battery"),
    "supply-negative": _set("supply_v", "-3.0"),
    "cycles-per-mac-negative": _set("conv", "-1", "cpu.cycles_per_mac"),
    "cycles-per-mac-inf": _set("dense", "inf", "cpu.cycles_per_mac"),
    "ram-negative": _set("ram_bytes", "-1"),
    "ram-fraction": _set("ram_bytes", "1.5"),
    "ram-string": _set("ram_bytes", '"lots"'),
    "reserved-ram-exceeds-ram": _set("reserved_ram_bytes", "10_000_000"),
    "radio-interval-zero": _set("interval_s", "0", "radio"),
    "unknown-key": lambda t: "turbo_mode = true\n" + t,
    "calibration-anchor-nan": _set("anchor_latency_ms", "nan", "calibration"),
}
# the commands every variant runs through; pipeline (slow to start if it does not refuse) for a few
DEVICE_PIPELINE = ("clock-inf", "clock-zero", "malformed-toml", "battery-table-missing")


def _device_file(sb, variant):
    t = DEVICE[variant](_base_device())
    sb.write("dev.toml", t)
    sb.keep("dev.toml", t if isinstance(t, bytes) else t.encode())
    return "dev.toml"


def _dev_argv(cmd, sb, dev):
    if cmd == "simulate-calibrate":
        return ["simulate", "calibrate", dev]
    if cmd == "simulate-run":
        a = fx.put_artifact(sb, "tflite")
        return ["simulate", "run", a, "--days", "0.05", "--device", dev]
    if cmd == "profile-run":
        a = fx.put_artifact(sb, "tflite")
        return ["profile", "run", a, "--runs", "2", "--warmup", "1", "--device", dev]
    if cmd == "pipeline-run":
        sb.output("run")
        return ["pipeline", "run", "--quick", "--out", "run", "--device", dev]
    raise ValueError(cmd)


def _dev_case(cmd, variant, expect="error"):
    def setup(sb):
        dev = _device_file(sb, variant) if variant else "nrf52840"
        return _dev_argv(cmd, sb, dev)
    owner = "B" if cmd == "pipeline-run" else OWNER
    return Case(f"device_budget/device/{cmd}/{variant or 'control-builtin'}", "device_budget", setup, expect,
                match=None if expect != "error" else r"dev\.toml|device", owner=owner, timeout=40)


for variant in DEVICE:
    for cmd in ("simulate-calibrate", "simulate-run", "profile-run"):
        CASES.append(_dev_case(cmd, variant))
    if variant in DEVICE_PIPELINE:
        CASES.append(_dev_case("pipeline-run", variant))
for cmd in ("simulate-calibrate", "simulate-run", "profile-run"):
    CASES.append(_dev_case(cmd, None, "ok"))
CASES.append(Case("device_budget/device/simulate-calibrate/control-valid-copy", "device_budget",
                  lambda sb: (sb.write("dev.toml", _base_device()), ["simulate", "calibrate", "dev.toml"])[-1], "ok",
                  owner=OWNER))
for name, dev in (("name-dotdot", "../../etc/passwd"), ("name-empty", ""), ("name-unknown", "toaster"),
                  ("path-missing", "missing.toml"), ("path-is-directory", "adir.toml")):
    def setup(sb, dev=dev):
        if dev == "adir.toml":
            sb.p("adir.toml").mkdir()
        return ["simulate", "calibrate", dev]
    CASES.append(Case(f"device_budget/device/simulate-calibrate/{name}", "device_budget", setup, "error",
                      owner=OWNER))

# ------------------------------------------------------------------ budgets

BUDGET_OK = 'policy = "gated-ppg-off"\np99_latency_ms = 1000.0\n'
BUDGET = {
    "malformed-toml": "p99_latency_ms = = 3\n",
    "empty-file": "",
    "binary-file": b"\x00\x01\xff",
    "limit-nan": "p99_latency_ms = nan\n",
    "limit-inf": "p99_latency_ms = inf\n",
    "limit-overflow-1e400": "ram_kb = 1e400\n",
    "limit-negative": "battery_days = -7.0\n",
    "limit-string": 'ram_kb = "lots"\n',
    "limit-bool": "flash_kb = true\n",
    "unknown-key": "p99_latency_ms = 20.0\nlatency_p99 = 5\n",
    "budget-table-unknown-key": "[budget]\np99_latency_ms = 20.0\nbogus = 1\n",
    "device-unknown": 'device = "toaster"\np99_latency_ms = 20.0\n',
    "device-dotdot": 'device = "../../../etc/passwd"\np99_latency_ms = 20.0\n',
    "device-number": "device = 5\np99_latency_ms = 20.0\n",
    "policy-list": 'policy = ["a"]\nbattery_days = 1.0\n',
}
BUDGET_PIPELINE = ("limit-nan", "unknown-key", "malformed-toml")


def _budget_case(cmd, variant, expect="error"):
    def setup(sb):
        text = BUDGET[variant] if variant else BUDGET_OK
        sb.keep("b.toml", text if isinstance(text, bytes) else text.encode())
        if cmd == "check-budget":
            return ["profile", "check-budget", "b.toml"]
        if cmd == "profile-run":
            return ["profile", "run", fx.put_artifact(sb, "tflite"), "--runs", "2", "--warmup", "1",
                    "--budget", "b.toml"]
        sb.output("run")
        return ["pipeline", "run", "--quick", "--out", "run", "--budget", "b.toml"]
    owner = "B" if cmd == "pipeline-run" else OWNER
    return Case(f"device_budget/budget/{cmd}/{variant or 'control-valid'}", "device_budget", setup, expect,
                match=None if expect != "error" else r"b\.toml|budget|device", owner=owner, timeout=40)


for variant in BUDGET:
    for cmd in ("check-budget", "profile-run"):
        CASES.append(_budget_case(cmd, variant))
    if variant in BUDGET_PIPELINE:
        CASES.append(_budget_case("pipeline-run", variant))
for cmd in ("check-budget", "profile-run"):
    CASES.append(_budget_case(cmd, None, "ok"))
for name, path in (("missing", "nope.toml"), ("directory", "bdir")):
    def setup(sb, path=path):
        if path == "bdir":
            sb.p("bdir").mkdir()
        return ["profile", "check-budget", path]
    CASES.append(Case(f"device_budget/budget/check-budget/path-{name}", "device_budget", setup, "error",
                      match=path, owner=OWNER))
