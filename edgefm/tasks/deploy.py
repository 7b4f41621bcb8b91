"""One call from recordings to a verified deployable model: ``build_deployable``.

    res = build_deployable("data/troika", "runs/troika-hr", DeployConfig(task="hr"))
    res.metrics["test"]          # fp32 and int8 figures on the held-out subjects
    res.artifacts                # [{format, path, verification}] - all four runtimes

Steps (``edgefm task fit`` and the pipeline's ``model`` stage both only call this):

1. window the dataset for the task (:func:`edgefm.tasks.data.load_windows`; the task from the
   labels present unless named) and split it by subject (the dataset's split, a seeded one, or
   explicit lists: :func:`edgefm.tasks.data.split_subjects`);
2. train the task's student on the training subjects (validation subjects pick the epoch:
   :func:`edgefm.tasks.fit.fit`);
3. int8 post-training quantization calibrated on training windows (layers the architecture marks
   ``keep_float`` stay float: the heart-rate student's DSP front end), exported to ExecuTorch,
   LiteRT, ONNX and TFLite Micro, each verified in its runtime on held-out windows against the
   fp32 model: per-window |int8 - fp32| ``{p50, p99, max}`` in bpm, or class agreement;
4. the fp32 checkpoint (code-free, :func:`edgefm.export.io.save_model`), ``metrics.json`` (fp32 and
   int8 on the test subjects; heart rate tracked along each recording and per window; classes
   macro-F1, balanced accuracy, confusion), ``confusion.png`` for classes, ``report.html``/``.md``.

Nothing is written outside ``out``; an existing non-empty ``out`` needs ``overwrite=True``; the
folder appears whole or not at all.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgefm.errors import ConfigError, DataError
from edgefm.tasks.data import CHANNELS, PLACEMENTS, TaskWindows, load_windows, split_subjects
from edgefm.tasks.fit import FitConfig, TaskModel, fit, score

FORMATS = ("pte", "tflite", "onnx", "tflm")


@dataclass(frozen=True)
class DeployConfig:
    """task: ``hr``, ``activity``, ``freeze``, ``phase`` or None (from the labels present).
    sensors: ``led_on`` (PPG + ACC: all the task's channels the data has) or ``led_off``
        (accelerometer only); ``channels`` names them explicitly instead.
    placement: Daphnet's ``ankle``, ``thigh`` or ``trunk`` accelerometer.
    split: ``manifest`` (the dataset's own), ``seeded``, or ``{"train": [...], "val": [...],
        "test": [...]}`` subject lists.
    calib_windows: training windows (evenly spaced) that calibrate int8."""

    task: str | None = None
    sensors: str = "led_on"
    channels: tuple[str, ...] | None = None
    placement: str | None = None
    fs_hz: float | None = None
    window_s: float | None = None
    hop_s: float | None = None
    split: str | dict = "manifest"
    seed: int = 0
    formats: tuple[str, ...] = FORMATS
    calib_windows: int = 256
    fit: FitConfig = field(default_factory=FitConfig)
    name: str = "model"

    def __post_init__(self):
        if self.sensors not in ("led_on", "led_off"):
            raise ConfigError(f"must be led_on or led_off, got {self.sensors!r}", field="sensors")
        if self.placement is not None and self.placement not in PLACEMENTS:
            raise ConfigError(f"unknown placement {self.placement!r}", field="placement",
                              hint=f"one of {', '.join(PLACEMENTS)}")
        bad = [f for f in self.formats if f not in FORMATS]
        if bad or not self.formats:
            raise ConfigError(f"unknown export format {bad[0] if bad else '(none)'!r}", field="formats",
                              hint=f"choose from {', '.join(FORMATS)}")
        if not isinstance(self.calib_windows, int) or self.calib_windows < 1:
            raise ConfigError("calib_windows must be a positive int", field="calib_windows")

    def channels_for(self, task: str, have) -> tuple[str, ...] | None:
        """The model's input channels: explicit, the placement's, or the task's preference."""
        if self.channels:
            return tuple(self.channels)
        if self.placement:
            return PLACEMENTS[self.placement]
        if task == "hr":
            pref = CHANNELS["hr_led_off" if self.sensors == "led_off" else "hr_led_on"]
            return tuple(c for c in pref if c in have) if have else pref
        return None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["fit"] = self.fit.to_dict()
        return d


@dataclass
class DeployResult:
    out: Path
    model: TaskModel
    split: dict
    metrics: dict
    artifacts: list[dict]


def windows_for(data: str | Path, config: DeployConfig) -> TaskWindows:
    """The task's windows of ``data`` with the config's channels and preset."""
    from edgefm.tasks.data import dataset_channels, dataset_labels
    from edgefm.tasks.spec import task_for
    t = task_for(dataset_labels(data), config.task, Path(data))
    return load_windows(data, t, channels=config.channels_for(t.name, set(dataset_channels(data))),
                        fs_hz=config.fs_hz, window_s=config.window_s, hop_s=config.hop_s)


def calibration_windows(tm: TaskModel, train: TaskWindows, n: int) -> np.ndarray:
    """``n`` evenly spaced normalised training windows (the int8 calibration set)."""
    c = train.evenly(n)
    return tm.normalise(c.x, c.mask)


def quantize_task_model(tm: TaskModel, calib: np.ndarray):
    """int8 PTQ of ``tm.model`` (its ``keep_float`` layers left in float)."""
    from edgefm.errors import ExportError
    from quantize.ptq import QuantConfig, output_range_for, quantize_
    qm = quantize_(tm.model, QuantConfig(backend="pte", calibration=calib,
                                         keep_float=tuple(getattr(tm.model, "keep_float", ())),
                                         output_range=output_range_for(tm.output_spec)
                                         if tm.output_spec.get("kind") != "bins" else None))
    # keeping a layer float strips the annotations that share its qparams; a graph left with no
    # int8 weight at all would pass for int8 without being it
    if not any("quantize_per_channel" in str(n.target) or "quantize_per_tensor" in str(n.target)
               for n in qm.converted(fold=False).graph.nodes if n.op == "call_function"):
        raise ExportError("no layer of the model was quantized (the float layers took the rest with them)",
                          field="keep_float", hint="keep fewer layers in float")
    return qm


def int8_scores(qm, tm: TaskModel, tw: TaskWindows) -> np.ndarray:
    """The int8 graph's outputs (PT2E reference int8 kernels, one window at a time) for every
    window of ``tw``."""
    z = torch.from_numpy(tm.normalise(tw.x, tw.mask))
    return qm(z).numpy().reshape(len(z), -1)


def evaluate(tm: TaskModel, tw: TaskWindows, qm=None, s8: np.ndarray | None = None,
             s32: np.ndarray | None = None) -> dict:
    """fp32 (and int8 with ``qm``) figures on ``tw`` (see :func:`edgefm.tasks.fit.score`); int8
    also against fp32 per window: bpm ``abs_err`` {p50, p99, max} (tracked and per window), or
    class ``agreement``. ``s8`` / ``s32``: the int8 / fp32 outputs on ``tw`` when already computed."""
    from edgefm.export.verify import abs_err_stats
    s32 = tm.scores(tw) if s32 is None else s32
    out = {"fp32": score(tm, tw, scores=s32)}
    if qm is None:
        return out
    s8 = int8_scores(qm, tm, tw) if s8 is None else s8
    if tm.task.regression:
        trk8, per8 = tm.decode(s8, tw, True), tm.decode(s8, tw, False)
        trk32, per32 = tm.decode(s32, tw, True), tm.decode(s32, tw, False)
        ok = tw.known
        out["int8"] = {"n": int(ok.sum()), "hr_mae": float(np.mean(np.abs(trk8[ok] - tw.y[ok]))),
                       "hr_mae_per_window": float(np.mean(np.abs(per8[ok] - tw.y[ok]))),
                       "abs_err_vs_fp32": abs_err_stats(per8, per32),
                       "abs_err_vs_fp32_tracked": abs_err_stats(trk8, trk32),
                       "max_output_bpm": float(max(per8.max(), trk8.max())) if len(per8) else None}
    else:
        p8 = tm.decode(s8, tw)
        out["int8"] = {**score(tm, tw, pred=p8), "agreement_with_fp32": float(np.mean(p8 == tm.decode(s32, tw))),
                       "agreement_with_fp32_per_window": float(np.mean(s8.argmax(1) == s32.argmax(1))),
                       "tracked": bool(tm.tracker and tm.tracker.get("enabled"))}
    return out


def _confusion_png(cm: list, classes: list[str], title: str) -> bytes:
    from edgefm.report import plot_png
    cm = np.asarray(cm, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)

    def draw(ax):
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center",
                        color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
        ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=9)
    return plot_png(draw)


def _write_report(out: Path, tm: TaskModel, split: dict, metrics: dict, artifacts: list[dict],
                  notes: list[str]) -> None:
    """``report.html`` / ``.md`` / ``.json`` and ``confusion.png`` (classes) via :mod:`edgefm.report`."""
    from edgefm.report import Section, write_sections
    t, spec = tm.task, tm.input_spec
    head = Section("model", "Model").text(
        f"Inputs: {', '.join(spec['channels'])} at {spec['fs_hz']:g} Hz, {spec['window_s']:g} s windows every "
        f"{spec['hop_s']:g} s. Parameters {tm.num_params():,}; MACs per window {tm.macs()['total']:,}. Subjects: "
        f"train {len(split['train'])}, validation {len(split['val'])}, test {len(split['test'])} "
        f"({', '.join(split['test'])}).")
    for n in notes:
        head.text(n)
    test = metrics.get("test") or {}
    held = Section("test", "Held-out subjects").table(
        [{"model": k, "figure": name, "value": v} for k in ("fp32", "int8") for name, v in (test.get(k) or {}).items()
         if isinstance(v, (int, float)) and not isinstance(v, bool) and name != "error"])
    if not t.regression:
        held.figure(_confusion_png(test["int8"]["confusion"], list(tm.output_spec["classes"]),
                                   f"int8 {t.name}, held-out subjects (macro-F1 {test['int8']['macro_f1']:.3f})"),
                    "confusion.png", "confusion matrix, int8, held-out subjects")
    arts = Section("artifacts", "Artifacts (verified in their runtimes on held-out windows)").table(
        [{"format": a["format"], "file": Path(a["path"]).name,
          "per-window int8 vs fp32": (f"agreement {a['verification']['agreement']:.4f}" if "agreement" in a["verification"]
                                      else "abs err p50/p99/max {p50:.3g}/{p99:.3g}/{max:.3g}".format(
                                          **a["verification"]["abs_err"]))} for a in artifacts])
    write_sections([head, held, arts], out, f"{t.doc or t.name}: deployable model")


def _split_windows(tw: TaskWindows, data: Path, config: DeployConfig, notes: list[str]):
    from edgefm.data.store import open_manifest
    man = open_manifest(data, "recordings")
    split = split_subjects(tw, config.split, config.seed, man.get("split"))
    if not split["test"]:
        raise DataError("the split leaves no test subject", path=data, field="split",
                        hint="use --split seeded or name test subjects")
    train, val, test = (tw.of_subjects(split[k]) for k in ("train", "val", "test"))
    train.check_classes(f"training subjects of {data}")
    if not len(val) or not val.known.any():
        notes.append("no validation subject with labels: the last epoch is kept")
        val = None
    return split, train, val, test


def build_deployable(data: str | Path, out: str | Path, config: DeployConfig = DeployConfig(), *,
                     overwrite: bool = False, log=None) -> DeployResult:
    """Window, split, train, quantize, export to every format, verify; see the module docstring.

    Raises:
        DataError: the data lacks the task's labels or channels, or its labels collapse to one class.
        ConfigError: a bad option, or ``out`` exists and is not empty (without ``overwrite``).
    """
    from edgefm.manifest import check_output
    say = log or (lambda s: None)
    data, out = Path(data), Path(out)
    check_output(out, overwrite=overwrite, sources=(data,))
    tw = windows_for(data, config)
    notes: list[str] = []
    split, train, val, test = _split_windows(tw, data, config, notes)
    say(f"{tw.task.name}: {len(tw)} windows ({', '.join(tw.channels)}, {tw.fs_hz:g} Hz); "
        f"train {len(split['train'])} / val {len(split['val'])} / test {len(split['test'])} subjects")
    tm = fit(train, config.fit, val)
    return _deploy(tm, tw, split, train, test, data, out, config, notes, {}, overwrite, say)


def load_deployable(run: str | Path) -> TaskModel:
    """The fp32 model of a finished :func:`build_deployable` / :func:`refit_deployable` run
    (its ``model.pt``, loaded code-free with its sha256 checked)."""
    from edgefm.export.io import load_model
    from edgefm.tasks.spec import TASKS
    run = Path(run)
    ck = run / "model.pt" if run.is_dir() else run
    lm = load_model(ck, unverified=False)
    task = (lm.meta or {}).get("task")
    if task not in TASKS:
        raise DataError(f"{ck} is not a task model (meta.task is {task!r})", path=ck, field="meta.task",
                        hint="pass the folder written by `edgefm task fit` or `edgefm pipeline run --data`")
    return TaskModel(TASKS[task], lm.model, dict(lm.input_spec), dict(lm.output_spec),
                     tracker=(lm.meta or {}).get("tracker"), info={"source": str(ck)})


def refit_deployable(run: str | Path, data: str | Path, out: str | Path, config: DeployConfig | None = None, *,
                     head_only: bool = False, overwrite: bool = False, log=None) -> DeployResult:
    """Refit a finished run's model on the user's own labelled recordings and re-export it.

    The model keeps its inputs (channels, rate, window, normalisation) and outputs; ``data`` is
    windowed to match, split by subject (``config.split``), and the model is fine-tuned on the
    training subjects (``head_only``: only its head). Both the original and the refit model are
    scored on the held-out subjects (``metrics.json`` ``before`` / ``test``); the refit one is
    quantized, exported to every format and verified as in :func:`build_deployable`."""
    from edgefm.manifest import check_output
    say = log or (lambda s: None)
    data, out, run = Path(data), Path(out), Path(run)
    check_output(out, overwrite=overwrite, sources=(data, run))
    init = load_deployable(run)
    s = init.input_spec
    config = config or DeployConfig(fit=FitConfig(epochs=10, lr=1e-3))
    tw = load_windows(data, init.task, channels=tuple(s["channels"]), fs_hz=float(s["fs_hz"]),
                      window_s=float(s["window"]) / float(s["fs_hz"]), hop_s=float(s["hop"]) / float(s["fs_hz"]))
    notes = [f"refit of {init.info['source']} ({'head only' if head_only else 'all layers'})"]
    split, train, val, test = _split_windows(tw, data, config, notes)
    before = score(init, test)
    say(f"refit {init.task.name} on {len(train)} windows of {len(split['train'])} subjects; before: "
        + json.dumps({k: round(v, 4) for k, v in before.items() if isinstance(v, float)}))
    tm = fit(train, config.fit, val, init=init, head_only=head_only)
    return _deploy(tm, tw, split, train, test, data, out, config, notes, {"before": before}, overwrite, say)


def _deploy(tm: TaskModel, tw: TaskWindows, split: dict, train: TaskWindows, test: TaskWindows, data: Path,
            out: Path, config: DeployConfig, notes: list[str], extra: dict, overwrite: bool, say) -> DeployResult:
    """Quantize, score on the test subjects, export to every format with verification, write."""
    from edgefm.export import ArtifactSpec, export
    from edgefm.export.io import save_model
    from edgefm.manifest import atomic_dir, atomic_write_json, sha256_file
    calib = calibration_windows(tm, train, config.calib_windows)
    qm = quantize_task_model(tm, calib)
    metrics = {"task": tw.task.name, "channels": list(tw.channels), "params": tm.num_params(), "macs": tm.macs(),
               "label_counts": {k: tw.of_subjects(split[k]).label_counts() for k in ("train", "val", "test")},
               **extra, "test": evaluate(tm, test, qm), "train": {"fp32": score(tm, train)}}
    say(f"test subjects: {json.dumps({k: round(v, 4) for k, v in metrics['test']['int8'].items() if isinstance(v, float)})}")
    ho = test.select(np.flatnonzero(test.known)).evenly(256)
    hx, hy = tm.normalise(ho.x, ho.mask), ho.y.astype(np.float64)
    with atomic_dir(out, overwrite=overwrite) as tmp:
        ckpt = tmp / f"{config.name}.pt"
        save_model(ckpt, tm.model, input_spec=tm.input_spec,
                   source={"data": str(data.resolve()), "task": tw.task.name, "train_subjects": split["train"],
                           "config": config.to_dict(), **({"refit_of": tm.info["refit_of"]}
                                                          if tm.info.get("refit_of") else {})},
                   meta={"task": tw.task.name, "tracker": tm.tracker, "metrics": metrics["test"]},
                   output_spec=tm.output_spec)
        spec = ArtifactSpec(source={"checkpoint": ckpt.name, "sha256": sha256_file(ckpt), "task": tw.task.name},
                            input_spec=tm.input_spec, output_spec={**tm.output_spec,
                                                                   **({"tracker": tm.tracker} if tm.tracker else {})})
        artifacts = []
        for f in config.formats:
            say(f"exporting {f} (int8) and verifying it in its runtime ...")
            (r,) = export(tm.model, f, tmp, calib, int8=True, heldout=(hx, hy), spec=spec, name=config.name,
                          quantized=qm)
            artifacts.append({"format": f, "path": str(out / r.path.name), "verification": r.verification})
        metrics["artifacts"] = artifacts
        atomic_write_json(tmp / "metrics.json", {"config": config.to_dict(), "split": split, "notes": notes,
                                                 **metrics})
        _write_report(tmp, tm, split, metrics, artifacts, notes)
    return DeployResult(out, tm, split, metrics, artifacts)
