"""Choosing and loading a face backend by name.

Backends are heavy (model files of 20-300 MB), so each distinct :class:`BackendSpec` is
loaded once per process and cached. A spec is a small frozen value, so worker processes
(see :mod:`charstudio.faces.analysis`) can rebuild the same backend from it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from charstudio.errors import InvalidParameter, ModelFileMissing
from charstudio.faces.base import FaceBackend
from charstudio.faces.ccip_backend import CCIP_FILES, CcipBackend
from charstudio.faces.dlib_backend import DlibBackend, DlibDetector
from charstudio.faces.insightface_backend import InsightFaceBackend
from charstudio.faces.types import BackendName

__all__ = ["BACKEND_NAMES", "DEFAULT_INSIGHTFACE_ROOT", "BackendSpec", "load_backend"]

BACKEND_NAMES: tuple[BackendName, ...] = ("dlib", "insightface", "ccip")
DEFAULT_INSIGHTFACE_ROOT = Path("~/.insightface")
"""Where InsightFace itself keeps packs (``~/.insightface/models/<pack>``)."""


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to build a backend; hashable and picklable.

    Attributes:
        name: ``"dlib"``, ``"insightface"`` or ``"ccip"``.
        model_root: dlib: folder of ``.dat`` files (default: the installed
            face-recognition-models); insightface: pack root (default ``~/.insightface``);
            ccip: the model folder (required: ``CHARSTUDIO_CCIP_MODEL_DIR``).
        pack: insightface pack name (``None``: buffalo_l, then antelopev2).
        detector: dlib detector, ``"hog"`` or ``"cnn"``.
        detect_long_side: dlib: long side of the copy detection runs on.
        det_size: insightface: SCRFD input size.
        character_detector: ccip: a YOLO-style ONNX character detector, or ``None``.
    """

    name: BackendName
    model_root: Path | None = None
    pack: str | None = None
    detector: DlibDetector = "hog"
    detect_long_side: int = 1024
    det_size: int = 640
    character_detector: Path | None = None


def load_backend(
    name: BackendName,
    *,
    model_root: Path | None = None,
    pack: str | None = None,
    detector: DlibDetector = "hog",
    detect_long_side: int = 1024,
    det_size: int = 640,
    character_detector: Path | None = None,
) -> FaceBackend:
    """Load (or reuse) the named backend.

    Args:
        name: ``"dlib"`` (default backend; CC0 weights, commercial use allowed),
            ``"insightface"`` (stronger; non-commercial weights from a local pack) or
            ``"ccip"`` (drawn characters; a local CCIP model folder).
        model_root: see :class:`BackendSpec`.
        pack: see :class:`BackendSpec`.
        detector: see :class:`BackendSpec`.
        detect_long_side: see :class:`BackendSpec`.
        det_size: see :class:`BackendSpec`.
        character_detector: see :class:`BackendSpec`.

    Raises:
        InvalidParameter: an unknown backend name.
        BackendUnavailable: the backend is not installed (the message has the pip command)
            or its model files are missing (the message lists the folders looked in).
    """
    spec = BackendSpec(
        name=name,
        model_root=model_root,
        pack=pack,
        detector=detector,
        detect_long_side=detect_long_side,
        det_size=det_size,
        character_detector=character_detector,
    )
    return backend_from_spec(spec)


@functools.lru_cache(maxsize=8)
def backend_from_spec(spec: BackendSpec) -> FaceBackend:
    """Build the backend a spec describes, once per process."""
    if spec.name == "dlib":
        return DlibBackend(
            model_dir=spec.model_root,
            detector=spec.detector,
            detect_long_side=spec.detect_long_side,
        )
    if spec.name == "insightface":
        return InsightFaceBackend(
            model_root=spec.model_root or DEFAULT_INSIGHTFACE_ROOT,
            pack=spec.pack,
            det_size=spec.det_size,
        )
    if spec.name == "ccip":
        if spec.model_root is None:
            raise ModelFileMissing(
                "the ccip backend needs its model folder: set CHARSTUDIO_CCIP_MODEL_DIR to "
                f"the folder holding {', '.join(CCIP_FILES)} (charstudio downloads nothing)"
            )
        return CcipBackend(model_dir=spec.model_root, detector=spec.character_detector)
    raise InvalidParameter(
        f"unknown face backend {spec.name!r}; choose one of {', '.join(BACKEND_NAMES)}"
    )
