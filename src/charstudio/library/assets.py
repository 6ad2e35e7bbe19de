"""What the library holds for a character, checked against the files on disk.

The profile's method choice rests on this: a LoRA row whose file was deleted does not
count, so the method never names a file that is not there.

Everything is read as columns of the character's own row (:data:`ASSET_COLUMNS`, one
aggregate subquery each: no reference row is loaded to be counted), so listing any number
of characters is one query, plus one for the LoRA versions when some are ready. The disk
is touched only for what the rows claim exists: a ready LoRA's file (until one is found)
and the face identity's tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import BindParameter, Connection, Row, bindparam, func, select
from sqlalchemy.orm import Session

from charstudio.library.models import (
    Character,
    FaceEmbedding,
    LoraVersion,
    ReferenceImage,
    TrainingSet,
)
from charstudio.library.profile import Assets
from charstudio.library.store import AssetStore

__all__ = [
    "ASSET_COLUMNS",
    "assets_of_rows",
    "read_assets",
    "resolve_stored_path",
    "usable_loras",
]


def _per_character(query: Any) -> Any:
    return query.correlate(Character).scalar_subquery()


_of = ReferenceImage.character_id == Character.id
ASSET_COLUMNS = (
    Character.id,
    Character.name,
    _per_character(select(func.count()).where(_of)).label("reference_count"),
    # The image IP-Adapter and img2img start from: the face engine's (or the user's)
    # choice, else the first added.
    _per_character(
        select(ReferenceImage.sha256 + "." + ReferenceImage.suffix)
        .where(_of)
        .order_by(ReferenceImage.ipadapter_reference.is_(None), ReferenceImage.id)
        .limit(1)
    ).label("reference_file"),
    _per_character(
        select(func.count()).where(
            FaceEmbedding.character_id == Character.id, FaceEmbedding.kind == "identity"
        )
    ).label("identities"),
    _per_character(
        select(TrainingSet.num_images)
        .where(TrainingSet.character_id == Character.id)
        .order_by(TrainingSet.version.desc())
        .limit(1)
    ).label("training_images"),
    _per_character(
        select(func.count()).where(
            LoraVersion.character_id == Character.id, LoraVersion.status == "ready"
        )
    ).label("ready_loras"),
)
"""Columns of a ``select`` over ``characters`` that :func:`assets_of_rows` reads."""

_IDS: BindParameter[list[int]] = bindparam("ids", expanding=True)
# The promoted version first, then the newest: the first whose file exists is used.
_LORAS = (
    select(LoraVersion.character_id, LoraVersion.version, LoraVersion.path)
    .where(LoraVersion.character_id.in_(_IDS), LoraVersion.status == "ready")
    .order_by(LoraVersion.promoted.desc(), LoraVersion.version.desc())
)
_ONE = select(*ASSET_COLUMNS).where(Character.id == bindparam("id"))


def resolve_stored_path(store: AssetStore, stored: str) -> Path:
    """Paths in the database are relative to the data root (absolute ones are kept)."""
    path = Path(stored)
    return path if path.is_absolute() else store.home / path


def read_assets(session: Session, store: AssetStore, character_id: int) -> Assets:
    """The character's LoRA, face identity, references and training set, as :class:`Assets`."""
    connection = session.connection()
    row = connection.execute(_ONE, {"id": character_id}).one()
    return assets_of_rows(connection, store, [row])[character_id]


def assets_of_rows(
    connection: Connection, store: AssetStore, rows: Sequence[Row[Any]]
) -> dict[int, Assets]:
    """:class:`Assets` by character id, from rows holding :data:`ASSET_COLUMNS`."""
    loras = usable_loras(connection, store, rows)
    # Paths as strings joined once per call: pathlib per character was a sixth of the time.
    references_root = str(store.character_data / "references")
    embeddings_root = str(store.embeddings_dir)
    assets = {}
    for row in rows:
        fields: dict[str, Any] = {}
        if row.identities:
            embedding_file = Path(f"{embeddings_root}/{row.name}_face.pt")
            if embedding_file.exists():
                fields["embedding_path"] = str(embedding_file)
        if row.reference_file is not None:
            fields["reference_image"] = f"{references_root}/{row.name}/{row.reference_file}"
        lora = loras.get(row.id)
        if lora is not None:
            fields["lora_version"], fields["lora_path"] = lora[0], str(lora[1])
        assets[row.id] = Assets(
            has_lora=lora is not None,
            has_embedding=bool(row.identities),
            reference_images_count=row.reference_count,
            training_images_count=row.training_images or 0,
            **fields,
        )
    return assets


def usable_loras(
    connection: Connection, store: AssetStore, rows: Sequence[Row[Any]]
) -> dict[int, tuple[int, Path]]:
    """The LoRA each character of ``rows`` (holding :data:`ASSET_COLUMNS`) generates with,
    as (version, file), for those that have one: the promoted version, else the newest
    ready one, whose file exists. One query, and none when no row has a ready version."""
    ids = [row.id for row in rows if row.ready_loras]
    candidates: dict[int, list[tuple[int, str]]] = {}
    if ids:
        for character_id, version, stored in connection.execute(_LORAS, {"ids": ids}):
            candidates.setdefault(character_id, []).append((version, stored))
    usable = {}
    for character_id, versions in candidates.items():
        for version, stored in versions:
            path = resolve_stored_path(store, stored)
            if path.is_file():
                usable[character_id] = (version, path)
                break
    return usable
