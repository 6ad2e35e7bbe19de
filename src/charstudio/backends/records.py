"""The library's record of generations: a ``jobs`` row per generate call, a ``generations``
row per stored image (its path relative to the data root, :mod:`charstudio.library.stored_paths`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from charstudio.backends.outputs import StoredImage
from charstudio.errors import NotFound
from charstudio.library import Database
from charstudio.library.jobs_table import insert_job, update_job
from charstudio.library.models import Character, Generation, utcnow
from charstudio.library.names import name_key
from charstudio.library.stored_paths import to_stored

__all__ = [
    "discard_generations",
    "finish_job",
    "record_generations",
    "start_job",
    "update_generation",
]


def start_job(db: Database, *, job_id: str, character: str, params: dict[str, Any]) -> None:
    """Record a generate job as running.

    Raises:
        NotFound: no such character.
        DatabaseError: the database cannot be written.
    """
    with _transaction(db) as session:
        insert_job(
            session,
            job_id=job_id,
            kind="generate",
            character_id=_character_id(session, character),
            state="running",
            params=params,
            started_at=utcnow(),
            progress_total=int(params.get("count", 0)),
        )


def finish_job(
    db: Database, *, job_id: str, state: str, result: dict[str, Any] | None = None, error: str = ""
) -> None:
    """Mark a job done, failed or cancelled."""
    with _transaction(db) as session:
        update_job(
            session,
            job_id,
            state=state,
            result=result or {},
            error=error,
            finished_at=utcnow(),
            progress_step=len((result or {}).get("images", [])),
        )


def record_generations(
    db: Database,
    *,
    home: Path,
    character: str,
    job_id: str,
    backend: str,
    images: Sequence[StoredImage],
) -> list[int]:
    """Add one ``generations`` row per stored image (its path relative to the data root
    ``home``); returns their ids."""
    with _transaction(db) as session:
        character_id = _character_id(session, character)
        rows = []
        for image in images:
            params = image.parameters
            row = Generation(
                character_id=character_id,
                job_id=job_id,
                lora_version_id=params.get("lora_version_id"),
                backend=backend,
                method=str(params["method"]),
                prompt=str(params["prompt"]),
                seed=int(params["seed"]),
                params=params,
                path=to_stored(home, image.path),
                sha256=image.sha256,
            )
            session.add(row)
            rows.append(row)
        session.flush()
        return [row.id for row in rows]


def update_generation(
    db: Database,
    generation_id: int,
    *,
    moved_to: tuple[Path, Path] | None = None,
    qc: dict[str, Any] | None = None,
) -> None:
    """Point a ``generations`` row at a moved file (``moved_to``: the data root and the
    file's new path, stored relative to the root) and/or keep its QC result in its params
    (under ``"qc"``): what the gated generation does for every image it checks."""
    with _transaction(db) as session:
        row = session.get(Generation, generation_id)
        if row is None:
            raise NotFound(f"no generation {generation_id}")
        if moved_to is not None:
            row.path = to_stored(*moved_to)
        if qc is not None:
            row.params = {**(row.params or {}), "qc": qc}


def discard_generations(db: Database, job_id: str) -> int:
    """Forget the ``generations`` rows of a job (an attempt that died before finishing:
    the next attempt records its own); returns how many there were."""
    with _transaction(db) as session:
        result = session.execute(delete(Generation).where(Generation.job_id == job_id))
        return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult


def _character_id(session: Session, name: str) -> int:
    found = session.scalar(select(Character.id).where(Character.name_key == name_key(name)))
    if found is None:
        raise NotFound(f"no character named {name!r}; see `charstudio character list`")
    return int(found)


@contextlib.contextmanager
def _transaction(db: Database) -> Iterator[Session]:
    with db.sessions.begin() as session:  # SQLAlchemy errors become DatabaseError there
        yield session
