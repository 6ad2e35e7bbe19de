"""OpenPose skeleton renders drawn the way comfyui_controlnet_aux's ``draw_bodypose`` does.

OpenPose's body renderer (``custom_controlnet_aux/open_pose/util.py``, from lllyasviel's
ControlNet annotator) draws on a black canvas: each of the first 17 limbs of ``LIMBS`` as a
filled ellipse ``stickwidth`` (4) pixels across in its palette colour at 60 % intensity, then
each of the 18 keypoints as a filled circle of radius 4 in its full palette colour. This
module draws the same picture with Pillow so tests can make skeleton images of any size and
pose without the annotator.

Keypoints are in OpenPose's COCO-18 order: 0 nose, 1 neck, 2-4 right shoulder/elbow/wrist,
5-7 left shoulder/elbow/wrist, 8-10 right hip/knee/ankle, 11-13 left hip/knee/ankle,
14/15 right/left eye, 16/17 right/left ear.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["COLOURS", "LIMBS", "POSES", "draw_skeleton", "placed", "write_skeleton"]

# OpenPose's 18-colour palette (RGB), one per keypoint and per limb.
COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
)

# Limbs as 1-based keypoint pairs, as OpenPose lists them; only the first 17 are drawn.
LIMBS: tuple[tuple[int, int], ...] = (
    (2, 3),
    (2, 6),
    (3, 4),
    (4, 5),
    (6, 7),
    (7, 8),
    (2, 9),
    (9, 10),
    (10, 11),
    (2, 12),
    (12, 13),
    (13, 14),
    (2, 1),
    (1, 15),
    (15, 17),
    (1, 16),
    (16, 18),
)

Point = tuple[float, float]

# Keypoints as fractions of the canvas (x, y); None: not detected (not drawn).
POSES: dict[str, tuple[Point | None, ...]] = {
    "standing": (
        (0.50, 0.14),
        (0.50, 0.25),
        (0.40, 0.25),
        (0.37, 0.40),
        (0.35, 0.54),
        (0.60, 0.25),
        (0.63, 0.40),
        (0.65, 0.54),
        (0.44, 0.55),
        (0.44, 0.73),
        (0.44, 0.92),
        (0.56, 0.55),
        (0.56, 0.73),
        (0.56, 0.92),
        (0.48, 0.12),
        (0.52, 0.12),
        (0.46, 0.13),
        (0.54, 0.13),
    ),
    "arms_up": (
        (0.50, 0.22),
        (0.50, 0.32),
        (0.41, 0.32),
        (0.33, 0.20),
        (0.30, 0.06),
        (0.59, 0.32),
        (0.67, 0.20),
        (0.70, 0.06),
        (0.45, 0.60),
        (0.40, 0.77),
        (0.38, 0.94),
        (0.55, 0.60),
        (0.60, 0.77),
        (0.62, 0.94),
        (0.48, 0.20),
        (0.52, 0.20),
        (0.46, 0.21),
        (0.54, 0.21),
    ),
    "sitting_side": (
        (0.38, 0.16),
        (0.42, 0.28),
        (0.42, 0.28),
        (0.46, 0.42),
        (0.58, 0.46),
        None,
        None,
        None,
        (0.44, 0.58),
        (0.66, 0.60),
        (0.66, 0.86),
        None,
        None,
        None,
        (0.36, 0.14),
        None,
        (0.41, 0.15),
        None,
    ),
    "walking": (
        (0.52, 0.12),
        (0.50, 0.22),
        (0.42, 0.23),
        (0.45, 0.37),
        (0.52, 0.48),
        (0.58, 0.22),
        (0.55, 0.37),
        (0.47, 0.47),
        (0.46, 0.52),
        (0.38, 0.70),
        (0.30, 0.88),
        (0.54, 0.52),
        (0.58, 0.71),
        (0.62, 0.90),
        (0.51, 0.10),
        (0.54, 0.10),
        (0.49, 0.11),
        (0.56, 0.11),
    ),
}


def placed(
    name: str, *, dx: float = 0.0, dy: float = 0.0, scale: float = 1.0
) -> tuple[Point | None, ...]:
    """The named pose scaled about the canvas centre and shifted (fractions of the canvas)."""
    return tuple(
        None if k is None else (0.5 + (k[0] - 0.5) * scale + dx, 0.5 + (k[1] - 0.5) * scale + dy)
        for k in POSES[name]
    )


def _ellipse(a: Point, b: Point, half_width: float) -> list[Point]:
    """The polygon ``cv2.ellipse2Poly`` makes for a limb from ``a`` to ``b``."""
    mx, my = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    half_length = math.dist(a, b) / 2
    angle = math.atan2(b[1] - a[1], b[0] - a[0])
    cos, sin = math.cos(angle), math.sin(angle)
    points = []
    for step in range(0, 360, 5):
        t = math.radians(step)
        x, y = half_length * math.cos(t), half_width * math.sin(t)
        points.append((mx + x * cos - y * sin, my + x * sin + y * cos))
    return points


def draw_skeleton(
    size: tuple[int, int] = (512, 768),
    poses: Sequence[str | Sequence[Point | None]] = ("standing",),
    *,
    stickwidth: int = 4,
    radius: int = 4,
) -> Image.Image:
    """An OpenPose body render: black canvas, 17 limbs at 60 %, 18 joints at full colour.

    Args:
        size: ``(width, height)`` of the canvas.
        poses: one entry per person: a name from :data:`POSES` or 18 fractional
            keypoints (``None`` for a keypoint not found).
        stickwidth: half the limb ellipse's short axis in pixels, as OpenPose's
            ``stickwidth``.
        radius: joint circle radius in pixels.
    """
    width, height = size
    canvas = Image.new("RGB", size, (0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    people = [POSES[p] if isinstance(p, str) else tuple(p) for p in poses]
    for keypoints in people:
        pixels = [None if k is None else (k[0] * width, k[1] * height) for k in keypoints]
        for index, (i, j) in enumerate(LIMBS):
            a, b = pixels[i - 1], pixels[j - 1]
            if a is None or b is None:
                continue
            colour = tuple(int(c * 0.6) for c in COLOURS[index])
            draw.polygon(_ellipse(a, b, stickwidth), fill=colour)
        for index, point in enumerate(pixels):
            if point is None:
                continue
            x, y = point
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=COLOURS[index])
    return canvas


def write_skeleton(
    path: Path,
    size: tuple[int, int] = (512, 768),
    poses: Sequence[str | Sequence[Point | None]] = ("standing",),
    *,
    quality: int = 90,
    stickwidth: int = 4,
) -> Path:
    """Draw a skeleton and save it; the suffix picks the format (``.jpg``: JPEG ``quality``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = draw_skeleton(size, poses, stickwidth=stickwidth)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, format="JPEG", quality=quality)
    else:
        image.save(path)
    return path
