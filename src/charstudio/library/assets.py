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

from charstudio.errors import InvalidParameter, NotFound
from charstudio.library.models import (
    Character,
    FaceEmbedding,
    LoraVersion,
    ReferenceImage,
    TrainingSet,
)
from charstudio.library.names import name_key
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
from charstudio.library.stored_paths import from_stored

__all__ = [
    "ASSET_COLUMNS",
    "LoraCandidates",
    "assets_of_rows",
    "existing_file",
    "lora_candidates",
    "pick_usable_loras",
    "profile_with",
    "read_assets",
    "ready_lora_files",
    "usable_loras",
    "with_lora_version",
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
    # Which backend made the identity ("dlib/<model>", "ccip/<model>"): scores from
    # different backends are never compared.
    _per_character(
        select(FaceEmbedding.backend + "/" + FaceEmbedding.model)
        .where(FaceEmbedding.character_id == Character.id, FaceEmbedding.kind == "identity")
        .limit(1)
    ).label("identity_backend"),
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


def existing_file(store: AssetStore, stored: str) -> Path | None:
    """The file a stored path names, if it is there (a LoRA whose file was deleted is not)."""
    path = from_stored(store.home, stored)
    return path if path.is_file() else None


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
            fields["identity_backend"] = row.identity_backend
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
    return pick_usable_loras(store, lora_candidates(connection, rows))


LoraCandidates = dict[int, list[tuple[int, str]]]
"""Ready LoRA versions by character id, as (version, stored path), best first."""


def lora_candidates(connection: Connection, rows: Sequence[Row[Any]]) -> LoraCandidates:
    """The ready LoRA versions of the characters of ``rows`` that have one (one query)."""
    ids = [row.id for row in rows if row.ready_loras]
    candidates: LoraCandidates = {}
    if ids:
        for character_id, version, stored in connection.execute(_LORAS, {"ids": ids}):
            candidates.setdefault(character_id, []).append((version, stored))
    return candidates


def pick_usable_loras(store: AssetStore, candidates: LoraCandidates) -> dict[int, tuple[int, Path]]:
    """Each character's first candidate whose file exists (a ``stat`` per file tried)."""
    usable = {}
    for character_id, versions in candidates.items():
        for version, stored in versions:
            path = existing_file(store, stored)
            if path is not None:
                usable[character_id] = (version, path)
                break
    return usable


def ready_lora_files(session: Session, store: AssetStore, name: str) -> list[tuple[int, Path]]:
    """Every ready LoRA version of the character whose file exists, as (version, file),
    oldest first: one query, then the file check :func:`usable_loras` makes."""
    found = session.execute(
        select(LoraVersion.version, LoraVersion.path)
        .join(Character, Character.id == LoraVersion.character_id)
        .where(Character.name_key == name_key(name), LoraVersion.status == "ready")
        .order_by(LoraVersion.version)
    ).all()
    files = [(version, existing_file(store, stored)) for version, stored in found]
    return [(version, path) for version, path in files if path is not None]


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
    path = from_stored(store.home, row.path)
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
    assets = read_assets(session, store, character.id)
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
