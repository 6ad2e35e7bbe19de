"""Face identity engine: detection, identity embeddings, reference choice, identity scoring.

Backends (``dlib`` by default, ``insightface`` for local non-commercial packs, ``ccip`` for
drawn characters) sit behind :class:`FaceBackend`; the engine modules work on their typed
results, score through the backend's :func:`comparator`, and read no settings.
:class:`FaceService` joins the engine to the library (records, identity files, the
IP-Adapter reference).
"""

from charstudio.faces.analysis import analyse_image, analyse_path, analyse_paths
from charstudio.faces.base import (
    Comparator,
    FaceBackend,
    LearnedMetricBackend,
    check_compatible,
    comparator,
    cosine_scores,
    similarity,
)
from charstudio.faces.ccip_backend import CcipBackend
from charstudio.faces.character_detector import CharacterDetector
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
    SubjectKind,
)

__all__ = [
    "BACKEND_NAMES",
    "AnalysedFace",
    "BackendName",
    "BackendSpec",
    "CcipBackend",
    "CharacterDetector",
    "Comparator",
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
    "LearnedMetricBackend",
    "NoUsableFace",
    "ReferenceCandidate",
    "ReferenceExport",
    "ReferenceReport",
    "ScoreReport",
    "ScoreResult",
    "SimilarityStats",
    "SubjectKind",
    "analyse_image",
    "analyse_path",
    "analyse_paths",
    "build_identity",
    "check_compatible",
    "comparator",
    "cosine_scores",
    "export_reference",
    "load_backend",
    "rank_references",
    "render_contact_sheet",
    "score_image",
    "score_images",
    "similarity",
]
