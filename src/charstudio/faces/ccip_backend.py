"""The CCIP backend: identity of drawn (anime, illustration) characters via ONNX Runtime.

CCIP (Contrastive Anime Character Image Pre-Training, deepghs; OpenRAIL licence) is an
image -> feature model and a feature-pair -> difference model trained on anime characters.
dlib and InsightFace find no face on a drawn character; CCIP compares whole characters.

**The model folder**, as users keep it (charstudio never downloads it; point
``CHARSTUDIO_CCIP_MODEL_DIR`` at it)::

    <folder>/model_feat.onnx     input (N, 3, 384, 384) float32 -> output (N, D), D = 768
    <folder>/model_metrics.onnx  input (N, D) float32           -> output (N, N) differences
    <folder>/metrics.json        {"threshold": 0.178, ...}: same character at difference <= it

The folder's name is the model name (e.g. ``ccip-caformer-24-randaug-pruned``). Its authors
publish F1 0.917 at difference 0.178 for that model and F1 0.941 at 0.213 for
``ccip-caformer_b36-24``; charstudio's tests run stand-in models and do not measure this.

**Preprocessing**, exactly as the authors' library (``imgutils.metrics.ccip``) does it: RGB
(transparency over white), resized to 384x384 with bilinear filtering, scaled to [0, 1],
normalised per channel with CLIP's mean ``(0.48145466, 0.4578275, 0.40821073)`` and std
``(0.26862954, 0.26130258, 0.27577711)``, channels first.

**Score convention.** The metrics model's difference is lower for the same character. The
engine's scores are higher-is-alike, so a CCIP score is ``1 - difference`` (the metrics model
clips differences to [0, 1]) and the same-character threshold is ``1 - threshold`` of
``metrics.json``: difference 0.178 becomes score 0.822, and "score >= 0.822" is exactly the
authors' "difference <= 0.178". Scores come from the metrics model every time
(:meth:`CcipBackend.compare`), never from the cosine of the stored vectors; the feature
vectors are L2-normalised when stored, which the metrics model does itself as its first step.

**Several characters.** CCIP is trained on single-character images. With a character
detector (:mod:`charstudio.faces.character_detector`) each character is cut out and the
dominant one chosen, as faces are; without one, the whole image is one character.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from charstudio.errors import BackendError, InvalidParameter, ModelFileMissing
from charstudio.faces.base import RGBImage, Scores, check_compatible, check_rgb_image
from charstudio.faces.character_detector import CharacterDetector
from charstudio.faces.onnx_session import open_session
from charstudio.faces.quality import crop_box, face_brightness, face_sharpness
from charstudio.faces.types import DetectedFace, FaceBox, FaceEmbeddingVector

__all__ = [
    "CCIP_FILES",
    "CCIP_SIZE",
    "CLIP_MEAN",
    "CLIP_STD",
    "NO_DETECTOR_NOTE",
    "CcipBackend",
    "CcipFolder",
    "check_ccip_folder",
    "preprocess",
]

CCIP_FILES = ("model_feat.onnx", "model_metrics.onnx", "metrics.json")
CCIP_SIZE = 384
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
NO_DETECTOR_NOTE = (
    "no character detector set (CHARSTUDIO_CCIP_DETECTOR): each image is treated as one "
    "character, so an image with several characters is compared as a whole"
)


@dataclass(frozen=True)
class CcipFolder:
    """A checked CCIP model folder."""

    folder: Path
    feature: Path
    metrics: Path
    difference_threshold: float


def check_ccip_folder(folder: Path) -> CcipFolder:
    """Check that ``folder`` holds the three CCIP files and a usable threshold.

    Raises:
        ModelFileMissing: the folder or one of its files is missing (named).
        InvalidParameter: ``metrics.json`` is unreadable or has no ``threshold`` in (0, 1).
    """
    folder = folder.expanduser()
    if not folder.is_dir():
        raise ModelFileMissing(
            f"the CCIP model folder {folder} does not exist; set CHARSTUDIO_CCIP_MODEL_DIR to "
            f"a folder holding {', '.join(CCIP_FILES)}"
        )
    missing = [name for name in CCIP_FILES if not (folder / name).is_file()]
    if missing:
        raise ModelFileMissing(
            f"the CCIP model folder {folder} lacks {', '.join(missing)}; it must hold "
            f"{', '.join(CCIP_FILES)} (the model's ONNX files and its metrics.json)"
        )
    path = folder / "metrics.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidParameter(f"{path} is not readable JSON ({exc})") from exc
    raw = meta.get("threshold") if isinstance(meta, dict) else None
    if raw is None:
        raise InvalidParameter(
            f"{path} has no 'threshold': it must give the difference at or below which two "
            "images show the same character, as the CCIP model's own metrics.json does"
        )
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 < raw < 1.0:
        raise InvalidParameter(f"{path}: 'threshold' must be a number in (0, 1), got {raw!r}")
    return CcipFolder(folder, folder / CCIP_FILES[0], folder / CCIP_FILES[1], float(raw))


def preprocess(image: RGBImage, size: int = CCIP_SIZE) -> np.ndarray:
    """One RGB image as CCIP's feature model takes it: ``(3, size, size)`` float32.

    Resized with bilinear filtering, scaled to [0, 1], normalised with CLIP's mean and std.
    """
    resized = Image.fromarray(check_rgb_image(image)).resize(
        (size, size), Image.Resampling.BILINEAR
    )
    data = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
    mean = np.asarray(CLIP_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(CLIP_STD, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray((data - mean) / std, dtype=np.float32)


def _io(session: Any, path: Path, kind: str) -> tuple[list[Any], list[Any]]:
    """The model's one input and one output, both named as CCIP names them.

    Raises:
        InvalidParameter: other names, or more than one input.
    """
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if [i.name for i in inputs] != ["input"] or "output" not in [o.name for o in outputs]:
        found = [(i.name, i.shape) for i in inputs], [o.name for o in outputs]
        raise InvalidParameter(
            f"{path} is not a CCIP {kind} model: expected one input 'input' and an output "
            f"'output', found inputs {found[0]} and outputs {found[1]}"
        )
    output = next(o for o in outputs if o.name == "output")
    return list(inputs[0].shape), list(output.shape)


def _check_shapes(feat: Any, metrics: Any, files: CcipFolder) -> int:
    """The feature dimension, after checking both models' shapes against CCIP's.

    Raises:
        InvalidParameter: a shape other than CCIP's, with the shape found.
    """
    feat_in, feat_out = _io(feat, files.feature, "feature")
    if len(feat_in) != 4 or feat_in[1:] != [3, CCIP_SIZE, CCIP_SIZE]:
        raise InvalidParameter(
            f"{files.feature} takes input of shape {feat_in}; a CCIP feature model takes "
            f"(N, 3, {CCIP_SIZE}, {CCIP_SIZE})"
        )
    if len(feat_out) != 2 or not isinstance(feat_out[1], int):
        raise InvalidParameter(
            f"{files.feature} returns shape {feat_out}; a CCIP feature model returns (N, 768)"
        )
    dim = feat_out[1]
    met_in, met_out = _io(metrics, files.metrics, "metrics")
    if len(met_in) != 2 or met_in[1] != dim or len(met_out) != 2:
        raise InvalidParameter(
            f"{files.metrics} takes input of shape {met_in} and returns {met_out}; with "
            f"{files.feature.name}'s {dim}-D features it must take (N, {dim}) and return (N, N)"
        )
    return dim


class CcipBackend:
    """CCIP character identity from a local model folder (see the module docstring).

    Args:
        model_dir: the folder with ``model_feat.onnx``, ``model_metrics.onnx``, ``metrics.json``.
        detector: a YOLO-style ONNX character detector, or ``None`` (whole image).
        batch: images per feature-model run.
        providers: ONNX Runtime execution providers, in order of preference.

    Raises:
        ModelFileMissing: the folder, a file of it or the detector is missing (named).
        InvalidParameter: no usable threshold, a model whose names or shapes are not
            CCIP's (the shape found is named), or a detector without labels.
        BackendUnavailable: onnxruntime is not installed.
        BackendError: ONNX Runtime cannot load a file.
    """

    name = "ccip"
    subject = "character"

    def __init__(
        self,
        *,
        model_dir: Path,
        detector: Path | None = None,
        batch: int = 8,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        # 1. Validate the folder and its threshold.
        if batch < 1:
            raise InvalidParameter(f"batch must be at least 1, got {batch}")
        files = check_ccip_folder(model_dir)
        # 2. Load both models and check their interface.
        self._feat = open_session(files.feature, providers)
        self._metrics = open_session(files.metrics, providers)
        self.dim = _check_shapes(self._feat, self._metrics, files)
        # 3. The optional character detector.
        self.detector = CharacterDetector(detector, providers=providers) if detector else None
        self.model_dir = files.folder
        self.model_name = files.folder.name
        self.difference_threshold = files.difference_threshold
        self.threshold = 1.0 - files.difference_threshold
        self.batch = batch

    @property
    def note(self) -> str | None:
        """What a report should say about how characters were found, if anything."""
        return None if self.detector is not None else NO_DETECTOR_NOTE

    def detect(self, image: RGBImage) -> list[DetectedFace]:
        """The characters of an image: the detector's boxes, or the whole image.

        Raises:
            InvalidParameter: ``image`` is not an RGB uint8 array.
            BackendError: the detector failed.
        """
        image = check_rgb_image(image)
        height, width = image.shape[:2]
        if self.detector is None:
            found = [(FaceBox(0.0, 0.0, float(width), float(height)), 1.0)]
        else:
            found = [(c.box, c.score) for c in self.detector.detect(image)]
        return [
            DetectedFace(
                box=box,
                confidence=score,
                landmarks=(),
                keypoints=None,
                sharpness=face_sharpness(image, box),
                brightness=face_brightness(image, box),
                kind="character",
            )
            for box, score in found
        ]

    def embed(self, image: RGBImage, faces: Sequence[DetectedFace]) -> list[FaceEmbeddingVector]:
        """CCIP features of each character box, ``batch`` at a time.

        Raises:
            InvalidParameter: ``image`` is not an RGB uint8 array.
            BackendError: ONNX Runtime failed or returned the wrong shape.
        """
        image = check_rgb_image(image)
        crops = [preprocess(crop_box(image, face.box)) for face in faces]
        rows: list[np.ndarray] = []
        for start in range(0, len(crops), self.batch):
            chunk = np.stack(crops[start : start + self.batch])
            rows.extend(self._run(self._feat, chunk, (len(chunk), self.dim), "feature"))
        return [
            FaceEmbeddingVector.from_raw(backend=self.name, model=self.model_name, values=row)
            for row in rows
        ]

    def differences(self, vectors: Sequence[FaceEmbeddingVector]) -> Any:
        """The metrics model's ``(N, N)`` pairwise differences of ``vectors``.

        Raises:
            IncompatibleEmbeddings: a vector is not this backend's and model's.
            BackendError: ONNX Runtime failed or returned the wrong shape.
        """
        for vec in vectors:
            check_compatible(vec, self._probe)
        matrix = np.stack([v.vector for v in vectors]).astype(np.float32)
        return self._run(self._metrics, matrix, (len(vectors), len(vectors)), "metrics")

    def compare(self, a: Sequence[FaceEmbeddingVector], b: Sequence[FaceEmbeddingVector]) -> Scores:
        """Scores ``1 - difference`` of every vector of ``a`` against every one of ``b``.

        Raises:
            IncompatibleEmbeddings: a vector is not this backend's and model's.
            BackendError: ONNX Runtime failed.
        """
        if not a or not b:
            return np.zeros((len(a), len(b)), dtype=np.float64)
        diff = np.asarray(self.differences([*a, *b]), dtype=np.float64)
        scores: Scores = 1.0 - diff[: len(a), len(a) :]
        return scores

    @property
    def _probe(self) -> FaceEmbeddingVector:
        """A unit vector labelled as this backend's, for compatibility checks."""
        values = np.zeros(self.dim, dtype=np.float32)
        values[0] = 1.0
        return FaceEmbeddingVector(backend=self.name, model=self.model_name, vector=values)

    def _run(self, session: Any, data: np.ndarray, shape: tuple[int, int], kind: str) -> Any:
        try:
            (out,) = session.run(["output"], {"input": data})
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise BackendError(f"CCIP {kind} model {self.model_name} failed: {exc}") from exc
        out = np.asarray(out, dtype=np.float32)
        if out.shape != shape or not bool(np.isfinite(out).all()):
            raise BackendError(
                f"CCIP {kind} model {self.model_name} returned shape {out.shape}, expected "
                f"{shape}, or non-finite values; is {self.model_dir} a CCIP model folder?"
            )
        return out
