"""Distributed data-parallel pretraining through ``torchrun``.

``launch(...)`` writes a job file and runs
``python -m torch.distributed.run --standalone --nproc_per_node N -m edgefm.train.ddp JOB``;
each rank joins the process group (NCCL when CUDA is present, gloo on CPU), builds the same
model, and :func:`edgefm.train.pretrain.pretrain` reads its own disjoint shards. Rank 0
writes the checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edgefm.errors import ConfigError
from edgefm.manifest import atomic_write_json


def launch(data: str | Path, out_dir: str | Path, cfg, *, size: str = "tiny", nproc: int = 2,
           resume: bool = False, model_kw: dict | None = None, timeout_s: float | None = None) -> Path:
    """Train with ``nproc`` processes; returns the checkpoint path (``out_dir/teacher.pt``)."""
    if nproc < 1:
        raise ConfigError("nproc must be >= 1", field="nproc")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    job = out_dir / ".ddp_job.json"
    atomic_write_json(job, {"data": str(data), "out": str(out_dir), "size": size, "resume": resume,
                            "train_config": cfg.to_dict(), "model_kw": model_kw or {}})
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "edgefm.train.ddp", str(job)]
    try:
        r = subprocess.run(cmd, env=env, timeout=timeout_s, capture_output=False)
    except subprocess.TimeoutExpired as e:
        raise ConfigError(f"torchrun did not finish within {timeout_s} s", field="nproc") from e
    if r.returncode != 0:
        raise ConfigError(f"torchrun exited with code {r.returncode}", field="nproc",
                          hint="rerun with EDGEFM_DEBUG=1 and read the ranks' tracebacks above")
    job.unlink(missing_ok=True)
    return out_dir / "teacher.pt"


def main(argv=None) -> int:
    import torch
    import torch.distributed as dist

    from edgefm.data.store import WindowDataset
    from edgefm.train.pretrain import TrainConfig, pretrain, teacher_for_dataset

    argv = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(argv[0]).read_text())
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    try:
        cfg = TrainConfig.from_dict(spec["train_config"])
        if dist.get_rank() != 0:
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "progress": False})
        ds = WindowDataset(spec["data"])
        torch.manual_seed(cfg.seed)
        model = teacher_for_dataset(ds, spec["size"], **spec.get("model_kw", {}))
        pretrain(model, ds, cfg, spec["out"], resume=spec["resume"], size=spec["size"])
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
