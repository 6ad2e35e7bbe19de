"""The character listing: one page of summaries, in one query.

``GET /api/v1/characters`` and the studio's home page list characters on every load, so
this reads per character only what a summary shows: its row, its assets as aggregate
columns (:data:`~charstudio.library.assets.ASSET_COLUMNS`), the pinned method alone from
its overrides, and the total as a window over every row. No reference row is loaded to be
counted and no full profile is built; the LoRA versions are read (one more query) only when
some character has a ready one. ``tests/library/test_listing.py`` holds it to one query and
to the same method as each character's profile.

On a SQLite library the answer is kept while the database is unchanged
(:class:`~charstudio.library.changes.ChangeCounter`: any commit, by any process, is seen):
a repeated listing then runs no query, only a ``stat`` of each LoRA file it relied on,
so a file deleted behind the library's back still drops that LoRA at once. PostgreSQL has
no such counter and runs the query every time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import Row, bindparam, func, select

from charstudio.library.assets import (
    ASSET_COLUMNS,
    LoraCandidates,
    lora_candidates,
    pick_usable_loras,
)
from charstudio.library.changes import ChangeCounter
from charstudio.library.database import Database
from charstudio.library.models import Character
from charstudio.library.profile import choose_method
from charstudio.library.store import AssetStore
from charstudio.library.types import CharacterPage, CharacterSummary

__all__ = ["Listing"]

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


@dataclass(frozen=True)
class _Answer:
    """One page as read: its rows and LoRA candidates, and the summaries made of them."""

    version: tuple[int, int] | None
    rows: Sequence[Row[Any]]
    candidates: LoraCandidates
    usable: frozenset[int]  # characters whose LoRA file existed
    page: CharacterPage


class Listing:
    """Pages of character summaries, each read in one query and kept while unchanged."""

    _KEPT = 16  # pages kept (by limit and offset), the oldest dropped first

    def __init__(self, db: Database, store: AssetStore) -> None:
        self.db = db
        self.store = store
        self.changes = ChangeCounter(db.engine)
        self._answers: OrderedDict[tuple[int | None, int], _Answer] = OrderedDict()
        self._lock = threading.Lock()  # the API's and studio's threads share the pages kept

    def page(self, *, limit: int | None = None, offset: int = 0) -> CharacterPage:
        """Characters by name: ``limit`` of them (all: ``None``) after the first
        ``offset``, and how many there are."""
        key = (limit, offset)
        version = self.changes.value()  # before the read: a commit during it is seen next time
        with self._lock:
            kept = self._answers.get(key)
        if version is not None and kept is not None and kept.version == version:
            usable = pick_usable_loras(self.store, kept.candidates)
            if frozenset(usable) == kept.usable:
                return kept.page.model_copy(update={"items": list(kept.page.items)})
            answer = _summarise(version, kept.rows, kept.candidates, usable, kept.page.total)
        else:
            answer = self._read(version, limit, offset)
        if version is not None:
            with self._lock:
                self._answers[key] = answer
                self._answers.move_to_end(key)
                while len(self._answers) > self._KEPT:
                    self._answers.popitem(last=False)
        return answer.page.model_copy(update={"items": list(answer.page.items)})

    def close(self) -> None:
        self.changes.close()

    def _read(self, version: tuple[int, int] | None, limit: int | None, offset: int) -> _Answer:
        window = {"limit": _ALL if limit is None else limit, "offset": offset}
        with self.db.sessions.reading() as connection:
            rows = connection.execute(_SUMMARY_ROWS, window).all()
            candidates = lora_candidates(connection, rows)
            total = rows[0].total if rows else connection.execute(_COUNT).scalar_one()
        usable = pick_usable_loras(self.store, candidates)
        return _summarise(version, rows, candidates, usable, total)


def _summarise(
    version: tuple[int, int] | None,
    rows: Sequence[Row[Any]],
    candidates: LoraCandidates,
    usable: dict[int, tuple[int, Path]],
    total: int,
) -> _Answer:
    items = []
    for row in rows:
        held = _Held(has_lora=row.id in usable, has_embedding=bool(row.identities))
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
    page = CharacterPage(items=items, total=total)
    return _Answer(version, rows, candidates, frozenset(usable), page)
