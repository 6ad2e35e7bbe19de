"""Is a pose image an OpenPose skeleton render or a photo of a person?

The pose variation conditions an OpenPose ControlNet on a skeleton. A skeleton render can go
to the ControlNet as it is; a photo first needs comfyui_controlnet_aux's
``OpenposePreprocessor``, which downloads ``lllyasviel/Annotators`` weights on first use and
so fails on a server without internet. :func:`classify_pose` tells the two apart before
anything is queued.

The rule (figures measured on a copy whose long side is at most 768 px, shrunk with
nearest-neighbour so no colour is blended):

- **near black**: a pixel whose brightest channel is at most 40 (JPEG ringing around the
  limbs stays below that). ``dark_share`` is the share of such pixels, ``ink`` the rest.
- **strongly coloured**: an ink pixel whose HSV saturation, ``(max - min) / max``, is at
  least 0.5. ``saturated_share`` is their share of the ink.
- **hues**: how many of 18 hue bins (20 degrees each, the spacing of OpenPose's 18-colour
  limb palette) hold at least 1 % of the strongly coloured ink.
- **spread**: the largest standard deviation of the R, G or B channel.

An image is an **OpenPose skeleton** when ``dark_share >= 0.75``, ``ink >= 0.1 %``,
``saturated_share >= 0.8`` and ``hues >= 3``. Otherwise it is a **photo** when its
``spread >= 4`` (not one flat colour) and the face detector finds at least one face in it.
Anything else is refused with :class:`~charstudio.errors.InvalidParameter` saying why.

Measured with :func:`measure_pose` on 144 skeleton images drawn by
``tests/backends/pose_images.py`` the way ``draw_bodypose`` renders them (black canvas,
17 limbs as ellipses 8 px across at 60 % of the palette colour, 18 joints as radius-4
circles): four single poses, two and three people, at 256x384, 512x512, 512x768,
768x512, 1024x1536 and 2048x2048, each as PNG and as JPEG quality 90, 60 and 30; and on the
eight photographs in ``tests/data/faces`` and the demo's bundled samples:

=====================================  ===========  ==========  ===============  =====  ======
images                                 dark_share   ink         saturated_share  hues   spread
=====================================  ===========  ==========  ===============  =====  ======
skeletons, PNG and JPEG (144)          0.871-0.996  0.4-12.9 %  0.992-1.000      8-18   8.6-47
portraits (7 files, 4 people)          0.106-0.388  61-89 %     0.080-0.586      4-6    71-86
coffee.jpg (a cup, no person)          0.097        90 %        0.847            2      63
random colour noise, 512x512           0.004        99.6 %      0.754            18     74
black, white or one flat colour        1.0 or 0     0 or 100 %  0 or 1           0-1    0
=====================================  ===========  ==========  ===============  =====  ======

Every skeleton clears the 0.75 dark share by at least 0.12 and the 0.8 saturation by 0.19;
the darkest portrait (hopper.jpg, 0.388) is 0.36 short of it. Limbs three times as thick
(``stickwidth`` 12, as ``scale_stick_for_xinsr_cn`` draws on large canvases) with three
people on 256x384 still measure 0.765. dlib's HOG detector finds exactly one face in each
portrait (scores 1.01-2.25) and none in the coffee photo or the noise.

``kind="skeleton"`` or ``kind="photo"`` skips the rule (the image must still decode): a
forced skeleton is not checked for a person, a forced photo is not checked for a face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, NoReturn, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps, UnidentifiedImageError

from charstudio.errors import InvalidParameter, NotFound, UnsupportedImage
from charstudio.faces.base import RGBImage
from charstudio.faces.types import DetectedFace

__all__ = [
    "DARK_LEVEL",
    "MIN_DARK_SHARE",
    "MIN_HUES",
    "MIN_INK_SHARE",
    "MIN_SATURATED_SHARE",
    "MIN_SPREAD",
    "FaceDetector",
    "PoseFigures",
    "PoseInput",
    "PoseKind",
    "PoseKindChoice",
    "classify_pose",
    "measure_pose",
]

PoseKind = Literal["skeleton", "photo"]
PoseKindChoice = Literal["auto", "skeleton", "photo"]

DARK_LEVEL = 40
"""A pixel whose brightest channel is at most this is near black."""
MIN_DARK_SHARE = 0.75
"""A skeleton is at least this share near black (measured 0.886-0.996; photos <= 0.388)."""
MIN_INK_SHARE = 0.001
"""A skeleton has at least this share drawn on (measured >= 0.004); less is a blank image."""
SATURATION = 0.5
"""HSV saturation from which an ink pixel counts as strongly coloured."""
MIN_SATURATED_SHARE = 0.8
"""A skeleton's ink is at least this share strongly coloured (measured >= 0.991)."""
MIN_HUES = 3
"""A skeleton's coloured ink covers at least this many 20-degree hue bins (measured 8-18)."""
HUE_BINS = 18
HUE_BIN_SHARE = 0.01
MIN_SPREAD = 4.0
"""Below this largest channel standard deviation an image is one flat colour."""
MEASURE_SIDE = 768


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces, e.g. a :class:`~charstudio.faces.base.FaceBackend`."""

    def detect(self, image: RGBImage) -> Sequence[DetectedFace]:
        """Faces in an upright ``(height, width, 3)`` uint8 RGB image."""
        ...


@dataclass(frozen=True)
class PoseFigures:
    """What :func:`classify_pose` measured (see the module docstring).

    Attributes:
        width: Image width in pixels.
        height: Image height in pixels.
        dark_share: Share of pixels whose brightest channel is at most 40.
        ink_share: ``1 - dark_share``.
        saturated_share: Share of the ink with HSV saturation at least 0.5.
        hues: 20-degree hue bins holding at least 1 % of the strongly coloured ink.
        spread: Largest standard deviation of the R, G or B channel.
        faces: Faces found, or ``None`` when no face detection ran.
    """

    width: int
    height: int
    dark_share: float
    ink_share: float
    saturated_share: float
    hues: int
    spread: float
    faces: int | None = None

    @property
    def looks_like_skeleton(self) -> bool:
        """Whether the figures pass the skeleton rule."""
        return self.skeleton_problem() is None

    def skeleton_problem(self) -> str | None:
        """Why these figures are not an OpenPose skeleton's, or ``None`` if they are."""
        if self.dark_share < MIN_DARK_SHARE:
            return (
                f"only {self.dark_share:.0%} of it is near black, a skeleton render is at "
                f"least {MIN_DARK_SHARE:.0%}"
            )
        if self.ink_share < MIN_INK_SHARE:
            return "nothing is drawn on its black background"
        if self.saturated_share < MIN_SATURATED_SHARE:
            return (
                f"only {self.saturated_share:.0%} of what is drawn is strongly coloured, "
                f"OpenPose limbs are at least {MIN_SATURATED_SHARE:.0%}"
            )
        if self.hues < MIN_HUES:
            return (
                f"what is drawn has {self.hues} hue(s), OpenPose's limbs have at least {MIN_HUES}"
            )
        return None

    @property
    def flat(self) -> bool:
        """Whether the image is one flat colour (blank, black, white ...)."""
        return self.spread < MIN_SPREAD


@dataclass(frozen=True)
class PoseInput:
    """A classified pose image.

    Attributes:
        path: The image file.
        kind: ``"skeleton"`` (goes to the ControlNet as it is) or ``"photo"`` (needs the
            OpenPose preprocessor first).
        reason: Why, in words.
        forced: Whether the caller chose the kind instead of the rule.
        figures: What was measured.
    """

    path: Path
    kind: PoseKind
    reason: str
    forced: bool
    figures: PoseFigures

    @property
    def needs_preprocessor(self) -> bool:
        """Whether ComfyUI must draw the skeleton from it (a photo)."""
        return self.kind == "photo"


def classify_pose(
    path: Path,
    *,
    kind: PoseKindChoice = "auto",
    faces: FaceDetector | Callable[[], FaceDetector] | None = None,
) -> PoseInput:
    """Tell an OpenPose skeleton render from a photo of a person (rule: module docstring).

    Args:
        path: The pose image.
        kind: ``"auto"`` applies the rule; ``"skeleton"`` or ``"photo"`` forces the kind
            (the image must still decode).
        faces: The face detector for the photo check (a
            :class:`~charstudio.faces.base.FaceBackend` will do), or a function that
            returns one, called only when a face check is needed. ``None`` is allowed only
            when no face check will be needed (a forced kind or a skeleton).

    Returns:
        The kind, the reason and the figures.

    Raises:
        NotFound: no file at ``path``.
        UnsupportedImage: not a readable image.
        InvalidParameter: an unknown ``kind``; or, with ``"auto"``, an image that is neither
            a skeleton nor a photo with a face (the message says why and what to do), or
            no detector given when a face check is needed.
        BackendError: the face detector failed.
    """
    if kind not in ("auto", "skeleton", "photo"):
        raise InvalidParameter(f"pose kind must be auto, skeleton or photo, got {kind!r}")
    image = _load(path)
    figures = measure_pose(image)
    if kind != "auto":
        return PoseInput(
            path=path,
            kind=kind,
            reason=f"given as a {kind} (pose kind {kind}); not checked",
            forced=True,
            figures=figures,
        )
    not_skeleton = figures.skeleton_problem()
    if not_skeleton is None:
        return PoseInput(
            path=path,
            kind="skeleton",
            reason=(
                f"an OpenPose skeleton render: {figures.dark_share:.0%} near black, "
                f"{figures.saturated_share:.0%} of the rest strongly coloured in "
                f"{figures.hues} hues"
            ),
            forced=False,
            figures=figures,
        )
    if figures.flat:
        _refuse(path, not_skeleton, f"it is one flat colour (spread {figures.spread:.1f})")
    found = len(_detector(faces).detect(image))
    figures = replace(figures, faces=found)
    if found == 0:
        _refuse(path, not_skeleton, "no face found")
    return PoseInput(
        path=path,
        kind="photo",
        reason=f"a photo of a person ({found} face(s) found); not a skeleton: {not_skeleton}",
        forced=False,
        figures=figures,
    )


def measure_pose(image: RGBImage) -> PoseFigures:
    """The figures of the rule for an upright ``(height, width, 3)`` uint8 RGB array."""
    height, width = int(image.shape[0]), int(image.shape[1])
    small = _shrink(image)
    rgb = small.astype(np.int16)
    brightest = rgb.max(axis=2)
    darkest = rgb.min(axis=2)
    ink = brightest > DARK_LEVEL
    ink_count = int(ink.sum())
    saturation = (brightest - darkest) / np.maximum(brightest, 1)
    coloured = ink & (saturation >= SATURATION)
    coloured_count = int(coloured.sum())
    hues = 0
    if coloured_count:
        hue = np.asarray(Image.fromarray(small).convert("HSV"), dtype=np.int32)[..., 0]
        bins = np.bincount(hue[coloured] * HUE_BINS // 256, minlength=HUE_BINS)
        hues = int((bins >= max(1.0, HUE_BIN_SHARE * coloured_count)).sum())
    spread = max(float(small[..., c].std()) for c in range(3))
    return PoseFigures(
        width=width,
        height=height,
        dark_share=1.0 - ink_count / brightest.size,
        ink_share=ink_count / brightest.size,
        saturated_share=coloured_count / ink_count if ink_count else 0.0,
        hues=hues,
        spread=spread,
    )


def _shrink(image: RGBImage) -> npt.NDArray[np.uint8]:
    height, width = image.shape[:2]
    scale = MEASURE_SIDE / max(height, width)
    if scale >= 1.0:
        return np.ascontiguousarray(image, dtype=np.uint8)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    shrunk = Image.fromarray(image).resize(size, Image.Resampling.NEAREST)
    return np.asarray(shrunk, dtype=np.uint8)


def _load(path: Path) -> RGBImage:
    """The image as ComfyUI's LoadImage reads it: EXIF-upright, RGB (alpha dropped)."""
    if not path.is_file():
        raise NotFound(f"pose image {path.name} not found: give an existing image file")
    try:
        with Image.open(path) as opened:
            opened.load()
            upright = ImageOps.exif_transpose(opened)
            return np.asarray(upright.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(
            f"pose image {path.name} is not an image file (or a format Pillow cannot read); "
            "use PNG, JPEG or WEBP"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise UnsupportedImage(
            f"pose image {path.name} has too many pixels ({exc}); downscale it"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImage(
            f"pose image {path.name} is corrupt or truncated ({exc}); re-export or re-download it"
        ) from exc


def _detector(faces: FaceDetector | Callable[[], FaceDetector] | None) -> FaceDetector:
    if faces is None:
        raise InvalidParameter(
            "classifying a pose image that is not a skeleton needs a face detector: pass faces="
        )
    if isinstance(faces, FaceDetector):
        return faces
    return faces()


def _refuse(path: Path, not_skeleton: str, not_photo: str) -> NoReturn:
    raise InvalidParameter(
        f"pose image {path.name} is neither an OpenPose skeleton ({not_skeleton}) nor a "
        f"photo with a person ({not_photo}): give a skeleton render (coloured limbs on "
        "black) or a photo of a person, or pass --pose-kind skeleton or --pose-kind photo"
    )
