"""Output cases: ``--out`` onto a non-empty folder holding a precious file, onto the source, inside
the source, onto ``.``, through a symlink, onto a file, below a regular file or in ``/proc``
(unwritable even for root); and ``--overwrite``, which must replace an output (never a source).

Rules: an existing non-empty ``--out`` is refused with a typed error naming it unless
``--overwrite``; an output may never be the source, contain it or lie inside it; nothing is
written anywhere else; no user file is deleted or changed."""

from __future__ import annotations

from tests.robustness import fixtures as fx
from tests.robustness.checks import gone
from tests.robustness.harness import Case, all_of, expect_files

CASES: list[Case] = []


class Cmd:
    """One command with an output: ``inputs(sb)`` puts its inputs in the sandbox and returns the
    source path (relative) the output must never touch; ``argv(out)`` is the command line;
    ``kind`` is "dir" or "file"; ``made`` the files a success writes (relative to ``out``)."""

    def __init__(self, name, owner, inputs, argv, kind="dir", made=(), extra_outputs=(), overwrite_ok=True,
                 timeout=None):
        self.name, self.owner, self.inputs, self.argv, self.kind = name, owner, inputs, argv, kind
        self.made, self.extra_outputs, self.overwrite_ok, self.timeout = made, extra_outputs, overwrite_ok, timeout


def _e4(sb):
    fx.make_e4(sb)
    return "e4src"


def _csv(sb):
    fx.make_csv(sb)
    return "csvsrc"


def _recs(sb):
    return str(fx.put_recordings(sb))


def _wins(sb):
    return str(fx.put_windows(sb))


def _teacher_and_windows(sb):
    fx.put_teacher(sb)
    return str(fx.put_windows(sb))


def _student_and_windows(sb):
    fx.put_student(sb)
    return str(fx.put_windows(sb))


def _all3(sb):
    fx.put_student(sb)
    fx.put_teacher(sb)
    return str(fx.put_windows(sb))


def _cohort(sb):
    return str(fx.put_cohort(sb))


def _art_tflite(sb):
    fx.put_artifact(sb, "tflite")
    return "art"


def _demo_inputs(sb):
    fx.put_artifact(sb, "onnx")
    fx.put_json(sb, "gate.json", fx.gate_config())
    fx.put_json(sb, "device.json", fx.device_summary())
    fx.put_json(sb, "trace.json", fx.trace_json())
    return "art"


def _none(sb):
    return None


ONNX = "art/student.onnx"
CMDS = [
    Cmd("data-synth", "D", _none, lambda o: ["data", "synth", "--out", o, "--subjects", "3", "--days", "0.01",
                                             "--raw-minutes", "4"], made=("manifest.json",)),
    Cmd("data-import-e4", "D", _e4, lambda o: ["data", "import", "e4", "e4src", "--out", o], made=("manifest.json",)),
    Cmd("data-import-csv", "D", _csv, lambda o: ["data", "import", "csv", "csvsrc/rec.csv", "--mapping",
                                                 "csvsrc/map.json", "--out", o], made=("manifest.json",)),
    Cmd("data-window", "D", _recs, lambda o: ["data", "window", "ds", "--preset", "wrist-raw", "--out", o],
        made=("manifest.json",)),
    Cmd("data-plot", "D", _recs, lambda o: ["data", "plot", "ds", "--out", o, "--seconds", "30"], kind="file"),
    Cmd("teacher-train", "A", _wins, lambda o: ["teacher", "train", "ds", "--out", o, "--size", "tiny", "--steps", "1",
                                                "--batch-size", "8", "--device", "cpu"], made=("teacher.pt",)),
    Cmd("teacher-eval", "A", _teacher_and_windows,
        lambda o: ["teacher", "eval", "teacher/teacher.pt", "ds", "--out", o, "--max-windows", "16"],
        made=("eval.json",)),
    Cmd("distill-run", "A", _teacher_and_windows,
        lambda o: ["distill", "run", "ds", "--teacher", "teacher/teacher.pt", "--out", o, "--student", "cnn1d_tiny",
                   "--epochs", "1", "--batch-size", "16", "--max-train", "32"], kind="file"),
    Cmd("distill-eval", "A", _all3,
        lambda o: ["distill", "eval", "student/student.pt", "ds", "--teacher", "teacher/teacher.pt", "--out", o,
                   "--no-baselines", "--seeds", "1", "--fractions", "1", "--probes", "linear"], made=("report.md",)),
    Cmd("compress-prune", "A", _student_and_windows,
        lambda o: ["compress", "prune", "student/student.pt", "--data", "ds", "--out", o, "--recover-epochs", "0",
                   "--n", "32"], kind="file"),
    Cmd("export-run", "C", _student_and_windows,
        lambda o: ["export", "run", "student/student.pt", "--calib", "ds", "--format", "onnx", "--out", o,
                   "--n-calib", "16", "--n-heldout", "16"], made=("student.onnx",)),
    Cmd("gate-calibrate", "B", _cohort, lambda o: ["gate", "calibrate", "cohort", "--out", o], kind="file"),
    Cmd("simulate-run", "C", _art_tflite,
        lambda o: ["simulate", "run", "art/student_fp32.tflite", "--days", "0.05", "--out", o],
        made=("simulation.json",)),
    Cmd("profile-run", "C", _art_tflite,
        lambda o: ["profile", "run", "art/student_fp32.tflite", "--runs", "2", "--warmup", "1", "--out", o],
        made=("profile.json",)),
    Cmd("pipeline-run", "B", _cohort, lambda o: ["pipeline", "run", "--quick", "--data", "cohort", "--out", o],
        overwrite_ok=False),
    Cmd("demo-build", "B", _demo_inputs,
        lambda o: ["demo", "build", ONNX, "--gate", "gate.json", "--device-json", "device.json", "--trace",
                   "trace.json", "--out", o], made=("app.json", "index.html")),
]

OUT_FILE_NAME = {"data-plot": "plot.png", "distill-run": "s.pt", "compress-prune": "p.pt", "gate-calibrate": "g.json"}
MATCH_EXISTS = r"exist|overwrite|not empty|non-empty"
MATCH_SOURCE = r"input|source|inside|overwrite|replace|contain"


def _companions(cmd: Cmd, out: str) -> list[str]:
    """Files a file output writes beside itself (manifest, png)."""
    from pathlib import PurePath
    p = PurePath(out)
    if cmd.name in ("distill-run", "compress-prune"):
        return [str(p.with_name(p.stem + ".manifest.json"))]
    if cmd.name == "gate-calibrate":
        return [str(p.with_suffix(".png"))]
    return []


def add(cmd: Cmd, variant: str, setup, expect="error", match=None, check=None):
    c = Case(f"output/{cmd.name}/{variant}", "output", setup, expect, check, match, cmd.owner)
    if cmd.timeout:
        c.timeout = cmd.timeout
    CASES.append(c)


def _prep(cmd: Cmd, sb):
    src = cmd.inputs(sb)
    for rel in ("e4src", "csvsrc", "ds", "cohort", "art", "teacher", "student"):
        if sb.p(rel).exists():
            sb.keep_tree(rel)                  # every input is precious
    for rel in ("gate.json", "device.json", "trace.json"):
        if sb.p(rel).exists():
            sb.precious.append(sb.p(rel))
    return src


def v_nonempty(cmd):
    def setup(sb):
        _prep(cmd, sb)
        if cmd.kind == "dir":
            sb.keep("keep/a.txt")
            return cmd.argv("keep")
        sb.keep(OUT_FILE_NAME[cmd.name], b"precious user file\n")
        return cmd.argv(OUT_FILE_NAME[cmd.name])
    return setup


def v_overwrite(cmd):
    def setup(sb):
        _prep(cmd, sb)
        if cmd.kind == "dir":
            sb.write("keep/a.txt", "old output\n")
            sb.output("keep")
            return [*cmd.argv("keep"), "--overwrite"]
        name = OUT_FILE_NAME[cmd.name]
        sb.write(name, "old output\n")
        sb.output(name, *_companions(cmd, name))
        return [*cmd.argv(name), "--overwrite"]

    def check_file(sb, res):
        name = OUT_FILE_NAME[cmd.name]
        return "the output was not replaced" if sb.p(name).read_bytes() == b"old output\n" else None
    check = all_of(gone("keep/a.txt"), expect_files(*(f"keep/{m}" for m in cmd.made))) if cmd.kind == "dir" \
        else check_file
    return setup, check


SAME = {"data-import-e4": "e4src", "data-import-csv": "csvsrc/rec.csv", "data-window": "ds", "data-plot": "ds",
        "teacher-train": "ds", "teacher-eval": "ds", "distill-run": "teacher/teacher.pt", "distill-eval": "ds",
        "compress-prune": "student/student.pt", "export-run": "ds", "gate-calibrate": "cohort",
        "simulate-run": "art/student_fp32.tflite", "profile-run": "art/student_fp32.tflite",
        "pipeline-run": "cohort", "demo-build": ONNX}
INSIDE = {"data-import-e4": "e4src", "data-window": "ds", "data-plot": "ds", "teacher-train": "ds",
          "teacher-eval": "ds", "distill-run": "ds", "distill-eval": "ds", "compress-prune": "ds", "export-run": "ds",
          "gate-calibrate": "cohort", "pipeline-run": "cohort"}
FILE_CONTAINER = {"data-import-csv": "csvsrc", "simulate-run": "art", "profile-run": "art", "demo-build": "art"}


def v_same_as_source(cmd, overwrite=False):
    """--out names an input itself (a folder or a file)."""
    def setup(sb):
        _prep(cmd, sb)
        return [*cmd.argv(SAME[cmd.name]), *(["--overwrite"] if overwrite else [])]
    return setup


def v_inside_source(cmd):
    def setup(sb):
        _prep(cmd, sb)
        inner = "inner" if cmd.kind == "dir" else {"data-plot": "x.png", "distill-run": "x.pt", "compress-prune": "x.pt",
                                                   "gate-calibrate": "x.json"}[cmd.name]
        return cmd.argv(f"{INSIDE[cmd.name]}/{inner}")
    return setup


def v_contains_source(cmd, overwrite=False):
    """--out is a folder that holds an input: the input folder moved into ``data/`` and --out
    ``data``, or (a file input) the folder the file is in."""
    def setup(sb):
        _prep(cmd, sb)
        flag = ["--overwrite"] if overwrite else []
        if cmd.name in FILE_CONTAINER:
            return [*cmd.argv(FILE_CONTAINER[cmd.name]), *flag]
        src = INSIDE[cmd.name]
        sb.p("data").mkdir()
        sb.p(src).rename(sb.p("data") / src)
        sb.precious = [sb.p("data") / p.relative_to(sb.root) if p.is_relative_to(sb.p(src)) else p
                       for p in sb.precious]
        argv = cmd.argv("data")
        return [*(a.replace(src, f"data/{src}", 1) if (a == src or a.startswith(src + "/")) else a for a in argv),
                *flag]
    return setup


def v_dot(cmd):
    def setup(sb):
        _prep(cmd, sb)
        return cmd.argv(".")
    return setup


def v_under_file(cmd):
    def setup(sb):
        _prep(cmd, sb)
        sb.keep("afile")
        return cmd.argv("afile/out" if cmd.kind == "dir" else "afile/out.x")
    return setup


def v_proc(cmd):
    def setup(sb):
        _prep(cmd, sb)
        return cmd.argv("/proc/edgefm-robustness/out" if cmd.kind == "dir" else "/proc/edgefm-robustness/out.png")
    return setup


def v_symlink(cmd, overwrite=False):
    def setup(sb):
        _prep(cmd, sb)
        sb.keep("keepdir/a.txt")
        if cmd.kind == "dir":
            sb.p("link").symlink_to("keepdir", target_is_directory=True)
            out = "link"
        else:
            out = OUT_FILE_NAME[cmd.name]
            sb.p(out).symlink_to("keepdir/a.txt")
        return [*cmd.argv(out), *(["--overwrite"] if overwrite else [])]
    return setup


def v_file_where_dir(cmd):
    def setup(sb):
        _prep(cmd, sb)
        sb.keep("outfile", b"precious regular file\n")
        return cmd.argv("outfile")
    return setup


def v_dir_where_file(cmd):
    def setup(sb):
        _prep(cmd, sb)
        sb.keep(f"{OUT_FILE_NAME[cmd.name]}/a.txt")
        return cmd.argv(OUT_FILE_NAME[cmd.name])
    return setup


def v_new_ok(cmd):
    def setup(sb):
        _prep(cmd, sb)
        if cmd.kind == "dir":
            sb.output("newout")
            return cmd.argv("newout")
        name = OUT_FILE_NAME[cmd.name]
        sb.output(name, *_companions(cmd, name))
        return cmd.argv(name)
    check = expect_files(*(f"newout/{m}" for m in cmd.made)) if cmd.kind == "dir" else None
    return setup, check


for cmd in CMDS:
    has_source = cmd.name != "data-synth"
    add(cmd, "non-empty-with-precious-file", v_nonempty(cmd), match=MATCH_EXISTS)
    add(cmd, "dot", v_dot(cmd))
    add(cmd, "below-a-regular-file", v_under_file(cmd))
    add(cmd, "unwritable-proc", v_proc(cmd))
    add(cmd, "symlink-to-precious", v_symlink(cmd))
    if cmd.kind == "dir":
        add(cmd, "existing-regular-file", v_file_where_dir(cmd))
    else:
        add(cmd, "existing-directory", v_dir_where_file(cmd))
    if has_source:
        add(cmd, "same-as-source", v_same_as_source(cmd), match=MATCH_SOURCE + "|" + MATCH_EXISTS)
        add(cmd, "same-as-source-overwrite", v_same_as_source(cmd, overwrite=True), match=MATCH_SOURCE)
        if cmd.name in INSIDE:
            add(cmd, "inside-source", v_inside_source(cmd), match=MATCH_SOURCE)
        if cmd.kind == "dir":
            add(cmd, "contains-source", v_contains_source(cmd), match=MATCH_SOURCE + "|" + MATCH_EXISTS)
            add(cmd, "contains-source-overwrite", v_contains_source(cmd, overwrite=True), match=MATCH_SOURCE)
    if cmd.overwrite_ok:
        s, c = v_overwrite(cmd)
        add(cmd, "overwrite-replaces", s, expect="ok", check=c)
        add(cmd, "overwrite-symlink", v_symlink(cmd, overwrite=True))
        s, c = v_new_ok(cmd)
        add(cmd, "control-new-output", s, expect="ok", check=c)
