"""The face service: a character's identity, its IP-Adapter reference, and identity scores.

It joins the engine (analysis, identity, reference ranking, scoring) to the library
(reference images and ``face_embeddings`` rows, read and written by ``records.py``;
``embeddings/<name>_face.{pt,npy,json}``, by ``identity_files.py``).

The backend is chosen per character: ``extract(backend=...)`` sets it (the settings'
``face_backend`` by default), and from then on the character's identity says which backend
made it, so scoring, reference choice and the dataset stage use that one. A photoreal
character on dlib and a drawn one on CCIP live in one library.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from charstudio.errors import InvalidParameter, NotFound
from charstudio.faces.analysis import analyse_paths
from charstudio.faces.base import comparator
from charstudio.faces.contact_sheet import render_contact_sheet
from charstudio.faces.identity import build_identity
from charstudio.faces.identity_files import identity_files, write_identity_files
from charstudio.faces.records import (
    chosen_reference,
    identity_vector,
    record_extraction,
    reference_rows,
)
from charstudio.faces.reference import ReferenceCandidate, export_chosen, rank_references
from charstudio.faces.registry import BACKEND_NAMES, BackendSpec, backend_from_spec, check_models
from charstudio.faces.scoring import score_images
from charstudio.faces.service_types import (
    ExtractReport,
    ReferenceReport,
    ScoreReport,
    image_report,
    score_report,
)
from charstudio.faces.types import (
    BackendName,
    FaceEmbeddingVector,
    IdentityResult,
    ImageAnalysis,
    IncompatibleEmbeddings,
)
from charstudio.library import Library
from charstudio.library.models import ReferenceImage
from charstudio.library.store import AssetStore
from charstudio.library.types import ProgressCallback

__all__ = ["FaceService"]


class FaceService:
    """Face identity for the characters of one library."""

    def __init__(
        self,
        *,
        library: Library,
        store: AssetStore,
        spec: BackendSpec,
        specs: Mapping[BackendName, BackendSpec] | None = None,
        workers: int = 2,
    ) -> None:
        """``spec``: the default backend; ``specs``: how to build each other backend."""
        self.library = library
        self.store = store
        self.spec = spec
        self.specs = dict(specs or {})
        self.workers = workers

    def spec_for(self, backend: BackendName) -> BackendSpec:
        """How to build the named backend (the settings' folders for it)."""
        if backend == self.spec.name:
            return self.spec
        return self.specs.get(backend) or BackendSpec(name=backend)

    def character_spec(self, name: str) -> BackendSpec:
        """The backend of the character's identity; the default before its first extract."""
        with self._session() as session:
            vector = identity_vector(session, self.library.get_name(name))
        known: dict[str, BackendName] = {n: n for n in BACKEND_NAMES}
        if vector is None or vector.backend not in known:
            return self.spec
        return self.spec_for(known[vector.backend])

    def extract_spec(self, name: str, backend: BackendName | None = None) -> BackendSpec:
        """The backend an extract of the character uses (``backend``, else its own), its
        model files checked by :func:`check_models` (which names the setting to set)."""
        spec = self.spec_for(backend) if backend else self.character_spec(name)
        check_models(spec)
        return spec

    # -- identify ---------------------------------------------------------------------
    def identify(
        self,
        paths: list[Path],
        *,
        character: str | None = None,
        spec: BackendSpec | None = None,
        progress: ProgressCallback | None = None,
    ) -> tuple[list[ImageAnalysis], IdentityResult]:
        """Analyse images (both cores) and build the identity of their inliers: the face
        stage's analyse → identity steps, for :meth:`extract` and the dataset stage alike.

        Args:
            paths: the images.
            character: use this character's backend (:meth:`character_spec`).
            spec: use this backend; default: the character's, else the default.
            progress: called before and after the analysis.

        Raises:
            NoUsableFace: no image has one usable face.
            BackendUnavailable: the face backend is not installed or has no models.
        """
        if spec is None:
            spec = self.character_spec(character) if character is not None else self.spec
        if progress is not None:
            progress(0, len(paths), "loading the face models")
        analyses = analyse_paths(spec, paths, workers=self.workers)
        if progress is not None:
            progress(len(paths), len(paths), "faces analysed")
        backend = backend_from_spec(spec)
        identity = build_identity(
            analyses, threshold=backend.threshold, compare=comparator(backend)
        )
        return analyses, identity

    # -- extract ----------------------------------------------------------------------
    def extract(
        self,
        name: str,
        *,
        backend: BackendName | None = None,
        progress: ProgressCallback | None = None,
    ) -> ExtractReport:
        """Analyse every reference, build the identity, choose the reference, write files.
        ``backend`` (``"ccip"`` for a drawn character) is the character's from now on.

        Steps:
            1. Load the character's reference images; the backend.
            2-3. Detect and embed (both cores); build the identity of the inliers.
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
        spec = self.extract_spec(stored_name, backend)
        # 2-3. Detect and embed; identity.
        analyses, identity = self.identify(paths, spec=spec, progress=progress)
        # 4. Reference choice.
        loaded = backend_from_spec(spec)
        ranked = rank_references(analyses, identity, compare=comparator(loaded))
        choice = _keep_user_choice(refs, paths, ranked, identity)
        # 5. Files and records.
        self.store.ensure_writable()
        with self.store.character_lock(stored_name):
            files = identity_files(self.store.embeddings_dir, stored_name)
            with write_identity_files(
                files, identity, sources=[r.sha256 for r in refs], paths=[str(p) for p in paths]
            ) as commit_files:
                with self.library.db.sessions.begin() as session:
                    record_extraction(
                        session,
                        name=stored_name,
                        refs=refs,
                        paths=paths,
                        analyses=analyses,
                        identity=identity,
                        choice=choice,
                        ranking={c.source: c.score for c in ranked},
                    )
                commit_files()
            exported = choice is not None and export_chosen(
                paths[choice[0]],
                analyses[choice[0]],
                out_dir=self.store.embeddings_dir,
                name=f"{stored_name}_reference",
            )
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
            subject=getattr(loaded, "subject", "face"),
            note=getattr(loaded, "note", None),
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
        return self._reference_of(
            stored_name, ref, chosen_by=ref.ipadapter_reference or "auto", ranking=[]
        )

    def choose_reference(self, name: str, image: str) -> ReferenceReport:
        """Make ``image`` (original file name or SHA-256 prefix) the reference.

        Raises:
            NotFound: no such image among the character's references.
            InvalidParameter: the image has no usable face or is an identity outlier.
        """
        stored_name = self.library.get_name(name)
        with self.store.character_lock(stored_name), self.library.db.sessions.begin() as session:
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
        analyses = analyse_paths(self.character_spec(stored_name), [path], workers=1)
        export_chosen(
            path, analyses[0], out_dir=self.store.embeddings_dir, name=f"{stored_name}_reference"
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
        spec = self.character_spec(stored_name)
        backend = backend_from_spec(spec)
        if (identity.backend, identity.model) != (backend.name, backend.model_name):
            raise IncompatibleEmbeddings(
                f"the identity of {stored_name!r} was made by {identity.label}, but the "
                f"{backend.name} backend now loads {backend.name}/{backend.model_name}; scores "
                f"across models mean nothing: re-run `charstudio faces extract {stored_name}` "
                "or point the setting back at the model it was made with"
            )
        files = _expand(images)
        if progress is not None:
            progress(0, len(files), "analysing")
        analyses = analyse_paths(spec, files, workers=self.workers, embed="all")
        if progress is not None:
            progress(len(files), len(files), "scored")
        result = score_images(
            analyses, identity, threshold=backend.threshold, compare=comparator(backend)
        )
        if sheet is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            sheet = self.store.outputs_dir(stored_name) / f"face_scores_{stamp}.png"
        render_contact_sheet(result.images, sheet)
        return score_report(stored_name, result, sheet)

    # -- helpers ----------------------------------------------------------------------
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
        ranking = [(Path(c.source).name, round(c.score, 4)) for c in ranked]
        return self._reference_of(
            name, ref, chosen_by=choice[1], ranking=ranking, exported=exported
        )

    def _reference_of(
        self,
        name: str,
        ref: ReferenceImage,
        *,
        chosen_by: str,
        ranking: list[tuple[str, float]],
        exported: bool = True,
    ) -> ReferenceReport:
        folder = self.store.embeddings_dir
        return ReferenceReport(
            character=name,
            sha256=ref.sha256,
            original_name=ref.original_name,
            path=str(self._ref_path(name, ref)),
            chosen_by=chosen_by,
            score=(ref.face_details or {}).get("reference_score"),
            face_crop=_existing(folder / f"{name}_reference_face.png") if exported else None,
            full_image=str(folder / f"{name}_reference_full.png") if exported else None,
            ranking=ranking,
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


def _keep_user_choice(
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


def _existing(path: Path) -> str | None:
    """``path`` as text if the file exists (a drawn character has no face crop)."""
    return str(path) if path.is_file() else None


def _expand(images: list[Path]) -> list[Path]:
    """Files and folders (their image files, sorted) to score."""
    from charstudio.library.importer import collect_files

    files, _ = collect_files(images)
    return files
