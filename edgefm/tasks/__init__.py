"""Tasks on a user's own recordings: heart rate, activity, freezing of gait, protocol phase.

    from edgefm.tasks import DeployConfig, build_deployable, load_windows
    res = build_deployable("data/troika", "runs/hr", DeployConfig(task="hr"))

:mod:`~edgefm.tasks.spec` (what a task is), :mod:`~edgefm.tasks.data` (its windows from any
imported dataset, subject splits), :mod:`~edgefm.tasks.fit` (its student, trained on training
subjects), :mod:`~edgefm.tasks.deploy` (the one call from data to verified int8 artifacts).
"""

from edgefm.tasks.data import TaskWindows, load_windows, loso_folds, split_subjects
from edgefm.tasks.deploy import DeployConfig, DeployResult, build_deployable, load_deployable, refit_deployable
from edgefm.tasks.fit import FitConfig, TaskModel, fit, score
from edgefm.tasks.spec import TASKS, TaskSpec, task_for

__all__ = ["TASKS", "TaskSpec", "task_for", "TaskWindows", "load_windows", "loso_folds", "split_subjects",
           "FitConfig", "TaskModel", "fit", "score", "DeployConfig", "DeployResult", "build_deployable",
           "load_deployable", "refit_deployable"]
