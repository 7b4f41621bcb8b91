"""What a task is: which label it learns, whether it is a regression or a classification, the
window it reads, and what its deployable model outputs.

=========  ===========  =================  ======================================================
task       label        kind               default window (what the label needs)
=========  ===========  =================  ======================================================
hr         ``hr``       regression, bpm    8 s, 2 s hop, 32 Hz (the ECG reference's own windows)
activity   ``activity`` classes            2 s, 0.5 s hop, 50 Hz (sit-to-stand and turns last
                                           2-4 s: an 8 s window labels almost all "walking")
freeze     ``freeze``   event (2 classes)  4 s, 1 s hop, 32 Hz (freezing of gait: 3-8 Hz "freeze
                                           band" bursts lasting seconds, Bächlin 2010)
phase      ``stress``   classes            60 s, 30 s hop, 4 Hz (protocol phases last minutes)
=========  ===========  =================  ======================================================

``task_for(label_names, requested)`` picks the task: the requested one (a typed error if the
data lacks its label) or, by default, the first of ``hr, activity, freeze, phase`` whose label
is present.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgefm.errors import ConfigError, DataError

HR_RANGE_BPM = (30.0, 230.0)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    label: str
    kind: str                      # "regression" | "classes"
    fs_hz: float
    window_s: float
    hop_s: float
    unit: str = ""
    doc: str = ""

    @property
    def regression(self) -> bool:
        return self.kind == "regression"


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("hr", "hr", "regression", 32.0, 8.0, 2.0, unit="bpm", doc="heart rate (bpm)"),
    TaskSpec("activity", "activity", "classes", 50.0, 2.0, 0.5, doc="activity classes"),
    TaskSpec("freeze", "freeze", "classes", 32.0, 4.0, 1.0, doc="freezing-of-gait events"),
    TaskSpec("phase", "stress", "classes", 4.0, 60.0, 30.0, doc="protocol phases"),
)}


def task_for(labels: dict, requested: str | None = None, path=None) -> TaskSpec:
    """The task for data whose labels are ``{name: info}``; see the module docstring."""
    if requested is not None:
        if requested not in TASKS:
            raise ConfigError(f"unknown task {requested!r}", field="--task", hint=f"one of: {', '.join(TASKS)}")
        t = TASKS[requested]
        if t.label not in labels:
            raise DataError(f"task {requested} needs a {t.label!r} label, and the data has "
                            f"{sorted(labels) or 'no labels'}", path=path, field="labels",
                            hint="pick --task from the labels the data has")
        return t
    for t in TASKS.values():
        if t.label in labels:
            return t
    raise DataError(f"no label any task learns (has {sorted(labels) or 'none'}; tasks learn "
                    f"{', '.join(t.label for t in TASKS.values())})", path=path, field="labels",
                    hint="import data with labels, or use `edgefm data synth`")
