"""CLI-number cases: NaN, inf, negative, zero and absurdly large values for the numeric options
of ``data synth/plot/import``, ``simulate run``, ``gate calibrate/evaluate``, ``profile run``,
``teacher train/eval``, ``distill run/eval``, ``compress prune/quantize/tune``, ``export run/verify``
and ``pipeline run``. Each must be refused with a typed error naming the option before any work
(or, where marked ``either``, may also be accepted as a meaningful setting)."""

from __future__ import annotations

import re

from tests.robustness import fixtures as fx
from tests.robustness.harness import Case

CASES: list[Case] = []


def _synth(sb):
    sb.output("out")
    return ["data", "synth", "--out", "out", "--subjects", "3", "--days", "0.01", "--raw-minutes", "4"]


def _plot_rec(sb):
    fx.put_recordings(sb)
    sb.keep_tree("ds")
    sb.output("p.png")
    return ["data", "plot", "ds", "--out", "p.png", "--seconds", "30", "--index", "0"]


def _plot_win(sb):
    fx.put_windows(sb)
    sb.keep_tree("ds")
    sb.output("p.png")
    return ["data", "plot", "ds", "--out", "p.png", "--index", "0"]


def _import(sb):
    fx.make_e4(sb)
    sb.output("out")
    return ["data", "import", "e4", "e4src", "--out", "out"]


def _simulate(sb):
    a = fx.put_artifact(sb, "tflite")
    sb.keep_tree("art")
    sb.output("sim")
    return ["simulate", "run", a, "--days", "0.05", "--out", "sim"]


def _gate(sb):
    fx.put_cohort(sb)
    sb.keep_tree("cohort")
    sb.output("gate.json", "gate.png")
    return ["gate", "calibrate", "cohort", "--out", "gate.json"]


def _gate_eval(sb):
    fx.put_cohort(sb)
    fx.put_json(sb, "g.json", fx.gate_config())
    return ["gate", "evaluate", "cohort", "--gate", "g.json"]


def _profile(sb):
    a = fx.put_artifact(sb, "tflite")
    sb.keep_tree("art")
    return ["profile", "run", a, "--runs", "2", "--warmup", "1"]


def _teacher_train(sb):
    fx.put_windows(sb)
    sb.keep_tree("ds")
    sb.output("t")
    return ["teacher", "train", "ds", "--out", "t", "--size", "tiny", "--steps", "1", "--batch-size", "8",
            "--device", "cpu"]


def _teacher_eval(sb):
    t = fx.put_teacher(sb)
    fx.put_windows(sb)
    sb.output("e")
    return ["teacher", "eval", t, "ds", "--out", "e", "--max-windows", "16"]


def _distill_run(sb):
    fx.put_windows(sb)
    t = fx.put_teacher(sb)
    sb.output("s.pt", "s.manifest.json")
    return ["distill", "run", "ds", "--teacher", t, "--out", "s.pt", "--student", "cnn1d_tiny", "--epochs", "1",
            "--batch-size", "16", "--max-train", "32"]


def _distill_eval(sb):
    s = fx.put_student(sb)
    t = fx.put_teacher(sb)
    fx.put_windows(sb)
    sb.output("e")
    return ["distill", "eval", s, "ds", "--teacher", t, "--out", "e", "--no-baselines", "--seeds", "1",
            "--fractions", "1", "--probes", "linear"]


def _prune(sb):
    s = fx.put_student(sb)
    fx.put_windows(sb)
    sb.output("p.pt", "p.manifest.json")
    return ["compress", "prune", s, "--data", "ds", "--out", "p.pt", "--recover-epochs", "0", "--n", "32"]


def _quantize(sb):
    s = fx.put_student(sb)
    fx.put_windows(sb)
    return ["compress", "quantize", s, "--calib", "ds", "--n", "16"]


def _tune(sb):
    s = fx.put_student(sb)
    fx.put_windows(sb)
    return ["compress", "tune", s, "--calib", "ds", "--n", "16"]


def _export(sb):
    s = fx.put_student(sb)
    fx.put_windows(sb)
    sb.output("a")
    return ["export", "run", s, "--calib", "ds", "--format", "onnx", "--out", "a", "--n-calib", "16",
            "--n-heldout", "16"]


def _verify(sb):
    a = fx.put_artifact(sb, "onnx")
    fx.put_windows(sb)
    sb.keep_tree("art")
    return ["export", "verify", a, "--data", "ds", "--n", "16"]


def _pipeline(sb):
    sb.output("run")
    return ["pipeline", "run", "--quick", "--out", "run"]


BAD_FLOAT = ("nan", "inf", "-inf", "-1")

# (command, base, owner, control timeout, [(option, value, expect)])
TABLE = [
    ("data-synth", _synth, "D", [("--subjects", v, "error") for v in ("0", "-1", "1000000000")]
     + [("--days", v, "error") for v in (*BAD_FLOAT, "0", "1e9", "1e-9")]
     + [("--raw-minutes", v, "error") for v in ("nan", "inf", "-1", "1e9")]
     + [("--freezing", v, "error") for v in ("nan", "-0.5", "1.5", "inf")]
     + [("--seed", "-1", "error")]),
    ("data-plot-recordings", _plot_rec, "D", [("--seconds", v, "error") for v in ("nan", "inf", "-1", "0")]
     + [("--seconds", "1e12", "either"), ("--index", "-1", "error"), ("--index", "1000000", "error")]),
    ("data-plot-windows", _plot_win, "D", [("--index", "-1", "error"), ("--index", "1000000000", "error")]),
    ("data-import", _import, "D", [("--seed", "-1", "either")]),
    ("simulate-run", _simulate, "C", [("--days", v, "error") for v in (*BAD_FLOAT, "0", "1e9")]
     + [("--days", "1e-9", "either")]
     + [("--gate-on", v, "error") for v in ("nan", "inf", "-1")]
     + [("--gate-off", v, "error") for v in ("nan", "inf", "-1")] + [("--gate-on", "1e9", "either")]),
    ("gate-calibrate", _gate, "B", [("--target-recall", v, "error") for v in ("nan", "-1", "1.5", "inf")]
     + [(o, v, "error") for o in ("--window-s", "--hop-s", "--fs-hz", "--block-s")
        for v in ("nan", "inf", "-1", "0", "1e9")]
     + [("--wake-every-s", v, "error") for v in ("nan", "-1")] + [("--wake-every-s", "inf", "either")]),
    ("gate-evaluate", _gate_eval, "B", [(o, v, "error") for o in ("--window-s", "--hop-s")
                                        for v in ("nan", "inf", "-1", "0")]),
    ("profile-run", _profile, "C", [("--runs", "0", "error"), ("--runs", "-1", "error"), ("--warmup", "-1", "error")]),
    ("teacher-train", _teacher_train, "A", [("--steps", v, "error") for v in ("0", "-1")]
     + [("--batch-size", v, "error") for v in ("0", "-1")]
     + [("--lr", v, "error") for v in ("nan", "inf", "-1")]
     + [("--max-minutes", v, "error") for v in ("nan", "-1", "0")] + [("--max-minutes", "inf", "either")]
     + [("--span-max", v, "error") for v in ("nan", "-0.1", "1.5", "inf")]
     + [("--nproc", v, "error") for v in ("0", "-1")]),
    ("teacher-eval", _teacher_eval, "A", [("--max-windows", v, "error") for v in ("0", "-1")]),
    ("distill-run", _distill_run, "A", [("--epochs", v, "error") for v in ("0", "-1")]
     + [("--batch-size", v, "error") for v in ("0", "-1")]
     + [("--lr", v, "error") for v in ("nan", "inf", "-1")]
     + [("--temperature", v, "error") for v in ("0", "nan", "-1", "inf")]
     + [("--cosine-weight", v, "error") for v in ("nan", "-1", "inf")]
     + [("--mse-weight", v, "error") for v in ("nan", "-1")]
     + [("--infonce-weight", v, "error") for v in ("nan", "inf", "-1")]
     + [("--max-train", v, "error") for v in ("0", "-1")]),
    ("distill-eval", _distill_eval, "A", [("--seeds", v, "error") for v in ("0", "-1")] + [("--epochs", "-1", "error")]
     + [("--fractions", v, "error") for v in ("nan", "-1", "2", "0")]),
    ("compress-prune", _prune, "A", [("--ratio", v, "error") for v in ("nan", "-0.1", "1.0", "1.5", "inf")]
     + [("--n", v, "error") for v in ("0", "-1")] + [("--recover-epochs", "-1", "error")]),
    ("compress-quantize", _quantize, "A", [("--n", v, "error") for v in ("0", "-1")]),
    ("compress-tune", _tune, "A", [("--tolerable-loss", v, "error") for v in ("nan", "-1", "inf")]
     + [("--n", v, "error") for v in ("0", "-1")]),
    ("export-run", _export, "C", [("--n-calib", v, "error") for v in ("0", "-1")] + [("--n-heldout", "-1", "error")]),
    ("export-verify", _verify, "C", [("--n", v, "error") for v in ("0", "-1")]),
    ("pipeline-run", _pipeline, "B", [("--seed", "-1", "error")]),
]

CONTROLS = {"data-synth", "data-plot-recordings", "data-plot-windows", "simulate-run", "gate-calibrate",
            "gate-evaluate", "profile-run", "teacher-train", "teacher-eval", "distill-run", "compress-prune",
            "export-run", "export-verify"}


def _variant(base, option, value):
    def setup(sb):
        return [*base(sb), option, value]
    return setup


def _match(option: str) -> str:
    """The error must name the option (its flag, its field name, or the word it is about)."""
    name = option.lstrip("-")
    words = name.split("-")
    alts = {re.escape(option) + r"\b"} | ({name, name.replace("-", "_")} if len(name) > 1 else set())
    if words[0] == "n":
        alts |= {"'n'", *words[1:]} | ({"calibration"} if len(words) == 1 else set())
    if words[0] == "gate":
        alts.add(f"{words[1]}_threshold")
    elif len(words[0]) >= 3 and words[0] not in ("max",):
        alts.add(words[0])
    else:
        alts |= set(words[1:])
    return "|".join(sorted(alts))


for cmd, base, owner, variants in TABLE:
    if cmd in CONTROLS:
        CASES.append(Case(f"cli_number/{cmd}/control-defaults", "cli_number", base, "ok", owner=owner, timeout=60))
    seen = set()
    for option, value, expect in variants:
        key = (option, value)
        assert key not in seen, (cmd, key)
        seen.add(key)
        CASES.append(Case(f"cli_number/{cmd}/{option.lstrip('-')}={value}", "cli_number",
                          _variant(base, option, value), expect, match=_match(option) if expect == "error" else None,
                          owner=owner))
