"""Teacher pretraining: :func:`pretrain`, checkpoints (:func:`load_teacher`), DDP (:func:`launch`)."""

from edgefm.train.checkpoint import load_checkpoint, load_teacher, save_checkpoint
from edgefm.train.ddp import launch
from edgefm.train.pretrain import (TrainConfig, augment, heldout_loss, parse_mask_mix, pretrain,
                                   teacher_for_dataset)

__all__ = ["TrainConfig", "pretrain", "teacher_for_dataset", "augment", "heldout_loss", "parse_mask_mix",
           "load_teacher", "load_checkpoint", "save_checkpoint", "launch"]
