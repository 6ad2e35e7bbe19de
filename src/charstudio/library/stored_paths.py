"""File paths in the database are relative to the data root.

On several machines the data root is one shared mount (NFS, SMB), and each machine may
mount it wherever its ``CHARSTUDIO_HOME`` points; a library folder may also be moved or
copied whole. So ``generations.path``, ``training_sets.path`` and ``lora_versions.path``
hold the file's path under the root in POSIX form (``outputs/yuki/<job>/0001.png``), made
by :func:`to_stored` where a row is written, and turned back into this machine's file by
:func:`from_stored` wherever one is read.

A path outside the data root (none of charstudio's own writers makes one, but a row from
before revision 0011 that was not under the root it was upgraded with) is kept absolute,
and read as it is.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

__all__ = ["from_stored", "to_stored"]


def to_stored(home: Path, path: str | Path) -> str:
    """What the database holds for ``path``: relative to ``home`` (POSIX form) when the file
    is under it, else the absolute path as it is. A relative ``path`` is taken as already
    relative to the root."""
    given = Path(path)
    if not given.is_absolute():
        return PurePosixPath(*given.parts).as_posix()
    plain = Path(os.path.normpath(given))
    root = home.absolute()
    for inside, under in ((plain, root), (plain.resolve(), root.resolve())):
        if inside.is_relative_to(under) and inside != under:
            return inside.relative_to(under).as_posix()
    return str(given)


def from_stored(home: Path, stored: str) -> Path:
    """The file a database path names on this machine: ``home`` joined to a relative path,
    an absolute one as it is."""
    path = Path(stored)
    return path if path.is_absolute() else home.absolute() / path
