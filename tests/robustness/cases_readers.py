"""Dataset-reader cases: ``data info/plot/window`` and ``teacher train`` on recordings and windows
datasets whose manifest, ``.npy``, ``.valid.npy`` or ``meta.npz`` members are missing, corrupt,
truncated, of the wrong shape, pickled (a payload that would run code), or point outside the
dataset. Each must be a typed error naming the file (or, where marked, a correct result)."""

from __future__ import annotations

import json

import numpy as np

from tests.robustness import fixtures as fx
from tests.robustness.harness import Case

CASES: list[Case] = []


def add(id, setup, expect="error", match=None, owner="D", check=None, timeout=None):
    c = Case(f"reader/{id}", "reader", setup, expect, check, match, owner)
    if timeout:
        c.timeout = timeout
    CASES.append(c)


def _manifest(sb):
    return sb.p("ds/manifest.json")


def _first_rec(sb):
    m = json.loads(_manifest(sb).read_text())
    return sb.p("ds/recordings") / m["recordings"][0]["dir"]


# ------------------------------------------------------------------ corruptions (sb -> None)

def no_manifest(sb):
    _manifest(sb).unlink()


def manifest_text(text):
    def f(sb):
        _manifest(sb).write_bytes(text if isinstance(text, bytes) else text.encode())
    return f


def manifest_edit(fn):
    def f(sb):
        fx.edit_json(_manifest(sb), fn)
    return f


def rec_file(name, action):
    """Do ``action`` ("missing", "garbage", "truncated", "pickle", "2d", "short") to the first
    recording's ``name``."""
    def f(sb):
        p = _first_rec(sb) / name
        _damage(sb, p, action)
    return f


def shard_file(suffix, action, shard="train-00000"):
    def f(sb):
        p = sb.p("ds/shards") / f"{shard}.{suffix}"
        _damage(sb, p, action)
    return f


def _damage(sb, p, action):
    if action == "missing":
        p.unlink()
    elif action == "garbage":
        p.write_bytes(b"\x93NUMPY garbage \x00\xff" * 20)
    elif action == "truncated":
        fx.truncate(p, 0.5)
    elif action == "empty":
        p.write_bytes(b"")
    elif action == "pickle":
        if p.suffix == ".npz":
            fx.evil_npz(p, sb.marker)
        else:
            fx.evil_npy(p, sb.marker)
    elif action == "2d":
        a = np.load(p)
        np.save(p, np.stack([a, a]) if a.ndim == 1 else a[None])
    elif action == "short":
        a = np.load(p)
        np.save(p, a[:10])
    elif action == "extra-channel":
        a = np.load(p)
        np.save(p, np.concatenate([a, a[:, :1]], 1))
    else:
        raise ValueError(action)


def traversal_dir(sb):
    """The first recording's ``dir`` points outside the dataset (at a copy of itself)."""
    rd = _first_rec(sb)
    fx.shutil.copytree(rd, sb.p("outside_secret"))
    fx.edit_json(_manifest(sb), lambda m: m["recordings"][0].__setitem__("dir", "../../outside_secret"))


def traversal_stream(sb):
    rd = _first_rec(sb)
    sb.p("outside_secret").mkdir()
    for suffix in (".npy", ".valid.npy"):
        fx.shutil.copy2(rd / f"acc_x{suffix}", sb.p(f"outside_secret/acc_x{suffix}"))

    def edit(m):
        e = m["recordings"][0]
        e["streams"]["../../../outside_secret/acc_x"] = e["streams"].pop("acc_x")
    fx.edit_json(_manifest(sb), edit)


def traversal_shard(sb):
    sb.p("outside_secret").mkdir()
    for suffix in ("x.npy", "mask.npy", "meta.npz"):
        fx.shutil.copy2(sb.p(f"ds/shards/train-00000.{suffix}"), sb.p(f"outside_secret/t.{suffix}"))
    fx.edit_json(_manifest(sb), lambda m: m["shards"][0].__setitem__("name", "../../outside_secret/t"))


def subject_codes(sb):
    p = sb.p("ds/shards/train-00000.meta.npz")
    d = dict(np.load(p))
    d["subject"] = np.full_like(d["subject"], 99)
    np.savez(p, **d)


# ------------------------------------------------------------------ commands on the dataset

def recordings_cmd(cmd):
    def argv(sb):
        if cmd == "info":
            return ["data", "info", "ds"]
        if cmd == "window":
            sb.output("out")
            return ["data", "window", "ds", "--preset", "wrist-raw", "--out", "out"]
        if cmd == "plot":
            sb.output("p.png")
            return ["data", "plot", "ds", "--out", "p.png", "--seconds", "30"]
        if cmd == "gate":
            sb.output("gate.json", "gate.png")
            return ["gate", "calibrate", "ds", "--out", "gate.json", "--cv", "loso"]
        raise ValueError(cmd)
    return argv


def windows_cmd(cmd):
    def argv(sb):
        if cmd == "info":
            return ["data", "info", "ds"]
        if cmd == "plot":
            sb.output("p.png")
            return ["data", "plot", "ds", "--out", "p.png"]
        if cmd == "teacher":
            sb.output("t")
            return ["teacher", "train", "ds", "--out", "t", "--size", "tiny", "--steps", "1", "--batch-size", "8",
                    "--device", "cpu"]
        raise ValueError(cmd)
    return argv


def on_recordings(corrupt, cmd):
    def setup(sb):
        sb.copy(fx.recordings(), "ds")
        corrupt(sb)
        sb.keep_tree("ds")
        return recordings_cmd(cmd)(sb)
    return setup


def on_windows(corrupt, cmd):
    def setup(sb):
        sb.copy(fx.windows(), "ds")
        corrupt(sb)
        sb.keep_tree("ds")
        return windows_cmd(cmd)(sb)
    return setup


OWNER = {"info": "D", "window": "D", "plot": "D", "teacher": "A", "gate": "B"}

REC = [  # (id, corruption, commands, expect, match)
    ("no-manifest", no_manifest, ("info", "window", "plot"), "error", "manifest"),
    ("manifest-not-json", manifest_text("{not json"), ("info", "window", "plot"), "error", "manifest"),
    ("manifest-is-list", manifest_text("[1, 2, 3]"), ("info", "window", "plot"), "error", "manifest"),
    ("manifest-binary", manifest_text(b"\x00\xff\xfe\x01"), ("info", "window"), "error", "manifest"),
    ("manifest-empty-object", manifest_text("{}"), ("info", "window"), "error", "manifest"),
    ("manifest-no-recordings-key", manifest_edit(lambda m: m.pop("recordings")), ("info", "window", "plot"),
     "error", "manifest|recordings"),
    ("manifest-entry-without-streams", manifest_edit(lambda m: m["recordings"][0].pop("streams")),
     ("info", "window"), "error", "manifest|streams"),
    ("manifest-hours-text", manifest_edit(lambda m: m.__setitem__("hours", "many")), ("info",), "error",
     "manifest|hours"),
    ("manifest-fs-zero", manifest_edit(lambda m: m["recordings"][0]["streams"]["acc_x"].__setitem__("fs_hz", 0)),
     ("window",), "error", "fs_hz|manifest"),
    ("manifest-fs-negative", manifest_edit(lambda m: m["recordings"][0]["streams"]["acc_x"].__setitem__("fs_hz", -32)),
     ("window",), "error", "fs_hz|manifest"),
    ("manifest-duration-1e18", manifest_edit(lambda m: m["recordings"][0].__setitem__("duration_s", 1e18)),
     ("info",), "either", None),
    ("schema-version-999", manifest_edit(lambda m: m.__setitem__("schema_version", 999)), ("info", "window"),
     "error", "schema"),
    ("stream-npy-missing", rec_file("acc_x.npy", "missing"), ("window", "plot"), "error", "acc_x|s000"),
    ("stream-npy-garbage", rec_file("acc_x.npy", "garbage"), ("window", "plot"), "error", "acc_x|s000"),
    ("stream-npy-truncated", rec_file("acc_x.npy", "truncated"), ("window", "plot"), "error", "acc_x|s000"),
    ("stream-npy-pickled-payload", rec_file("acc_x.npy", "pickle"), ("window", "plot"), "error", "acc_x|s000"),
    ("stream-npy-2d", rec_file("acc_x.npy", "2d"), ("window",), "error", "acc_x|s000"),
    ("valid-npy-missing", rec_file("acc_x.valid.npy", "missing"), ("info", "window", "plot"), "error", "acc_x|s000"),
    ("valid-npy-garbage", rec_file("acc_x.valid.npy", "garbage"), ("info", "window"), "error", "acc_x|s000"),
    ("valid-npy-wrong-length", rec_file("acc_x.valid.npy", "short"), ("window", "info"), "error", "acc_x|s000"),
    ("valid-npy-pickled-payload", rec_file("acc_x.valid.npy", "pickle"), ("info", "window"), "error", "acc_x|s000"),
    ("label-npy-missing", rec_file("label.hr.npy", "missing"), ("info", "window"), "error", "hr|s000"),
    ("label-npy-pickled-payload", rec_file("label.activity.npy", "pickle"), ("info", "window"), "error",
     "activity|s000"),
    ("event-npy-garbage", rec_file("event.beats.npy", "garbage"), ("window",), "error", "beats|s000"),
    ("dir-points-outside", traversal_dir, ("info", "window"), "error", "dir|outside|manifest"),
    ("stream-name-points-outside", traversal_stream, ("info", "window"), "error", "outside|unsafe|name|manifest"),
    ("gate-on-corrupt-npy", rec_file("acc_x.npy", "garbage"), ("gate",), "error", "acc_x|s000"),
]

WIN = [
    ("no-manifest", no_manifest, ("info", "plot", "teacher"), "error", "manifest"),
    ("manifest-not-json", manifest_text("{not json"), ("info", "teacher"), "error", "manifest"),
    ("manifest-no-shards-key", manifest_edit(lambda m: m.pop("shards")), ("info", "plot", "teacher"), "error",
     "manifest|shards"),
    ("manifest-no-normalisation", manifest_edit(lambda m: m.pop("normalisation")), ("info", "teacher"), "error",
     "manifest|normalisation"),
    ("normalisation-std-nan", manifest_edit(lambda m: m["normalisation"].__setitem__("std", [float("nan")] * 4)),
     ("teacher",), "error", "normalisation|std"),
    ("normalisation-wrong-length", manifest_edit(lambda m: m["normalisation"].__setitem__("mean", [0.0])),
     ("teacher", "plot"), "error", "normalisation|mean"),
    ("preset-window-negative", manifest_edit(lambda m: m["preset"].__setitem__("window", -1)), ("teacher",),
     "error", "window|preset"),
    ("shard-name-points-outside", traversal_shard, ("info", "teacher"), "error", "shard|outside|unsafe|name|manifest"),
    ("x-npy-missing", shard_file("x.npy", "missing"), ("plot", "teacher"), "error", "train-00000|x.npy|shard"),
    ("x-npy-garbage", shard_file("x.npy", "garbage"), ("plot", "teacher"), "error", "train-00000|shard"),
    ("x-npy-truncated", shard_file("x.npy", "truncated"), ("plot", "teacher"), "error", "train-00000|shard"),
    ("x-npy-empty", shard_file("x.npy", "empty"), ("teacher",), "error", "train-00000|shard"),
    ("x-npy-extra-channel", shard_file("x.npy", "extra-channel"), ("teacher",), "error", "train-00000|shard|channel"),
    ("x-npy-pickled-payload", shard_file("x.npy", "pickle"), ("plot", "teacher"), "error", "train-00000|shard"),
    ("mask-npy-missing", shard_file("mask.npy", "missing"), ("plot", "teacher"), "error", "train-00000|mask|shard"),
    ("meta-npz-missing", shard_file("meta.npz", "missing"), ("info", "plot", "teacher"), "error",
     "train-00000|meta|shard"),
    ("meta-npz-garbage", shard_file("meta.npz", "garbage"), ("info", "plot", "teacher"), "error",
     "train-00000|meta|shard"),
    ("meta-npz-truncated", shard_file("meta.npz", "truncated"), ("info", "teacher"), "error", "train-00000|meta|shard"),
    ("meta-npz-pickled-payload", shard_file("meta.npz", "pickle"), ("info", "plot", "teacher"), "error",
     "train-00000|meta|shard"),
    ("meta-subject-code-out-of-range", subject_codes, ("teacher", "plot"), "error", "subject|train-00000|shard"),
]

for cid, corrupt, cmds, expect, match in REC:
    for cmd in cmds:
        add(f"recordings/{cid}/{cmd}", on_recordings(corrupt, cmd), expect, match, OWNER[cmd])
for cid, corrupt, cmds, expect, match in WIN:
    for cmd in cmds:
        add(f"windows/{cid}/{cmd}", on_windows(corrupt, cmd), expect, match, OWNER[cmd])
for cmd in ("info", "window", "plot"):
    add(f"recordings/control-intact/{cmd}", on_recordings(lambda sb: None, cmd), "ok", owner=OWNER[cmd])
for cmd in ("info", "plot", "teacher"):
    add(f"windows/control-intact/{cmd}", on_windows(lambda sb: None, cmd), "ok", owner=OWNER[cmd])
for cmd in ("info", "plot"):
    add(f"path-is-a-file/{cmd}", lambda sb, cmd=cmd: (sb.keep("ds", b"not a dataset\n"),
                                                      recordings_cmd(cmd)(sb))[-1], "error", "ds")
    add(f"path-missing/{cmd}", lambda sb, cmd=cmd: recordings_cmd(cmd)(sb), "error", "ds")
