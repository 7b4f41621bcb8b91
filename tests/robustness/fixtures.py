"""Shared inputs for the robustness cases, built once per session (lazily: a run that needs no
artifact builds none) with the code under test itself, and copied into each case's sandbox.

- ``cohort()``: the synthetic cohort with the smallest options (3 subjects, 14 minutes each from
  17:00, 4 raw minutes): ``raw/`` (windows), ``segments/`` and ``traces/`` (recordings).
- ``teacher()``: ``edgefm teacher train`` on it, size tiny, one step.
- ``student()``: a ``cnn1d_tiny`` student with a linear HR head (``distill.save_student``).
- ``artifact(fmt)``: ``edgefm export run`` of the student to one format (onnx, tflite, pte, tflm).
- small source folders for the importers (E4, TROIKA, Daphnet, smartwatch HAR, CSV).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

_ROOT: Path | None = None
_CACHE: dict = {}


def configure(root: str | Path) -> None:
    """Where the session's fixtures live (pytest: a tmp_path_factory folder)."""
    global _ROOT
    _ROOT = Path(root)
    _ROOT.mkdir(parents=True, exist_ok=True)
    _CACHE.clear()


def root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="edgefm-robustness-fixtures-"))
    return _ROOT


class FixtureError(RuntimeError):
    """A shared input could not be built (the code under test is broken at that point)."""


def _once(name):
    def deco(fn):
        def wrapper():
            if name not in _CACHE:
                try:
                    _CACHE[name] = fn()
                except FixtureError as e:
                    _CACHE[name] = e
                except Exception as e:
                    _CACHE[name] = FixtureError(f"building fixture {name!r} failed: {type(e).__name__}: {e}")
            v = _CACHE[name]
            if isinstance(v, Exception):
                raise v
            return v
        wrapper.__name__ = fn.__name__
        return wrapper
    return deco


def _cli(argv: list[str], cwd: Path) -> None:
    from tests.robustness.harness import invoke
    old = os.getcwd()
    os.chdir(cwd)
    try:
        r = invoke(argv)
    finally:
        os.chdir(old)
    if r.exit_code != 0 or r.exception is not None:
        raise FixtureError(f"`edgefm {' '.join(map(str, argv))}` failed (exit {r.exit_code}): "
                           f"{(r.stderr or r.stdout)[-800:]}{r.tb[-1500:]}")


# ------------------------------------------------------------------ datasets and models

@_once("cohort")
def cohort() -> Path:
    from edgefm.data.synth import SynthConfig, synthesize
    out = root() / "cohort"
    # 17:00 start: subject s000 (the train split) walks, so the motion gate has events to find
    synthesize(SynthConfig(subjects=3, days=0.01, raw_minutes=4.0, seed=1, start_hour=17.0,
                           freezing_fraction=1.0), out)
    for part in ("raw", "segments", "traces"):
        if not (out / part / "manifest.json").is_file():
            raise FixtureError(f"the tiny cohort has no {part}/")
    return out


def windows() -> Path:
    return cohort() / "raw"


def recordings() -> Path:
    return cohort() / "segments"


@_once("teacher")
def teacher() -> Path:
    out = root() / "teacher"
    _cli(["teacher", "train", windows(), "--out", out, "--size", "tiny", "--steps", "1",
          "--batch-size", "8", "--device", "cpu"], root())
    return out / "teacher.pt"


def acc_spec() -> dict:
    """The student's input spec: the cohort's ACC channels and their normalisation."""
    m = json.loads((windows() / "manifest.json").read_text())
    names = [c["name"] for c in m["channels"]]
    idx = [names.index(c) for c in ("acc_x", "acc_y", "acc_z")]
    nm = m["normalisation"]
    p = m["preset"]
    return {"preset": p["preset"], "channels": ["acc_x", "acc_y", "acc_z"], "fs_hz": float(p["fs_hz"]),
            "window": int(p["window"]), "hop": int(p["hop"]),
            "normalisation": {"mean": [nm["mean"][i] for i in idx], "std": [nm["std"][i] for i in idx]}}


@_once("student")
def student() -> Path:
    import torch
    from distill import build_student, head_from_probe, save_student
    from distill.probes import RidgeProbe
    torch.manual_seed(0)
    s = build_student("cnn1d_tiny").eval()
    x = torch.randn(32, 3, 256)
    with torch.no_grad():
        e = s(x).numpy()
    head = head_from_probe(RidgeProbe().fit(e, 70 + 10 * e[:, 0]))
    out = root() / "student"
    out.mkdir(exist_ok=True)
    return save_student(out / "student.pt", s, head, input_spec=acc_spec(),
                        teacher={"path": "teacher.pt", "sha256": "0" * 64},
                        metrics={"hr_mae_val_bpm": 10.0})


FORMATS = ("onnx", "tflite", "pte", "tflm")
EXT = {"onnx": ".onnx", "tflite": ".tflite", "pte": ".pte", "tflm": ".cc"}


def artifact(fmt: str) -> Path:
    """The exported artifact of one format (its manifest and reference outputs beside it)."""
    return _artifact_dirs()[fmt]


@_once("artifacts")
def _artifact_dirs() -> dict[str, Path]:
    st = student()
    out = {}
    for fmt in FORMATS:
        d = root() / f"art_{fmt}"
        _cli(["export", "run", st, "--calib", windows(), "--format", fmt, "--out", d, "--n-calib", "16",
              "--n-heldout", "16"], root())
        found = sorted(p for p in d.iterdir() if p.suffix == EXT[fmt])
        if not found:
            raise FixtureError(f"export run --format {fmt} wrote no {EXT[fmt]} file in {d}")
        out[fmt] = found[0]
    return out


def artifact_files(fmt: str) -> list[Path]:
    """The artifact and its companions (manifest, reference outputs)."""
    a = artifact(fmt)
    stem = a.stem
    return [p for p in a.parent.iterdir() if p.name == a.name or p.name.startswith(stem + ".")]


def copy_artifact(sb, fmt: str, rel: str = "art") -> Path:
    """Copy one artifact with its companions into the sandbox folder ``rel``; returns its path."""
    d = sb.p(rel)
    d.mkdir(parents=True, exist_ok=True)
    for f in artifact_files(fmt):
        shutil.copy2(f, d / f.name)
    return d / artifact(fmt).name


# ------------------------------------------------------------------ small JSON inputs

def gate_config() -> dict:
    from runtime.gate import GateConfig
    return GateConfig().to_dict()


def device_summary() -> dict:
    return {"name": "nrf52840", "battery_j": 1998.0, "floor_w": 1e-5, "gate_j_per_sample": 1e-9,
            "inference_j": 1e-4, "ppg_w": 6e-4}


def trace_json() -> dict:
    t = np.arange(64 * 4) / 32.0
    acc = np.stack([0.01 * np.sin(t), 0.01 * np.cos(t), 1.0 + 0 * t])
    return {"fs_hz": 32.0, "unit": "g", "channels": ["acc_x", "acc_y", "acc_z"],
            "data": [np.round(r, 6).tolist() for r in acc]}


# ------------------------------------------------------------------ importer sources

T0 = 1_500_000_000


def e4_files(n_s: int = 60) -> dict[str, str]:
    """The texts of a minimal valid E4 subject of ``n_s`` seconds."""
    rng = np.random.default_rng(0)
    acc = rng.integers(-10, 10, (32 * n_s, 3)) + [0, 0, 64]
    return {
        "ACC": f"{T0}, {T0}, {T0}\n32, 32, 32\n" + "".join(f"{a},{b},{c}\n" for a, b, c in acc),
        "BVP": f"{T0}\n64\n" + "".join(f"{v:.2f}\n" for v in rng.normal(size=64 * n_s)),
        "EDA": f"{T0}\n4\n" + "0.5\n" * (4 * n_s),
        "TEMP": f"{T0}\n4\n" + "33.0\n" * (4 * n_s),
        "HR": f"{T0 + 10}\n1\n" + "70.0\n" * (n_s - 10),
        "IBI": f"{T0}, IBI\n" + "".join(f"{1 + 0.8 * k:.3f},0.800\n" for k in range(n_s - 2)),
    }


E4_QUEST = "# Subj;S9;;\n# ORDER;Base;TSST;sRead\n# START;0.05;0.20;0.40\n# END;0.15;0.35;0.50\n"


def make_e4(sb, rel: str = "e4src", name: str = "S9", quest: str | None = E4_QUEST, **override) -> Path:
    """``rel/NAME/NAME_E4_Data/*.csv`` (+ quest.csv); ``override`` replaces a file's text (None
    removes it; bytes are written as they are)."""
    files = e4_files()
    files.update(override)
    e4 = sb.p(rel) / name / f"{name}_E4_Data"
    e4.mkdir(parents=True)
    for k, v in files.items():
        if v is None:
            continue
        if isinstance(v, bytes):
            (e4 / f"{k}.csv").write_bytes(v)
        else:
            (e4 / f"{k}.csv").write_text(v)
    if quest is not None:
        (sb.p(rel) / name / f"{name}_quest.csv").write_text(quest.replace("S9", name))
    return sb.p(rel)


def make_troika(sb, rel: str = "troika", n_s: int = 30, sig=None, bpm=None, raw_data: bytes | None = None,
                raw_bpm: bytes | None = None) -> Path:
    import scipy.io as sio
    d = sb.p(rel) / "Training_data"
    d.mkdir(parents=True)
    rng = np.random.default_rng(1)
    if sig is None:
        sig = rng.normal(size=(6, int(125 * n_s)))
        sig[5] += 1.0
    n_win = int((n_s - 8) // 2) + 1
    if bpm is None:
        bpm = 80 + 10 * np.sin(np.arange(n_win) / 5)
    if raw_data is None:
        sio.savemat(str(d / "DATA_01_TYPE01.mat"), {"sig": sig})
    else:
        (d / "DATA_01_TYPE01.mat").write_bytes(raw_data)
    if raw_bpm is None:
        sio.savemat(str(d / "DATA_01_TYPE01_BPMtrace.mat"), {"BPM0": np.asarray(bpm, float).reshape(-1, 1)})
    else:
        (d / "DATA_01_TYPE01_BPMtrace.mat").write_bytes(raw_bpm)
    return sb.p(rel)


def daphnet_text(n: int = 640, t0: float = 15, step: float = 15.625, label=1, acc="10 20 -1000",
                 rows: dict | None = None) -> str:
    """``SxxRyy.txt`` rows at 64 Hz; ``rows`` replaces whole rows by index."""
    out = []
    for k in range(n):
        if rows and k in rows:
            out.append(rows[k])
            continue
        out.append(f"{int(round(t0 + k * step))} {acc} 1 2 3 4 5 6 {label}")
    return "\n".join(out) + "\n"


def make_daphnet(sb, text: str | bytes, rel: str = "daphnet", name: str = "S01R01.txt") -> Path:
    return sb.write(f"{rel}/{name}", text)


HAR_HEADER = "x_acc,y_acc,z_acc,x_gyro,y_gyro,z_gyro,timestamp,label\n"


def har_text(ts=None, label="WALKING", acc="0,0,9.80665") -> str:
    ts = list(range(1_600_000_000_000, 1_600_000_000_000 + 3000, 10)) if ts is None else ts
    return HAR_HEADER + "".join(f"{acc},0.1,0.2,0.3,{t},{label}\n" for t in ts)


def make_har(sb, text: str | bytes, rel: str = "har") -> Path:
    sb.write(f"{rel}/s01/s01_01_sw.csv", text)
    return sb.p(rel)


def csv_text(n: int = 200, fs: float = 50.0, t_scale: float = 1000.0, value="{k}", state="rest") -> str:
    """``t,ax,ay,az,state`` rows at ``fs`` Hz, t in ms (``t_scale`` per second)."""
    rows = "t,ax,ay,az,state\n"
    for k in range(n):
        t = k / fs * t_scale
        v = value.format(k=k) if isinstance(value, str) else value(k)
        rows += f"{t:.6f},{v},0.0,1.0,{state}\n"
    return rows


def csv_mapping(**over) -> dict:
    m = {"fs_hz": 50, "timestamp": "t", "timestamp_unit": "ms",
         "columns": {"ax": {"channel": "acc_x", "modality": "acc", "unit": "g", "scale": 0.001},
                     "ay": {"channel": "acc_y", "modality": "acc", "unit": "g"},
                     "az": {"channel": "acc_z", "modality": "acc", "unit": "g"}},
         "labels": {"state": {"name": "activity", "kind": "categorical", "classes": ["rest", "walk"]}}}
    m.update(over)
    return m


def make_csv(sb, text: str | bytes = None, mapping: dict | str | None = None, rel: str = "csvsrc",
             mapping_rel: str | None = None) -> tuple[Path, Path]:
    """(csv file, mapping file) in the sandbox."""
    f = sb.write(f"{rel}/rec.csv", csv_text() if text is None else text)
    mp = csv_mapping() if mapping is None else mapping
    mf = sb.write(mapping_rel or f"{rel}/map.json", mp if isinstance(mp, str) else json.dumps(mp))
    return f, mf


# ------------------------------------------------------------------ hostile payloads

class Evil:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears iff code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def evil_npy(path: Path, marker: Path) -> None:
    """An object ``.npy`` whose unpickling would create ``marker``."""
    a = np.empty(1, dtype=object)
    a[0] = Evil(marker)
    with open(path, "wb") as f:
        np.save(f, a, allow_pickle=True)


def evil_npz(path: Path, marker: Path, base: dict | None = None, key: str = "subject") -> None:
    """An ``.npz`` holding ``base`` with ``key`` replaced by an object array whose unpickling
    would create ``marker``."""
    a = np.empty(1, dtype=object)
    a[0] = Evil(marker)
    with open(path, "wb") as f:
        np.savez(f, **{**(base or {}), key: a})


def flip_byte(path: Path, where: float = 0.5) -> None:
    b = bytearray(path.read_bytes())
    b[int(len(b) * where)] ^= 0xFF
    path.write_bytes(bytes(b))


def truncate(path: Path, keep: float = 0.5) -> None:
    b = path.read_bytes()
    path.write_bytes(b[: int(len(b) * keep)])


def edit_json(path: Path, fn) -> None:
    """Apply ``fn`` (which mutates the object in place; its return value is ignored)."""
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


# ------------------------------------------------------------------ copying inputs into a sandbox

def _with_manifest(path: Path) -> list[Path]:
    m = path.with_name(path.stem + ".manifest.json")
    return [path] + ([m] if m.exists() else [])


def put_teacher(sb, rel: str = "teacher") -> Path:
    """teacher.pt (+ manifest) copied to ``rel/``; returns the .pt path (relative to the sandbox)."""
    for f in _with_manifest(teacher()):
        sb.copy(f, f"{rel}/{f.name}")
    return Path(rel) / teacher().name


def put_student(sb, rel: str = "student") -> Path:
    for f in _with_manifest(student()):
        sb.copy(f, f"{rel}/{f.name}")
    return Path(rel) / student().name


def put_windows(sb, rel: str = "ds") -> Path:
    sb.copy(windows(), rel)
    return Path(rel)


def put_recordings(sb, rel: str = "ds") -> Path:
    sb.copy(recordings(), rel)
    return Path(rel)


def put_cohort(sb, rel: str = "cohort") -> Path:
    sb.copy(cohort(), rel)
    return Path(rel)


def put_artifact(sb, fmt: str, rel: str = "art") -> Path:
    p = copy_artifact(sb, fmt, rel)
    return p.relative_to(sb.root)


def put_json(sb, rel: str, obj) -> Path:
    sb.write(rel, json.dumps(obj))
    return Path(rel)
