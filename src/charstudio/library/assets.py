"""What the library holds for a character, checked against the files on disk.

The profile's method choice rests on this: a LoRA row whose file was deleted does not
count, so the method never names a file that is not there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charstudio.errors import InvalidParameter, NotFound
from charstudio.library.models import Character, FaceEmbedding, LoraVersion, TrainingSet
from charstudio.library.profile import (
    Assets,
    CharacterConsistencyProfile,
    Method,
    build_profile,
    feasible_methods,
    missing_for,
    parse_overrides,
)
from charstudio.library.store import AssetStore

__all__ = [
    "profile_with",
    "read_assets",
    "read_assets_many",
    "resolve_stored_path",
    "with_lora_version",
]


def resolve_stored_path(store: AssetStore, stored: str) -> Path:
    """Paths in the database are relative to the data root (absolute ones are kept)."""
    path = Path(stored)
    return path if path.is_absolute() else store.home / path


def read_assets(session: Session, store: AssetStore, character: Character) -> Assets:
    """The character's LoRA, face identity, references and training set, as :class:`Assets`."""
    return read_assets_many(session, store, [character])[character.id]


def read_assets_many(
    session: Session, store: AssetStore, characters: Sequence[Character]
) -> dict[int, Assets]:
    """:func:`read_assets` for many characters in four queries, not four per character."""
    ids = [c.id for c in characters]
    # One identity row per character; its backend/model says which backend made it.
    identities = {
        cid: f"{backend}/{model}"
        for cid, backend, model in session.execute(
            select(FaceEmbedding.character_id, FaceEmbedding.backend, FaceEmbedding.model).where(
                FaceEmbedding.character_id.in_(ids), FaceEmbedding.kind == "identity"
            )
        ).all()
    }
    newest = (
        select(TrainingSet.character_id, func.max(TrainingSet.version).label("version"))
        .where(TrainingSet.character_id.in_(ids))
        .group_by(TrainingSet.character_id)
        .subquery()
    )
    set_sizes = dict(
        session.execute(
            select(TrainingSet.character_id, TrainingSet.num_images).join(
                newest,
                (TrainingSet.character_id == newest.c.character_id)
                & (TrainingSet.version == newest.c.version),
            )
        ).all()
    )
    loras: dict[int, list[LoraVersion]] = {i: [] for i in ids}
    for row in session.scalars(
        select(LoraVersion)
        .where(LoraVersion.character_id.in_(ids), LoraVersion.status == "ready")
        .order_by(LoraVersion.promoted.desc(), LoraVersion.version.desc())
    ):
        loras[row.character_id].append(row)
    return {
        c.id: _assets(
            store, c, _usable_lora(store, loras[c.id]), identities.get(c.id), set_sizes.get(c.id)
        )
        for c in characters
    }


def _assets(
    store: AssetStore,
    character: Character,
    lora: LoraVersion | None,
    identity: str | None,
    training_images: int | None,
) -> Assets:
    embedding_file = store.embeddings_dir / f"{character.name}_face.pt"
    chosen = next(
        (r for r in character.references if r.ipadapter_reference is not None),
        character.references[0] if character.references else None,
    )
    return Assets(
        has_lora=lora is not None,
        has_embedding=identity is not None,
        identity_backend=identity,
        reference_images_count=len(character.references),
        training_images_count=training_images or 0,
        lora_version=lora.version if lora else None,
        lora_path=str(resolve_stored_path(store, lora.path)) if lora else None,
        embedding_path=str(embedding_file) if identity and embedding_file.exists() else None,
        reference_image=(
            str(store.references_dir(character.name) / chosen.file_name) if chosen else None
        ),
    )


def _usable_lora(store: AssetStore, candidates: Sequence[LoraVersion]) -> LoraVersion | None:
    """The promoted LoRA version, else the newest ready one, whose file exists."""
    for candidate in candidates:
        if resolve_stored_path(store, candidate.path).is_file():
            return candidate
    return None


def with_lora_version(
    session: Session, store: AssetStore, character: Character, assets: Assets, version: int
) -> Assets:
    """``assets`` with LoRA ``version`` in place of the promoted one.

    Raises:
        NotFound: no such version, or its file is gone.
        InvalidParameter: the version is not ready (still training, or failed).
    """
    row = session.scalar(
        select(LoraVersion).where(
            LoraVersion.character_id == character.id, LoraVersion.version == version
        )
    )
    if row is None:
        raise NotFound(
            f"{character.name} has no LoRA version {version}; see "
            f"`charstudio lora list {character.name}`"
        )
    if row.status != "ready":
        raise InvalidParameter(f"LoRA version {version} of {character.name} is {row.status}")
    path = resolve_stored_path(store, row.path)
    if not path.is_file():
        raise NotFound(f"LoRA version {version} of {character.name}: {path} is gone")
    return assets.model_copy(
        update={"has_lora": True, "lora_version": version, "lora_path": str(path)}
    )


def profile_with(
    session: Session,
    store: AssetStore,
    character: Character,
    *,
    method: Method | None,
    lora_version: int | None,
) -> CharacterConsistencyProfile:
    """The character's profile for a given method and/or LoRA version (see
    ``Library.profile``).

    Raises:
        NotFound: no such LoRA version, or its file is gone.
        InvalidParameter: a method the assets do not allow; a LoRA version not ready.
    """
    assets = read_assets(session, store, character)
    if lora_version is not None:
        assets = with_lora_version(session, store, character, assets, lora_version)
    overrides = parse_overrides(character.overrides)
    if method is not None:
        if method not in feasible_methods(assets):
            raise InvalidParameter(
                f"{character.name} cannot be generated with {method}: "
                f"{missing_for(method, assets)}; it can use "
                f"{', '.join(feasible_methods(assets))}"
            )
        overrides = overrides.model_copy(update={"method": method})
    return build_profile(
        name=character.name,
        trigger_word=character.trigger_word,
        assets=assets,
        overrides=overrides,
    )
