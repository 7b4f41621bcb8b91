"""Compression: pruning, int8 quantization (one PT2E scheme shared by every backend), INC tuning, SQNR.

    prune_(model, PruneConfig(ratio=0.5, recover_epochs=5), example, data=x)   # in place
    qm = quantize_(model, QuantConfig(backend="tflite", calibration=calib))   # new graph
    quantize.tune.tune(model, TuneConfig(backend="pte", calibration=calib, tolerable_loss=0.01), x_val, y_val)
"""

from quantize.prune import PruneConfig, PruneReport, model_stats, prune_, recover_  # noqa: F401
from quantize.ptq import HR_RANGE_BPM, QuantConfig, QuantizedModel, output_range_for, quantize_  # noqa: F401
from quantize.sqnr import layer_sqnr, sqnr_db  # noqa: F401

