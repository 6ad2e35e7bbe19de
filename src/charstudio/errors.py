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
    │   ├── BaseModelInvalid                                 corrupt, a LoRA, SDXL as SD1.5 (a)
    │   ├── ModelMismatch                                    files of different families (SDXL
    │   │                                                    IP-Adapter or LoRA on an SD1.5 base)
    │   └── NothingToResume                                  --resume with no interrupted run (a)
    ├── NotFound                          exit 1, HTTP 404   character, image, file missing
    │   └── NoTrainingSet                                    no prepared training set (a)
    ├── Conflict                          exit 1, HTTP 409
    │   └── CharacterExists
    ├── StorageError                      exit 1, HTTP 503   data dir unwritable, disk trouble
    │   ├── DataDirNotWritable
    │   ├── DiskFull                                         full while saving; nothing kept (a)
    │   └── DatabaseError
    │       └── SchemaTooNew                                 database made by a newer version
    ├── BackendError                      exit 1, HTTP 502   ComfyUI, models, face backends
    │   ├── BackendUnavailable            exit 1, HTTP 503   optional backend not installed
    │   │   └── OptimizerUnavailable                         8-bit AdamW without bitsandbytes (a)
    │   ├── ComfyUIUnavailable            exit 1, HTTP 503   unreachable, slow, not ComfyUI
    │   │   └── ServerLost                                   died or restarted mid-job
    │   ├── WorkflowRejected                                 graph refused (node_errors); in
    │   │   └── ModelMissing                                 workflows/types.py
    │   ├── ModelFileMissing                                 a local model file is not there
    │   ├── GenerationFailed                                 a node failed while running
    │   └── GenerationCancelled           exit 130, HTTP 409 cancelled or interrupted
    ├── JobFailed                         exit 1, HTTP 500
    │   ├── TrainingOutOfMemory                              checkpoint saved (a)
    │   └── TrainingInterrupted           exit 130, HTTP 409 Ctrl-C; checkpoint saved (a)
    └── Unauthorized                      exit 1, HTTP 401   API token missing or wrong

(a) defined beside their package: ``training/types.py``.

Third-party exceptions are wrapped where they enter (``raise ... from exc``) so callers
never need to know which library raised.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendUnavailable",
    "CharacterExists",
    "CharstudioError",
    "ComfyUIUnavailable",
    "Conflict",
    "DataDirNotWritable",
    "DatabaseError",
    "GenerationCancelled",
    "GenerationFailed",
    "InvalidName",
    "InvalidParameter",
    "JobFailed",
    "ModelFileMissing",
    "ModelMismatch",
    "NotFound",
    "NothingToImport",
    "PayloadTooLarge",
    "SchemaTooNew",
    "ServerLost",
    "StorageError",
    "Unauthorized",
    "UnsupportedImage",
    "UsageError",
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


class ModelMismatch(UsageError):
    """Model files that cannot work together: an SDXL IP-Adapter or LoRA on an SD1.5 base."""


class NothingToImport(UsageError):
    """The paths given hold no image files."""


class PayloadTooLarge(UsageError):
    """Too many files or bytes in one request."""

    http_status = 413


class NotFound(CharstudioError):
    """A named thing does not exist."""

    http_status = 404


class Conflict(CharstudioError):
    """The request clashes with what already exists."""

    http_status = 409


class CharacterExists(Conflict):
    """A character with this name (ignoring case) already exists."""


class StorageError(CharstudioError):
    """The data directory or the database cannot be used."""

    http_status = 503


class DataDirNotWritable(StorageError):
    """``$CHARSTUDIO_HOME`` is read-only or cannot be created."""


class DatabaseError(StorageError):
    """The database cannot be opened, migrated or written."""


class SchemaTooNew(DatabaseError):
    """The database was made by a newer charstudio than this one."""


class BackendError(CharstudioError):
    """A generation, face or model backend failed."""

    http_status = 502


class BackendUnavailable(BackendError):
    """An optional backend is not installed or has no models."""

    http_status = 503


class ComfyUIUnavailable(BackendError):
    """A ComfyUI server cannot be used: unreachable, too slow, or not answering as ComfyUI."""

    http_status = 503


class ServerLost(ComfyUIUnavailable):
    """A ComfyUI server died or restarted while running a job; the job was lost there."""


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


class Unauthorized(CharstudioError):
    """The API token is missing or wrong."""

    http_status = 401
