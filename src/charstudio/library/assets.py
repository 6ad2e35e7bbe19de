"""What the library holds for a character, checked against the files on disk.

The profile's method choice rests on this: a LoRA row whose file was deleted does not
count, so the method never names a file that is not there.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charstudio.library.models import Character, FaceEmbedding, LoraVersion, TrainingSet
from charstudio.library.profile import Assets
from charstudio.library.store import AssetStore

__all__ = ["read_assets", "resolve_stored_path"]


def resolve_stored_path(store: AssetStore, stored: str) -> Path:
    """Paths in the database are relative to the data root (absolute ones are kept)."""
    path = Path(stored)
    return path if path.is_absolute() else store.home / path


def read_assets(session: Session, store: AssetStore, character: Character) -> Assets:
    """The character's LoRA, face identity, references and training set, as :class:`Assets`."""
    lora = _usable_lora(session, store, character)
    identities = session.scalar(
        select(func.count())
        .select_from(FaceEmbedding)
        .where(FaceEmbedding.character_id == character.id, FaceEmbedding.kind == "identity")
    )
    embedding_file = store.embeddings_dir / f"{character.name}_face.pt"
    latest_set = session.scalar(
        select(TrainingSet)
        .where(TrainingSet.character_id == character.id)
        .order_by(TrainingSet.version.desc())
        .limit(1)
    )
    chosen = next(
        (r for r in character.references if r.ipadapter_reference is not None),
        character.references[0] if character.references else None,
    )
    return Assets(
        has_lora=lora is not None,
        has_embedding=bool(identities),
        reference_images_count=len(character.references),
        training_images_count=latest_set.num_images if latest_set else 0,
        lora_version=lora.version if lora else None,
        lora_path=str(resolve_stored_path(store, lora.path)) if lora else None,
        embedding_path=str(embedding_file) if identities and embedding_file.exists() else None,
        reference_image=(
            str(store.references_dir(character.name) / chosen.file_name) if chosen else None
        ),
    )


def _usable_lora(session: Session, store: AssetStore, character: Character) -> LoraVersion | None:
    """The promoted LoRA version, else the newest ready one, whose file exists."""
    candidates = session.scalars(
        select(LoraVersion)
        .where(LoraVersion.character_id == character.id, LoraVersion.status == "ready")
        .order_by(LoraVersion.promoted.desc(), LoraVersion.version.desc())
    )
    for candidate in candidates:
        if resolve_stored_path(store, candidate.path).is_file():
            return candidate
    return None
