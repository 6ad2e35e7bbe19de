"""The data root's library marker: ``<home>/library.json`` names the library it belongs to.

On several machines the data root is one shared mount (NFS, SMB) and the database one
PostgreSQL server. A machine whose mount is missing (an empty local folder at the path) or
that points at another library's folder would write references and outputs where no other
machine sees them; so ``serve`` and ``worker`` compare the marker with the database's
library id (:class:`~charstudio.library.models.LibraryInfo`) before anything else, and
refuse a missing or different one with what to fix.

The marker is written by ``charstudio init``, by any start that creates the library, and
(where the database is the SQLite file inside the data root, which cannot disagree) by
every start that finds none.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from charstudio.errors import DataRootMismatch
from charstudio.library.database import Database, display_url
from charstudio.library.store import AssetStore

__all__ = ["MARKER_NAME", "LibraryMarker", "check_data_root", "read_marker"]

MARKER_NAME = "library.json"


class LibraryMarker(BaseModel):
    """What ``library.json`` holds."""

    model_config = ConfigDict(frozen=True)

    library_id: str
    database: str = ""


def read_marker(home: Path) -> LibraryMarker | None:
    """The data root's marker, or ``None`` when it has none.

    Raises:
        DataRootMismatch: the file is there but is not a marker.
    """
    path = home / MARKER_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataRootMismatch(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        return LibraryMarker.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise DataRootMismatch(
            f"{path} is not a charstudio library marker; move it away and run "
            "`charstudio init` on the machine that made the library"
        ) from exc


def check_data_root(store: AssetStore, db: Database, *, may_write: bool) -> LibraryMarker:
    """The marker of ``store``'s root, checked against ``db`` (written if missing and
    ``may_write``, or when the database is the SQLite file inside the root).

    Raises:
        DataRootMismatch: the root belongs to another library, or has no marker and may
            not be given one here; the message names both sides and the fix.
    """
    home = store.home
    database = display_url(db.url)
    marker = read_marker(home)
    if marker is not None:
        if marker.library_id != db.library_id:
            raise DataRootMismatch(
                f"the data root {home} belongs to library {marker.library_id} "
                f"(database {marker.database or 'unknown'}), but the database {database} "
                f"holds library {db.library_id}: point CHARSTUDIO_HOME at the data root "
                "that goes with this database (on several machines: the shared mount), "
                "or CHARSTUDIO_DATABASE_URL at that root's database"
            )
        return marker
    if not (may_write or _inside(db, home)):
        raise DataRootMismatch(
            f"the data root {home} has no {MARKER_NAME}, so it is not the data root of the "
            f"library in {database} (library {db.library_id}): on several machines, mount "
            f'the shared data root at {home} before starting (README, "Several machines"); '
            "for a library made before markers existed, run `charstudio init` once where "
            "the data root is mounted"
        )
    marker = LibraryMarker(library_id=db.library_id, database=database)
    store.write_bytes(home / MARKER_NAME, (marker.model_dump_json(indent=2) + "\n").encode())
    return marker


def _inside(db: Database, home: Path) -> bool:
    """Whether the database is a SQLite file inside the data root."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return False
    return Path(url.database).absolute().is_relative_to(home.absolute())
