"""``charstudio dataset prepare``: references in, a versioned training set out.

The recipe (:meth:`DatasetService.prepare`):

1. Validate the settings, load the tagger if one is set, find the character's references.
2. Analyse faces and build the identity (the face engine).
3. Curate: keep or reject each image, with the reason.
4. Check there are enough images (refuse below the minimum, warn below ten).
5. Crop around the subject and caption each kept image (user edits win).
6. Write everything into a staging folder: images, captions, the kohya layout on request,
   and the two contact sheets.
7. Hash the content; if it equals the newest version, keep that one. Otherwise write
   ``config.json``, swap the staging folder in and record the new version in the library.

Each step is a helper below; the library rows they read and write are in ``records.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from charstudio.dataset import records
from charstudio.dataset.crop import render_from_file
from charstudio.dataset.curate import Candidate, curate, target_size
from charstudio.dataset.layout import (
    SetWriter,
    content_hash,
    recover,
    remove_stale_staging,
    swap_in,
)
from charstudio.dataset.sheets import draw_sheets
from charstudio.dataset.tagger import Tagger, load_tagger
from charstudio.dataset.types import (
    WARN_IMAGES,
    DatasetConfig,
    KeptImage,
    PrepareResult,
    RejectedImage,
)
from charstudio.dataset.writing import caption_for, crop_for
from charstudio.errors import InvalidParameter, NotEnoughImages, NotFound
from charstudio.faces.service import FaceService
from charstudio.faces.types import NoUsableFace
from charstudio.library.models import Character, ReferenceImage
from charstudio.library.store import AssetStore
from charstudio.library.stored_paths import to_stored
from charstudio.library.types import ProgressCallback

__all__ = ["DatasetService", "NotEnoughImages"]


@dataclass(frozen=True)
class _Version:
    """Step 7: the version the set is, new or (``unchanged``) the newest one."""

    number: int
    digest: str
    unchanged: bool


class DatasetService:
    """Prepares and versions training sets."""

    def __init__(self, *, faces: FaceService, store: AssetStore) -> None:
        self.faces = faces
        self.library = faces.library
        self.store = store

    def prepare(
        self,
        name: str,
        config: DatasetConfig,
        *,
        progress: ProgressCallback | None = None,
    ) -> PrepareResult:
        """Prepare (or re-prepare) a character's training set. See the module docstring.

        Raises:
            NotFound: no such character.
            InvalidParameter: the character has no references, or the tagger cannot load.
            NotEnoughImages: fewer usable images than ``config.min_images``.
            BackendUnavailable: the face backend cannot be loaded.
        """
        report = progress or (lambda done, total, message: None)
        # 1. Validate, load the tagger, find the references.
        stored_name = self.library.get_name(name)
        character, refs, tagger = self._validate(stored_name, config)
        final_dir = self.store.training_set_dir(stored_name)
        with self.store.character_lock(stored_name):
            recover(final_dir)
            remove_stale_staging(final_dir)
            # 2. Faces and identity.
            report(1, 7, "analysing faces")
            candidates = self._analyse(stored_name, refs)
            # 3. Curate.
            report(2, 7, "curating")
            kept, rejected = curate(candidates, config)
            # 4. Enough images?
            warnings = self._check_count(stored_name, len(kept), len(refs), config)
            # 5-6. Crop, caption, write into a staging folder.
            report(3, 7, "cropping and captioning")
            writer = SetWriter(final_dir=final_dir, name=stored_name)
            try:
                images = self._write_images(writer, kept, character, config, tagger)
                kohya_dir = self._write_kohya(writer, character, config)
                report(5, 7, "drawing contact sheets")
                sheets = draw_sheets(
                    writer.staging, final_dir, images, rejected, candidates, stored_name
                )
                # 7. Hash, then keep the newest version or swap in a new one.
                version = self._save_version(writer, character, config, images, rejected, report)
            except BaseException:
                writer.discard()
                raise
        report(7, 7, "done")
        return PrepareResult(
            character=stored_name,
            version=version.number,
            content_hash=version.digest,
            unchanged=version.unchanged,
            path=str(final_dir),
            kohya_path=str(kohya_dir) if kohya_dir else None,
            kept=images,
            rejected=rejected,
            contact_sheet=str(sheets[0]),
            rejected_sheet=str(sheets[1]) if sheets[1] else None,
            warnings=warnings,
            config=config,
        )

    def edit_caption(self, name: str, image: str, text: str | None) -> None:
        """Store (or with ``None`` drop) a user's caption for one image.

        ``image`` is a training image name (``yuki_003.png``), the reference's original
        file name, or a SHA-256 prefix. Run :meth:`prepare` again to apply it.

        Raises:
            NotFound: no such image.
            InvalidParameter: a caption with a line break, without the trigger word first,
                or with nothing but the trigger word.
        """
        from charstudio.dataset.captions import validate_caption_edit

        stored_name = self.library.get_name(name)
        sha = self._resolve_image(stored_name, image)
        with self.library.db.sessions.begin() as session:
            ref = session.scalar(
                select(ReferenceImage)
                .join(Character)
                .where(Character.name == stored_name, ReferenceImage.sha256 == sha)
            )
            assert ref is not None
            character = session.get(Character, ref.character_id)
            assert character is not None
            ref.caption_edit = (
                None
                if text is None
                else validate_caption_edit(text, trigger_word=character.trigger_word)
            )

    def last_config(self, name: str) -> DatasetConfig | None:
        """The settings of the newest training set, to re-prepare with."""
        stored_name = self.library.get_name(name)
        character, _ = self._references(stored_name)
        latest = records.latest_set(self.library.db, character.id)
        if latest is None:
            return None
        fields = DatasetConfig.model_fields
        return DatasetConfig.parse(**{k: v for k, v in latest.settings.items() if k in fields})

    def current(self, name: str) -> dict[str, Any]:
        """The current training set's ``config.json``: images, captions, rejections, settings.

        Raises:
            NotFound: no such character, or no training set prepared yet.
        """
        stored_name = self.library.get_name(name)
        path = self.store.training_set_dir(stored_name) / "config.json"
        if not path.is_file():
            raise NotFound(
                f"{stored_name!r} has no training set yet; prepare one (`charstudio dataset "
                f"prepare {stored_name}`, POST /api/v1/characters/{stored_name}/dataset)"
            )
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    # -- steps ------------------------------------------------------------------------
    def _validate(
        self, name: str, config: DatasetConfig
    ) -> tuple[Character, list[ReferenceImage], Tagger | None]:
        """Step 1: the character, its references and the tagger, before any heavy work."""
        character, refs = self._references(name)
        if not refs:
            raise InvalidParameter(
                f"{name!r} has no reference images; add some with "
                f"`charstudio character import {name} PATH`"
            )
        tagger = (
            load_tagger(Path(config.tagger), threshold=config.tagger_threshold)
            if config.tagger
            else None
        )
        self.store.ensure_writable()
        return character, refs, tagger

    def _analyse(self, name: str, refs: list[ReferenceImage]) -> list[Candidate]:
        paths = [self.store.references_dir(name) / r.file_name for r in refs]
        try:
            analyses, identity = self.faces.identify(paths, character=name)
        except NoUsableFace as exc:
            raise NotEnoughImages(
                f"no reference of {name!r} has one usable face, so every image was rejected "
                f"({exc}); add clear photos of the character's face"
            ) from exc
        return [
            Candidate(
                sha256=r.sha256,
                name=r.original_name,
                path=p,
                width=r.width,
                height=r.height,
                analysis=a,
                member=m,
            )
            for r, p, a, m in zip(refs, paths, analyses, identity.members, strict=True)
        ]

    @staticmethod
    def _check_count(name: str, kept: int, total: int, config: DatasetConfig) -> list[str]:
        if kept < config.min_images:
            raise NotEnoughImages(
                f"only {kept} of {total} references of {name!r} are usable, fewer than "
                f"{config.min_images}: a LoRA trained on so few learns the pictures, not the "
                "character; add more varied photos (10-20 is the usual advice)"
            )
        if kept < WARN_IMAGES:
            return [
                f"{kept} usable images: below the usual 10-20 for a character LoRA; expect "
                "it to copy poses and backgrounds"
            ]
        return []

    def _write_images(
        self,
        writer: SetWriter,
        kept: list[Candidate],
        character: Character,
        config: DatasetConfig,
        tagger: Tagger | None,
    ) -> list[KeptImage]:
        edits = records.caption_edits(self.library.db, character.id)
        images = []
        for index, cand in enumerate(kept, start=1):
            out_w, out_h = target_size(*cand.content_size, config)
            crop = crop_for(cand, (out_w, out_h))
            rendered = render_from_file(cand.path, crop, (cand.width, cand.height))
            auto_tags = tagger.tag(rendered) if tagger else ()
            caption, view, framing = caption_for(
                cand, crop, character.trigger_word, config, auto_tags
            )
            edited = edits.get(cand.sha256)
            file_name = writer.add(index, rendered, edited or caption)
            images.append(
                KeptImage(
                    index=index,
                    file_name=file_name,
                    source_sha256=cand.sha256,
                    source_name=cand.name,
                    crop=crop,
                    view=view,
                    framing=framing,
                    caption=edited or caption,
                    caption_edited=edited is not None,
                    sharpness=round(cand.sharpness, 1),
                )
            )
        return images

    @staticmethod
    def _write_kohya(writer: SetWriter, character: Character, config: DatasetConfig) -> Path | None:
        """Step 6: the kohya ``<repeats>_<trigger> <class>`` layout, when asked for."""
        if not config.kohya:
            return None
        return writer.write_kohya(
            repeats=config.repeats,
            trigger_word=character.trigger_word,
            class_word=config.class_word,
            resolution=config.resolution,
            bucket=config.bucket,
        )

    def _save_version(
        self,
        writer: SetWriter,
        character: Character,
        config: DatasetConfig,
        images: list[KeptImage],
        rejected: list[RejectedImage],
        report: ProgressCallback,
    ) -> _Version:
        """Step 7: hash the staged set; the same content as the newest version keeps that
        version (the staging folder is discarded), anything else gets ``config.json``, is
        swapped in and recorded as the next version."""
        settings = {**config.model_dump(mode="json"), "trigger_word": character.trigger_word}
        digest = content_hash(writer.staging, settings)
        report(6, 7, "recording the version")
        db, final_dir = self.library.db, writer.final_dir
        latest = records.latest_set(db, character.id)
        unchanged = latest is not None and latest.content_hash == digest and final_dir.is_dir()
        number = latest.version if unchanged and latest else records.next_version(db, character.id)
        if unchanged:
            writer.discard()
            return _Version(number=number, digest=digest, unchanged=True)
        writer.write_json(
            "config.json",
            {
                "character_name": writer.name,
                "num_images": len(images),
                "resolution": config.resolution,
                "caption_style": config.caption_style,
                "trigger_word": character.trigger_word,
                "version": number,
                "content_hash": digest,
                "settings": settings,
                "images": [i.model_dump(mode="json") for i in images],
                "rejected": [r.model_dump(mode="json") for r in rejected],
            },
        )
        swap_in(writer.staging, final_dir)
        records.record_set(
            db,
            character_id=character.id,
            version=number,
            digest=digest,
            count=len(images),
            resolution=config.resolution,
            settings=settings,
            path=to_stored(self.store.home, final_dir),
        )
        return _Version(number=number, digest=digest, unchanged=False)

    # -- library ----------------------------------------------------------------------
    def _references(self, name: str) -> tuple[Character, list[ReferenceImage]]:
        return records.references(self.library.db, name)

    def _resolve_image(self, name: str, image: str) -> str:
        _, refs = self._references(name)
        config_file = self.store.training_set_dir(name) / "config.json"
        by_training_name: dict[str, str] = {}
        if config_file.is_file():
            for entry in json.loads(config_file.read_text()).get("images", []):
                by_training_name[entry["file_name"]] = entry["source_sha256"]
        if image in by_training_name:
            return by_training_name[image]
        matches = [r.sha256 for r in refs if r.original_name == image or r.sha256.startswith(image)]
        if len(matches) != 1:
            raise NotFound(
                f"no single image of {name!r} matches {image!r}; give a training image name "
                f"({', '.join(sorted(by_training_name)) or 'none yet'}), an original file "
                "name or a SHA-256 prefix"
            )
        return matches[0]
