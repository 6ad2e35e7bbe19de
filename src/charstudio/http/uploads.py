"""Uploaded images: parsed with limits, written under the data root with safe names.

The multipart body was already capped by :mod:`charstudio.http.limits`. Here:

* at most ``api_max_files`` files per request (Starlette's own ``max_files``), else 413;
* each file streams, as it arrives, into a fresh temporary folder under ``<home>/tmp/``
  as ``<n>/<safe name>`` — never into the system's temporary folder (Starlette spools
  files over 1 MB there), and never copied a second time — where the safe name keeps only
  the last path component of what the client sent, with anything but letters, digits,
  ``.``, ``-``, ``_`` and spaces replaced: ``../../etc/passwd`` becomes ``passwd`` and
  nothing the client says picks a folder;
* the files then go through the library's import, which decodes each one in full with its
  pixel and byte limits (decompression bombs, non-images and corrupt files are refused
  with their names) and stores it by content hash;
* the temporary folder is removed whatever happens: by :func:`receive_upload` when its
  block ends, and by :class:`UploadCleanup` when the request ends, for every other path
  (a refused CSRF token after the form was parsed, a body cut off at the cap, a client
  that went away, a full disk); a folder a killed server left behind is removed at the
  next ``charstudio serve`` (:func:`remove_stale_uploads`, folders older than
  :data:`STALE_UPLOAD_S`, far longer than any request).

:func:`parse_form` is the one place a form body with files is parsed: the studio's CSRF
check parses the form first (the parsed form is kept on the request), so
:func:`receive_upload` counts the files again itself. Routes whose fields are FastAPI
``Form`` parameters take no files at all (``form_limits``, set by the app).
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
from starlette.datastructures import FormData, Headers, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.types import ASGIApp, Receive, Scope, Send

from charstudio.errors import NothingToImport, PayloadTooLarge, UsageError

__all__ = [
    "STALE_UPLOAD_S",
    "UploadCleanup",
    "UploadedForm",
    "parse_form",
    "receive_upload",
    "remove_stale_uploads",
    "safe_name",
]

STALE_UPLOAD_S = 3600.0
_FOLDERS = "charstudio.upload_folders"  # scope key: the upload folders of this request

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
    """Parse a multipart form, its files streamed into a temporary folder under ``home``,
    and give their paths; the folder is removed when the block ends.

    Raises:
        PayloadTooLarge: more than ``max_files`` files.
        NothingToImport: no file in the ``field`` field.
        UsageError: the body is not a valid multipart form.
    """
    form = await parse_form(request, home=home, max_files=max_files)
    try:
        paths: list[Path] = []
        fields: dict[str, str] = {}
        items = form.multi_items()
        if sum(isinstance(v, UploadFile) for _, v in items) > max_files:
            raise _too_many(max_files)
        for key, value in items:
            if isinstance(value, UploadFile):
                if key != field:
                    raise UsageError(f"unexpected file field {key!r}; send files as {field!r}")
                paths.append(Path(value.file.name))
            else:
                fields[key] = value
        await form.close()  # written and flushed: the import reads them by path
        if not paths:
            raise NothingToImport(f"no files in the form field {field!r}; attach images to it")
        yield UploadedForm(fields, paths)
    finally:
        await form.close()
        for folder in request.scope.get(_FOLDERS, []):
            shutil.rmtree(folder, ignore_errors=True)


async def parse_form(request: Request, *, home: Path, max_files: int) -> FormData:
    """The request's form, parsed once with the upload limits; a multipart form's files are
    streamed into a new folder under ``<home>/tmp`` (see the module docstring).

    Raises:
        PayloadTooLarge: more than ``max_files`` files.
        UsageError: the body is not a valid form.
    """
    parsed = _parsed_form(request)
    if parsed is not None:
        return parsed
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind != "multipart/form-data":
            return await request.form(max_files=max_files, max_fields=100)
        folder = _new_upload_folder(home, request.scope)
        try:
            async with contextlib.aclosing(request.stream()) as stream:
                parser = _IntoFolder(request.headers, stream, folder=folder, max_files=max_files)
                form = await parser.parse()
        except BaseException:  # cut off at the cap, a client gone, a full disk, bad data
            shutil.rmtree(folder, ignore_errors=True)
            raise
    except (MultiPartException, HTTPException) as exc:  # Starlette turns the first
        detail = str(getattr(exc, "detail", exc))  # into the second inside an app
        if "Too many files" in detail:
            raise _too_many(max_files) from exc
        raise UsageError(f"the request is not a valid multipart form ({detail})") from exc
    request._form = form  # what request.form() answers from now on (Starlette's cache)
    return form


def _parsed_form(request: Request) -> FormData | None:
    """The form already parsed in this request (by :func:`parse_form`, or by FastAPI for a
    route with ``Form`` parameters), kept on the request by Starlette."""
    form = getattr(request, "_form", None)
    return form if isinstance(form, FormData) else None


def _new_upload_folder(home: Path, scope: Scope) -> Path:
    """A new ``<home>/tmp/upload-*`` folder (0700), recorded for :class:`UploadCleanup`."""
    tmp_root = home / "tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="upload-", dir=tmp_root))
    scope.setdefault(_FOLDERS, []).append(folder)
    return folder


class _IntoFolder(MultiPartParser):
    """Starlette's multipart parser (its limits and error handling), with each file part
    written straight into ``folder/<n>/<safe name>`` as it streams in, instead of into a
    spooled file in the system's temporary folder."""

    def __init__(
        self,
        headers: Headers,
        stream: AsyncIterator[bytes],
        *,
        folder: Path,
        max_files: int,
    ) -> None:
        super().__init__(headers, stream, max_files=max_files, max_fields=100)  # type: ignore[arg-type]
        self.folder = folder

    def on_headers_finished(self) -> None:
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is None:
            return
        index = self._current_files - 1
        target = self.folder / f"{index:04d}" / safe_name(upload.filename, index)
        target.parent.mkdir()
        spooled, upload.file = upload.file, target.open("w+b")  # nothing spooled yet
        spooled.close()
        self._files_to_close_on_error.append(upload.file)  # type: ignore[arg-type]


class UploadCleanup:
    """ASGI middleware: remove the upload folders a request made, when it ends, whatever
    happened in it (:func:`receive_upload` removes its own earlier)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        folders: list[Path] = []
        scope[_FOLDERS] = folders
        try:
            await self.app(scope, receive, send)
        finally:
            for folder in folders:
                shutil.rmtree(folder, ignore_errors=True)


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
