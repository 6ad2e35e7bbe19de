"""Where a run starts: from step 0, or from its latest checkpoint (``--resume``).

Steps 1 and 6 of :meth:`~charstudio.training.trainer.Trainer.run`: the checkpoint to resume
is found before any model loads (:func:`checkpoint_to_resume`), and restored once the LoRA
layers, the optimizer and the LR schedule exist (:func:`restore`). Randomness needs no
restoring (see ``checkpoints.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from charstudio.errors import storage_errors
from charstudio.training.checkpoints import (
    Checkpoint,
    latest_checkpoint,
    load_checkpoint,
    truncate_loss_log,
)
from charstudio.training.config import TrainingConfig
from charstudio.training.loading import BaseModel
from charstudio.training.trainable import load_adapter_states
from charstudio.training.types import NothingToResume

__all__ = ["checkpoint_to_resume", "restore"]


def checkpoint_to_resume(run_dir: Path, *, resume: bool) -> Checkpoint | None:
    """The checkpoint a ``--resume`` run continues from; ``None`` for a new run.

    Raises:
        NothingToResume: ``resume`` is set but the run has no complete checkpoint.
    """
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if resume and checkpoint is None:
        raise NothingToResume(
            f"no checkpoint to resume in {run_dir}; start a new run without --resume"
        )
    return checkpoint


def restore(
    base: BaseModel,
    config: TrainingConfig,
    checkpoint: Checkpoint | None,
    *,
    run_dir: Path,
    log_path: Path,
    optimizer: Any,
    schedule: Any,
    scaler: Any,
) -> int:
    """Start a new run (an empty loss log) or restore ``checkpoint`` into the model, the
    optimizer, the schedule and the gradient scaler, dropping loss lines past its step.

    Returns:
        The step the run continues from (0 for a new run).
    """
    if checkpoint is None:
        with storage_errors(log_path):
            run_dir.mkdir(parents=True, exist_ok=True)
            log_path.write_text("", encoding="utf-8")
        return 0
    adapters, state = load_checkpoint(checkpoint)
    load_adapter_states(base, config, adapters)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    truncate_loss_log(log_path, checkpoint.step)
    return int(state["step"])
