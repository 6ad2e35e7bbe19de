"""Training checkpoints: what resume needs, written so a crash never leaves half of one.

``<run>/checkpoints/step_000250/`` holds ``adapter.safetensors`` (the LoRA weights with peft
names, prefixed ``unet.`` / ``text_encoder.`` / ``text_encoder_2.``) and ``state.pt`` (the
optimizer's and the LR schedule's state, the gradient scaler's, the step). It is written
into a hidden staging folder and renamed into place, so a checkpoint folder either is
complete or does not exist.

Random state needs no saving: every micro-step draws its noise, timesteps and dropout
masks from generators seeded with ``(seed, micro-step)`` and every epoch's order from
``(seed, epoch)``, so restoring the step restores the randomness.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from safetensors.torch import save as serialise

from charstudio.errors import TrainingDiverged, storage_errors

__all__ = [
    "Checkpoint",
    "diverged",
    "latest_checkpoint",
    "load_checkpoint",
    "read_loss_log",
    "save_checkpoint",
    "truncate_loss_log",
]

_STEP_DIR = re.compile(r"^step_(\d{6,})$")


@dataclass
class Checkpoint:
    step: int
    folder: Path


def _split(state: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        owner, _, rest = key.partition(".")
        parts.setdefault(owner, {})[rest] = value
    return parts


def save_checkpoint(
    run_dir: Path,
    *,
    step: int,
    adapters: dict[str, dict[str, torch.Tensor]],
    optimizer: torch.optim.Optimizer,
    schedule: Any,
    scaler: Any | None,
) -> Checkpoint:
    """Write a complete checkpoint for ``step`` (replacing one of the same step).

    Both files are written through Python's file objects, so a full disk is an ``OSError``
    (safetensors' and torch's own writers raise their own errors) and becomes ``DiskFull``;
    the partial staging folder is removed.

    Raises:
        StorageError: the checkpoint could not be written (DiskFull, DataDirNotWritable).
    """
    root = run_dir / "checkpoints"
    final = root / f"step_{step:06d}"
    staging = root / f".staging_{step:06d}"
    shutil.rmtree(staging, ignore_errors=True)
    flat = {
        f"{owner}.{key}": value.detach().to("cpu").contiguous()
        for owner, state in adapters.items()
        for key, value in state.items()
    }
    state = {
        "step": step,
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": None if scaler is None else scaler.state_dict(),
    }
    try:
        with storage_errors(staging):
            staging.mkdir(parents=True)
            (staging / "adapter.safetensors").write_bytes(serialise(flat))
            with (staging / "state.pt").open("wb") as out:
                torch.save(state, out)
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Checkpoint(step=step, folder=final)


def latest_checkpoint(run_dir: Path) -> Checkpoint | None:
    """The newest complete checkpoint of a run, if any."""
    root = run_dir / "checkpoints"
    if not root.is_dir():
        return None
    found = [
        Checkpoint(step=int(m[1]), folder=p)
        for p in root.iterdir()
        if (m := _STEP_DIR.match(p.name)) and (p / "state.pt").is_file()
    ]
    return max(found, key=lambda c: c.step, default=None)


def load_checkpoint(
    checkpoint: Checkpoint,
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """(adapter states by owner, the optimizer/schedule/scaler state)."""
    adapters = _split(load_file(str(checkpoint.folder / "adapter.safetensors")))
    state = torch.load(checkpoint.folder / "state.pt", weights_only=False)
    return adapters, state


def read_loss_log(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def truncate_loss_log(path: Path, step: int) -> None:
    """Drop lines past ``step`` (steps redone after a resume are logged again)."""
    kept = [row for row in read_loss_log(path) if row["step"] <= step]
    with storage_errors(path):
        path.write_text("".join(json.dumps(row) + "\n" for row in kept), encoding="utf-8")


def diverged(run_dir: Path, name: str, step: int, total: int, loss: float) -> TrainingDiverged:
    """The error for a loss that became NaN or infinite at ``step`` (1-based), naming the
    last checkpoint that is kept for ``--resume`` (every step before it was finite)."""
    kept = latest_checkpoint(run_dir)
    where = (
        f"the last finite checkpoint (step {kept.step}, {kept.folder}) is kept for "
        f"`charstudio train {name} --resume`"
        if kept
        else "no checkpoint had been saved, so nothing is kept"
    )
    return TrainingDiverged(
        f"the loss became {loss} at step {step} of {total}; training stopped, no LoRA "
        f"version was registered and nothing was copied; {where}. Check the base model "
        "(broken text-encoder or UNet weights give a NaN loss) or lower "
        "training.learning_rate"
    )
