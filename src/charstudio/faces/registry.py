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
from charstudio.faces.ccip_backend import CCIP_FILES, CcipBackend, check_ccip_folder
from charstudio.faces.character_detector import check_detector_file
from charstudio.faces.dlib_backend import DlibBackend, DlibDetector, find_dlib_models
from charstudio.faces.insightface_backend import InsightFaceBackend, find_pack
from charstudio.faces.types import BackendName

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_INSIGHTFACE_ROOT",
    "BackendSpec",
    "check_models",
    "load_backend",
]

BACKEND_NAMES: tuple[BackendName, ...] = ("dlib", "insightface", "ccip")
DEFAULT_INSIGHTFACE_ROOT = Path("~/.insightface")
"""Where InsightFace itself keeps packs (``~/.insightface/models/<pack>``)."""


@dataclass(frozen=True)
class BackendSpec:
    """Everything needed to build a backend; hashable and picklable.

    Attributes:
        name: ``"dlib"``, ``"insightface"`` or ``"ccip"``.
        model_root: dlib: folder of ``.dat`` files (``CHARSTUDIO_DLIB_MODEL_DIR``; default:
            the installed face-recognition-models); insightface: pack root
            (``CHARSTUDIO_INSIGHTFACE_ROOT``; default ``~/.insightface``); ccip: the model
            folder (required: ``CHARSTUDIO_CCIP_MODEL_DIR``).
        pack: insightface pack name (``None``: buffalo_l, then antelopev2).
        detector: dlib detector, ``"hog"`` or ``"cnn"``.
        detect_long_side: dlib: long side of the copy detection runs on.
        det_size: insightface: SCRFD input size.
        character_detector: ccip: a YOLO-style ONNX character detector
            (``CHARSTUDIO_CCIP_DETECTOR``), or ``None``.
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


def check_models(spec: BackendSpec) -> None:
    """Check, without loading anything, that the backend's model files are where its
    settings say: the first step of loading it, and what the CLI, the API and the studio
    check before they queue an extraction (so each refuses with the same message).

    Raises:
        InvalidParameter: an unknown backend name; a CCIP ``metrics.json`` without a usable
            ``threshold``.
        ModelFileMissing: ccip: no model folder set (the message names
            ``CHARSTUDIO_CCIP_MODEL_DIR``), the folder or one of its files is missing, or
            the optional character detector file is missing, unreadable or empty (named,
            with ``CHARSTUDIO_CCIP_DETECTOR``).
        BackendUnavailable: dlib's weights or an InsightFace pack are not found (the message
            says where it looked, how to install them and, for InsightFace, to set
            ``CHARSTUDIO_INSIGHTFACE_ROOT``).
    """
    if spec.name == "dlib":
        find_dlib_models(spec.model_root, spec.detector)
    elif spec.name == "insightface":
        find_pack(spec.model_root or DEFAULT_INSIGHTFACE_ROOT, spec.pack)
    elif spec.name == "ccip":
        if spec.model_root is None:
            raise ModelFileMissing(
                "the ccip backend needs its model folder: set CHARSTUDIO_CCIP_MODEL_DIR to "
                f"the folder holding {', '.join(CCIP_FILES)} (charstudio downloads nothing)"
            )
        check_ccip_folder(spec.model_root)
        if spec.character_detector is not None:
            check_detector_file(spec.character_detector)
    else:
        raise InvalidParameter(
            f"unknown face backend {spec.name!r}; choose one of {', '.join(BACKEND_NAMES)}"
        )


@functools.lru_cache(maxsize=8)
def backend_from_spec(spec: BackendSpec) -> FaceBackend:
    """Build the backend a spec describes, once per process (after :func:`check_models`)."""
    check_models(spec)
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
    assert spec.model_root is not None  # ccip: check_models refuses a spec without one
    return CcipBackend(model_dir=spec.model_root, detector=spec.character_detector)
