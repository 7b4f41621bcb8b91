"""Time `edgefm pipeline run --quick` (and, with --default, the default preset) end to end.

    python benchmarks/bench_pipeline.py            # quick preset only (< 3 min goal)
    python benchmarks/bench_pipeline.py --default  # also the default preset (< 15 min goal)

Runs the real CLI in a fresh run directory each time (nothing skipped) and writes
`benchmarks/results/pipeline.json` with `quick_seconds`, `default_seconds`, `command`, and
the headline figures of each run's report.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "pipeline.json"


def run(preset: str, out: Path) -> dict:
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "edgefm.cli.main", "pipeline", "run", "--out", str(out)] + \
          (["--quick"] if preset == "quick" else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    sys.stderr.write(r.stderr[-4000:])
    if r.returncode != 0:
        return {"seconds": seconds, "ok": False, "error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    rep = json.loads((out / "report" / "report.json").read_text())
    stages = {s: json.loads((out / s / "stage.json").read_text()) for s in rep["stage_seconds"]}
    head = {"stage_seconds": rep["stage_seconds"], "sections": {
        k: rep["sections"].get(k) for k in ("distil", "gate", "battery", "budget")}}
    head["export"] = stages["export"]["summary"].get("artifacts")
    head["latency"] = stages["profile"]["summary"].get("latency")
    return {"seconds": seconds, "ok": True, "headline": head}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--default", action="store_true", help="also time the default preset (up to 15 min)")
    ap.add_argument("--skip-quick", action="store_true", help="keep the stored quick result (with --default)")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench"), help="where the runs go")
    a = ap.parse_args()
    old = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    res = {"command": "python benchmarks/bench_pipeline.py" + (" --default" if a.default else "")}
    kept = old.get("commands_of_kept_sections", {})

    def keep(section):  # a section this run did not redo keeps the command that made it
        res.setdefault("commands_of_kept_sections", {})[section] = kept.get(section) or old.get("command")

    if a.skip_quick and "quick" in old:
        res["quick_seconds"], res["quick"] = old.get("quick_seconds"), old["quick"]
        keep("quick")
    else:
        q = run("quick", Path(a.out) / "quick")
        res["quick_seconds"] = round(q["seconds"], 1) if q["ok"] else None
        res["quick"] = q
    if a.default:
        d = run("default", Path(a.out) / "default")
        res["default_seconds"] = round(d["seconds"], 1) if d["ok"] else None
        res["default"] = d
    else:
        res["default_seconds"] = old.get("default_seconds")
        if "default" in old:
            res["default"] = old["default"]
            keep("default")
    print(json.dumps({k: res[k] for k in ("quick_seconds", "default_seconds", "command")}, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(res, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
