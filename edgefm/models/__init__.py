"""Models: the LSM masked-autoencoder teacher (``lsm_mae``) and its masks (``masking``)."""

from edgefm.models.lsm_mae import (SIZES, TABLE8, LSMConfig, MaskedAutoencoder, build_teacher, lsm_base,
                                   lsm_large, lsm_small, lsm_tiny, preset_config)

__all__ = ["LSMConfig", "MaskedAutoencoder", "SIZES", "TABLE8", "build_teacher", "lsm_tiny", "lsm_small",
           "lsm_base", "lsm_large", "preset_config"]
