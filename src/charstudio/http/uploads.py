"""Uploaded images: parsed with limits, written under the data root with safe names.

The multipart body was already capped by :mod:`charstudio.http.limits`. Here:

* at most ``api_max_files`` files per request (Starlette's own ``max_files``), else 413;
* each file is written into a fresh temporary folder under ``<home>/tmp/`` as
  ``<n>-<safe name>``, where the safe name keeps only the last path component of what the
  client sent, with anything but letters, digits, ``.``, ``-``, ``_`` and spaces replaced —
  so ``../../etc/passwd`` becomes ``passwd`` and nothing the client says picks a folder;
* the files then go through the library's import, which decodes each one in full with its
  pixel and byte limits (decompression bombs, non-images and corrupt files are refused
  with their names) and stores it by content hash;
* the temporary folder is removed whatever happens; a folder a killed server left behind
  is removed at the next ``charstudio serve`` (:func:`remove_stale_uploads`, folders older
  than :data:`STALE_UPLOAD_S`, far longer than any request).

:func:`parse_form` is the one place a form body is parsed with these limits: the studio's
CSRF check parses the form first (Starlette keeps the parsed form on the request), so
:func:`receive_upload` counts the files again itself.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from charstudio.errors import NothingToImport, PayloadTooLarge, UsageError

__all__ = [
    "STALE_UPLOAD_S",
    "UploadedForm",
    "parse_form",
    "receive_upload",
    "remove_stale_uploads",
    "safe_name",
]

STALE_UPLOAD_S = 3600.0

_UNSAFE = re.compile(r"[^A-Za-z0-9._\- ]")


def safe_name(client_name: str | None, index: int) -> str:
    """A file name that cannot leave its folder: last component, safe characters, 100 chars."""
    last = re.split(r"[\\/]", client_name or "")[-1]
    cleaned = _UNSAFE.sub("_", last).strip(" .")[:100]
    return cleaned or f"upload-{index}"


class UploadedForm:
    """The form's text fields and the paths of its uploaded files."""

    def __init__(self, fields: dict[str, str], files: list[Path]) -> None:
        self.fields = fields
        self.files = files


@contextlib.asynccontextmanager
async def receive_upload(
    request: Request, *, home: Path, max_files: int, field: str = "files"
) -> AsyncIterator[UploadedForm]:
    """Parse a multipart form and write its files to a temporary folder under ``home``.

    Raises:
        PayloadTooLarge: more than ``max_files`` files.
        NothingToImport: no file in the ``field`` field.
        UsageError: the body is not a valid multipart form.
    """
    tmp_root = home / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=tmp_root))
    try:
        form = await parse_form(request, max_files=max_files)
        if sum(isinstance(v, UploadFile) for _, v in form.multi_items()) > max_files:
            await form.close()
            raise _too_many(max_files)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(form.close)
            paths: list[Path] = []
            fields: dict[str, str] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    if key != field:
                        raise UsageError(f"unexpected file field {key!r}; send files as {field!r}")
                    target = folder / f"{len(paths):04d}" / safe_name(value.filename, len(paths))
                    target.parent.mkdir()
                    with target.open("wb") as out:
                        shutil.copyfileobj(value.file, out)
                    paths.append(target)
                else:
                    fields[key] = value
        if not paths:
            raise NothingToImport(f"no files in the form field {field!r}; attach images to it")
        yield UploadedForm(fields, paths)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def parse_form(request: Request, *, max_files: int) -> FormData:
    """The request's form, parsed once with the upload limits (Starlette caches it).

    Raises:
        PayloadTooLarge: more than ``max_files`` files.
        UsageError: the body is not a valid form.
    """
    try:
        return await request.form(max_files=max_files, max_fields=100)
    except (MultiPartException, HTTPException) as exc:  # Starlette turns the first
        detail = str(getattr(exc, "detail", exc))  # into the second inside an app
        if "Too many files" in detail:
            raise _too_many(max_files) from exc
        raise UsageError(f"the request is not a valid multipart form ({detail})") from exc


def _too_many(max_files: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"more than {max_files} files in one request; send them in batches (setting api_max_files)"
    )


def remove_stale_uploads(home: Path, *, older_than_s: float = STALE_UPLOAD_S) -> list[Path]:
    """Remove ``<home>/tmp/upload-*`` folders last changed over ``older_than_s`` ago.

    Returns:
        The folders removed (a killed server leaves the upload it was receiving).
    """
    cutoff = time.time() - older_than_s
    removed = []
    for folder in sorted((home / "tmp").glob("upload-*")):
        with contextlib.suppress(FileNotFoundError):
            if folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed
