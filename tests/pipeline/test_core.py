"""Stage orchestration: hashing, skipping, --from, atomic failure, progress lines."""

from __future__ import annotations

import io
import json

import pytest
from rich.console import Console

from edgefm.errors import ConfigError, DataError
from edgefm.pipeline.core import Stage, StageError, read_stage, run_stages


def _console():
    buf = io.StringIO()
    return Console(file=buf, width=200), buf


def make_stages(calls: list, a_value: int = 1, fail_b: bool = False):
    def a(ctx, inputs):
        calls.append("a")
        (ctx.dir / "a.txt").write_text(str(ctx.params["v"]))
        return {"v": ctx.params["v"]}

    def b(ctx, inputs):
        calls.append("b")
        if fail_b:
            (ctx.dir / "partial.txt").write_text("half")
            raise DataError("broken input", field="x")
        v = int((inputs["a"].dir / "a.txt").read_text())
        (ctx.dir / "b.txt").write_text(str(v * 10))
        return {"v": v * 10}

    def c(ctx, inputs):
        calls.append("c")
        return {"sum": inputs["a"].summary["v"] + inputs["b"].summary["v"]}

    return [Stage("a", a, (), {"v": a_value}, eta_s=1), Stage("b", b, ("a",), {}, eta_s=1),
            Stage("c", c, ("a", "b"), {}, eta_s=1)]


def test_runs_then_skips_unchanged(tmp_path):
    calls = []
    con, buf = _console()
    recs = run_stages(make_stages(calls), tmp_path, console=con)
    assert calls == ["a", "b", "c"]
    assert recs["c"].summary == {"sum": 11}
    m = json.loads((tmp_path / "b" / "stage.json").read_text())
    assert set(m) >= {"input_hash", "output_hash", "params", "inputs", "outputs", "summary", "seconds"}
    assert m["inputs"] == {"a": recs["a"].output_hash}
    assert m["outputs"]["b.txt"]["bytes"] == 2
    assert "ETA" in buf.getvalue()
    calls.clear()
    recs2 = run_stages(make_stages(calls), tmp_path, console=con)
    assert calls == [] and all(r.skipped for r in recs2.values())
    assert "skipped" in buf.getvalue()


def test_changed_param_reruns_dependents_only(tmp_path):
    calls = []
    run_stages(make_stages(calls), tmp_path, console=_console()[0])
    calls.clear()
    recs = run_stages(make_stages(calls, a_value=2), tmp_path, console=_console()[0])
    assert calls == ["a", "b", "c"]
    assert recs["c"].summary == {"sum": 22}


def test_from_stage_forces_rerun(tmp_path):
    calls = []
    run_stages(make_stages(calls), tmp_path, console=_console()[0])
    calls.clear()
    run_stages(make_stages(calls), tmp_path, from_stage="b", console=_console()[0])
    assert calls == ["b", "c"]
    with pytest.raises(ConfigError, match="unknown stage"):
        run_stages(make_stages(calls), tmp_path, from_stage="zzz", console=_console()[0])


def test_tampered_output_reruns(tmp_path):
    calls = []
    run_stages(make_stages(calls), tmp_path, console=_console()[0])
    (tmp_path / "a" / "a.txt").write_text("7")       # same size, different content
    calls.clear()
    recs = run_stages(make_stages(calls), tmp_path, console=_console()[0])
    assert calls[0] == "a" and recs["a"].summary == {"v": 1}


def test_failed_stage_leaves_no_folder_and_keeps_previous(tmp_path):
    calls = []
    with pytest.raises(StageError, match="stage b failed: DataError") as ei:
        run_stages(make_stages(calls, fail_b=True), tmp_path, console=_console()[0])
    assert "--from b" in str(ei.value)
    assert (tmp_path / "a" / "stage.json").exists()
    assert not (tmp_path / "b").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]     # no temp leftovers
    assert read_stage(tmp_path, "b") is None
    calls.clear()
    recs = run_stages(make_stages(calls), tmp_path, console=_console()[0])
    assert calls == ["b", "c"] and recs["a"].skipped       # a kept, resumes at b


def test_dependency_order_checked(tmp_path):
    st = make_stages([])
    with pytest.raises(ConfigError, match="depends on"):
        run_stages([st[1], st[0]], tmp_path, console=_console()[0])


def test_a_stage_sees_the_same_random_state_whatever_ran_before(tmp_path):
    """A model built in a stage before its training loop seeds itself must come out the same."""
    import numpy as np
    import torch

    def draw(ctx, inputs):
        return {"torch": float(torch.randn(3).sum()), "numpy": float(np.random.rand())}

    first = run_stages([Stage("a", draw, (), {"seed": 3}, eta_s=1)], tmp_path / "r1", console=_console()[0])["a"].summary
    torch.randn(1000), np.random.rand(1000)          # whatever ran before in the process
    again = run_stages([Stage("a", draw, (), {"seed": 3}, eta_s=1)], tmp_path / "r2", console=_console()[0])["a"].summary
    other = run_stages([Stage("a", draw, (), {"seed": 4}, eta_s=1)], tmp_path / "r3", console=_console()[0])["a"].summary
    assert first == again and first != other
