"""The InsightFace backend: SCRFD detection and ArcFace 512-D embeddings via ONNX Runtime.

**Licence: InsightFace's code is MIT, but all its pretrained model packs (buffalo_l,
antelopev2, ...) are licensed for non-commercial research use only.** charstudio never
downloads them; point it at a pack folder you are entitled to use. The default backend,
dlib, has no such restriction.

Model packs are read from a local folder, in any of these layouts (``root`` is what the
user passes; ComfyUI's ``models/insightface`` works as is)::

    <root>/models/<pack>/det_10g.onnx  w600k_r50.onnx    (ComfyUI, ~/.insightface)
    <root>/<pack>/...                                    (a folder of packs)
    <root>/...                                           (the pack folder itself)

Detection: ``det_10g.onnx`` (buffalo_l) or ``scrfd_10g_bnkps.onnx`` (antelopev2).
Recognition: ``w600k_r50.onnx`` (buffalo_l) or ``glintr100.onnx`` (antelopev2). Both are
loaded through InsightFace's own ``model_zoo.get_model``, which routes an ONNX file to its
SCRFD or ArcFace wrapper by its inputs and outputs. SCRFD resizes each image to
``det_size`` internally and maps boxes back, so detection always runs on a small copy.

Threshold: **0.40** cosine similarity, the "same person" boundary InsightFace 2.1 itself
uses for buffalo_l verification (0.35-0.40 it calls uncertain). No real pack can be
downloaded on the machines charstudio is tested on, so this value is taken from InsightFace,
not re-measured here.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from charstudio.errors import BackendError, BackendUnavailable, InvalidParameter
from charstudio.faces.base import RGBImage, check_rgb_image
from charstudio.faces.quality import face_brightness, face_sharpness
from charstudio.faces.types import DetectedFace, FaceBox, FaceEmbeddingVector, FaceKeypoints

__all__ = [
    "DETECTION_FILES",
    "INSIGHTFACE_INSTALL",
    "INSIGHTFACE_SAME_PERSON_COSINE",
    "KNOWN_PACKS",
    "RECOGNITION_FILES",
    "InsightFaceBackend",
    "find_pack",
]

INSIGHTFACE_INSTALL = "pip install insightface==2.1 onnxruntime==1.32.0"
INSIGHTFACE_SAME_PERSON_COSINE = 0.40
KNOWN_PACKS = ("buffalo_l", "antelopev2")
DETECTION_FILES = ("det_10g.onnx", "scrfd_10g_bnkps.onnx")
RECOGNITION_FILES = ("w600k_r50.onnx", "glintr100.onnx")


def _pack_candidates(root: Path, pack: str | None) -> list[Path]:
    packs = [pack] if pack else list(KNOWN_PACKS)
    folders: list[Path] = []
    for name in packs:
        folders += [root / "models" / name, root / name]
    folders.append(root)
    return folders


def find_pack(root: Path, pack: str | None = None) -> tuple[Path, Path, Path]:
    """Locate a pack's detection and recognition files under ``root``.

    Args:
        root: a pack folder, a folder of packs, or a folder with ``models/<pack>``.
        pack: the pack name; ``None`` tries buffalo_l, then antelopev2.

    Returns:
        ``(pack_folder, detection_file, recognition_file)``.

    Raises:
        BackendUnavailable: no folder looked in holds both files; the message lists them.
    """
    looked: list[str] = []
    for folder in _pack_candidates(root.expanduser(), pack):
        looked.append(str(folder))
        det = next((folder / n for n in DETECTION_FILES if (folder / n).is_file()), None)
        rec = next((folder / n for n in RECOGNITION_FILES if (folder / n).is_file()), None)
        if det is not None and rec is not None:
            return folder, det, rec
    raise BackendUnavailable(
        f"no InsightFace model pack found: looked for one of {', '.join(DETECTION_FILES)} "
        f"and one of {', '.join(RECOGNITION_FILES)} in {'; '.join(looked)}. Unzip buffalo_l "
        "or antelopev2 there, or set CHARSTUDIO_INSIGHTFACE_ROOT to the folder that holds "
        "your pack (e.g. ComfyUI's models/insightface; default ~/.insightface); note these "
        "weights are for non-commercial use only"
    )


def _import_model_zoo() -> tuple[Any, Any]:
    try:
        # import_module keeps mypy off insightface, which ships no type information.
        model_zoo = importlib.import_module("insightface.model_zoo.model_zoo")
        face_align = importlib.import_module("insightface.utils.face_align")
    except ImportError as exc:
        raise BackendUnavailable(
            f"the insightface face backend is not installed; install it with: {INSIGHTFACE_INSTALL}"
        ) from exc
    return model_zoo, face_align


class InsightFaceBackend:
    """SCRFD + ArcFace from a local InsightFace model pack (non-commercial weights).

    Args:
        model_root: where to look for the pack (see the module docstring).
        pack: pack name, or ``None`` for buffalo_l then antelopev2.
        det_size: square input size SCRFD runs at.
        det_thresh: detection score threshold.
        providers: ONNX Runtime execution providers, in order of preference.

    Raises:
        BackendUnavailable: insightface is not installed or no pack is found.
        BackendError: a file is not the detector or recognizer it is named as.
    """

    name = "insightface"
    dim = 512
    threshold = INSIGHTFACE_SAME_PERSON_COSINE

    def __init__(
        self,
        *,
        model_root: Path,
        pack: str | None = None,
        det_size: int = 640,
        det_thresh: float = 0.5,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        # 1. Validate settings.
        if det_size < 64 or det_size % 32:
            raise InvalidParameter(f"det_size must be a multiple of 32, >= 64; got {det_size}")
        if not 0.0 < det_thresh < 1.0:
            raise InvalidParameter(f"det_thresh must be between 0 and 1, got {det_thresh}")
        # 2. Find and load the pack through InsightFace's model zoo.
        folder, det_file, rec_file = find_pack(model_root, pack)
        model_zoo, self._face_align = _import_model_zoo()
        try:
            self._det = model_zoo.get_model(str(det_file), providers=list(providers))
            self._rec = model_zoo.get_model(str(rec_file), providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise BackendError(f"cannot load InsightFace pack {folder}: {exc}") from exc
        for model, file, task in (
            (self._det, det_file, "detection"),
            (self._rec, rec_file, "recognition"),
        ):
            if getattr(model, "taskname", None) != task:
                raise BackendError(
                    f"{file} is not an InsightFace {task} model (InsightFace routed it to "
                    f"{getattr(model, 'taskname', 'nothing')}); replace it with the pack's file"
                )
        # 3. Prepare: ctx_id -1 would force CPU; the providers list already decides.
        self._det.prepare(0, input_size=(det_size, det_size), det_thresh=det_thresh)
        self._rec.prepare(0)
        self.pack_dir = folder
        self.model_name = f"{folder.name}/{rec_file.stem}"

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """Find faces with SCRFD; 5 keypoints each.

        Raises:
            InvalidParameter: ``image`` is not an RGB uint8 array.
            BackendError: ONNX Runtime failed.
        """
        image = check_rgb_image(image)
        height, width = image.shape[:2]
        bgr = np.ascontiguousarray(image[:, :, ::-1])  # InsightFace works in OpenCV's BGR
        try:
            bboxes, kpss = self._det.detect(bgr, max_num=0)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise BackendError(f"InsightFace detection failed: {exc}") from exc
        faces = []
        for i in range(bboxes.shape[0]):
            x0, y0, x1, y1, score = (float(v) for v in bboxes[i])
            box = FaceBox(x0, y0, x1, y1).clipped(width, height)
            if box.area <= 0 or kpss is None:
                continue
            points = tuple((float(x), float(y)) for x, y in kpss[i])
            faces.append(
                DetectedFace(
                    box=box,
                    confidence=score,
                    landmarks=points,
                    # SCRFD order: eye on image-left, eye on image-right, nose, mouth x2.
                    keypoints=FaceKeypoints(
                        left_eye=points[0], right_eye=points[1], nose=points[2]
                    ),
                    sharpness=face_sharpness(image, box),
                    brightness=face_brightness(image, box),
                )
            )
        return faces

    def embed(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[FaceEmbeddingVector]:
        """Align each face on its 5 keypoints and embed all of them in one batch.

        Raises:
            InvalidParameter: bad image, or a face without 5 landmarks.
            BackendError: ONNX Runtime failed or returned the wrong shape.
        """
        image = check_rgb_image(image)
        if not faces:
            return []
        bgr = np.ascontiguousarray(image[:, :, ::-1])
        size = int(self._rec.input_size[0])
        crops = []
        for face in faces:
            if len(face.landmarks) != 5:
                raise InvalidParameter(
                    f"InsightFace aligns on 5 landmarks, got {len(face.landmarks)}; "
                    "detect the faces with the insightface backend"
                )
            kps = np.asarray(face.landmarks, dtype=np.float32)
            with warnings.catch_warnings():
                # insightface 2.1's norm_crop calls SimilarityTransform.estimate, which
                # scikit-image 0.26 deprecates; the result is unchanged.
                warnings.filterwarnings(
                    "ignore", message=".*estimate.*deprecated", category=FutureWarning
                )
                crops.append(self._face_align.norm_crop(bgr, landmark=kps, image_size=size))
        try:
            feats = np.asarray(self._rec.get_feat(crops), dtype=np.float64)
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise BackendError(f"InsightFace embedding failed: {exc}") from exc
        if feats.shape != (len(faces), self.dim):
            raise BackendError(
                f"{self.model_name} returned embeddings of shape {feats.shape}, expected "
                f"({len(faces)}, {self.dim}); is this a 512-D ArcFace model?"
            )
        return [
            FaceEmbeddingVector.from_raw(backend=self.name, model=self.model_name, values=row)
            for row in feats
        ]
