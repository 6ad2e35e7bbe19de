"""LoRA training: configuration, offline base-model loading, the loop, kohya-format output."""

from charstudio.training.config import TrainingConfig, load_config
from charstudio.training.service import TrainingService
from charstudio.training.types import (
    BaseModelInvalid,
    DiskFull,
    KohyaExport,
    LoraVersionInfo,
    NothingToResume,
    NoTrainingSet,
    OptimizerUnavailable,
    TrainingDiverged,
    TrainingInterrupted,
    TrainingOutOfMemory,
    TrainingResult,
)

__all__ = [
    "BaseModelInvalid",
    "DiskFull",
    "KohyaExport",
    "LoraVersionInfo",
    "NoTrainingSet",
    "NothingToResume",
    "OptimizerUnavailable",
    "TrainingConfig",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingOutOfMemory",
    "TrainingResult",
    "TrainingService",
    "load_config",
]
