"""The deployable model and the student checkpoint.

``deployable(student, hr_head)``: ``(B, 3, T)`` normalised ACC -> ``(B, 1)`` heart rate in bpm
(student encoder + HR head, no projection). This is what gets pruned, quantized, exported.

``save_student(path, student, hr_head, input_spec=..., teacher=...)`` writes a self-describing
checkpoint (format ``edgefm-student``: state dicts plus the configs that rebuild them, no pickled
objects) plus ``NAME.manifest.json``; ``load_student(path)`` rebuilds everything from the file
alone, after checking the manifest's sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from distill.students import student_from_config
from edgefm.errors import EdgefmError, ManifestError

FORMAT = "edgefm-student"
VERSION = 1


class LinearHead(nn.Linear):
    """HR head: ``(B, E) -> (B, 1)`` bpm; a ridge probe's weights with standardisation folded in."""


class MLPHead(nn.Module):
    """HR head: standardise -> Linear -> ReLU -> Linear -> de-standardise; ``(B, E) -> (B, 1)`` bpm.

    The standardisations are plain multiply/add (int8-friendly).
    """

    def __init__(self, d_in: int, hidden: int):
        super().__init__()
        self.register_buffer("mu", torch.zeros(d_in))
        self.register_buffer("sd", torch.ones(d_in))
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.register_buffer("y_mu", torch.zeros(()))
        self.register_buffer("y_sd", torch.ones(()))

    def forward(self, e):
        return self.net((e - self.mu) / self.sd) * self.y_sd + self.y_mu


def head_from_probe(probe) -> nn.Module:
    """Turn a fitted regression probe (``RidgeProbe`` or ``MLPProbe``) into a head module."""
    from distill.probes import MLPProbe, RidgeProbe
    if isinstance(probe, RidgeProbe):
        lin = probe.to_module()
        head = LinearHead(lin.in_features, 1)
        head.load_state_dict(lin.state_dict())
        return head
    if isinstance(probe, MLPProbe):
        m = probe.to_module()
        head = MLPHead(m.net[0].in_features, m.net[0].out_features)
        with torch.no_grad():
            head.mu.copy_(m.mu); head.sd.copy_(m.sd)
            head.net.load_state_dict(m.net.state_dict())
            head.y_mu.fill_(m.y_mu); head.y_sd.fill_(m.y_sd)
        return head
    raise ManifestError(f"cannot make an HR head from {type(probe).__name__}", field="hr_head")


def _head_spec(head: nn.Module) -> dict:
    if isinstance(head, LinearHead) or type(head) is nn.Linear:
        return {"kind": "linear", "d_in": head.in_features}
    if isinstance(head, MLPHead):
        return {"kind": "mlp", "d_in": head.net[0].in_features, "hidden": head.net[0].out_features}
    raise ManifestError(f"unsupported HR head {type(head).__name__} (use head_from_probe)", field="hr_head")


def _head_from_spec(spec: dict) -> nn.Module:
    if spec["kind"] == "linear":
        return LinearHead(spec["d_in"], 1)
    if spec["kind"] == "mlp":
        return MLPHead(spec["d_in"], spec["hidden"])
    raise ManifestError(f"unknown HR head kind {spec['kind']!r}", field="hr_head.kind")


class Deployable(nn.Module):
    """``x: (B, C_acc, T)`` normalised ACC at the input spec's rate -> ``(B, 1)`` heart rate (bpm)."""

    def __init__(self, encoder: nn.Module, hr_head: nn.Module):
        super().__init__()
        self.encoder, self.hr_head = encoder, hr_head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hr_head(self.encoder(x))


def deployable(student: nn.Module, hr_head: nn.Module) -> Deployable:
    """Encoder + HR head, eval mode, without the distillation projection (nothing unused ships)."""
    import copy
    enc = copy.deepcopy(student)
    if hasattr(enc, "projector"):
        enc.projector = nn.Identity()   # project() is never called by the deployable graph
    m = Deployable(enc, copy.deepcopy(hr_head))
    return m.eval()


def save_student(path: str | Path, student: nn.Module, hr_head: nn.Module, *, input_spec: dict,
                 teacher: dict | None = None, metrics: dict | None = None, extra: dict | None = None) -> Path:
    """Write the student + HR head checkpoint atomically with its manifest.

    input_spec: {preset, channels (student input names), fs_hz, window, hop,
                 normalisation {mean, std} for exactly those channels}.
    teacher: {path, sha256, config} of the teacher it was distilled from (None for baselines).
    """
    path = Path(path)
    norm = input_spec.get("normalisation", {})
    if len(norm.get("mean", [])) != len(input_spec.get("channels", [])) or \
            len(norm.get("std", [])) != len(input_spec.get("channels", [])):
        raise ManifestError("input_spec.normalisation must give one mean and std per input channel",
                            field="input_spec.normalisation")
    from edgefm.train.checkpoint import plain_data as _plain, save_torch_checkpoint
    info = getattr(student, "distill_info", {}) or {}
    payload = {
        "format": FORMAT, "version": VERSION,
        "arch": student.arch, "student_config": student.config.to_dict(),
        "student": student.state_dict(), "hr_head_spec": _head_spec(hr_head),
        "hr_head": hr_head.state_dict(), "input_spec": _plain(input_spec),
        "output_spec": {"name": "heart_rate", "unit": "bpm", "shape": [1]},
        "teacher": _plain(teacher), "metrics": _plain(metrics or {}),
        "distill": _plain(dict(info)), **_plain(extra or {})}
    return save_torch_checkpoint(path, payload, {
        "format": "torch-checkpoint", "kind": FORMAT, "source": {"teacher": teacher,
                                                                  "arch": student.arch,
                                                                  "config": student.config.to_dict()},
        "input_spec": input_spec, "output_spec": payload["output_spec"],
        "quantization": {"dtype": "float32"}, "metrics": metrics or {},
        "params": int(student.num_params()), "macs": int(student.macs())})


@dataclass
class LoadedStudent:
    student: nn.Module        # encoder with its projection (for retrieval / further distillation)
    hr_head: nn.Module
    input_spec: dict
    meta: dict                # teacher, metrics, distill info, path, sha256

    def deployable(self) -> Deployable:
        return deployable(self.student, self.hr_head)


def student_from_checkpoint(ck: dict) -> LoadedStudent:
    """Rebuild a student from a checkpoint dict read by :func:`edgefm.train.checkpoint.read_torch_checkpoint`."""
    try:
        student = student_from_config(ck["arch"], ck["student_config"])
        student.load_state_dict(ck["student"])
        head = _head_from_spec(ck["hr_head_spec"])
        head.load_state_dict(ck["hr_head"])
        input_spec = dict(ck["input_spec"])
    except (KeyError, RuntimeError, TypeError, ValueError, EdgefmError) as e:
        msg = e.one_line() if isinstance(e, EdgefmError) else f"{type(e).__name__}: {e}"
        raise ManifestError(f"checkpoint does not rebuild: {msg}"[:300], path=ck["path"], field="student") from None
    student.eval(); head.eval()
    meta = {k: ck.get(k) for k in ("teacher", "metrics", "distill", "output_spec", "arch", "student_config",
                                   "path", "sha256", "unverified")}
    return LoadedStudent(student, head, input_spec, meta)


def load_student(path: str | Path, *, unverified: bool | None = None) -> LoadedStudent:
    """Rebuild a student checkpoint written by :func:`save_student`; typed errors on bad files.

    ``unverified``: accept a file without a manifest (``meta["unverified"]`` then says so); None
    follows :func:`edgefm.train.checkpoint.accept_unverified`."""
    from edgefm.train.checkpoint import read_torch_checkpoint
    ck = read_torch_checkpoint(path, {FORMAT: VERSION}, "student", unverified=unverified,
                               hint_missing="make one with `edgefm distill run`",
                               hint_corrupt="the file is corrupted; re-run the distillation")
    return student_from_checkpoint(ck)
