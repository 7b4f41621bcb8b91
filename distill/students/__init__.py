"""Accelerometer-only students. One file per architecture; sizes as factories.

``build_student(name, **config_overrides)`` builds one by factory name;
``student_from_config(arch, config_dict)`` rebuilds one from a checkpoint.
"""

from __future__ import annotations

from torch import nn

from distill.students.cnn1d import CNN1DConfig, CNN1DStudent, cnn1d_base, cnn1d_small, cnn1d_tiny
from distill.students.tiny_transformer import (TinyTransformerConfig, TinyTransformerStudent,
                                               tiny_transformer_small, tiny_transformer_tiny)
from edgefm.errors import ConfigError

DEFAULT_STUDENT = "cnn1d_small"

FACTORIES = {
    "cnn1d_tiny": cnn1d_tiny, "cnn1d_small": cnn1d_small, "cnn1d_base": cnn1d_base,
    "tiny_transformer_tiny": tiny_transformer_tiny, "tiny_transformer_small": tiny_transformer_small,
}

ARCHS = {"cnn1d": (CNN1DStudent, CNN1DConfig),
         "tiny_transformer": (TinyTransformerStudent, TinyTransformerConfig)}


def build_student(name: str = DEFAULT_STUDENT, **overrides) -> nn.Module:
    """Build a student by factory name, e.g. ``build_student("cnn1d_small", teacher_dim=192)``."""
    try:
        f = FACTORIES[name]
    except KeyError:
        raise ConfigError(f"unknown student {name!r}", field="student",
                          hint=f"choose one of {', '.join(FACTORIES)}") from None
    return f(**overrides)


def student_from_config(arch: str, config: dict) -> nn.Module:
    """Rebuild a student from ``(arch, config.to_dict())`` as stored in a checkpoint."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown student architecture {arch!r}", field="arch",
                          hint=f"known: {', '.join(ARCHS)}")
    cls, cfg = ARCHS[arch]
    return cls(cfg.from_dict(config))


__all__ = ["CNN1DConfig", "CNN1DStudent", "TinyTransformerConfig", "TinyTransformerStudent",
           "build_student", "student_from_config", "DEFAULT_STUDENT", "FACTORIES",
           *FACTORIES]
