"""Benchmark: generate the 100-subject, one-day synthetic cohort through the CLI.

    python benchmarks/bench_synth.py [--subjects 100] [--days 1] [--out DIR] [--keep]

Runs exactly ``edgefm data synth --subjects N --days D --out DIR``, prints and saves
``seconds`` (wall clock of that command), ``bytes`` (size on disk of the cohort directory),
per-part bytes, the CPU seconds it used (command + workers; on a contended machine
``cpu_seconds / 2`` estimates the uncontended 2-core time) and the ``command`` to
``benchmarks/results/synth.json``. Goal (issue 2):
100 subjects x 1 day in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=100)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=None, help="cohort directory (default: a temp dir, removed)")
    ap.add_argument("--keep", action="store_true", help="keep the cohort directory")
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "synth.json")
    a = ap.parse_args(argv)
    tmp = None
    if a.out is None:
        tmp = Path(tempfile.mkdtemp(prefix="edgefm-synth-"))
        out = tmp / "cohort"
    else:
        out = a.out
    days = f"{a.days:g}"
    cli = ["edgefm", "data", "synth", "--subjects", str(a.subjects), "--days", days, "--out", str(out)]
    exe = shutil.which("edgefm") or str(Path(sys.executable).with_name("edgefm"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([exe, *cli[1:]], check=True, env=env)
    seconds = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the CLI and its worker processes
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    load = os.getloadavg()[0]
    size = dir_bytes(out)
    parts = {p.name: dir_bytes(p) for p in sorted(out.iterdir()) if p.is_dir()}
    res = {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),          # user+sys of the command and its workers
        "load_avg_1min_after": round(load, 2),  # > 2 on 2 cores means the timing is contended
        "bytes": size,
        "parts_bytes": parts,
        "subjects": a.subjects,
        "days": a.days,
        "goal_seconds": 120,
        "cpus": os.cpu_count(),
        "command": "python benchmarks/bench_synth.py" + ("" if (a.subjects, a.days) == (100, 1.0)
                                                          else f" --subjects {a.subjects} --days {days}"),
        "cli": " ".join(cli[:-1] + ["DIR"]),
    }
    print(json.dumps(res, indent=2))
    a.results.parent.mkdir(parents=True, exist_ok=True)
    a.results.write_text(json.dumps(res, indent=2) + "\n")
    if tmp is not None and not a.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


if __name__ == "__main__":
    main()
