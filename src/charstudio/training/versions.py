"""LoRA versions in the library: reserve, record, list, promote.

A run reserves its version row first (status ``training``), so two runs never take the
same number and an interrupted run is found again by ``--resume``. The row becomes
``ready`` only after the ``.safetensors`` file is completely written; the character
profile uses only ``ready`` rows whose file exists (``library/assets.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charstudio.errors import InvalidParameter, NotFound
from charstudio.library.models import LoraVersion, TrainingSet
from charstudio.training.types import LoraVersionInfo

__all__ = [
    "info",
    "parent_of",
    "parse_version",
    "promote",
    "require_version",
    "reserve",
    "resumable",
]


def parse_version(text: str) -> int:
    """``v3`` or ``3`` -> 3.

    Raises:
        InvalidParameter: anything else.
    """
    digits = text.strip().lower().removeprefix("v")
    if not digits.isdigit() or int(digits) < 1:
        raise InvalidParameter(f"version {text!r} is not like v3; see `charstudio lora list NAME`")
    return int(digits)


def parent_of(session: Session, character_id: int) -> LoraVersion | None:
    """The version a new one succeeds: the promoted one, else the newest ready one."""
    return session.scalars(
        select(LoraVersion)
        .where(LoraVersion.character_id == character_id, LoraVersion.status == "ready")
        .order_by(LoraVersion.promoted.desc(), LoraVersion.version.desc())
    ).first()


def reserve(
    session: Session,
    *,
    character_id: int,
    training_set: TrainingSet,
    path: str,
    config: dict[str, Any],
    base_model: str,
) -> LoraVersion:
    """Insert the next version's row in status ``training``."""
    newest = session.scalar(
        select(func.max(LoraVersion.version)).where(LoraVersion.character_id == character_id)
    )
    parent = parent_of(session, character_id)
    row = LoraVersion(
        character_id=character_id,
        version=(newest or 0) + 1,
        training_set_id=training_set.id,
        path=path,
        base_model=base_model,
        status="training",
        config=config,
        parent_id=parent.id if parent else None,
    )
    session.add(row)
    session.flush()
    return row


def resumable(session: Session, character_id: int) -> LoraVersion | None:
    """The newest version still in status ``training`` (interrupted or failed to save)."""
    return session.scalars(
        select(LoraVersion)
        .where(LoraVersion.character_id == character_id, LoraVersion.status == "training")
        .order_by(LoraVersion.version.desc())
    ).first()


def require_version(session: Session, character_id: int, name: str, version: int) -> LoraVersion:
    row = session.scalar(
        select(LoraVersion).where(
            LoraVersion.character_id == character_id, LoraVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"{name} has no LoRA v{version}; see `charstudio lora list {name}`")
    return row


def promote(session: Session, row: LoraVersion, *, name: str, file: Path) -> None:
    """Make ``row`` the version generation uses.

    Raises:
        InvalidParameter: the version is not ready or its file is gone.
    """
    if row.status != "ready":
        raise InvalidParameter(
            f"{name} v{row.version} is {row.status!r}, not ready; only a finished version can "
            f"be promoted (finish it with `charstudio train {name} --resume`)"
        )
    if not file.is_file():
        raise InvalidParameter(
            f"the file of {name} v{row.version} is missing ({file}); train again or promote "
            "another version"
        )
    for other in session.scalars(
        select(LoraVersion).where(LoraVersion.character_id == row.character_id)
    ):
        other.promoted = other.id == row.id


def info(session: Session, row: LoraVersion, file: Path) -> LoraVersionInfo:
    training_set = session.get(TrainingSet, row.training_set_id) if row.training_set_id else None
    parent = session.get(LoraVersion, row.parent_id) if row.parent_id else None
    metrics = row.metrics or {}
    return LoraVersionInfo(
        version=row.version,
        path=str(file),
        file_exists=file.is_file(),
        promoted=row.promoted,
        status=row.status,
        training_set_version=training_set.version if training_set else None,
        parent_version=parent.version if parent else None,
        base_model=row.base_model,
        steps=metrics.get("steps"),
        final_loss=metrics.get("final_loss"),
        created_at=row.created_at,
        loss_curve=list(metrics.get("loss_curve", [])),
        samples=list(metrics.get("samples", [])),
    )
