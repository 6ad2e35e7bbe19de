"""Typed results of LoRA training.

The errors training raises, defined in charstudio's one tree (``charstudio.errors``)::

    UsageError ── BaseModelInvalid        corrupt checkpoint, a LoRA, SDXL as SD1.5, NaN weights
               └─ NothingToResume         --resume with no interrupted run
    NotFound ──── NoTrainingSet           `charstudio dataset prepare` was never run
    StorageError ─ DiskFull               the disk filled while saving; no half file is kept
    BackendUnavailable ─ OptimizerUnavailable   8-bit AdamW without bitsandbytes/CUDA
    JobFailed ─── TrainingOutOfMemory     checkpoint saved; smaller batch/resolution advised
               ├─ TrainingDiverged        NaN/inf loss; last finite checkpoint kept
               └─ TrainingInterrupted     Ctrl-C; checkpoint saved; exit 130
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from charstudio.errors import (
    BaseModelInvalid,
    DiskFull,
    NothingToResume,
    NoTrainingSet,
    OptimizerUnavailable,
    TrainingDiverged,
    TrainingInterrupted,
    TrainingOutOfMemory,
)

__all__ = [
    "BaseModelInvalid",
    "DiskFull",
    "KohyaExport",
    "LoraVersionInfo",
    "NoTrainingSet",
    "NothingToResume",
    "OptimizerUnavailable",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingOutOfMemory",
    "TrainingResult",
]


class TrainingResult(BaseModel):
    """What ``charstudio train`` made."""

    model_config = ConfigDict(frozen=True)

    character: str
    version: int
    path: str
    sha256: str
    steps: int
    first_loss: float
    final_loss: float
    loss_log: str
    samples: list[str]
    run_dir: str
    base_model: str
    base_model_sha256: str
    training_set_version: int
    parent_version: int | None
    device: str
    precision: str
    resumed_from_step: int | None
    copied_to: str | None
    warnings: list[str]
    seconds: float


class LoraVersionInfo(BaseModel):
    """One row of ``charstudio lora list``."""

    model_config = ConfigDict(frozen=True)

    version: int
    path: str
    file_exists: bool
    promoted: bool
    status: str
    training_set_version: int | None
    parent_version: int | None
    base_model: str
    steps: int | None
    final_loss: float | None
    created_at: datetime
    # The logged loss as [step, loss] pairs (thinned), and the sample images per checkpoint
    # (paths relative to the data root), for plots; empty until the version is ready.
    loss_curve: list[list[float]] = []
    samples: list[str] = []


class KohyaExport(BaseModel):
    """``charstudio train --export-kohya``: the equivalent sd-scripts run."""

    model_config = ConfigDict(frozen=True)

    command: str
    script: str
    dataset_toml: str
