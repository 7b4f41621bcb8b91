"""Checkpoint cases: malicious pickles (a ``__reduce__`` that creates a marker file) in every
command that loads a checkpoint (``teacher info/eval/train --resume``, ``distill run/info/eval``,
``export run/verify --reference``, ``profile run`` with and without ``--unverified``,
``compress prune/quantize/tune``), with and without a forged manifest whose sha256 matches;
and truncated, empty, flipped, edited, foreign or manifest-less checkpoints.

Rules: nothing loaded from a file runs code (the marker never appears); a file that would need
arbitrary unpickling is refused with a typed error; a checkpoint whose bytes differ from its
manifest, or that has none, is refused."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import pickle

import numpy as np

from tests.robustness import fixtures as fx
from tests.robustness.harness import Case

CASES: list[Case] = []


def _manifest_of(p):
    return p.with_name(p.stem + ".manifest.json")


def _forge_manifest(p, kind):
    """A manifest whose sha256 matches ``p``: integrity alone cannot stop a malicious file."""
    m = {"schema_version": 1, "artifact": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
         "bytes": p.stat().st_size, "format": "torch-checkpoint", "kind": kind, "versions": {}}
    real = {"edgefm-teacher": fx.teacher, "edgefm-student": fx.student}.get(kind)
    if real is not None and _manifest_of(real()).exists():
        m = {**json.loads(_manifest_of(real()).read_text()), "artifact": p.name, "sha256": m["sha256"],
             "bytes": m["bytes"]}
    _manifest_of(p).write_text(json.dumps(m))


def _torch_save(obj, p):
    import torch
    buf = io.BytesIO()
    torch.save(obj, buf)
    p.write_bytes(buf.getvalue())


def _real_with_payload(kind, marker):
    """The real checkpoint's payload (read here, from our own trusted fixture) plus one hostile
    entry; None when the real file is not a pickled dict (a code-free format)."""
    import torch
    real = {"edgefm-teacher": fx.teacher, "edgefm-student": fx.student}[kind]()
    try:
        ck = torch.load(real, map_location="cpu", weights_only=False)
    except Exception:
        return None
    if not isinstance(ck, dict):
        return None
    return {**ck, "notes": fx.Evil(marker)}


PAYLOADS = {
    # name -> (writer(path, marker, kind), forge manifest?)
    "evil-object": (lambda p, mk, kind: _torch_save(fx.Evil(mk), p), False),
    "evil-in-format-dict": (lambda p, mk, kind: _torch_save(
        {"format": kind, "version": 1, "model_config": fx.Evil(mk), "arch": fx.Evil(mk), "model": fx.Evil(mk)}, p),
        False),
    "evil-in-format-dict-forged-manifest": (lambda p, mk, kind: _torch_save(
        {"format": kind, "version": 1, "model_config": fx.Evil(mk), "arch": fx.Evil(mk), "model": fx.Evil(mk)}, p),
        True),
    "evil-in-real-checkpoint-forged-manifest": (lambda p, mk, kind: _torch_save(
        _real_with_payload(kind, mk) or {"format": kind, "version": 1, "notes": fx.Evil(mk)}, p), True),
    "evil-plain-pickle-forged-manifest": (lambda p, mk, kind: p.write_bytes(pickle.dumps(
        {"format": kind, "version": 1, "model": fx.Evil(mk)}, protocol=2)), True),
}


def _plant(sb, rel, payload, kind):
    p = sb.p(rel)
    p.parent.mkdir(parents=True, exist_ok=True)
    write, forge = PAYLOADS[payload]
    write(p, sb.marker, kind)
    if forge:
        _forge_manifest(p, kind)
    return rel


# command -> (checkpoint kind it loads, owner, argv builder(sb, ckpt_rel) -> argv, where the file goes)
def _windows(sb):
    fx.put_windows(sb)
    sb.keep_tree("ds")
    return "ds"


COMMANDS = {
    "teacher-info": ("edgefm-teacher", "A", "x/teacher.pt", lambda sb, p: ["teacher", "info", p]),
    "teacher-eval": ("edgefm-teacher", "A", "x/teacher.pt",
                     lambda sb, p: ["teacher", "eval", p, _windows(sb), "--out", "e", "--max-windows", "16"]),
    "teacher-train-resume": ("edgefm-teacher", "A", "t/teacher.pt",
                             lambda sb, p: ["teacher", "train", _windows(sb), "--out", "t", "--resume", "--size", "tiny",
                                            "--steps", "2", "--batch-size", "8", "--device", "cpu"]),
    "distill-run-teacher": ("edgefm-teacher", "A", "x/teacher.pt",
                            lambda sb, p: ["distill", "run", _windows(sb), "--teacher", p, "--out", "s.pt",
                                           "--student", "cnn1d_tiny", "--epochs", "1", "--batch-size", "16",
                                           "--max-train", "32"]),
    "distill-info": ("edgefm-student", "A", "x/student.pt", lambda sb, p: ["distill", "info", p]),
    "distill-eval": ("edgefm-student", "A", "x/student.pt",
                     lambda sb, p: ["distill", "eval", p, _windows(sb), "--teacher", fx.put_teacher(sb), "--out", "e",
                                    "--no-baselines", "--seeds", "1", "--fractions", "1", "--probes", "linear"]),
    "export-run": ("edgefm-student", "C", "x/student.pt",
                   lambda sb, p: ["export", "run", p, "--calib", _windows(sb), "--format", "onnx", "--out", "a",
                                  "--n-calib", "16", "--n-heldout", "16"]),
    "export-verify-reference": ("edgefm-student", "C", "x/student.pt",
                                lambda sb, p: ["export", "verify", fx.put_artifact(sb, "onnx"), "--data", _windows(sb),
                                               "--n", "16", "--reference", p]),
    "profile-run": ("edgefm-student", "C", "x/student.pt", lambda sb, p: ["profile", "run", p, "--runs", "2",
                                                                          "--warmup", "1"]),
    "profile-run-unverified": ("edgefm-student", "C", "x/student.pt",
                               lambda sb, p: ["profile", "run", p, "--runs", "2", "--warmup", "1", "--unverified"]),
    "compress-prune": ("edgefm-student", "A", "x/student.pt",
                       lambda sb, p: ["compress", "prune", p, "--data", _windows(sb), "--out", "p.pt",
                                      "--recover-epochs", "0", "--n", "32"]),
    "compress-quantize": ("edgefm-student", "A", "x/student.pt",
                          lambda sb, p: ["compress", "quantize", p, "--calib", _windows(sb), "--n", "16"]),
    "compress-tune": ("edgefm-student", "A", "x/student.pt",
                      lambda sb, p: ["compress", "tune", p, "--calib", _windows(sb), "--n", "16"]),
}


def _evil_case(cmd, payload):
    kind, owner, rel, argv = COMMANDS[cmd]

    def setup(sb):
        _plant(sb, rel, payload, kind)
        return argv(sb, rel)
    return Case(f"checkpoint/{cmd}/{payload}", "checkpoint", setup, "error", owner=owner, timeout=40)


# profile runs each variant in a fresh worker process (seconds each): three payloads there
PROFILE_PAYLOADS = {"profile-run": ("evil-object", "evil-in-real-checkpoint-forged-manifest",
                                    "evil-plain-pickle-forged-manifest"),
                    "profile-run-unverified": ("evil-object", "evil-in-real-checkpoint-forged-manifest")}
for cmd in COMMANDS:
    for payload in PROFILE_PAYLOADS.get(cmd, PAYLOADS):
        CASES.append(_evil_case(cmd, payload))


# ------------------------------------------------------------------ corrupt (not malicious) checkpoints

def _real(kind):
    return {"edgefm-teacher": fx.teacher, "edgefm-student": fx.student}[kind]()


def _copy_real(sb, kind, rel):
    src = _real(kind)
    sb.copy(src, rel)
    if _manifest_of(src).exists():
        sb.copy(_manifest_of(src), str(_manifest_of(sb.p(rel)).relative_to(sb.root)))
    return sb.p(rel)


def _edit_weights(p):
    """Load our own fixture, change one weight, save it again: a file that loads fine but is not
    the one its (now stale) manifest describes."""
    import torch
    ck = torch.load(p, map_location="cpu", weights_only=False)
    for v in ck.values():
        if isinstance(v, dict):
            for t in v.values():
                if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel():
                    t.view(-1)[0] += 1.0
                    _torch_save(ck, p)
                    return
    raise AssertionError("no weight to edit")


def _foreign(p, kind):
    _torch_save({"format": "somebody-else", "version": 7, "weights": np.zeros(3).tolist()}, p)
    _forge_manifest(p, kind)


def _state_dict(p, kind):
    import torch
    _torch_save(collections.OrderedDict(w=torch.zeros(3, 3), b=torch.zeros(3)), p)
    _forge_manifest(p, kind)


def _zip_not_torch(p, kind):
    import zipfile
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("archive/data.pkl", b"not a pickle")
    _forge_manifest(p, kind)


CORRUPT = {
    "truncated": lambda p, kind: fx.truncate(p, 0.5),
    "empty": lambda p, kind: p.write_bytes(b""),
    "flipped-byte": lambda p, kind: fx.flip_byte(p, 0.5),
    "weights-edited-manifest-stale": lambda p, kind: _edit_weights(p),
    "no-manifest": lambda p, kind: _manifest_of(p).unlink(),
    "manifest-not-json": lambda p, kind: _manifest_of(p).write_text("{nope"),
    "manifest-sha-edited": lambda p, kind: fx.edit_json(_manifest_of(p), lambda m: m.__setitem__("sha256", "0" * 64)),
    "random-bytes": lambda p, kind: p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()),
    "foreign-format-forged-manifest": _foreign,
    "plain-state-dict-forged-manifest": _state_dict,
    "zip-not-torch-forged-manifest": _zip_not_torch,
}
CORRUPT_COMMANDS = ("teacher-info", "teacher-eval", "distill-run-teacher", "distill-info", "export-run", "profile-run",
                    "compress-prune")


def _corrupt_case(cmd, corruption):
    kind, owner, rel, argv = COMMANDS[cmd]

    def setup(sb):
        p = _copy_real(sb, kind, rel)
        CORRUPT[corruption](p, kind)
        sb.keep_tree("x")
        return argv(sb, rel)
    return Case(f"checkpoint/{cmd}/{corruption}", "checkpoint", setup, "error", owner=owner, timeout=40)


def _control(cmd):
    kind, owner, rel, argv = COMMANDS[cmd]

    def setup(sb):
        _copy_real(sb, kind, rel)
        sb.keep_tree("x")
        for r in ("e", "a", "s.pt", "s.manifest.json", "p.pt", "p.manifest.json"):
            sb.output(r)
        return argv(sb, rel)
    return Case(f"checkpoint/{cmd}/control-intact", "checkpoint", setup, "ok", owner=owner, timeout=60)


for cmd in CORRUPT_COMMANDS:
    CASES.append(_control(cmd))
    for corruption in CORRUPT:
        if cmd == "profile-run" and corruption in ("foreign-format-forged-manifest", "zip-not-torch-forged-manifest",
                                                   "plain-state-dict-forged-manifest"):
            continue                       # each starts a profiling worker (seconds); other loaders cover them
        CASES.append(_corrupt_case(cmd, corruption))
CASES.append(Case("checkpoint/distill-run-teacher/teacher-folder", "checkpoint",
                  lambda sb: (_copy_real(sb, "edgefm-teacher", "x/teacher.pt"), sb.output("s.pt", "s.manifest.json"),
                              COMMANDS["distill-run-teacher"][3](sb, "x"))[-1], "ok", owner="A", timeout=60))
CASES.append(Case("checkpoint/teacher-info/teacher-folder", "checkpoint",
                  lambda sb: (_copy_real(sb, "edgefm-teacher", "x/teacher.pt"), ["teacher", "info", "x"])[-1], "ok",
                  owner="A"))
CASES.append(Case("checkpoint/teacher-info/folder-without-checkpoint", "checkpoint",
                  lambda sb: (sb.p("x").mkdir(), ["teacher", "info", "x"])[-1], "error", match="x", owner="A"))
CASES.append(Case("checkpoint/distill-info/teacher-given-as-student", "checkpoint",
                  lambda sb: (_copy_real(sb, "edgefm-teacher", "x/teacher.pt"), ["distill", "info", "x/teacher.pt"])[-1],
                  "error", owner="A"))
CASES.append(Case("checkpoint/teacher-info/student-given-as-teacher", "checkpoint",
                  lambda sb: (_copy_real(sb, "edgefm-student", "x/student.pt"), ["teacher", "info", "x/student.pt"])[-1],
                  "error", owner="A"))
