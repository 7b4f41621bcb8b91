"""Hypothesis-driven cases: each draws many hostile inputs (random bytes, random names, random
numbers including NaN/inf/huge, random request paths) and runs every draw as a case of its own
(fresh sandbox, same classification). The property holds when every draw ends ``ok``; the first
draw that does not is reported with its outcome. Draws are derandomized: reruns are identical."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.robustness import fixtures as fx
from tests.robustness.cases_demo import HIDDEN, SECRET, _raw, _start, _status, make_site
from tests.robustness.checks import no_valid_beyond
from tests.robustness.harness import Case, Result, run_case

CASES: list[Case] = []


class _Failed(Exception):
    def __init__(self, outcome):
        super().__init__(str(outcome))
        self.outcome = outcome


def _inner(case: Case) -> None:
    """Run one drawn case in its own sandbox (outside the property's own); raise if not ok."""
    tmp = Path(tempfile.mkdtemp(prefix="edgefm-prop-"))
    try:
        o = run_case(case, tmp / "sb")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if o.klass != "ok":
        raise _Failed(o)


def prop(name, owner, strategy, make_case, examples=20, timeout=120):
    """Register a property: for every drawn value ``v``, ``make_case(v)`` (a :class:`Case`) ends ok."""
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              phases=(Phase.explicit, Phase.generate), suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(v):
        _inner(make_case(v))

    def setup(sb):
        def call() -> Result:
            try:
                check()
            except _Failed as f:
                o = f.outcome
                return Result(1, "", "", problem=(o.klass, f"draw {o.case_id}: {o.detail}"))
            return Result(0, "", "")
        return call
    CASES.append(Case(f"property/{name}", "property", setup, "ok", owner=owner, timeout=timeout))


FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1e30, -1e30, 1e300, 5e-324, 65537.0, 2.0 ** 63]))


def _csv_case(text: bytes | str, mapping=None, bound=None, out="d1/d2/d3/out", tag=""):
    def setup(sb):
        fx.make_csv(sb, text, mapping)
        sb.p(out).parent.mkdir(parents=True, exist_ok=True)
        sb.output(out)
        return ["data", "import", "csv", "csvsrc/rec.csv", "--out", out, "--mapping", "csvsrc/map.json"]
    return Case(f"draw/{tag}", "property", setup, "either", no_valid_beyond(bound, out=out) if bound else None)


prop("csv-random-bytes", "D", st.binary(max_size=3000), lambda b: _csv_case(b, tag=repr(b[:40])), examples=15)
prop("csv-random-values", "D", st.lists(FLOATS, min_size=5, max_size=60),
     lambda vs: _csv_case("t,ax,ay,az,state\n" + "".join(f"{20 * k},{v!r},0.0,1.0,rest\n" for k, v in enumerate(vs)),
                          bound=1e6, tag=str(vs[:4])), examples=15)
prop("csv-random-timestamps", "D", st.lists(FLOATS, min_size=2, max_size=40),
     lambda ts: _csv_case("t,ax,ay,az,state\n" + "".join(f"{t!r},1,0,1,rest\n" for t in ts), tag=str(ts[:4])),
     examples=15)


def _chan_mapping(name):
    m = fx.csv_mapping()
    m["columns"]["ax"] = {**m["columns"]["ax"], "channel": name}
    return m


prop("csv-random-channel-names", "D", st.text(min_size=1, max_size=40),
     lambda n: _csv_case(None, _chan_mapping(n), tag=repr(n)), examples=20)
prop("csv-random-label-names", "D", st.text(min_size=1, max_size=40),
     lambda n: _csv_case(None, {**fx.csv_mapping(), "labels": {"state": {"name": n, "kind": "categorical",
                                                                         "classes": ["rest", "walk"]}}},
                         tag=repr(n)), examples=20)


def _e4_case(vals):
    def setup(sb):
        rows = "".join(f"{v!r},0,64\n" for v in vals) + "1,2,64\n" * (32 * 60 - len(vals))
        fx.make_e4(sb, ACC=f"{fx.T0}, {fx.T0}, {fx.T0}\n32, 32, 32\n" + rows)
        sb.output("out")
        return ["data", "import", "e4", "e4src", "--out", "out"]
    return Case(f"draw/{vals[:3]}", "property", setup, "either", no_valid_beyond(1e6))


prop("e4-random-acc-values", "D", st.lists(FLOATS, min_size=1, max_size=32), _e4_case, examples=10)


def _e4_start(t):
    def setup(sb):
        fx.make_e4(sb, ACC=fx.e4_files()["ACC"].replace(str(fx.T0), repr(t)))
        sb.output("out")
        return ["data", "import", "e4", "e4src", "--out", "out"]
    return Case(f"draw/start={t!r}", "property", setup, "either")


prop("e4-random-start-times", "D", FLOATS, _e4_start, examples=20)


def _npy_case(data: bytes):
    def setup(sb):
        fx.put_recordings(sb)
        m = json.loads(sb.p("ds/manifest.json").read_text())
        sb.p(f"ds/recordings/{m['recordings'][0]['dir']}/acc_x.valid.npy").write_bytes(data)
        sb.keep_tree("ds")
        return ["data", "info", "ds"]
    return Case("draw/npy", "property", setup, "either")


prop("dataset-random-npy-bytes", "D",
     st.one_of(st.binary(max_size=400), st.binary(max_size=300).map(lambda b: b"\x93NUMPY\x01\x00" + b)),
     _npy_case, examples=20)


def _device_case(field_value):
    field, value = field_value
    from tests.robustness.cases_device import _base_device, _set

    def setup(sb):
        sb.write("dev.toml", _set(field, _toml_float(value))(_base_device()))
        return ["simulate", "calibrate", "dev.toml"]
    finite_ok = math.isfinite(value) and value > 0
    return Case(f"draw/{field}={value!r}", "property", setup, "either" if finite_ok else "error")


def _toml_float(v: float) -> str:
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(float(v))


prop("device-random-numbers", "C",
     st.tuples(st.sampled_from(["clock_hz", "supply_v", "capacity_mah"]), FLOATS), _device_case, examples=25)


def _budget_case(kv):
    key, value = kv

    def setup(sb):
        sb.write("b.toml", f"{key} = {_toml_float(value)}\n")
        return ["profile", "check-budget", "b.toml"]
    ok = math.isfinite(value) and value >= 0
    return Case(f"draw/{key}={value!r}", "property", setup, "either" if ok else "error")


prop("budget-random-numbers", "C",
     st.tuples(st.sampled_from(["p99_latency_ms", "ram_kb", "battery_days", "max_error"]), FLOATS), _budget_case,
     examples=25)


def _synth_days(d):
    def setup(sb):
        sb.output("out")
        return ["data", "synth", "--out", "out", "--subjects", "3", "--days", repr(d), "--raw-minutes", "4"]
    return Case(f"draw/days={d!r}", "property", setup, "error")


prop("synth-absurd-days", "D", st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e6),
                                          st.sampled_from([math.nan, math.inf, -math.inf])), _synth_days, examples=15)


def _sim_days(d):
    def setup(sb):
        return ["simulate", "run", fx.put_artifact(sb, "tflite"), "--days", repr(d)]
    return Case(f"draw/days={d!r}", "property", setup, "error")


prop("simulate-absurd-days", "C", st.one_of(st.floats(max_value=0.0), st.floats(min_value=1e3),
                                             st.sampled_from([math.nan, math.inf])), _sim_days, examples=15)


def _demo_paths():
    alphabet = st.sampled_from(["/", ".", "..", "%", "%2e", "%2f", "%00", "%zz", "passwd", "outdir", ".hidden",
                                "peek", "app.json", "model", "\\", "?", "#", "%c3", "%28", "~", ":", ";"])
    return st.lists(alphabet, min_size=1, max_size=12).map(lambda parts: "/" + "".join(parts))


def _demo_case(paths):
    def setup(sb):
        site = make_site(sb)

        def call() -> Result:
            import io
            import sys
            from edgefm.pipeline.demo import serve_demo
            cap, old = io.StringIO(), sys.stderr
            sys.stderr = cap
            try:
                srv = _start(serve_demo(site, port=0))
                try:
                    for p in paths:
                        resp = _raw(srv.server_address[1], f"GET {p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                                    .encode("latin-1"))
                        st_ = _status(resp)
                        if SECRET in resp or HIDDEN in resp:
                            return Result(0, "", "", problem=("silently_accepted", f"{p!r} served a secret"))
                        if st_ is None or (st_ >= 500 and st_ != 501):
                            return Result(1, "", "", problem=("traceback", f"{p!r}: status {st_}"))
                finally:
                    srv.shutdown()
                    srv.server_close()
            finally:
                sys.stderr = old
            if "Traceback" in cap.getvalue():
                return Result(1, "", "", problem=("traceback", cap.getvalue()[-300:]))
            return Result(0, "", "")
        return call
    return Case(f"draw/{paths[:3]}", "property", setup, "ok")


prop("demo-random-request-paths", "B", st.lists(_demo_paths(), min_size=1, max_size=8), _demo_case, examples=10)
