"""charstudio's one exception tree.

Every error a user can cause or meet is a ``CharstudioError``. Each class says what went
wrong in its message (the problem *and* the fix) and carries the exit code the CLI uses and
the HTTP status the API uses, so both surfaces map errors in exactly one place::

    CharstudioError                       exit 1, HTTP 500
    ├── UsageError                        exit 2, HTTP 400   the request itself is wrong
    │   ├── InvalidName                                      unsafe or malformed name
    │   ├── InvalidParameter                                 value out of range, unknown key
    │   ├── UnsupportedImage                                 not an image, corrupt, too big
    │   ├── NothingToImport                                  empty folder, no image files
    │   ├── PayloadTooLarge                          HTTP 413   too many files or bytes at once
    │   ├── BaseModelInvalid                                 corrupt, a LoRA, SDXL as SD1.5,
    │   │                                                    NaN/inf weights
    │   ├── ModelMismatch                                    files of different families (SDXL
    │   │                                                    IP-Adapter or LoRA on an SD1.5 base)
    │   ├── NothingToResume                                  --resume with no interrupted run
    │   ├── IncompatibleEmbeddings                           identities of different face models
    │   ├── NoUsableFace                                     no image with one usable face
    │   └── NotEnoughImages                                  too few usable images to train on
    ├── NotFound                          exit 1, HTTP 404   character, image, file missing
    │   ├── NoTrainingSet                                    no prepared training set
    │   └── JobNotFound                                      no job has this id
    ├── Conflict                          exit 1, HTTP 409
    │   ├── CharacterExists
    │   └── JobFinished                                      cancel/run a job that has finished
    ├── StorageError                      exit 1, HTTP 503   data dir unwritable, disk trouble
    │   ├── DataDirNotWritable                               no permission, read-only mount
    │   ├── DiskFull                      exit 1, HTTP 507   disk or quota full; nothing kept
    │   ├── DataRootMismatch                                 data root not the library's (marker)
    │   ├── QueueUnavailable                                 the job queue (Redis) unreachable
    │   └── DatabaseError                                    any SQLAlchemy error, wrapped
    │       ├── SchemaTooNew                                 database made by a newer version
    │       └── SchemaOutdated                               older schema: run `db upgrade`
    ├── BackendError                      exit 1, HTTP 502   ComfyUI, models, face backends
    │   ├── BackendUnavailable            exit 1, HTTP 503   optional backend not installed
    │   │   └── OptimizerUnavailable                         8-bit AdamW without bitsandbytes
    │   ├── ComfyUIUnavailable            exit 1, HTTP 503   unreachable, slow, not ComfyUI
    │   │   └── ServerLost                                   died or restarted mid-job
    │   ├── InvalidObjectInfo                                /object_info not in ComfyUI's format
    │   ├── WorkflowRejected                                 graph refused (node_errors) (a)
    │   │   └── ModelMissing                                 a model file the server lacks (a)
    │   ├── ModelFileMissing                                 a local model file is not there
    │   ├── GenerationFailed                                 a node failed while running
    │   └── GenerationCancelled           exit 130, HTTP 409 cancelled or interrupted
    ├── JobFailed                         exit 1, HTTP 500
    │   ├── TrainingOutOfMemory                              checkpoint saved
    │   ├── TrainingDiverged                                 NaN/inf loss; last finite checkpoint
    │   └── TrainingInterrupted           exit 130, HTTP 409 Ctrl-C; checkpoint saved
    ├── JobCancelled                                         inside a job after a cancel request
    ├── Unauthorized                      exit 1, HTTP 401   API token missing or wrong
    │   └── LoginRequired                                    studio: no valid session cookie
    └── Forbidden                         exit 1, HTTP 403   studio: cross-site or tokenless POST

Every class is defined here except (a), beside ComfyUI's types in ``workflows/types.py``.
:func:`invalid_parameter_from` (pydantic) and :func:`storage_errors` (an ``OSError`` of a
write) convert alike everywhere; others are wrapped where they enter (``from exc``).
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "FULL_DISK_ERRNOS",
    "BackendError",
    "BackendUnavailable",
    "BaseModelInvalid",
    "CharacterExists",
    "CharstudioError",
    "ComfyUIUnavailable",
    "Conflict",
    "DataDirNotWritable",
    "DataRootMismatch",
    "DatabaseError",
    "DiskFull",
    "Forbidden",
    "GenerationCancelled",
    "GenerationFailed",
    "IncompatibleEmbeddings",
    "InvalidName",
    "InvalidObjectInfo",
    "InvalidParameter",
    "JobCancelled",
    "JobFailed",
    "JobFinished",
    "JobNotFound",
    "LoginRequired",
    "ModelFileMissing",
    "ModelMismatch",
    "NoTrainingSet",
    "NoUsableFace",
    "NotEnoughImages",
    "NotFound",
    "NothingToImport",
    "NothingToResume",
    "OptimizerUnavailable",
    "PayloadTooLarge",
    "QueueUnavailable",
    "SchemaOutdated",
    "SchemaTooNew",
    "ServerLost",
    "StorageError",
    "TrainingDiverged",
    "TrainingInterrupted",
    "TrainingOutOfMemory",
    "Unauthorized",
    "UnsupportedImage",
    "UsageError",
    "invalid_parameter_from",
    "storage_error_from",
    "storage_errors",
]


class CharstudioError(Exception):
    """Root of every error charstudio raises on purpose."""

    exit_code: int = 1
    http_status: int = 500


class UsageError(CharstudioError):
    """The request is wrong; fixing the input fixes it."""

    exit_code = 2
    http_status = 400


class InvalidName(UsageError):
    """A character (or other) name that is empty, too long or unsafe as a path part."""


class InvalidParameter(UsageError):
    """A parameter outside its range or an unknown key."""


class UnsupportedImage(UsageError):
    """A file that is not a usable image: wrong format, corrupt, truncated or too large."""


class BaseModelInvalid(UsageError):
    """The base checkpoint is corrupt, not a base model, of another family, or NaN/inf."""


class NothingToResume(UsageError):
    """``--resume`` was asked for but there is no interrupted run."""


class IncompatibleEmbeddings(UsageError):
    """Two embeddings from different backends or models were compared."""


class NoUsableFace(UsageError):
    """No image in a set has one usable face, so no identity can be built."""


class NotEnoughImages(UsageError):
    """Too few usable images to train a character LoRA."""


class ModelMismatch(UsageError):
    """Model files that cannot work together: an SDXL IP-Adapter or LoRA on an SD1.5 base."""


class NothingToImport(UsageError):
    """The paths given hold no image files."""


class PayloadTooLarge(UsageError):
    """Too many files or bytes in one request."""

    http_status = 413  # Content Too Large


class NotFound(CharstudioError):
    """A named thing does not exist."""

    http_status = 404


class NoTrainingSet(NotFound):
    """The character has no prepared training set."""


class JobNotFound(NotFound):
    """No job has this id."""


class Conflict(CharstudioError):
    """The request clashes with what already exists."""

    http_status = 409


class CharacterExists(Conflict):
    """A character with this name (ignoring case) already exists."""


class JobFinished(Conflict):
    """The job already finished; it cannot be cancelled or run again."""


class StorageError(CharstudioError):
    """The data directory or the database cannot be used."""

    http_status = 503


class DataDirNotWritable(StorageError):
    """``$CHARSTUDIO_HOME`` is read-only or cannot be created."""


class DiskFull(StorageError):
    """Writing failed for lack of space or quota; nothing partial was kept.

    HTTP 507 (Insufficient Storage, RFC 4918 section 11.5): the request may work once
    space is freed.
    """

    http_status = 507


class DatabaseError(StorageError):
    """The database cannot be opened, migrated or written."""


class SchemaTooNew(DatabaseError):
    """The database was made by a newer charstudio than this one."""


class SchemaOutdated(DatabaseError):
    """An older (or empty) schema this process may not migrate: run ``db upgrade``."""


class DataRootMismatch(StorageError):
    """The data root's ``library.json`` is missing or names another library."""


class QueueUnavailable(StorageError):
    """The job queue (Redis, or the SQLite queue file) cannot be reached."""


class BackendError(CharstudioError):
    """A generation, face or model backend failed."""

    http_status = 502


class BackendUnavailable(BackendError):
    """An optional backend is not installed or has no models."""

    http_status = 503


class OptimizerUnavailable(BackendUnavailable):
    """8-bit AdamW was asked for but bitsandbytes (or a GPU for it) is missing."""


class ComfyUIUnavailable(BackendError):
    """A ComfyUI server cannot be used: unreachable, too slow, or not answering as ComfyUI."""

    http_status = 503


class ServerLost(ComfyUIUnavailable):
    """A ComfyUI server died or restarted while running a job; the job was lost there."""


class InvalidObjectInfo(BackendError):
    """A server's ``/object_info`` answer is not in ComfyUI's format."""


class ModelFileMissing(BackendError):
    """A model file the in-process backend needs is not where the settings say; the message
    names the file and the folder searched."""


class GenerationFailed(BackendError):
    """A generation started but a node failed while running (ComfyUI's execution_error)."""


class GenerationCancelled(BackendError):
    """A generation was cancelled by the user or interrupted on the server."""

    exit_code = 130
    http_status = 409


class JobFailed(CharstudioError):
    """A background job ended in failure."""


class TrainingOutOfMemory(JobFailed):
    """A step ran out of memory; the last checkpoint was saved."""


class TrainingDiverged(JobFailed):
    """The loss became NaN or infinite; the last finite checkpoint is kept, nothing else."""


class TrainingInterrupted(JobFailed):
    """Training was stopped with Ctrl-C; a checkpoint was saved."""

    exit_code = 130
    http_status = 409


class JobCancelled(CharstudioError):
    """Raised inside a running job at its next progress step after a cancel request."""


class Unauthorized(CharstudioError):
    """The API token is missing or wrong."""

    http_status = 401


class LoginRequired(Unauthorized):
    """No valid session cookie: the studio answers with a redirect to the login form."""

    def __init__(self, message: str, *, next_url: str, expired: bool) -> None:
        super().__init__(message)
        self.next_url, self.expired = next_url, expired

    @property
    def login_url(self) -> str:
        from urllib.parse import quote

        tail = "&expired=1" if self.expired else ""
        return f"/studio/login?next={quote(self.next_url, safe='/')}{tail}"


class Forbidden(CharstudioError):
    """A studio POST without this session's CSRF token, or from another origin (another
    port of the same host counts: ComfyUI's pages on :8188 must not drive the studio)."""

    http_status = 403


# Errnos only a write meets: the surfaces map them to DiskFull wherever they come from.
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL, _DENIED = FULL_DISK_ERRNOS, {errno.EACCES, errno.EPERM, errno.EROFS}
_STORAGE = frozenset(_FULL | _DENIED | {errno.ENAMETOOLONG})  # the root cannot take a write


def storage_error_from(exc: OSError, path: object | None = None) -> StorageError:
    """The ``StorageError`` for an ``OSError`` met writing ``path`` (raise it ``from exc``):
    ENOSPC/EDQUOT :class:`DiskFull`, EACCES/EPERM/EROFS :class:`DataDirNotWritable`, else
    a plain :class:`StorageError`, each with advice."""
    where, reason = f" writing {path}" if path is not None else "", exc.strerror or str(exc)
    if exc.errno in _FULL:
        return DiskFull(
            f"no space left{where} ({reason}); free disk space or raise the quota of the data "
            "root, then try again (nothing partial was kept)"
        )
    if exc.errno in _DENIED:
        what = "" if path is None else f" {path}"
        return DataDirNotWritable(
            f"cannot write{what} ({reason}); fix the data root's permissions or set "
            "CHARSTUDIO_HOME to a writable folder"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return StorageError(
            f"a file name is too long for the file system{where} ({reason}); use shorter "
            "names or a data root with a shorter path"
        )
    return StorageError(f"storage failed{where} ({reason}); check the disk holding the data root")


@contextlib.contextmanager
def storage_errors(path: object | None = None) -> Iterator[None]:
    """A full disk or quota, a permission or a name too long met in the block becomes
    :func:`storage_error_from`'s error for its file (else ``path``); other errors pass."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _STORAGE:
            raise
        raise storage_error_from(exc, exc.filename or path) from exc


def invalid_parameter_from(exc: ValidationError, what: str) -> InvalidParameter:
    """One ``InvalidParameter`` for a pydantic ``ValidationError`` (raise it ``from exc``):
    ``"<what>: <key>: <problem>; ..."``, an unknown key explained."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key; check the spelling against the documented keys"
        parts.append(f"{where}: {message}" if where else message)
    return InvalidParameter(f"{what}: {'; '.join(parts)}")
