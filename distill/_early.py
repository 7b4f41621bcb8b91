"""Early stopping that keeps the best weights: one mechanism for every training loop in distill/."""

from __future__ import annotations

import copy
import math

from torch import nn


class BestWeights:
    """Tracks ``module``'s best score (lower is better) and a copy of its weights at that score.

    ``update(score)`` after each epoch returns True when ``patience`` epochs in a row failed to
    beat the best by ``min_delta`` (and ``can_stop``); ``restore()`` loads the best weights back.
    """

    def __init__(self, module: nn.Module, patience: int, min_delta: float = 1e-4):
        self.module, self.patience, self.min_delta = module, patience, min_delta
        self.best, self.bad, self.state = math.inf, 0, None

    def update(self, score: float, can_stop: bool = True) -> bool:
        if score < self.best - self.min_delta:
            self.best, self.bad = score, 0
            self.state = copy.deepcopy(self.module.state_dict())
            return False
        self.bad += 1
        return can_stop and self.bad >= self.patience

    def restore(self) -> bool:
        """Load the best weights (if any epoch set them); returns whether it did."""
        if self.state is None:
            return False
        self.module.load_state_dict(self.state)
        return True
