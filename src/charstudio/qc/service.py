"""The QC service: a character's checker, and ``qc score`` over any images or folders.

It joins the QC engine to the library (the character's name, profile policy and identity
files) and to the settings' adherence models, which are refused when set if they are not
what they claim to be (a CLIP folder without CLIP's config, a tagger without its tag list).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from charstudio.errors import NotFound
from charstudio.faces.registry import BackendSpec, backend_from_spec
from charstudio.faces.types import BackendName
from charstudio.library import Library
from charstudio.library.importer import collect_files
from charstudio.library.store import AssetStore
from charstudio.library.types import ProgressCallback
from charstudio.qc.base import AdherenceScorer
from charstudio.qc.checker import QualityChecker
from charstudio.qc.clip import DEFAULT_CLIP_THRESHOLD, ClipScorer, check_clip_folder
from charstudio.qc.identity import load_identity
from charstudio.qc.report import QCImageRow, QCScoreReport, build_report
from charstudio.qc.sheet import render_qc_sheet
from charstudio.qc.soundness import BLACK_MAX_LUMA, BLANK_MAX_STD, BLUR_THRESHOLD, DARK_MEAN
from charstudio.qc.tags import DEFAULT_TAG_THRESHOLD, TagScorer
from charstudio.qc.types import QCRequest
from charstudio.workflows.request import Variation

__all__ = ["QCService"]


class QCService:
    """Quality control for the characters of one library."""

    def __init__(
        self,
        *,
        library: Library,
        store: AssetStore,
        spec: BackendSpec,
        specs: Mapping[BackendName, BackendSpec] | None = None,
        clip_model: Path | None = None,
        tagger: Path | None = None,
        device: str = "cpu",
    ) -> None:
        """Raises:
        InvalidParameter: ``clip_model`` is not a CLIP folder, or ``tagger`` lacks a file.
        """
        self.library = library
        self.store = store
        self.spec = spec
        # Other backends a character's identity may have been made with (ccip).
        self.specs: dict[str, BackendSpec] = {str(k): v for k, v in (specs or {}).items()}
        self.clip_model = check_clip_folder(clip_model) if clip_model is not None else None
        self._tags = TagScorer(tagger) if tagger is not None else None
        self.device = device

    @cached_property
    def adherence(self) -> tuple[AdherenceScorer, ...]:
        """The adherence scorers set (CLIP loads on first use: it is heavy)."""
        scorers: list[AdherenceScorer] = []
        if self.clip_model is not None:
            scorers.append(ClipScorer(self.clip_model, device=self.device))
        if self._tags is not None:
            scorers.append(self._tags)
        return tuple(scorers)

    def checker(self, name: str, *, soundness: bool = True) -> QualityChecker:
        """The checker of one character: its identity, its profile's QC policy, the
        adherence models set. What the gated generation builds once per job.

        Raises:
            NotFound: no such character, or no face identity (run ``faces extract``).
            IncompatibleEmbeddings: the identity was made by another face backend.
        """
        stored = self.library.get_name(name)
        identity = load_identity(self.store.embeddings_dir, stored)
        spec = self.specs.get(identity.vector.backend, self.spec)  # the identity's backend
        return QualityChecker(
            backend=backend_from_spec(spec),
            identity=identity,
            policy=self.library.profile(stored).qc,
            adherence=self.adherence,
            soundness=soundness,
        )

    def gate(self, name: str) -> QualityChecker | None:
        """The checker a generation of ``name`` is gated by: with the face identity when the
        character has one; without it (identity "not checked") when only an adherence model
        is set; ``None`` when there is nothing to check against.

        Raises:
            NotFound: no such character.
            IncompatibleEmbeddings: the identity was made by another face backend.
        """
        try:
            return self.checker(name)
        except NotFound:
            stored = self.library.get_name(name)  # NotFound for no such character
            if not self.adherence:
                return None
            return QualityChecker(
                backend=backend_from_spec(self.spec),
                identity=None,
                policy=self.library.profile(stored).qc,
                adherence=self.adherence,
            )

    def score(
        self,
        name: str,
        paths: list[Path],
        *,
        prompt: str = "",
        variation: Variation | None = None,
        subject: str | None = None,
        sheet: Path | None = None,
        progress: ProgressCallback | None = None,
    ) -> QCScoreReport:
        """QC every image of ``paths`` (files and folders) against a character.

        Steps:
            1. Validate: the character, its identity, the request.
            2. Expand folders (their images, sorted), keeping folder-relative paths.
            3. Check each image; an unreadable file is a failure, not a stop.
            4. Draw the contact sheet with the thresholds in its legend; count rates.

        Raises:
            NotFound: no such character, no identity, or a path that does not exist.
            IncompatibleEmbeddings: the identity was made by another face backend.
            NothingToImport: no image files in the paths given.
        """
        # 1. Validate.
        checker = self.checker(name)
        request = QCRequest(
            character=checker.identity.character if checker.identity else name,
            prompt=prompt,
            variation=variation,
            subject=subject,
        )
        # 2. Expand.
        files = _expand(paths)
        # 3. Check.
        rows: list[QCImageRow] = []
        for i, (path, shown) in enumerate(files):
            if progress is not None:
                progress(i, len(files), shown)
            rows.append(QCImageRow(path=shown, result=checker.check(path, request)))
        if progress is not None:
            progress(len(files), len(files), "checked")
        # 4. Sheet and rates.
        thresholds = self._thresholds(checker)
        if sheet is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            sheet = self.store.outputs_dir(request.character) / f"qc_{stamp}.png"
        legend = [
            f"{k} {'>=' if k != 'black max luma' else '>'} {v:g}" for k, v in thresholds.items()
        ]
        render_qc_sheet([r.result for r in rows], ["thresholds: " + "; ".join(legend)], sheet)
        return build_report(
            character=request.character,
            face_backend=checker.backend.name,
            face_model=checker.backend.model_name,
            thresholds=thresholds,
            rows=rows,
            contact_sheet=str(sheet),
        )

    def _thresholds(self, checker: QualityChecker) -> dict[str, float]:
        found = {
            "identity": checker.identity_threshold,
            "black max luma": BLACK_MAX_LUMA,
            "luma std": BLANK_MAX_STD,
            "mean luma": DARK_MEAN,
            "face sharpness": BLUR_THRESHOLD,
        }
        minimum = checker.policy.min_adherence
        if self.clip_model is not None:
            found["clip"] = DEFAULT_CLIP_THRESHOLD if minimum is None else minimum
        if self._tags is not None:
            found["tags"] = DEFAULT_TAG_THRESHOLD if minimum is None else minimum
        return found


def _expand(paths: list[Path]) -> list[tuple[Path, str]]:
    """Each file with the path shown for it: relative to the folder given, or its name."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            files, _ = collect_files([path])
            found += [(f, str(f.relative_to(path))) for f in files]
        else:
            files, _ = collect_files([path])
            found += [(f, f.name) for f in files]
    return found
