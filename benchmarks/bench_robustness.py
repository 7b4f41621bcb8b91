"""Run the adversarial robustness suite (tests/robustness) and count how each case ended.

    python benchmarks/bench_robustness.py                  # every case -> benchmarks/results/robustness.json
    python benchmarks/bench_robustness.py --only importer  # cases whose id contains a substring (no file written)

Each case is one hostile input to an edgefm command (a corrupt file, an absurd number, an output
that would destroy user data, a malicious checkpoint, a request to the demo server ...), run
in-process by tests/robustness/harness.py and classified as ``ok`` or one of: traceback,
silently_accepted, leftover, outside_write, code_executed, data_deleted, untyped_error,
refused_valid, wrong_error, timeout, harness_error. The issue's acceptance: ``cases`` >= 300 and
``tracebacks``, ``silently_accepted``, ``leftovers``, ``outside_writes``, ``code_executed``,
``data_deleted`` all 0.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("OMP_NUM_THREADS", "1")

RESULT = REPO / "benchmarks" / "results" / "robustness.json"
COMMAND = "python benchmarks/bench_robustness.py"
KEYS = {"traceback": "tracebacks", "silently_accepted": "silently_accepted", "leftover": "leftovers",
        "outside_write": "outside_writes", "code_executed": "code_executed", "data_deleted": "data_deleted"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", default=[], help="run only cases whose id contains this")
    ap.add_argument("--out", type=Path, default=RESULT, help="result JSON (not written with --only)")
    ap.add_argument("--quiet", action="store_true", help="no line per case")
    ap.add_argument("--details", action="store_true", help="also show how passing cases ended (the error line)")
    a = ap.parse_args(argv)

    import torch
    torch.set_num_threads(1)
    from tests.robustness import fixtures
    from tests.robustness.cases import ALL_CASES
    from tests.robustness.harness import run_all

    cases = [c for c in ALL_CASES if not a.only or any(s in c.id for s in a.only)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgefm-robustness-") as tmp:
        fixtures.configure(Path(tmp) / "fixtures")

        def show(o):
            if not a.quiet:
                mark = "ok  " if o.klass == "ok" else "FAIL"
                why = f"  [{o.klass}] {o.detail[:240]}" if o.klass != "ok" else (f"  {o.detail[:200]}" if a.details else "")
                print(f"{mark} {o.seconds:6.2f}s {o.case_id}{why}", flush=True)

        outs = run_all(cases, Path(tmp) / "cases", progress=show)
    seconds = time.perf_counter() - t0
    owner = {c.id: c.owner for c in cases}
    klass_of = {c.id: c.klass for c in cases}
    counts = collections.Counter(o.klass for o in outs)
    by_class: dict[str, dict] = {}
    for o in outs:
        d = by_class.setdefault(klass_of[o.case_id], {"cases": 0, "ok": 0, "failed": 0})
        d["cases"] += 1
        d["ok" if o.klass == "ok" else "failed"] += 1
    failures = [{"id": o.case_id, "outcome": o.klass, "owner": owner[o.case_id], "exit_code": o.exit_code,
                 "detail": o.detail[:400]} for o in outs if o.klass != "ok"]
    res = {"command": COMMAND, "cases": len(outs), "ok": counts.get("ok", 0),
           **{v: counts.get(k, 0) for k, v in KEYS.items()},
           "outcomes": dict(sorted(counts.items())), "by_class": by_class,
           "failures": failures, "seconds": round(seconds, 1),
           "failures_by_owner": {k: sorted(f["id"] for f in failures if f["owner"] == k)
                                 for k in sorted({f["owner"] for f in failures})}}
    print(f"{len(outs)} cases in {seconds:.0f} s: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if not a.only:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
