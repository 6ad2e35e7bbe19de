"""An optional detector of drawn characters: a YOLO-style ONNX model and its labels.

CCIP compares whole single-character images, so a picture with several characters needs
each one cut out first. charstudio reads the detection models deepghs publishes for anime
pictures (person / character detectors exported by ultralytics), as their own library
``imgutils.generic.yolo`` runs them:

- one image input (``images``, ``(1, 3, H, W)`` float32 RGB in [0, 1]), the image resized to
  the model's ``imgsz`` (ONNX metadata, default 640x640);
- one output: YOLOv8's ``(1, 4 + classes, boxes)`` (box centre, width, height and one score
  per class) with non-maximum suppression done here, or an end-to-end model's
  ``(1, boxes, 6)`` (``x0, y0, x1, y1, score, class``);
- the labels in the ONNX metadata ``names`` (ultralytics writes ``{0: 'person'}``). A file
  without labels is refused: it is not a detection model charstudio can read.

Every label counts as "a character"; boxes below ``conf_threshold`` are dropped.
charstudio never downloads the model: point ``CHARSTUDIO_CCIP_DETECTOR`` at the file.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from charstudio.errors import BackendError, InvalidParameter, ModelFileMissing
from charstudio.faces.base import RGBImage, check_rgb_image
from charstudio.faces.onnx_session import open_session
from charstudio.faces.types import FaceBox

__all__ = ["CharacterBox", "CharacterDetector", "check_detector_file", "read_labels"]

DEFAULT_IMGSZ = 640


@dataclass(frozen=True)
class CharacterBox:
    """One detected character: its box in original-image pixels, score and label."""

    box: FaceBox
    score: float
    label: str


def check_detector_file(path: Path) -> Path:
    """Check, without loading it, that the detector file is there and can be read: part of
    the check made before an extraction is queued (``registry.check_models``).

    Raises:
        ModelFileMissing: the file does not exist, cannot be read (a folder, no
            permission) or is empty; the message names it and ``CHARSTUDIO_CCIP_DETECTOR``.
    """
    path = path.expanduser()
    fix = (
        "set CHARSTUDIO_CCIP_DETECTOR to a YOLO .onnx file, or unset it to treat each image "
        "as one character"
    )
    if not path.exists():
        raise ModelFileMissing(f"the character detector {path} does not exist; {fix}")
    try:
        with path.open("rb") as handle:
            empty = not handle.read(1)
    except OSError as exc:
        raise ModelFileMissing(
            f"the character detector {path} cannot be read ({exc.strerror or exc}); {fix}"
        ) from exc
    if empty:
        raise ModelFileMissing(f"the character detector {path} is empty; {fix}")
    return path


def read_labels(metadata: dict[str, str], path: Path) -> list[str]:
    """The class labels from an ultralytics export's ``names`` metadata.

    Raises:
        InvalidParameter: no ``names`` entry, or one that is not ``{index: label}``.
    """
    raw = metadata.get("names")
    if raw is None:
        raise InvalidParameter(
            f"the character detector {path} has no labels (no 'names' in its ONNX metadata); "
            "use a YOLO detection model exported with its class names, as deepghs ships them"
        )
    try:
        names = ast.literal_eval(raw)
        labels = [str(names[i]) for i in range(len(names))]
    except (ValueError, SyntaxError, KeyError, TypeError) as exc:
        raise InvalidParameter(
            f"the character detector {path} has unreadable labels {raw[:80]!r} ({exc}); "
            "expected a dict like {0: 'person'}"
        ) from exc
    if not labels:
        raise InvalidParameter(f"the character detector {path} has an empty label list")
    return labels


def _nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best score first."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(int(best))
        kept = FaceBox(*(float(v) for v in boxes[best]))
        order = [
            i for i in order if kept.iou(FaceBox(*(float(v) for v in boxes[i]))) <= iou_threshold
        ]
    return keep


class CharacterDetector:
    """A YOLO-style ONNX detector of drawn characters.

    Args:
        path: the ``.onnx`` file.
        conf_threshold: lowest score kept.
        iou_threshold: overlap above which the weaker of two boxes is dropped.
        providers: ONNX Runtime execution providers, in order of preference.

    Raises:
        ModelFileMissing: the file is not there or cannot be read.
        InvalidParameter: it has no labels, or not one image input.
        BackendError: ONNX Runtime cannot load it.
    """

    def __init__(
        self,
        path: Path,
        *,
        conf_threshold: float = 0.25,
        iou_threshold: float = 0.7,
        providers: Sequence[str] = ("CPUExecutionProvider",),
    ) -> None:
        path = check_detector_file(path)
        self.path = path
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self._session = open_session(path, providers)
        metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        self.labels = read_labels(metadata, path)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            found = [(i.name, i.shape) for i in inputs]
            raise InvalidParameter(
                f"the character detector {path} must take one (1, 3, H, W) image, found {found}"
            )
        self._input = inputs[0].name
        self.size = _imgsz(metadata, path)

    def detect(self, image: RGBImage) -> list[CharacterBox]:
        """Characters in an upright RGB image, best score first.

        Raises:
            InvalidParameter: not an RGB uint8 array.
            BackendError: ONNX Runtime failed or the output is not a YOLO output.
        """
        image = check_rgb_image(image)
        height, width = image.shape[:2]
        in_h, in_w = self.size
        resized = Image.fromarray(image).resize((in_w, in_h), Image.Resampling.BICUBIC)
        data = (np.asarray(resized, np.float32) / 255.0).transpose(2, 0, 1)[None]
        try:
            (output,) = self._session.run(None, {self._input: np.ascontiguousarray(data)})[:1]
        except Exception as exc:  # onnxruntime raises its own untyped exceptions
            raise BackendError(f"character detection with {self.path.name} failed: {exc}") from exc
        boxes, scores, classes = self._decode(np.asarray(output, np.float32))
        keep = _nms(boxes, scores, self.iou_threshold) if len(scores) else []
        sx, sy = width / in_w, height / in_h
        found = []
        for i in keep:
            x0, y0, x1, y1 = (float(v) for v in boxes[i])
            box = FaceBox(x0 * sx, y0 * sy, x1 * sx, y1 * sy).clipped(width, height)
            if box.area > 0:
                found.append(CharacterBox(box, float(scores[i]), self.labels[int(classes[i])]))
        return found

    def _decode(self, output: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(xyxy boxes, scores, class indices)`` above the confidence threshold."""
        rows = output[0] if output.ndim == 3 else output
        if rows.ndim == 2 and rows.shape[-1] == 6 and rows.shape[0] != 4 + len(self.labels):
            kept = rows[rows[:, 4] > self.conf_threshold]  # end-to-end: x0 y0 x1 y1 s c
            return kept[:, :4], kept[:, 4], kept[:, 5].astype(np.int64)
        if rows.ndim != 2 or rows.shape[0] != 4 + len(self.labels):
            raise BackendError(
                f"{self.path.name} returned shape {output.shape}, not a YOLO output for "
                f"{len(self.labels)} labels ((1, {4 + len(self.labels)}, boxes) expected)"
            )
        class_scores = rows[4:, :]
        best = class_scores.max(axis=0)
        cols = rows[:, best > self.conf_threshold]
        cx, cy, w, h = cols[0], cols[1], cols[2], cols[3]
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        return xyxy, cols[4:, :].max(axis=0), cols[4:, :].argmax(axis=0)


def _imgsz(metadata: dict[str, Any], path: Path) -> tuple[int, int]:
    """The model's input ``(height, width)`` from its ``imgsz`` metadata (default 640)."""
    raw = metadata.get("imgsz")
    if raw is None:
        return DEFAULT_IMGSZ, DEFAULT_IMGSZ
    try:
        size = json.loads(raw)
        height, width = (int(v) for v in size)
    except (ValueError, TypeError) as exc:
        raise InvalidParameter(
            f"the character detector {path} has an unreadable imgsz {raw!r}; expected [H, W]"
        ) from exc
    return height, width
