"""Face identity engine: detection, identity embeddings, reference choice, identity scoring.

Backends (``dlib`` by default, ``insightface`` for local non-commercial packs) sit behind
:class:`FaceBackend`; the engine modules work on their typed results and read no settings.
:class:`FaceService` joins the engine to the library (records, identity files, the
IP-Adapter reference).
"""

from charstudio.faces.analysis import analyse_image, analyse_path, analyse_paths
from charstudio.faces.base import FaceBackend, check_compatible, similarity
from charstudio.faces.contact_sheet import render_contact_sheet
from charstudio.faces.identity import build_identity
from charstudio.faces.reference import (
    ReferenceCandidate,
    ReferenceExport,
    export_reference,
    rank_references,
)
from charstudio.faces.registry import BACKEND_NAMES, BackendSpec, load_backend
from charstudio.faces.scoring import score_image, score_images
from charstudio.faces.service import FaceService
from charstudio.faces.service_types import (
    ExtractReport,
    FaceImageReport,
    ReferenceReport,
    ScoreReport,
)
from charstudio.faces.types import (
    AnalysedFace,
    BackendName,
    DetectedFace,
    FaceBox,
    FaceEmbeddingVector,
    FaceKeypoints,
    IdentityMember,
    IdentityResult,
    ImageAnalysis,
    ImageScore,
    ImageStatus,
    IncompatibleEmbeddings,
    NoUsableFace,
    ScoreResult,
    SimilarityStats,
)

__all__ = [
    "BACKEND_NAMES",
    "AnalysedFace",
    "BackendName",
    "BackendSpec",
    "DetectedFace",
    "ExtractReport",
    "FaceBackend",
    "FaceBox",
    "FaceEmbeddingVector",
    "FaceImageReport",
    "FaceKeypoints",
    "FaceService",
    "IdentityMember",
    "IdentityResult",
    "ImageAnalysis",
    "ImageScore",
    "ImageStatus",
    "IncompatibleEmbeddings",
    "NoUsableFace",
    "ReferenceCandidate",
    "ReferenceExport",
    "ReferenceReport",
    "ScoreReport",
    "ScoreResult",
    "SimilarityStats",
    "analyse_image",
    "analyse_path",
    "analyse_paths",
    "build_identity",
    "check_compatible",
    "export_reference",
    "load_backend",
    "rank_references",
    "render_contact_sheet",
    "score_image",
    "score_images",
    "similarity",
]
