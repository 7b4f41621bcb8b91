"""Artifact cases: exported ``.onnx``/``.tflite``/``.pte``/``.cc`` files with a flipped byte,
truncated, empty or random; with the manifest missing, unreadable, or with edited fields; run
through ``profile run``, ``simulate run`` and ``export verify``.

Rules: integrity is always on (sha256 against the manifest; no manifest is an error unless
``--unverified``, and then the report says so); ``profile`` exits 1 when any variant is refused
or fails; ``export verify`` compares against an independent reference and checks the manifest's
input spec against the artifact, so an edited ``fs_hz``, ``window``, channel list or
normalisation fails; absurd manifest numbers are typed errors, never allocations."""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from tests.robustness import fixtures as fx
from tests.robustness.checks import says
from tests.robustness.harness import Case

CASES: list[Case] = []


def _m(a):
    return a.with_name(a.stem + ".manifest.json")


def _rehash(a):
    fx.edit_json(_m(a), lambda m: m.__setitem__("sha256", hashlib.sha256(a.read_bytes()).hexdigest()))


def _spec(fn):
    def edit(a):
        fx.edit_json(_m(a), lambda m: fn(m["input_spec"]))
    return edit


def _random(a):
    a.write_bytes(np.random.default_rng(0).integers(0, 256, a.stat().st_size, dtype=np.uint8).tobytes())


def _ref(a):
    return a.with_name(a.stem + ".reference.npz")


def _symlink_manifest(a):
    other = a.with_name("other.manifest.json")
    m = json.loads(_m(a).read_text())
    m["sha256"] = "f" * 64
    other.write_text(json.dumps(m))
    _m(a).unlink()
    _m(a).symlink_to(other.name)


def _replace(p, old, new):
    t = p.read_text()
    if old not in t:
        raise AssertionError(f"{p.name} has no {old!r} to edit")
    p.write_text(t.replace(old, new))


def _channels(s):
    s["channels"] = list(reversed(s["channels"])) if isinstance(s["channels"][0], str) else \
        [{**c, "name": n} for c, n in zip(s["channels"], ("acc_z", "acc_y", "acc_x"))]


CORRUPT = {
    "flipped-byte": lambda a: fx.flip_byte(a, 0.5),
    "flipped-header-byte": lambda a: fx.flip_byte(a, 0.01),
    "truncated": lambda a: fx.truncate(a, 0.5),
    "empty": lambda a: a.write_bytes(b""),
    "random-bytes": _random,
    "no-manifest": lambda a: _m(a).unlink(),
    "manifest-sha-edited": lambda a: fx.edit_json(_m(a), lambda m: m.__setitem__("sha256", "0" * 64)),
    "manifest-sha-missing": lambda a: fx.edit_json(_m(a), lambda m: m.pop("sha256")),
    "manifest-not-json": lambda a: _m(a).write_text("{oops"),
    "manifest-is-list": lambda a: _m(a).write_text("[]"),
    "manifest-binary": lambda a: _m(a).write_bytes(b"\x00\xff\x00"),
    "manifest-symlink-elsewhere": _symlink_manifest,
    "flipped-byte-rehashed": lambda a: (fx.flip_byte(a, 0.5), _rehash(a)),
    "random-bytes-rehashed": lambda a: (_random(a), _rehash(a)),
    "manifest-fs-1e9": _spec(lambda s: s.__setitem__("fs_hz", 1e9)),
    "manifest-fs-nan": lambda a: _replace(_m(a), '"fs_hz": 32.0', '"fs_hz": NaN'),
    "manifest-window-negative": _spec(lambda s: s.__setitem__("window", -1)),
    "manifest-window-1e12": _spec(lambda s: s.__setitem__("window", 10**12)),
    "manifest-fs-64": _spec(lambda s: s.__setitem__("fs_hz", 64.0)),
    "manifest-window-512": _spec(lambda s: s.__setitem__("window", 512)),
    "manifest-normalisation-shifted": _spec(lambda s: s["normalisation"].__setitem__(
        "mean", [v + 1.0 for v in s["normalisation"]["mean"]])),
    "manifest-channels-renamed": _spec(_channels),
    "reference-missing": lambda a: _ref(a).unlink(),
    "reference-corrupt": lambda a: fx.flip_byte(_ref(a), 0.5),
    "reference-pickled-payload": None,          # set in _setup (needs the sandbox marker)
    "reference-pickled-payload-rehashed": None,
}

ALWAYS = ("flipped-byte", "flipped-header-byte", "truncated", "empty", "random-bytes", "no-manifest",
          "manifest-sha-edited", "manifest-sha-missing", "manifest-not-json", "manifest-is-list", "manifest-binary",
          "manifest-symlink-elsewhere", "random-bytes-rehashed")
# corruption -> expectation per command ("error", "either"); absent = not run for that command
EXPECT = {
    "profile": {**{c: "error" for c in ALWAYS}, "flipped-byte-rehashed": "either", "manifest-fs-1e9": "either",
                "manifest-window-negative": "either", "manifest-window-1e12": "error"},
    "simulate": {**{c: "error" for c in ALWAYS}, "flipped-byte-rehashed": "either", "manifest-fs-1e9": "error",
                 "manifest-fs-nan": "error", "manifest-window-negative": "error", "manifest-window-1e12": "error",
                 "manifest-fs-64": "either"},
    "verify": {**{c: "error" for c in ALWAYS}, "flipped-byte-rehashed": "either", "manifest-fs-1e9": "error",
               "manifest-fs-nan": "error", "manifest-window-negative": "error", "manifest-window-1e12": "error",
               "manifest-fs-64": "error", "manifest-window-512": "error", "manifest-normalisation-shifted": "error",
               "manifest-channels-renamed": "error", "reference-missing": "either", "reference-corrupt": "error",
               "reference-pickled-payload": "error", "reference-pickled-payload-rehashed": "error"},
}
FORMATS = {"profile": ("onnx", "tflite", "pte"), "simulate": ("onnx", "tflite"), "verify": fx.FORMATS}
OWNER = "C"


def _argv(cmd, a):
    if cmd == "profile":
        return ["profile", "run", a, "--runs", "2", "--warmup", "1"]
    if cmd == "simulate":
        return ["simulate", "run", a, "--days", "0.05"]
    return ["export", "verify", a, "--data", "ds", "--n", "16"]


def _setup(cmd, fmt, corruption, extra=()):
    def setup(sb):
        a = sb.p(fx.put_artifact(sb, fmt))
        if cmd == "verify":
            fx.put_windows(sb)
            sb.keep_tree("ds")
        if corruption and corruption.startswith("reference") and not _ref(a).exists():
            # an exporter that stores no reference: the hostile file is simply there
            if corruption != "reference-missing":
                fx.evil_npz(_ref(a), sb.marker, {"x": np.zeros((2, 3, 256), np.float32)}, key="y")
        elif corruption and corruption.startswith("reference-pickled-payload"):
            real = dict(np.load(_ref(a)))                  # every stored array, one of them hostile
            fx.evil_npz(_ref(a), sb.marker, real, key=sorted(real)[0])
            if corruption.endswith("rehashed"):        # the manifest's reference sha256 forged too
                fx.edit_json(_m(a), lambda m: m["reference"].__setitem__(
                    "sha256", hashlib.sha256(_ref(a).read_bytes()).hexdigest()))
        elif corruption:
            CORRUPT[corruption](a)
        sb.keep_tree("art")
        return [*_argv(cmd, a.relative_to(sb.root)), *extra]
    return setup


# profiling a .pte starts a worker that imports ExecuTorch (seconds): for .pte only the corruptions
# that must be refused before anything runs
SLOW = {("profile", "pte")}
MATCH = r"student|model_data|manifest|sha256|\.onnx|\.tflite|\.pte|\.cc"

for cmd, table in EXPECT.items():
    for fmt in FORMATS[cmd]:
        slow = (cmd, fmt) in SLOW
        if not slow:
            CASES.append(Case(f"artifact/{cmd}/{fmt}/control-intact", "artifact", _setup(cmd, fmt, None), "ok",
                              owner=OWNER, timeout=60))
        for corruption, expect in table.items():
            if slow and (expect != "error" or corruption.endswith("rehashed") or corruption.startswith("manifest-w")):
                continue
            CASES.append(Case(f"artifact/{cmd}/{fmt}/{corruption}", "artifact", _setup(cmd, fmt, corruption),
                              expect, match=MATCH if expect == "error" and corruption in ALWAYS else None,
                              owner=OWNER, timeout=60))

for _c in CASES:
    _c.isolate = True

# --unverified: accepted without a manifest (and every report says so); never with a stale one
for cmd in ("profile", "simulate"):
    for fmt in ("onnx", "tflite"):
        CASES.append(Case(f"artifact/{cmd}/{fmt}/no-manifest-unverified", "artifact",
                          _setup(cmd, fmt, "no-manifest", ("--unverified",)), "ok", check=says("unverified"),
                          owner=OWNER, timeout=60))
        for corruption in ("flipped-byte", "manifest-sha-edited", "manifest-not-json"):
            CASES.append(Case(f"artifact/{cmd}/{fmt}/{corruption}-unverified", "artifact",
                              _setup(cmd, fmt, corruption, ("--unverified",)), "error", owner=OWNER, timeout=60))


def _run_dir(bad):
    """A run folder with two good artifacts and one bad one: profile must exit 1."""
    def setup(sb):
        fx.put_artifact(sb, "onnx", "run/export")
        a = sb.p(fx.put_artifact(sb, "tflite", "run/export"))
        if bad:
            CORRUPT[bad](a)
        sb.keep_tree("run")
        return ["profile", "run", "run", "--runs", "2", "--warmup", "1"]
    return setup


CASES.append(Case("artifact/profile/run-dir/control-intact", "artifact", _run_dir(None), "ok", owner=OWNER, timeout=90))
for bad in ("flipped-byte", "no-manifest", "manifest-sha-edited", "truncated", "random-bytes-rehashed"):
    CASES.append(Case(f"artifact/profile/run-dir/one-{bad}", "artifact", _run_dir(bad), "error", owner=OWNER,
                      timeout=90))
CASES.append(Case("artifact/profile/tflm-cc-source", "artifact",
                  lambda sb: ["profile", "run", fx.put_artifact(sb, "tflm"), "--runs", "2"], "error", owner=OWNER))
CASES.append(Case("artifact/simulate/missing-file", "artifact",
                  lambda sb: ["simulate", "run", "nope.tflite", "--days", "0.05"], "error", match="nope", owner=OWNER))
CASES.append(Case("artifact/verify/missing-file", "artifact",
                  lambda sb: (fx.put_windows(sb), ["export", "verify", "nope.onnx", "--data", "ds"])[-1], "error",
                  match="nope", owner=OWNER))
CASES.append(Case("artifact/verify/data-corrupt-shard", "artifact",
                  lambda sb: (fx.put_windows(sb), fx.truncate(sb.p("ds/shards/test-00000.x.npy")),
                              ["export", "verify", fx.put_artifact(sb, "onnx"), "--data", "ds"])[-1], "error",
                  owner=OWNER))
CASES.append(Case("artifact/verify/data-npy-nan", "artifact",
                  lambda sb: (np.save(sb.p("w.npy"), np.full((4, 3, 256), np.nan, np.float32)),
                              ["export", "verify", fx.put_artifact(sb, "onnx"), "--data", "w.npy"])[-1], "error",
                  owner=OWNER))
CASES.append(Case("artifact/verify/data-npy-wrong-shape", "artifact",
                  lambda sb: (np.save(sb.p("w.npy"), np.zeros((4, 5, 100), np.float32)),
                              ["export", "verify", fx.put_artifact(sb, "onnx"), "--data", "w.npy"])[-1], "error",
                  owner=OWNER))
CASES.append(Case("artifact/verify/data-npy-pickled-payload", "artifact",
                  lambda sb: (fx.evil_npy(sb.p("w.npy"), sb.marker),
                              ["export", "verify", fx.put_artifact(sb, "onnx"), "--data", "w.npy"])[-1], "error",
                  owner=OWNER))

for _c in CASES:          # hostile bytes reach native runtimes (ExecuTorch, LiteRT, ONNX Runtime)
    _c.isolate = True
