"""File paths relative to the data root

``generations.path`` held the image's absolute path (``training_sets.path`` and
``lora_versions.path`` were already relative, unless written by hand), so every machine
had to mount the shared data root at the same path and a library could not be moved.
Every path under the data root becomes relative to it, in POSIX form
(``outputs/yuki/<job>/0001.png``); a path outside it stays as it is (charstudio reads an
absolute path as it is). The downgrade makes the relative paths absolute again.

The data root is the one the library is opened with (``CHARSTUDIO_HOME``): charstudio
gives it as ``config.attributes["data_root"]`` (``library.database.open_database``). Run
without one (Alembic by hand), neither the upgrade nor the downgrade changes a path.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 16:00:00
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from alembic import context, op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_TABLES = ("generations", "training_sets", "lora_versions")


def _data_root() -> Path | None:
    root = context.config.attributes.get("data_root")
    return None if root is None else Path(root).absolute()


def _relative(stored: str, roots: list[Path]) -> str | None:
    """``stored`` relative to the first root it is under, or ``None`` (outside, or relative
    already)."""
    path = Path(stored)
    if not path.is_absolute():
        return None
    plain = Path(os.path.normpath(path))
    for root in roots:
        if plain != root and plain.is_relative_to(root):
            return PurePosixPath(*plain.relative_to(root).parts).as_posix()
    return None


def _rewrite(table: str, change: dict[int, str]) -> None:
    if change:
        op.get_bind().execute(
            sa.text(f"UPDATE {table} SET path = :path WHERE id = :id"),
            [{"id": row_id, "path": path} for row_id, path in change.items()],
        )


def _rows(table: str) -> list[tuple[int, str]]:
    result = op.get_bind().execute(sa.text(f"SELECT id, path FROM {table}"))
    return [(int(row_id), str(path)) for row_id, path in result]


def upgrade() -> None:
    root = _data_root()
    if root is None:
        return
    # As the root was written (``home.absolute()``) and through its links (a path written
    # under a link to the mount, or under the mount itself).
    roots = list(dict.fromkeys([root, root.resolve()]))
    for table in _TABLES:
        change = {}
        for row_id, stored in _rows(table):
            relative = _relative(stored, roots)
            if relative is not None:
                change[row_id] = relative
        _rewrite(table, change)


def downgrade() -> None:
    root = _data_root()
    if root is None:
        return
    for table in _TABLES:
        _rewrite(
            table,
            {
                row_id: str(root / stored)
                for row_id, stored in _rows(table)
                if not Path(stored).is_absolute()
            },
        )
