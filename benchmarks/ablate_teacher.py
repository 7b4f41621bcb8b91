"""Teacher training ablations (issue 3): short proxies for the 15-minute benchmark run.

Trains a Tiny teacher with the benchmark's model options (linear residual, decoder baseline,
local-mean context 5/15/45, context residual, L1 loss, bf16, no stretch, lr 2e-3, batch 32) on a
synthetic cohort for a short budget, then scores it on the validation and test subjects of that
cohort the way ``bench_teacher.py`` scores its headline: interpolation gains vs linear pooled over
every gap placement on the patch grid (30 and 60 min), extrapolation 10-30 min. Prints one JSON
line and writes ``OUT/res.json``; it is not a result file (the goals live in ``bench_teacher``).

    python benchmarks/ablate_teacher.py /tmp/abl/default --minutes 8 --threads 1
    python benchmarks/ablate_teacher.py /tmp/abl/gaps --minutes 8 --threads 1 --span-max 0.2 \\
        --mask-mix random=0.2,temporal=0.1,interpolate=0.4,extrapolate=0.3

Two proxies run side by side on a 2-core machine (``--threads 1`` each); compare runs made that way
with each other only (the step count follows the machine's load).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_teacher as bt  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="run directory (teacher.pt, res.json)")
    ap.add_argument("--minutes", type=float, default=8.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--subjects", type=int, default=60)
    ap.add_argument("--days", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=0, help="model init and training seed")
    ap.add_argument("--mask-mix", default="", help="TrainConfig.mask_mix as KIND=WEIGHT,... (default: its default)")
    ap.add_argument("--span-max", type=float, default=0.4, help="TrainConfig.span_frac = (0, MAX)")
    ap.add_argument("--max-windows", type=int, default=396)
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "edgefm_bench_teacher")
    ap.add_argument("--eval-only", action="store_true", help="score OUT/teacher.pt again")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from edgefm.train import TrainConfig, load_teacher, parse_mask_mix, pretrain, teacher_for_dataset

    ds = bt.synth_minutely(args.work, args.subjects, args.days)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.eval_only:
        torch.manual_seed(args.seed)
        model = teacher_for_dataset(ds, "tiny", residual="linear", loss="l1", decoder_sees_baseline=True,
                                    decoder_context=(5, 15, 45), context_residual=True)
        mix = {"mask_mix": parse_mask_mix(args.mask_mix)} if args.mask_mix else {}
        cfg = TrainConfig(steps=100_000, max_minutes=args.minutes, batch_size=32, lr=2e-3, bf16=True,
                          stretch=(1.0, 1.0), span_frac=(0.0, args.span_max), seed=args.seed, progress=False, **mix)
        pretrain(model, ds, cfg, args.out, size="tiny")
    t = load_teacher(args.out / "teacher.pt")
    res = {"command": "python benchmarks/ablate_teacher.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "steps": t.meta["step"], "train_seconds": t.meta["train_seconds"]}
    for split in ("val", "test"):                    # each split loaded once, every headline task on it
        x, mask, _, gap_len = bt._heldout(t, ds, split, args.max_windows)
        g = bt.headline_gains(bt.headline_sums(t, x, mask, gap_len))
        res.update({f"{split}_{k}": g[k] for k in bt.HEADLINE})
    (args.out / "res.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
