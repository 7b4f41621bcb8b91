"""Generative evaluation of the teacher (LSM Table 3) and imputation baselines."""

from edgefm.eval.baselines import BASELINES, linear_fill, mean_fill, mice_fill, nearest_fill
from edgefm.eval.generative import EvalConfig, evaluate, plot_reconstructions, run_eval, table

__all__ = ["EvalConfig", "evaluate", "run_eval", "table", "plot_reconstructions", "BASELINES", "mean_fill",
           "nearest_fill", "linear_fill", "mice_fill"]
