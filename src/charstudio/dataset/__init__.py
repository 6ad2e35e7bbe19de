"""Training-set preparation: curate, crop, caption and lay out a character's references."""

from charstudio.dataset.service import DatasetService, NotEnoughImages
from charstudio.dataset.types import (
    DEFAULTS,
    CropBox,
    DatasetConfig,
    KeptImage,
    PrepareResult,
    RejectedImage,
)

__all__ = [
    "DEFAULTS",
    "CropBox",
    "DatasetConfig",
    "DatasetService",
    "KeptImage",
    "NotEnoughImages",
    "PrepareResult",
    "RejectedImage",
]
