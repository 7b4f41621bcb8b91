"""The two jobs behind ``edgefm distill run`` and ``edgefm distill eval`` (and the pipeline).

``run_distillation(data, teacher, out)``: distil a student from a teacher checkpoint on a
windows dataset, fit the HR head (linear or MLP probe, chosen on the val split) on the train
split's labels, and write the self-describing student checkpoint.
``run_evaluation(student_ckpt, data, teacher, out_dir)``: held-out evaluation with baselines,
written as a report directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from distill.data import acc_channels, acc_view, embed_student, label, load_split, open_dataset
from distill.deploy import head_from_probe, load_student, save_student
from distill.distill import DistillConfig, distill
from distill.evaluate import EmbeddedSplit, fit_best_regressor
from distill.students import DEFAULT_STUDENT, build_student
from edgefm.errors import ConfigError, DataError
from edgefm.manifest import sha256_file


def _load_teacher(teacher):
    if isinstance(teacher, (str, Path)):
        from edgefm.train.checkpoint import load_teacher, teacher_path
        path = teacher_path(teacher)
        return load_teacher(path), path
    return teacher, None


def input_spec_for(ds, channels) -> dict:
    """The deployable model's input spec: preset, ACC channels, rate, window, their normalisation."""
    names = list(ds.channel_names)
    idx = [names.index(c) for c in channels]
    return {"preset": ds.manifest["preset"]["preset"], "channels": list(channels), "fs_hz": ds.fs_hz,
            "window": ds.window, "hop": ds.hop, "window_s": ds.window / ds.fs_hz, "hop_s": ds.hop / ds.fs_hz,
            "normalisation": {"mean": [float(ds.mean[0, i, 0]) for i in idx],
                              "std": [float(ds.std[0, i, 0]) for i in idx]},
            "dataset_manifest_sha256": sha256_file(Path(ds.path) / "manifest.json")}


def run_distillation(data, teacher, out, *, student: str = DEFAULT_STUDENT,
                     config: DistillConfig = DistillConfig(), hr_label: str = "hr") -> Path:
    """Distil, fit the HR head, save; returns the checkpoint path (``out``)."""
    ds = open_dataset(data)
    teacher, tpath = _load_teacher(teacher)
    if not hasattr(teacher, "embed"):
        raise ConfigError("teacher has no embed(x, mask, channels=...)", field="teacher")
    missing = [c for c in config.teacher_channels if c not in ds.channel_names]
    if missing:
        raise DataError(f"dataset lacks the teacher's channels {missing}", path=ds.path, field="channels")
    chans = acc_channels(ds.channel_names)
    D = int(teacher.cfg.enc_dim) if hasattr(teacher, "cfg") else None
    s = build_student(student, in_channels=len(chans), window=ds.window,
                      **({"teacher_dim": D} if D else {}))
    distill(s, teacher, ds, config)
    if hr_label not in ds.labels:
        raise DataError(f"dataset has no {hr_label!r} label to fit the heart-rate head", path=ds.path,
                        field=hr_label, hint="distil on a dataset with heart-rate labels (wrist-raw with hr)")
    tr, va = load_split(ds, "train"), load_split(ds, "val")
    e_tr = EmbeddedSplit(embed_student(s, acc_view(tr, chans)), {hr_label: label(tr, hr_label)}, tr.subject)
    e_va = EmbeddedSplit(embed_student(s, acc_view(va, chans)), {hr_label: label(va, hr_label)}, va.subject)
    probe, sel = fit_best_regressor(e_tr, e_va, hr_label)
    metrics = {"hr_head": sel["probe"], "hr_mae_val_bpm": sel["val_mae"],
               "distill_best_val_loss": s.distill_info["best_val_loss"]}
    teacher_info = {"path": str(tpath) if tpath else None, "sha256": sha256_file(tpath) if tpath else None,
                    "config": teacher.cfg.to_dict() if hasattr(teacher, "cfg") else None,
                    "unverified": bool((getattr(teacher, "meta", None) or {}).get("unverified"))}
    return save_student(out, s, head_from_probe(probe), input_spec=input_spec_for(ds, chans),
                        teacher=teacher_info, metrics=metrics)


def run_evaluation(student_ckpt, data, teacher, out_dir, *, baselines: bool = True,
                   fractions=(0.01, 0.1, 1.0), seeds=(0, 1, 2), epochs: int = 10,
                   max_windows: dict | None = None, probes=("linear", "mlp"),
                   overwrite: bool = False) -> dict:
    """Evaluate a student checkpoint on ``data``'s held-out subjects, with baselines trained on the
    same data (same architecture), and write the report to ``out_dir``. Returns the results."""
    from distill.baselines import MaskedPretrainConfig, pretrain_masked
    from distill.experiment import CompareConfig, compare, load_normalised
    from distill.report import write_report
    from distill.students import student_from_config
    ld = load_student(student_ckpt)
    teacher, _ = _load_teacher(teacher)
    ds = open_dataset(data)
    chans = acc_channels(ds.channel_names)
    if list(chans) != list(ld.input_spec["channels"]):
        raise DataError(f"dataset ACC channels {list(chans)} differ from the student's "
                        f"{ld.input_spec['channels']}", path=ds.path, field="channels")
    st = ld.student
    d = (ld.meta.get("distill") or {})
    if "target_mean" in d:
        st.distill_info = {"target_mean": np.asarray(d["target_mean"]), "target_std": np.asarray(d["target_std"])}
    new = lambda: student_from_config(ld.meta["arch"], ld.meta["student_config"])
    ssl = None
    if baselines:
        tr = load_normalised(ds, "train", max_n=(max_windows or {}).get("train"))
        va = load_normalised(ds, "val", max_n=(max_windows or {}).get("val"))
        ssl = pretrain_masked(new(), acc_view(tr, chans), MaskedPretrainConfig(epochs=epochs),
                              x_val=acc_view(va, chans))
    results, preds, _ = compare(st, teacher, ds, ssl_encoder=ssl, make_encoder=new if baselines else None,
                                config=CompareConfig(fractions=tuple(fractions), seeds=tuple(seeds),
                                                     max_windows=max_windows, probes=tuple(probes)))
    report = {"student": {"name": f"{ld.meta['arch']} ({Path(student_ckpt).name})",
                          "params": st.num_params(), "macs": st.macs(),
                          "unverified": bool(ld.meta.get("unverified"))},
              "datasets": {Path(ds.path).name: results}}
    write_report(report, out_dir, {Path(ds.path).name: preds}, overwrite=overwrite)
    return report
