"""PPG -> ACC distillation: accelerometer-only students for microcontrollers.

    from distill import build_student, distill, DistillConfig, deployable, save_student, load_student
    student = build_student("cnn1d_small", teacher_dim=teacher.cfg.enc_dim)
    student = distill(student, teacher, "runs/wesad/wrist-raw", DistillConfig(epochs=20))
"""

from distill.students import DEFAULT_STUDENT, build_student, student_from_config  # noqa: F401
from distill.distill import DistillConfig, distill, distill_loss, info_nce  # noqa: F401
from distill.deploy import Deployable, LoadedStudent, deployable, head_from_probe, load_student, save_student  # noqa: F401
from distill.probes import (LinearClassifierProbe, MLPProbe, RidgeProbe, label_subset, mae,  # noqa: F401
                            retrieval_topk)
from distill.baselines import (MaskedPretrainConfig, SupervisedConfig, pretrain_masked,  # noqa: F401
                               train_supervised)

__all__ = ["DEFAULT_STUDENT", "build_student", "student_from_config", "DistillConfig", "distill",
           "distill_loss", "info_nce", "Deployable", "LoadedStudent", "deployable", "head_from_probe",
           "load_student", "save_student", "RidgeProbe", "MLPProbe", "LinearClassifierProbe",
           "label_subset", "mae", "retrieval_topk", "MaskedPretrainConfig", "SupervisedConfig",
           "pretrain_masked", "train_supervised"]
