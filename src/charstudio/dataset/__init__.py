"""Training-set preparation: curate, crop, caption and lay out a character's references."""

from charstudio.dataset.service import DatasetService, NotEnoughImages
from charstudio.dataset.types import (
    CropBox,
    DatasetConfig,
    KeptImage,
    PrepareResult,
    RejectedImage,
)

__all__ = [
    "CropBox",
    "DatasetConfig",
    "DatasetService",
    "KeptImage",
    "NotEnoughImages",
    "PrepareResult",
    "RejectedImage",
]
