"""Debris cases: what a killed writer leaves (``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*`` of a process
that no longer runs). The next writer of NAME removes them; a live writer's temporary is kept;
nothing ever reads one as a result (``demo build`` must not package an ``.onnx`` from a killed
export stage, ``profile`` must not measure one)."""

from __future__ import annotations

import json
import os

from tests.robustness import fixtures as fx
from tests.robustness.harness import Case

CASES: list[Case] = []


def dead_pid() -> int:
    """The id of a process that has exited (forked and reaped here)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _stale(sb, name: str, kind: str = "tmp", pid: int | None = None) -> str:
    """A stale temporary of ``name`` (relative) with a file in it; returns its relative path."""
    parent, base = os.path.split(name)
    rel = os.path.join(parent, f".{base}.{kind}-{pid or dead_pid()}-x1y2z3")
    sb.write(f"{rel}/half-written.bin", b"\x00" * 64)
    return rel


def _writer_case(name, owner, argv_fn, out, kind="tmp"):
    def setup(sb):
        argv = argv_fn(sb)
        stale = _stale(sb, out, kind)
        sb.output(out, stale)
        return argv

    def check(sb, res):
        left = [p.name for p in sb.p(out).parent.iterdir() if p.name.startswith(f".{os.path.basename(out)}.")]
        return ("leftover", f"stale temporaries left beside {out}: {left}") if left else None
    CASES.append(Case(f"debris/{name}", "debris", setup, "ok", check=check, owner=owner, timeout=60))


def _import(sb):
    fx.make_e4(sb)
    return ["data", "import", "e4", "e4src", "--out", "out"]


def _window(sb):
    fx.put_recordings(sb)
    return ["data", "window", "ds", "--preset", "wrist-raw", "--out", "out"]


def _synth(sb):
    return ["data", "synth", "--out", "out", "--subjects", "3", "--days", "0.01", "--raw-minutes", "4"]


def _export(sb):
    fx.put_student(sb)
    fx.put_windows(sb)
    return ["export", "run", "student/student.pt", "--calib", "ds", "--format", "onnx", "--out", "out",
            "--n-calib", "16", "--n-heldout", "16"]


def _simulate(sb):
    return ["simulate", "run", fx.put_artifact(sb, "tflite"), "--days", "0.05", "--out", "out"]


_writer_case("data-import-removes-stale-tmp", "D", _import, "out")
_writer_case("data-import-removes-stale-old", "D", _import, "out", kind="old")
_writer_case("data-window-removes-stale-tmp", "D", _window, "out")
_writer_case("data-synth-removes-stale-tmp", "D", _synth, "out")
_writer_case("export-run-removes-stale-tmp", "C", _export, "out")
_writer_case("simulate-run-removes-stale-tmp", "C", _simulate, "out")


def _live_tmp(sb):
    fx.make_e4(sb)
    live = _stale(sb, "out", pid=os.getpid())        # this process is alive: a concurrent writer
    sb.precious.append(sb.p(live) / "half-written.bin")
    sb.output("out")
    return ["data", "import", "e4", "e4src", "--out", "out"]


CASES.append(Case("debris/data-import-keeps-live-writers-tmp", "debris", _live_tmp, "ok", owner="D"))


def _run_with_stale_export(sb, real: bool):
    """A pipeline-shaped run folder whose export stage was killed: its ``.onnx`` lies in the
    stage's temporary folder (``run/.export.tmp-DEAD-*``) and, with ``real``, a finished one too."""
    a = fx.put_artifact(sb, "onnx", "stage")
    stale = _stale(sb, "run/export")
    for f in sb.p("stage").iterdir():
        target = sb.p(stale) / (f.name.replace("student", "student_int8_qdq"))
        target.write_bytes(f.read_bytes())
    if real:
        sb.p("run/export").mkdir(parents=True, exist_ok=True)
        for f in sb.p("stage").iterdir():
            (sb.p("run/export") / f.name).write_bytes(f.read_bytes())
    fx.put_json(sb, "gate.json", fx.gate_config())
    fx.put_json(sb, "device.json", fx.device_summary())
    fx.put_json(sb, "trace.json", fx.trace_json())
    return a


def _demo_from_stale(real):
    def setup(sb):
        _run_with_stale_export(sb, real)
        sb.keep_tree("run")
        sb.output("demo")
        return ["demo", "build", "run", "--gate", "gate.json", "--device-json", "device.json", "--trace",
                "trace.json", "--out", "demo"]
    return setup


def _packaged_real(sb, res):
    app = json.loads(sb.p("demo/app.json").read_text())
    return None if "qdq" not in app["model"] else f"packaged {app['model']} from a killed stage's temporary folder"


CASES.append(Case("debris/demo-build-only-onnx-in-stale-tmp", "debris", _demo_from_stale(False), "error", owner="B"))
CASES.append(Case("debris/demo-build-ignores-stale-tmp", "debris", _demo_from_stale(True), "ok", check=_packaged_real,
                  owner="B"))


def _profile_run_dir(sb):
    _run_with_stale_export(sb, True)
    sb.keep_tree("run")
    return ["profile", "run", "run", "--runs", "2", "--warmup", "1"]


CASES.append(Case("debris/profile-run-dir-ignores-stale-tmp", "debris", _profile_run_dir, "ok",
                  check=lambda sb, res: ("profiled an artifact inside a killed writer's temporary folder"
                                         if "qdq" in res.stdout + res.stderr else None), owner="C", timeout=60))
