"""Soundness: is the image a usable picture at all?

Four checks, on the decoded pixels (luma = ITU-R BT.601, Pillow's "L"), with thresholds
measured on the test photographs (tests/data/faces, 8 portraits and a still life):

=========  ==================================================  =============================
check      fails when                                          measured
=========  ==================================================  =============================
black      every pixel's luma <= 8: an all-black frame, what    photos' max luma 255
           a NaN/inf in the VAE decodes to
blank      luma standard deviation < 6: one flat colour        photos 57-78; the same at a
           (grey/white frames, an empty canvas)                 quarter exposure still 14-20
exposure   too dark: mean luma < 40; blown out: >= 50 % of the  photos' mean 73-147; at 1/4
           subject's face pixels at luma >= 250 (without a      exposure 18-36. Face pixels
           face: mean luma > 240)                               clipped: photos 0 %, at 3x
                                                                exposure 60-88 %
blur       the face's sharpness (variance of the Laplacian on  photos 144-866; Gaussian blur
           the 128 px grey face crop, the dataset stage's       radius 3: 4-14
           measure, ``faces/quality.py``) under the dataset's
           ``blur_threshold`` (40)
=========  ==================================================  =============================

Exposure is judged on the face when there is one because the outfit template asks for a
white background: most of a good outfit image may be pure white, but its face must not be.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from charstudio.dataset.types import DatasetConfig
from charstudio.faces.base import RGBImage
from charstudio.faces.quality import crop_box
from charstudio.faces.types import DetectedFace
from charstudio.qc.types import CheckResult

__all__ = [
    "BLACK_MAX_LUMA",
    "BLANK_MAX_STD",
    "BLOWN_FACE_SHARE",
    "BLOWN_IMAGE_MEAN",
    "BLUR_THRESHOLD",
    "CLIPPED_LUMA",
    "DARK_MEAN",
    "check_soundness",
]

BLACK_MAX_LUMA = 8.0
BLANK_MAX_STD = 6.0
DARK_MEAN = 40.0
CLIPPED_LUMA = 250
BLOWN_FACE_SHARE = 0.5
BLOWN_IMAGE_MEAN = 240.0
# The dataset stage's threshold, read from its model (defaults are written once).
BLUR_THRESHOLD: float = DatasetConfig.model_fields["blur_threshold"].default
_PIXELS = "pixels"


def _entry(
    check: str,
    model: str,
    score: float | None,
    threshold: float,
    passed: bool | None,
    why: str,
    comparison: str = ">=",
) -> CheckResult:
    return CheckResult.model_validate(
        {
            "check": check,
            "scorer": _PIXELS if check != "blur" else "faces.quality",
            "model": model,
            "score": None if score is None else round(score, 4),
            "threshold": threshold,
            "comparison": comparison,
            "status": "not_checked" if passed is None else "pass" if passed else "fail",
            "reason": why,
        }
    )


def check_soundness(image: RGBImage, subject: DetectedFace | None) -> tuple[CheckResult, ...]:
    """The black, blank, exposure and blur checks of one image.

    Args:
        image: ``(height, width, 3)`` uint8 RGB.
        subject: the face standing for the image (blur and blown-out are judged on it);
            ``None`` when there is none.
    """
    luma = np.asarray(Image.fromarray(image).convert("L"), dtype=np.float32)
    top, spread, mean = float(luma.max()), float(luma.std()), float(luma.mean())
    black = _entry(
        "black",
        "max luma",
        top,
        BLACK_MAX_LUMA,
        top > BLACK_MAX_LUMA,
        "all black (what a NaN/inf decode gives)" if top <= BLACK_MAX_LUMA else "not black",
    )
    blank = _entry(
        "blank",
        "luma std",
        spread,
        BLANK_MAX_STD,
        spread >= BLANK_MAX_STD,
        f"near-uniform: luma varies by only {spread:.1f}"
        if spread < BLANK_MAX_STD
        else "has detail",
    )
    return black, blank, _exposure(image, mean, subject), _blur(subject)


def _exposure(image: RGBImage, mean: float, subject: DetectedFace | None) -> CheckResult:
    if mean < DARK_MEAN:
        return _entry(
            "exposure", "mean luma", mean, DARK_MEAN, False, f"too dark: mean luma {mean:.0f}"
        )
    if subject is None:
        blown = mean > BLOWN_IMAGE_MEAN
        why = f"blown out: mean luma {mean:.0f}" if blown else f"mean luma {mean:.0f}"
        return _entry("exposure", "mean luma", mean, BLOWN_IMAGE_MEAN, not blown, why, "<=")
    face = np.asarray(Image.fromarray(crop_box(image, subject.box)).convert("L"))
    share = float((face >= CLIPPED_LUMA).mean())
    blown = share >= BLOWN_FACE_SHARE
    why = (
        f"blown out: {share:.0%} of the face is clipped white"
        if blown
        else f"mean luma {mean:.0f}, {share:.0%} of the face clipped"
    )
    return _entry("exposure", "clipped face share", share, BLOWN_FACE_SHARE, not blown, why, "<=")


def _blur(subject: DetectedFace | None) -> CheckResult:
    if subject is None:
        return _entry(
            "blur", "laplacian variance", None, BLUR_THRESHOLD, None, "no face to measure"
        )
    sharp = subject.sharpness
    passed = sharp >= BLUR_THRESHOLD
    why = "face is sharp" if passed else f"face is blurred: sharpness {sharp:.0f}"
    return _entry("blur", "laplacian variance", sharp, BLUR_THRESHOLD, passed, why)
