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

A JSON document (a finished job's result) is stored the same way by :func:`to_stored_json`:
each string in it that is the absolute path of a file under the root becomes relative, and
the document lists where those strings are under :data:`RELATIVE_KEY`, so
:func:`from_stored_json` turns exactly those (and no prompt or message that merely looks
like a path) back into this machine's files. A document without that list (written before
job results were stored so) is read as it is.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["RELATIVE_KEY", "from_stored", "from_stored_json", "to_stored", "to_stored_json"]

# Where a stored JSON document lists its relative paths: each one a list of the keys and
# indexes that lead to the string. No result model's field can be named so (pydantic keeps
# a leading underscore for private attributes).
RELATIVE_KEY = "_relative_paths"

Pointer = list[str | int]


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


def to_stored_json(home: Path, document: dict[str, Any]) -> dict[str, Any]:
    """``document`` (decoded JSON) as the database holds it: each string value that is the
    absolute path of a file under ``home`` made relative (:func:`to_stored`), and where they
    are listed under :data:`RELATIVE_KEY` (left out when there are none). Keys, strings
    outside the root and text that merely contains a path are kept as they are."""
    found: list[Pointer] = []
    stored = _relative(home, document, [], found)
    return {**stored, RELATIVE_KEY: found} if found else stored


def from_stored_json(home: Path, stored: dict[str, Any]) -> dict[str, Any]:
    """The document :func:`to_stored_json` stored, with its relative paths made this
    machine's files (as strings) again; a document without :data:`RELATIVE_KEY` (an older
    row, absolute paths) as it is."""
    pointers = stored.get(RELATIVE_KEY)
    document = {key: value for key, value in stored.items() if key != RELATIVE_KEY}
    if not isinstance(pointers, list) or not pointers:
        return document
    document = copy.deepcopy(document)  # the caller's rows stay as they were read
    for pointer in pointers:
        if isinstance(pointer, list) and pointer:
            _resolve_at(home, document, pointer)
    return document


def _relative(home: Path, value: Any, at: Pointer, found: list[Pointer]) -> Any:
    if isinstance(value, str):
        stored = _stored_string(home, value)
        if stored is None:
            return value
        found.append(at)
        return stored
    if isinstance(value, dict):
        return {key: _relative(home, item, [*at, key], found) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_relative(home, item, [*at, index], found) for index, item in enumerate(value)]
    return value


def _stored_string(home: Path, text: str) -> str | None:
    """``text`` relative to ``home`` when it is the absolute path of a file under it."""
    if len(text) > _LONGEST_PATH or "\x00" in text or not Path(text).is_absolute():
        return None
    try:
        stored = to_stored(home, text)
    except (OSError, RuntimeError, ValueError):  # no path this system could open
        return None
    return None if Path(stored).is_absolute() else stored


_LONGEST_PATH = 4096  # PATH_MAX on Linux: longer text is no file's path


def _resolve_at(home: Path, document: Any, pointer: Pointer) -> None:
    """Make the relative path at ``pointer`` this machine's file; a pointer that leads
    nowhere (a row edited by hand) changes nothing."""
    parent = document
    for step in pointer[:-1]:
        parent = _step(parent, step)
        if parent is None:
            return
    last = pointer[-1]
    value = _step(parent, last)
    if isinstance(value, str) and value:
        parent[last] = str(from_stored(home, value))


def _step(container: Any, step: Any) -> Any:
    if isinstance(container, dict) and isinstance(step, str):
        return container.get(step)
    if isinstance(container, list) and isinstance(step, int) and 0 <= step < len(container):
        return container[step]
    return None
