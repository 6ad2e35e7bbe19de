"""The character listing: one page of summaries, in one query.

``GET /api/v1/characters`` and the studio's home page list characters on every load, so
this reads per character only what a summary shows: its row, its assets as aggregate
columns (:data:`~charstudio.library.assets.ASSET_COLUMNS`), the pinned method alone from
its overrides, and the total as a window over every row. No reference row is loaded to be
counted and no full profile is built; the LoRA versions are read (one more query) only when
some character has a ready one. ``tests/library/test_listing.py`` holds it to one query and
to the same method as each character's profile.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import bindparam, func, select

from charstudio.library.assets import ASSET_COLUMNS, usable_loras
from charstudio.library.database import Database
from charstudio.library.models import Character
from charstudio.library.profile import choose_method
from charstudio.library.store import AssetStore
from charstudio.library.types import CharacterPage, CharacterSummary

__all__ = ["list_page"]

_SUMMARY_ROWS = (
    select(
        *ASSET_COLUMNS,
        Character.trigger_word,
        # The pinned method alone: decoding and checking every override is the profile's.
        Character.overrides["method"].as_string().label("pinned_method"),
        Character.created_at,
        func.count().over().label("total"),  # counted before LIMIT
    )
    .order_by(Character.name_key)
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)  # built once: a new statement per request cost more than running it
_ALL = 2**62  # "no limit", as a number every database takes
_COUNT = select(func.count()).select_from(Character)


class _Held(NamedTuple):
    """What a listed character holds, as far as its method goes."""

    has_lora: bool
    has_embedding: bool


def list_page(
    db: Database, store: AssetStore, *, limit: int | None = None, offset: int = 0
) -> CharacterPage:
    """Characters by name: ``limit`` of them (all: ``None``) after the first ``offset``,
    and how many there are."""
    window = {"limit": _ALL if limit is None else limit, "offset": offset}
    with db.sessions.reading() as connection:
        rows = connection.execute(_SUMMARY_ROWS, window).all()
        loras = usable_loras(connection, store, rows)
        total = rows[0].total if rows else connection.execute(_COUNT).scalar_one()
    items = []
    for row in rows:
        held = _Held(has_lora=row.id in loras, has_embedding=bool(row.identities))
        method, _ = choose_method(held, row.pinned_method)
        items.append(
            CharacterSummary(
                name=row.name,
                trigger_word=row.trigger_word,
                reference_images=row.reference_count,
                method=method,
                has_lora=held.has_lora,
                has_embedding=held.has_embedding,
                created_at=row.created_at,
            )
        )
    return CharacterPage(items=items, total=total)
