"""The face service: a character's identity, its IP-Adapter reference, and identity scores.

It joins the engine (analysis, identity, reference ranking, scoring) to the library
(reference images and ``face_embeddings`` rows, read and written by ``records.py``;
``embeddings/<name>_face.{pt,npy,json}``, by ``identity_files.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from charstudio.errors import InvalidParameter, NotFound
from charstudio.faces.analysis import analyse_paths
from charstudio.faces.contact_sheet import render_contact_sheet
from charstudio.faces.identity import build_identity
from charstudio.faces.identity_files import identity_files, write_identity_files
from charstudio.faces.records import (
    chosen_reference,
    identity_vector,
    record_extraction,
    reference_rows,
)
from charstudio.faces.reference import ReferenceCandidate, export_reference, rank_references
from charstudio.faces.registry import BackendSpec, backend_from_spec
from charstudio.faces.scoring import score_images
from charstudio.faces.service_types import (
    ExtractReport,
    ReferenceReport,
    ScoreReport,
    image_report,
    score_report,
)
from charstudio.faces.types import (
    FaceEmbeddingVector,
    IdentityResult,
    ImageAnalysis,
    IncompatibleEmbeddings,
)
from charstudio.library import Library
from charstudio.library.images import load_rgb
from charstudio.library.models import ReferenceImage
from charstudio.library.store import AssetStore
from charstudio.library.types import ProgressCallback

__all__ = ["FaceService"]


class FaceService:
    """Face identity for the characters of one library."""

    def __init__(
        self, *, library: Library, store: AssetStore, spec: BackendSpec, workers: int = 2
    ) -> None:
        self.library = library
        self.store = store
        self.spec = spec
        self.workers = workers

    # -- identify ---------------------------------------------------------------------
    def identify(
        self, paths: list[Path], *, progress: ProgressCallback | None = None
    ) -> tuple[list[ImageAnalysis], IdentityResult]:
        """Analyse images (both cores) and build the identity of their inliers: the face
        stage's analyse → identity steps, for :meth:`extract` and the dataset stage alike.

        Raises:
            NoUsableFace: no image has one usable face.
            BackendUnavailable: the face backend is not installed or has no models.
        """
        if progress is not None:
            progress(0, len(paths), "loading the face models")
        analyses = analyse_paths(self.spec, paths, workers=self.workers)
        if progress is not None:
            progress(len(paths), len(paths), "faces analysed")
        backend = backend_from_spec(self.spec)
        return analyses, build_identity(analyses, threshold=backend.threshold)

    # -- extract ----------------------------------------------------------------------
    def extract(self, name: str, *, progress: ProgressCallback | None = None) -> ExtractReport:
        """Analyse every reference, build the identity, choose the reference, write files.

        Steps:
            1. Load the character's reference images.
            2. Detect and embed faces (both cores); statuses for no / several / small faces.
            3. Build the identity from the inliers; flag outliers.
            4. Rank references; keep a user's choice while it is still an inlier.
            5. Write ``<name>_face.{pt,npy,json}`` and the ComfyUI-ready reference images
               under temporary names, record everything in one transaction, then rename.

        Raises:
            NotFound: no such character.
            NoUsableFace: no reference has one usable face.
            BackendUnavailable: the face backend is not installed or has no models.
        """
        # 1. Load references.
        stored_name = self.library.get_name(name)
        refs = self._references(stored_name)
        if not refs:
            raise InvalidParameter(
                f"{stored_name!r} has no reference images; add some with "
                f"`charstudio character import {stored_name} PATH`"
            )
        paths = [self._ref_path(stored_name, r) for r in refs]
        # 2-3. Detect and embed; identity.
        analyses, identity = self.identify(paths, progress=progress)
        # 4. Reference choice.
        ranked = rank_references(analyses, identity)
        choice = self._keep_user_choice(refs, paths, ranked, identity)
        # 5. Files and records.
        self.store.ensure_writable()
        with self.store.character_lock(stored_name):
            files = identity_files(self.store.embeddings_dir, stored_name)
            with write_identity_files(
                files, identity, sources=[r.sha256 for r in refs], paths=[str(p) for p in paths]
            ) as commit_files:
                self._record(stored_name, refs, paths, analyses, identity, choice)
                commit_files()
            exported = self._export(stored_name, analyses, paths, choice)
        return ExtractReport(
            character=stored_name,
            backend=identity.vector.backend,
            model=identity.vector.model,
            dim=identity.vector.dim,
            threshold=identity.threshold,
            images=[
                image_report(r, p, a, m)
                for r, p, a, m in zip(refs, paths, analyses, identity.members, strict=True)
            ],
            inliers=len(identity.inliers),
            outliers=len(identity.outliers),
            files=[str(files.pt), str(files.npy), str(files.json)],
            reference=self._reference_report(stored_name, ranked, choice, exported),
        )

    # -- reference --------------------------------------------------------------------
    def reference(self, name: str) -> ReferenceReport:
        """The current IP-Adapter reference of a character."""
        stored_name = self.library.get_name(name)
        with self._session() as session:
            ref = chosen_reference(session, stored_name)
        if ref is None:
            raise NotFound(
                f"{stored_name!r} has no IP-Adapter reference yet; run "
                f"`charstudio faces extract {stored_name}`"
            )
        return ReferenceReport(
            character=stored_name,
            sha256=ref.sha256,
            original_name=ref.original_name,
            path=str(self._ref_path(stored_name, ref)),
            chosen_by=ref.ipadapter_reference or "auto",
            score=(ref.face_details or {}).get("reference_score"),
            face_crop=str(self.store.embeddings_dir / f"{stored_name}_reference_face.png"),
            full_image=str(self.store.embeddings_dir / f"{stored_name}_reference_full.png"),
            ranking=[],
        )

    def choose_reference(self, name: str, image: str) -> ReferenceReport:
        """Make ``image`` (original file name or SHA-256 prefix) the reference.

        Raises:
            NotFound: no such image among the character's references.
            InvalidParameter: the image has no usable face or is an identity outlier.
        """
        stored_name = self.library.get_name(name)
        with self.store.character_lock(stored_name), self._transaction() as session:
            refs = reference_rows(session, stored_name)
            matches = [r for r in refs if r.original_name == image or r.sha256.startswith(image)]
            if len(matches) != 1:
                known = ", ".join(r.original_name for r in refs)
                raise NotFound(
                    f"{'no' if not matches else 'more than one'} reference of {stored_name!r} "
                    f"matches {image!r}; give a file name or SHA-256 prefix ({known})"
                )
            picked = matches[0]
            if picked.face_status != "ok":
                raise InvalidParameter(
                    f"{picked.original_name} cannot be the reference: face status "
                    f"{picked.face_status or 'not analysed'}; run `charstudio faces extract "
                    f"{stored_name}` or pick an image with one clear face of the character"
                )
            for ref in refs:
                ref.ipadapter_reference = None
            picked.ipadapter_reference = "user"
            path = self._ref_path(stored_name, picked)
        analyses = analyse_paths(self.spec, [path], workers=1)
        chosen_face = analyses[0].chosen_face
        if chosen_face is not None:
            export_reference(
                load_rgb(path),
                chosen_face.face,
                out_dir=self.store.embeddings_dir,
                name=f"{stored_name}_reference",
                content=analyses[0].content,
            )
        return self.reference(stored_name)

    # -- score ------------------------------------------------------------------------
    def score(
        self,
        name: str,
        images: list[Path],
        *,
        sheet: Path | None = None,
        progress: ProgressCallback | None = None,
    ) -> ScoreReport:
        """Score images against the character's identity; draw a contact sheet.

        Raises:
            NotFound: no such character, or no identity yet.
            IncompatibleEmbeddings: the identity was made by another backend.
        """
        stored_name = self.library.get_name(name)
        identity = self._identity(stored_name)
        backend = backend_from_spec(self.spec)
        if (identity.backend, identity.model) != (backend.name, backend.model_name):
            raise IncompatibleEmbeddings(
                f"the identity of {stored_name!r} was made by {identity.label}, but the face "
                f"backend now is {backend.name}/{backend.model_name}; scores across backends "
                f"mean nothing: re-run `charstudio faces extract {stored_name}` or switch back"
            )
        files = _expand(images)
        if progress is not None:
            progress(0, len(files), "analysing")
        analyses = analyse_paths(self.spec, files, workers=self.workers, embed="all")
        if progress is not None:
            progress(len(files), len(files), "scored")
        result = score_images(analyses, identity, threshold=backend.threshold)
        if sheet is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            sheet = self.store.outputs_dir(stored_name) / f"face_scores_{stamp}.png"
        render_contact_sheet(result.images, sheet)
        return score_report(stored_name, result, sheet)

    # -- helpers ----------------------------------------------------------------------
    def _keep_user_choice(
        self,
        refs: list[ReferenceImage],
        paths: list[Path],
        ranked: list[ReferenceCandidate],
        identity: IdentityResult,
    ) -> tuple[int, str] | None:
        """Index of the reference to use and who chose it: a still-valid user pick wins."""
        inliers = {m.source for m in identity.inliers}
        for i, ref in enumerate(refs):
            if ref.ipadapter_reference == "user" and str(paths[i]) in inliers:
                return i, "user"
        if not ranked:
            return None
        best = next(i for i, p in enumerate(paths) if str(p) == ranked[0].source)
        return best, "auto"

    def _record(
        self,
        name: str,
        refs: list[ReferenceImage],
        paths: list[Path],
        analyses: list[ImageAnalysis],
        identity: IdentityResult,
        choice: tuple[int, str] | None,
    ) -> None:
        """Record one extraction (statuses, reference choice, embeddings) in one transaction."""
        ranking = {c.source: c.score for c in rank_references(analyses, identity)}
        with self._transaction() as session:
            record_extraction(
                session,
                name=name,
                refs=refs,
                paths=paths,
                analyses=analyses,
                identity=identity,
                choice=choice,
                ranking=ranking,
            )

    def _export(
        self,
        name: str,
        analyses: list[ImageAnalysis],
        paths: list[Path],
        choice: tuple[int, str] | None,
    ) -> bool:
        if choice is None:
            return False
        chosen = analyses[choice[0]].chosen_face
        if chosen is None:
            return False
        export_reference(
            load_rgb(paths[choice[0]]),
            chosen.face,
            out_dir=self.store.embeddings_dir,
            name=f"{name}_reference",
            content=analyses[choice[0]].content,
        )
        return True

    def _reference_report(
        self,
        name: str,
        ranked: list[ReferenceCandidate],
        choice: tuple[int, str] | None,
        exported: bool,
    ) -> ReferenceReport | None:
        if choice is None:
            return None
        with self._session() as session:
            ref = chosen_reference(session, name)
        if ref is None:
            return None
        return ReferenceReport(
            character=name,
            sha256=ref.sha256,
            original_name=ref.original_name,
            path=str(self._ref_path(name, ref)),
            chosen_by=choice[1],
            score=(ref.face_details or {}).get("reference_score"),
            face_crop=str(self.store.embeddings_dir / f"{name}_reference_face.png")
            if exported
            else None,
            full_image=str(self.store.embeddings_dir / f"{name}_reference_full.png")
            if exported
            else None,
            ranking=[(Path(c.source).name, round(c.score, 4)) for c in ranked],
        )

    def _identity(self, name: str) -> FaceEmbeddingVector:
        with self._session() as session:
            vector = identity_vector(session, name)
        if vector is None:
            raise NotFound(
                f"{name!r} has no face identity yet; run `charstudio faces extract {name}`"
            )
        return vector

    def _references(self, name: str) -> list[ReferenceImage]:
        with self._session() as session:
            return reference_rows(session, name)

    def _ref_path(self, name: str, ref: ReferenceImage) -> Path:
        return self.store.references_dir(name) / ref.file_name

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        with self.library.db.sessions() as session:
            yield session

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Session]:
        with self.library.db.sessions.begin() as session:
            yield session


def _expand(images: list[Path]) -> list[Path]:
    """Files and folders (their image files, sorted) to score."""
    from charstudio.library.importer import collect_files

    files, _ = collect_files(images)
    return files
