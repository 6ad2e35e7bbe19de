"""The character library service: create, import into, list, show, change and remove characters.

Every change follows one order so that a failure leaves the library as it was:

1. validate the request (names, parameters) — nothing touched yet;
2. read and check every image file — nothing touched yet;
3. take the character's lock (one process at a time changes a character);
4. in one transaction: copy files in (temporary name, then rename) and add the rows;
5. if the transaction fails, remove the files step 4 wrote.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from charstudio.errors import CharacterExists, InvalidParameter, NotFound
from charstudio.library.assets import profile_with, read_assets
from charstudio.library.database import Database
from charstudio.library.images import ImageInfo
from charstudio.library.importer import scan_images
from charstudio.library.listing import Listing
from charstudio.library.models import Character
from charstudio.library.names import (
    default_trigger_word,
    name_key,
    validate_name,
    validate_trigger_word,
)
from charstudio.library.profile import (
    CharacterConsistencyProfile,
    Method,
    Overrides,
    build_profile,
    feasible_methods,
    parse_overrides,
)
from charstudio.library.references import imported_record, reference_info, reference_row
from charstudio.library.store import AssetStore
from charstudio.library.types import (
    CharacterDetail,
    CharacterPage,
    CharacterSummary,
    DuplicateImage,
    ImageLimits,
    ImportedImage,
    ImportResult,
    ProgressCallback,
    ReferenceInfo,
    RemoveResult,
)

__all__ = ["Library"]

_NAME = select(Character.name).where(Character.name_key == bindparam("key"))


class Library:
    """Characters and their reference images, in the database and the asset store."""

    def __init__(self, *, db: Database, store: AssetStore, limits: ImageLimits) -> None:
        self.db = db
        self.store = store
        self.limits = limits
        self.listing = Listing(db, store)

    # -- create and import ------------------------------------------------------------
    def create(
        self,
        name: str,
        images: list[Path],
        *,
        trigger_word: str | None = None,
        description: str = "",
        skip_bad: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ImportResult:
        """Create a character from reference images (files or folders).

        Raises:
            InvalidName: bad name or trigger word.
            CharacterExists: the name (ignoring case) is taken.
            UnsupportedImage, NothingToImport, UsageError: bad image paths.
            DataDirNotWritable, DatabaseError: storage trouble.
        """
        # 1. Validate the request.
        validate_name(name)
        trigger = validate_trigger_word(trigger_word or default_trigger_word(name))
        self._ensure_absent(name)
        # 2. Read and check every image.
        scan = scan_images(images, limits=self.limits, skip_bad=skip_bad, progress=progress)
        self.store.ensure_writable()
        # 3-5. Lock, then copy and record in one transaction.
        with (
            self.store.character_lock(name),
            _removed_on_failure() as written,
            self.db.sessions.begin() as session,
        ):
            if self._find(session, name) is not None:
                raise CharacterExists(_exists_message(name))
            character = Character(
                name=name,
                name_key=name_key(name),
                trigger_word=trigger,
                description=description,
                overrides={},
            )
            session.add(character)
            try:
                session.flush()
            except IntegrityError as exc:  # another machine won the race for this name
                raise CharacterExists(_exists_message(name)) from exc
            added, duplicates = self._store_references(session, character, scan.images, written)
        return ImportResult(
            character=name, created=True, added=added, duplicates=duplicates, skipped=scan.skipped
        )

    def import_images(
        self,
        name: str,
        images: list[Path],
        *,
        skip_bad: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ImportResult:
        """Add reference images to an existing character; duplicates are reported, not added."""
        self.get_name(name)
        scan = scan_images(images, limits=self.limits, skip_bad=skip_bad, progress=progress)
        self.store.ensure_writable()
        with (
            self.store.character_lock(name),
            _removed_on_failure() as written,
            self.db.sessions.begin() as session,
        ):
            character = self._require(session, name)
            added, duplicates = self._store_references(session, character, scan.images, written)
        return ImportResult(
            character=character.name,
            created=False,
            added=added,
            duplicates=duplicates,
            skipped=scan.skipped,
        )

    def _store_references(
        self,
        session: Session,
        character: Character,
        images: list[ImageInfo],
        written: list[Path],
    ) -> tuple[list[ImportedImage], list[DuplicateImage]]:
        """Copy new images into the store and add their rows; ``written`` collects new files."""
        known = {ref.sha256: ref.original_name for ref in character.references}
        folder = self.store.references_dir(character.name)
        added: list[ImportedImage] = []
        duplicates: list[DuplicateImage] = []
        for info in images:
            if info.sha256 in known:
                duplicates.append(
                    DuplicateImage(
                        source=str(info.path), sha256=info.sha256, duplicate_of=known[info.sha256]
                    )
                )
                continue
            known[info.sha256] = info.path.name
            destination = folder / f"{info.sha256}.{info.suffix}"
            if self.store.copy_in(info.path, destination):
                written.append(destination)
            character.references.append(reference_row(info))
            added.append(imported_record(info, destination))
        session.flush()
        return added, duplicates

    # -- read -------------------------------------------------------------------------
    def list_characters(self) -> list[CharacterSummary]:
        """Every character, by name."""
        return self.page().items

    def page(self, *, limit: int | None = None, offset: int = 0) -> CharacterPage:
        """Characters by name: ``limit`` of them (all: ``None``) after the first ``offset``,
        and how many there are (:class:`~charstudio.library.listing.Listing`)."""
        return self.listing.page(limit=limit, offset=offset)

    def get_name(self, name: str) -> str:
        """The stored spelling of a character's name.

        Raises:
            NotFound: no such character.
        """
        validate_name(name)
        with self.db.sessions.reading() as connection:
            stored = connection.execute(_NAME, {"key": name_key(name)}).scalar()
        if stored is None:
            raise _not_found(name)
        return str(stored)

    def show(self, name: str) -> CharacterDetail:
        """A character with its profile and reference images."""
        with self.db.sessions() as session:
            character = self._require(session, name)
            folder = self.store.references_dir(character.name)
            return CharacterDetail(
                name=character.name,
                trigger_word=character.trigger_word,
                description=character.description,
                created_at=character.created_at,
                updated_at=character.updated_at,
                profile=self._profile(session, character),
                references=[
                    reference_info(ref, folder / ref.file_name) for ref in character.references
                ],
            )

    def profile(
        self, name: str, *, method: Method | None = None, lora_version: int | None = None
    ) -> CharacterConsistencyProfile:
        """The character's consistency profile (method and parameters); for ``method``
        and/or LoRA ``lora_version`` instead of the chosen ones when given (see
        :func:`~charstudio.library.assets.profile_with` for what is refused)."""
        with self.db.sessions() as session:
            character = self._require(session, name)
            if method is None and lora_version is None:
                return self._profile(session, character)
            return profile_with(
                session, self.store, character, method=method, lora_version=lora_version
            )

    # -- change -----------------------------------------------------------------------
    def update(
        self,
        name: str,
        *,
        overrides: dict[str, Any] | None = None,
        reset: list[str] | None = None,
        trigger_word: str | None = None,
        description: str | None = None,
    ) -> CharacterConsistencyProfile:
        """Change overrides (``None`` values are ignored), reset some, or edit text fields.

        Raises:
            InvalidParameter: an override out of range, an unknown key, or a pinned
                method the character's assets do not allow.
        """
        changes = {k: v for k, v in (overrides or {}).items() if v is not None}
        if trigger_word is not None:
            validate_trigger_word(trigger_word)
        name = self.get_name(name)  # checked and found before the lock file is made
        self.store.ensure_writable()
        with self.store.character_lock(name), self.db.sessions.begin() as session:
            character = self._require(session, name)
            merged = {**character.overrides, **changes}
            for key in reset or []:
                if key not in Overrides.model_fields:
                    raise InvalidParameter(
                        f"cannot reset {key!r}: not an override; known: "
                        + ", ".join(Overrides.model_fields)
                    )
                merged.pop(key, None)
            parsed = parse_overrides(merged)
            if "method" in changes:
                assets = read_assets(session, self.store, character.id)
                available = feasible_methods(assets)
                if parsed.method not in available:
                    raise InvalidParameter(
                        f"method {parsed.method!r} is not possible for {character.name!r} "
                        f"now (possible: {', '.join(available)}); add the missing LoRA or "
                        "face identity first"
                    )
            character.overrides = parsed.model_dump(exclude_none=True)
            if trigger_word is not None:
                character.trigger_word = trigger_word
            if description is not None:
                character.description = description
            session.flush()
            return self._profile(session, character)

    def remove(self, name: str, *, purge: bool = False) -> RemoveResult:
        """Delete a character's records; its files are kept unless ``purge``."""
        name = self.get_name(name)  # checked and found before the lock file is made
        self.store.ensure_writable()
        with self.store.character_lock(name):
            with self.db.sessions.begin() as session:
                character = self._require(session, name)
                stored_name = character.name
                session.delete(character)
            folders = self._character_files(stored_name)
            if purge:
                for path in folders:
                    if path.is_dir():
                        shutil.rmtree(path)
                    else:
                        path.unlink(missing_ok=True)
        return RemoveResult(
            name=stored_name,
            purged=purge,
            files_kept=[] if purge else [str(p) for p in folders],
            files_removed=[str(p) for p in folders] if purge else [],
        )

    def remove_reference(self, name: str, sha256: str) -> ReferenceInfo:
        """Delete one reference image (its record, face analysis and stored copy).

        Raises:
            NotFound: no such character, or no reference with that SHA-256.
        """
        name = self.get_name(name)  # checked and found before the lock file is made
        self.store.ensure_writable()
        with self.store.character_lock(name):
            with self.db.sessions.begin() as session:
                character = self._require(session, name)
                ref = next((r for r in character.references if r.sha256 == sha256), None)
                if ref is None:
                    raise NotFound(
                        f"{character.name!r} has no reference image {sha256!r}; list them "
                        f"with `charstudio character show {character.name}`"
                    )
                path = self.store.references_dir(character.name) / ref.file_name
                info = reference_info(ref, path)
                character.references.remove(ref)
            path.unlink(missing_ok=True)  # after the commit: a failed commit keeps the file
        return info

    # -- helpers ----------------------------------------------------------------------
    def _character_files(self, name: str) -> list[Path]:
        candidates = [
            self.store.references_dir(name),
            self.store.training_set_dir(name),
            self.store.outputs_dir(name),
            *self.store.embeddings_dir.glob(f"{name}_face.*"),
            *self.store.lora_dir.glob(f"{name}_v*.safetensors"),
        ]
        return [p for p in candidates if p.exists()]

    def _profile(self, session: Session, character: Character) -> CharacterConsistencyProfile:
        return build_profile(
            name=character.name,
            trigger_word=character.trigger_word,
            assets=read_assets(session, self.store, character.id),
            overrides=parse_overrides(character.overrides),
        )

    def _ensure_absent(self, name: str) -> None:
        with self.db.sessions() as session:
            if self._find(session, name) is not None:
                raise CharacterExists(_exists_message(name))

    @staticmethod
    def _find(session: Session, name: str) -> Character | None:
        return session.scalar(select(Character).where(Character.name_key == name_key(name)))

    def _require(self, session: Session, name: str) -> Character:
        validate_name(name)  # InvalidName (400, exit 2) for a NUL, a '/' or 300 characters
        character = self._find(session, name)
        if character is None:
            raise _not_found(name)
        return character


@contextlib.contextmanager
def _removed_on_failure() -> Iterator[list[Path]]:
    """Collect files written inside a transaction; delete them if it does not commit."""
    written: list[Path] = []
    try:
        yield written
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def _not_found(name: str) -> NotFound:
    return NotFound(
        f"no character named {name!r}; see `charstudio character list` "
        f"or create it with `charstudio character add {name} --images PATH`"
    )


def _exists_message(name: str) -> str:
    return (
        f"a character named {name!r} already exists (names ignore case); choose another "
        f"name, or add images with `charstudio character import {name} PATH`"
    )
