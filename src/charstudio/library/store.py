"""The asset store: where every file of the library lives under ``$CHARSTUDIO_HOME``.

Layout (docs/ARCHITECTURE.md, "Data root")::

    charstudio.db
    character_data/references/<name>/<sha256>.<ext>
    character_data/training_sets/<name>/...
    character_data/embeddings/<name>_face.{pt,npy,json}
    character_data/lora_models/<name>_v<N>.safetensors
    workflows/templates/*.json, workflows/generated/*.json
    outputs/<name>/<job>/*.png
    locks/<name>.lock

Files are written to a temporary name in the destination folder and renamed last, so a
killed process never leaves a half-written file under a real name. An ``OSError`` of a
write (a full disk or quota, a permission, a name too long) becomes the matching
``StorageError`` (:func:`charstudio.errors.storage_error_from`), never a bare traceback.

Modes do not depend on the umask: the root and the folders the store makes are 0700 and
its files 0600 (``file_mode="private"``, the default), or 0750 / 0640 with
``file_mode="group"`` (``CHARSTUDIO_FILE_MODE=group``: a group of operators shares the
root). The API token stays 0600 in both.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Literal

from filelock import FileLock, Timeout

from charstudio.errors import Conflict, DataDirNotWritable, storage_error_from
from charstudio.library.names import validate_name

__all__ = ["AssetStore", "FileMode", "SharedLock", "atomic_write_bytes", "file_modes"]

_TMP_PREFIX = ".tmp-"

FileMode = Literal["private", "group"]
"""Who may read the data root: its owner only, or its owner and group."""

_MODES: dict[str, tuple[int, int]] = {"private": (0o700, 0o600), "group": (0o750, 0o640)}


SharedLock = Callable[[str], AbstractContextManager[None]]
"""A lock by name that every machine sees (the database's, :meth:`Database.lock`)."""


def file_modes(file_mode: FileMode) -> tuple[int, int]:
    """The (folder, file) permission bits of ``file_mode``."""
    return _MODES[file_mode]


class AssetStore:
    """Paths of the data root, and safe ways to write into it."""

    def __init__(
        self,
        home: Path,
        *,
        lock_timeout_s: float = 60.0,
        file_mode: FileMode = "private",
        shared_lock: SharedLock | None = None,
    ) -> None:
        self.home = home.absolute()
        self.lock_timeout_s = lock_timeout_s
        self.dir_mode, self.file_mode = file_modes(file_mode)
        # Held inside the lock file: a lock file is seen by one machine only, so a library
        # on PostgreSQL adds the database's lock, which every machine sees.
        self.shared_lock = shared_lock

    # -- layout -----------------------------------------------------------------------
    @property
    def character_data(self) -> Path:
        return self.home / "character_data"

    def references_dir(self, name: str) -> Path:
        return self.character_data / "references" / name

    def training_set_dir(self, name: str) -> Path:
        return self.character_data / "training_sets" / name

    @property
    def embeddings_dir(self) -> Path:
        return self.character_data / "embeddings"

    @property
    def lora_dir(self) -> Path:
        return self.character_data / "lora_models"

    @property
    def templates_dir(self) -> Path:
        return self.home / "workflows" / "templates"

    @property
    def generated_workflows_dir(self) -> Path:
        return self.home / "workflows" / "generated"

    def outputs_dir(self, name: str) -> Path:
        return self.home / "outputs" / name

    def reports_dir(self, name: str) -> Path:
        """The consistency lab's tune runs and reports of one character."""
        return self.home / "reports" / name

    @property
    def locks_dir(self) -> Path:
        return self.home / "locks"

    def layout(self) -> list[Path]:
        """Every folder of an initialised data root."""
        return [
            self.character_data / "references",
            self.character_data / "training_sets",
            self.embeddings_dir,
            self.lora_dir,
            self.templates_dir,
            self.generated_workflows_dir,
            self.home / "outputs",
            self.locks_dir,
        ]

    # -- checks and creation -----------------------------------------------------------
    def ensure_writable(self) -> None:
        """Create the data root if needed and prove it is writable with a real write.

        A permission check alone is not enough: root passes ``os.access`` on a read-only
        mount, so this writes and removes a probe file.

        Raises:
            DataDirNotWritable: the folder cannot be created or written.
        """
        try:
            if not self.home.is_dir():
                self.home.mkdir(parents=True, exist_ok=True)
                self.home.chmod(self.dir_mode)
            fd, probe = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=self.home)
            os.close(fd)
            Path(probe).unlink()
        except OSError as exc:
            raise DataDirNotWritable(
                f"the data directory {self.home} is not writable ({exc.strerror}); "
                "fix its permissions or set CHARSTUDIO_HOME to a writable folder"
            ) from exc

    def create_layout(self) -> None:
        """Create every folder of the layout (idempotent), and set the root's and the
        layout's folders to the store's mode, so ``init`` tightens an older root too."""
        self.ensure_writable()
        with _storage_errors(self.home):
            _chmod_own(self.home, self.dir_mode)
            for folder in self.layout():
                self.make_dirs(folder)
                for made in [folder, *folder.parents]:
                    if made == self.home or self.home not in made.parents:
                        break
                    _chmod_own(made, self.dir_mode)

    def make_dirs(self, folder: Path) -> None:
        """Create ``folder`` and its missing parents, each new one at the store's mode."""
        missing = [p for p in [folder, *folder.parents] if not p.exists()]
        for made in reversed(missing):
            with contextlib.suppress(FileExistsError):  # another process made it first
                made.mkdir()
                made.chmod(self.dir_mode)

    @property
    def api_token_file(self) -> Path:
        return self.home / "api_token"

    def ensure_api_token(self) -> str:
        """The API's bearer token: read ``<home>/api_token``, or create it (mode 0600)."""
        path = self.api_token_file
        if not path.is_file():
            self.ensure_writable()
            with _temporary_beside(path) as tmp, _storage_errors(path):
                tmp.chmod(0o600)
                tmp.write_text(secrets.token_urlsafe(32) + "\n")
                with contextlib.suppress(FileExistsError):  # another process made one first
                    os.link(tmp, path)
        return path.read_text().strip()

    # -- writing ----------------------------------------------------------------------
    def copy_in(self, source: Path, destination: Path) -> bool:
        """Copy ``source`` to ``destination`` atomically; the source is only read.

        Returns:
            ``False`` when the destination already exists (content-addressed: same bytes).
        """
        if destination.exists():
            return False
        with _storage_errors(destination):
            self.make_dirs(destination.parent)
        with _temporary_beside(destination) as tmp, _storage_errors(destination):
            shutil.copyfile(source, tmp)
            tmp.chmod(self.file_mode)
            tmp.replace(destination)
        return True

    def write_bytes(self, destination: Path, data: bytes) -> None:
        """:func:`atomic_write_bytes` at the store's file mode, new folders at its folder mode."""
        with _storage_errors(destination):
            self.make_dirs(destination.parent)
        atomic_write_bytes(destination, data, mode=self.file_mode)

    @contextlib.contextmanager
    def character_lock(self, name: str) -> Iterator[None]:
        """Hold the per-character lock: one process at a time changes a character's files
        (its lock file, and the shared lock of a library on several machines).

        The name is checked first (:func:`~charstudio.library.names.validate_name`): it
        becomes the lock file's name, so ``../../x`` or a NUL must never reach the path.

        Raises:
            InvalidName: ``name`` is not a valid character name.
            Conflict: another process held the lock for longer than the timeout.
        """
        validate_name(name)
        with _storage_errors(self.locks_dir):
            self.make_dirs(self.locks_dir)
        lock = FileLock(self.locks_dir / f"{name.lower()}.lock", mode=self.file_mode)
        shared = (
            self.shared_lock(f"character {name.lower()!r}")
            if self.shared_lock is not None
            else contextlib.nullcontext()
        )
        try:
            with lock.acquire(timeout=self.lock_timeout_s), shared:
                yield
        except Timeout as exc:
            raise Conflict(
                f"character {name!r} is being changed by another charstudio process; "
                "wait for it to finish and try again"
            ) from exc


def atomic_write_bytes(destination: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write ``data`` to ``destination`` through a temporary file and a rename; the file
    gets ``mode`` whatever the umask.

    Raises:
        StorageError: the write failed (``DiskFull`` for no space or quota).
    """
    with _storage_errors(destination):
        destination.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_beside(destination) as tmp, _storage_errors(destination):
        tmp.write_bytes(data)
        tmp.chmod(mode)
        tmp.replace(destination)


def _chmod_own(path: Path, mode: int) -> None:
    """Set ``path``'s mode when this user owns it (a shared mount's root may not be ours)."""
    if path.stat().st_uid == os.geteuid():
        path.chmod(mode)


@contextlib.contextmanager
def _storage_errors(path: Path) -> Iterator[None]:
    """Turn an ``OSError`` of a write to ``path`` into the matching ``StorageError``."""
    try:
        yield
    except OSError as exc:
        raise storage_error_from(exc, path) from exc


@contextlib.contextmanager
def _temporary_beside(destination: Path) -> Iterator[Path]:
    """A temporary path in the destination's folder, removed if the rename never happens."""
    with _storage_errors(destination):
        fd, name = tempfile.mkstemp(prefix=_TMP_PREFIX, dir=destination.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)
