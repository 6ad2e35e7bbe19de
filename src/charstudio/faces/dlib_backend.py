"""The default face backend: dlib's detectors and ResNet face recognition model.

Weights come from the ``face-recognition-models`` package (CC0; dlib's models are free for
commercial use). That package's ``__init__`` imports ``pkg_resources``, which current
setuptools no longer ships, so the ``.dat`` files are found by path without importing it.

Pipeline, for one image:

1. **Detect on a resized copy.** The image is scaled so its long side is
   ``detect_long_side`` pixels (never up by more than ``max_upsample``); HOG (default) or
   the MMOD CNN runs on that copy with no further upsampling, and boxes are scaled back.
   dlib's detectors find faces from about 80 px in the image they see, so at the defaults
   faces smaller than ~8 % of the long side are not looked for.
2. **Landmarks on the original.** The 5-point shape predictor runs on the full-size image.
3. **Embed in a batch.** ``get_face_chips`` aligns 150x150 chips (padding 0.25, as dlib's
   recognition model was trained) and ``compute_face_descriptor`` embeds the whole list.

Threshold: dlib's model was trained so that two descriptors closer than 0.6 (Euclidean) are
the same person (LFW 99.38 %). Descriptors are not unit length (norm ~1.40, measured
1.37-1.46 on our test photographs), so on normalised vectors that boundary is a cosine
similarity of ``1 - 0.6**2 / (2 * 1.40**2) = 0.908``; we use **0.91**. Checked on the test
photographs (tests/data/faces): same person 0.948-0.973, different people 0.804-0.883.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from charstudio.errors import BackendError, BackendUnavailable, InvalidParameter
from charstudio.faces.base import RGBImage, check_rgb_image
from charstudio.faces.quality import face_brightness, face_sharpness
from charstudio.faces.types import DetectedFace, FaceBox, FaceEmbeddingVector, FaceKeypoints

__all__ = [
    "DLIB_INSTALL",
    "DLIB_MODEL_FILES",
    "DLIB_SAME_PERSON_COSINE",
    "DlibBackend",
    "DlibDetector",
    "default_dlib_model_dir",
    "find_dlib_models",
]

DlibDetector = Literal["hog", "cnn"]

DLIB_INSTALL = "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
DLIB_SAME_PERSON_COSINE = 0.91
DLIB_MODEL_FILES = {
    "cnn": "mmod_human_face_detector.dat",
    "shape": "shape_predictor_5_face_landmarks.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}
_CHIP_SIZE = 150  # the recognition model's input size
_CHIP_PADDING = 0.25  # the padding dlib's recognition examples align with
_MIN_DETECT_SIDE = 20  # below this the detectors cannot hold their 80 px window at all


def default_dlib_model_dir() -> Path | None:
    """The ``models`` folder of the installed ``face_recognition_models``, or ``None``.

    Found through the import system's spec, without running the package's ``__init__``.
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def find_dlib_models(model_dir: Path | None, detector: DlibDetector = "hog") -> Path:
    """The folder holding the ``.dat`` files ``detector`` needs (``None``: the installed
    face-recognition-models); nothing is loaded.

    Raises:
        BackendUnavailable: the weights are not installed, or a file is missing (named).
    """
    folder = model_dir if model_dir is not None else default_dlib_model_dir()
    if folder is None:
        raise BackendUnavailable(
            "the dlib face backend needs the weights in face-recognition-models; "
            f"install them with: {DLIB_INSTALL}"
        )
    needed = ["shape", "recognition"] + (["cnn"] if detector == "cnn" else [])
    missing = [DLIB_MODEL_FILES[k] for k in needed if not (folder / DLIB_MODEL_FILES[k]).is_file()]
    if missing:
        raise BackendUnavailable(
            f"dlib model files {', '.join(missing)} not found in {folder}; "
            f"install them with: {DLIB_INSTALL}, or set CHARSTUDIO_DLIB_MODEL_DIR to the "
            "folder that holds them"
        )
    return folder


def _import_dlib() -> Any:
    try:
        # import_module keeps mypy off dlib, which ships no type information.
        dlib = importlib.import_module("dlib")
    except ImportError as exc:
        raise BackendUnavailable(
            f"the dlib face backend needs dlib; install it with: {DLIB_INSTALL}"
        ) from exc
    return dlib


class DlibBackend:
    """dlib HOG/CNN detection, 5-point landmarks and 128-D ResNet embeddings.

    Args:
        model_dir: folder holding the ``.dat`` files; defaults to the installed
            ``face_recognition_models`` package's ``models`` folder.
        detector: ``"hog"`` (fast, frontal faces) or ``"cnn"`` (MMOD; finds more poses,
            about 15x slower on CPU).
        detect_long_side: long side, in pixels, of the copy the detector runs on.
        max_upsample: the most the copy may be enlarged (small images).
        min_confidence: detections scoring below this are dropped. HOG scores are SVM
            margins: true faces in our photographs score 1.1-1.5, a false positive on the
            astronaut photograph 0.12. CNN confidences of real faces are ~1.0.

    Raises:
        BackendUnavailable: dlib is not installed or a model file is missing.
        InvalidParameter: a setting out of range.
    """

    name = "dlib"
    model_name = "dlib_face_recognition_resnet_model_v1"
    dim = 128
    threshold = DLIB_SAME_PERSON_COSINE

    def __init__(
        self,
        *,
        model_dir: Path | None = None,
        detector: DlibDetector = "hog",
        detect_long_side: int = 1024,
        max_upsample: float = 2.0,
        min_confidence: float = 0.3,
    ) -> None:
        # 1. Validate settings.
        if detector not in ("hog", "cnn"):
            raise InvalidParameter(f"detector must be 'hog' or 'cnn', got {detector!r}")
        if detect_long_side < 80:
            raise InvalidParameter(
                f"detect_long_side must be at least 80 pixels (dlib's detection window), "
                f"got {detect_long_side}"
            )
        if not 1.0 <= max_upsample <= 4.0:
            raise InvalidParameter(f"max_upsample must be within 1-4, got {max_upsample}")
        self.detector = detector
        self.detect_long_side = detect_long_side
        self.max_upsample = max_upsample
        self.min_confidence = min_confidence
        # 2. Find the weights.
        dlib = _import_dlib()
        folder = find_dlib_models(model_dir, detector)
        self.model_dir = folder
        # 3. Load the models.
        self._dlib = dlib
        try:
            self._shape = dlib.shape_predictor(str(folder / DLIB_MODEL_FILES["shape"]))
            self._recognizer = dlib.face_recognition_model_v1(
                str(folder / DLIB_MODEL_FILES["recognition"])
            )
            if detector == "cnn":
                self._cnn = dlib.cnn_face_detection_model_v1(str(folder / DLIB_MODEL_FILES["cnn"]))
            else:
                self._hog = dlib.get_frontal_face_detector()
        except RuntimeError as exc:
            raise BackendUnavailable(
                f"cannot load the dlib models in {folder} ({exc}); reinstall with: {DLIB_INSTALL}"
            ) from exc

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """Find faces; see the module docstring for the scaling rule.

        Raises:
            InvalidParameter: ``image`` is not an RGB uint8 array.
            BackendError: dlib failed.
        """
        image = check_rgb_image(image)
        height, width = image.shape[:2]
        if min(height, width) < _MIN_DETECT_SIDE:
            return []
        scale = min(self.detect_long_side / max(height, width), self.max_upsample)
        small = image
        if abs(scale - 1.0) > 1e-3:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
        try:
            found = self._run_detector(small)
        except RuntimeError as exc:
            raise BackendError(f"dlib face detection failed: {exc}") from exc
        faces = []
        for rect, confidence in found:
            if confidence < self.min_confidence:
                continue
            box = FaceBox(rect.left(), rect.top(), rect.right() + 1, rect.bottom() + 1)
            box = box.scaled(1.0 / scale).clipped(width, height)
            if box.area <= 0:
                continue
            faces.append(self._describe(image, box, confidence))
        return faces

    def _run_detector(self, small: RGBImage) -> list[tuple[Any, float]]:
        if self.detector == "cnn":
            return [(d.rect, float(d.confidence)) for d in self._cnn(small, 0)]
        rects, scores, _ = self._hog.run(small, 0, 0.0)
        return list(zip(rects, (float(s) for s in scores), strict=True))

    def _describe(self, image: RGBImage, box: FaceBox, confidence: float) -> DetectedFace:
        shape = self._shape(image, self._rect(box))
        points = tuple((float(p.x), float(p.y)) for p in shape.parts())
        return DetectedFace(
            box=box,
            confidence=confidence,
            landmarks=points,
            keypoints=keypoints_from_dlib5(points),
            sharpness=face_sharpness(image, box),
            brightness=face_brightness(image, box),
        )

    def _rect(self, box: FaceBox) -> Any:
        return self._dlib.rectangle(
            round(box.x0), round(box.y0), round(box.x1) - 1, round(box.y1) - 1
        )

    def embed(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[FaceEmbeddingVector]:
        """Align and embed ``faces`` in one ``compute_face_descriptor`` batch.

        Raises:
            InvalidParameter: ``image`` is not an RGB uint8 array, or a face has no
                5-point landmarks.
            BackendError: dlib failed.
        """
        image = check_rgb_image(image)
        if not faces:
            return []
        dlib = self._dlib
        shapes = dlib.full_object_detections()
        for face in faces:
            if len(face.landmarks) != 5:
                raise InvalidParameter(
                    f"dlib embeds faces with 5 landmarks, got {len(face.landmarks)}; "
                    "detect the faces with the dlib backend"
                )
            parts = dlib.points([dlib.point(round(x), round(y)) for x, y in face.landmarks])
            shapes.append(dlib.full_object_detection(self._rect(face.box), parts))
        try:
            chips = dlib.get_face_chips(image, shapes, size=_CHIP_SIZE, padding=_CHIP_PADDING)
            descriptors = self._recognizer.compute_face_descriptor(list(chips))
        except RuntimeError as exc:
            raise BackendError(f"dlib face embedding failed: {exc}") from exc
        return [
            FaceEmbeddingVector.from_raw(
                backend=self.name, model=self.model_name, values=np.asarray(d, dtype=np.float64)
            )
            for d in descriptors
        ]


def keypoints_from_dlib5(points: Sequence[tuple[float, float]]) -> FaceKeypoints:
    """Eye centres and nose from dlib's 5-point model.

    Its parts are: 0-1 the two corners of the eye on the image's right, 2-3 the two corners
    of the eye on the image's left, 4 the base of the nose (dlib's
    ``shape_predictor_5_face_landmarks`` documentation).
    """
    right = ((points[0][0] + points[1][0]) / 2.0, (points[0][1] + points[1][1]) / 2.0)
    left = ((points[2][0] + points[3][0]) / 2.0, (points[2][1] + points[3][1]) / 2.0)
    return FaceKeypoints(left_eye=left, right_eye=right, nose=points[4])
