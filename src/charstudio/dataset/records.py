"""The dataset stage's rows in the library: a character's references and the captions its
user edited, and the ``training_sets`` versions that
:meth:`~charstudio.dataset.service.DatasetService.prepare` records.
"""

from __future__ import annotations

from sqlalchemy import func, select

from charstudio.errors import NotFound
from charstudio.library import Database
from charstudio.library.models import Character, ReferenceImage, TrainingSet

__all__ = ["caption_edits", "latest_set", "next_version", "record_set", "references"]


def references(db: Database, name: str) -> tuple[Character, list[ReferenceImage]]:
    """The character named ``name`` (its stored spelling) and its references, in import order.

    Raises:
        NotFound: no such character.
    """
    with db.sessions() as session:
        character = session.scalar(select(Character).where(Character.name == name))
        if character is None:
            raise NotFound(f"no character named {name!r}")
        refs = list(
            session.scalars(
                select(ReferenceImage)
                .where(ReferenceImage.character_id == character.id)
                .order_by(ReferenceImage.id)
            )
        )
        return character, refs


def caption_edits(db: Database, character_id: int) -> dict[str, str]:
    """The user's captions by reference SHA-256 (``dataset caption``): they win over
    generated ones."""
    with db.sessions() as session:
        rows = session.execute(
            select(ReferenceImage.sha256, ReferenceImage.caption_edit).where(
                ReferenceImage.character_id == character_id,
                ReferenceImage.caption_edit.is_not(None),
            )
        )
        return {sha: text for sha, text in rows if text}


def latest_set(db: Database, character_id: int) -> TrainingSet | None:
    """The character's newest training-set version, if any."""
    with db.sessions() as session:
        return session.scalar(
            select(TrainingSet)
            .where(TrainingSet.character_id == character_id)
            .order_by(TrainingSet.version.desc())
            .limit(1)
        )


def next_version(db: Database, character_id: int) -> int:
    """One past the character's highest training-set version (1 for the first)."""
    with db.sessions() as session:
        top = session.scalar(
            select(func.max(TrainingSet.version)).where(TrainingSet.character_id == character_id)
        )
    return (top or 0) + 1


def record_set(
    db: Database,
    *,
    character_id: int,
    version: int,
    digest: str,
    count: int,
    resolution: int,
    settings: dict[str, object],
    path: str,
) -> None:
    """Add a ``training_sets`` row: ``path`` relative to the data root, ``settings`` as
    written in its ``config.json``."""
    with db.sessions.begin() as session:
        session.add(
            TrainingSet(
                character_id=character_id,
                version=version,
                content_hash=digest,
                num_images=count,
                resolution=resolution,
                settings=settings,
                path=path,
            )
        )
