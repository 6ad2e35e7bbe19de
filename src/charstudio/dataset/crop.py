"""Crops around the subject, never stretched: a square by default, or an aspect bucket.

The subject is the face and the body below it: a portrait is usually framed with the head
in the upper third. Given the face box, :func:`subject_crop` takes the largest crop of the
target aspect that fits in the image, centres it on the face horizontally and places the
face centre at a third of the crop's height (as far as the image allows), so the face is
never cut and as much of the body as fits is kept. Without a face the crop is centred.

Buckets follow kohya sd-scripts (``library/model_util.py`` ``make_bucket_resolutions``):
sides are multiples of 64 from 256 up to twice the resolution, area at most
``resolution**2``; the image takes the bucket whose aspect ratio is nearest its own.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image

from charstudio.dataset.types import CropBox
from charstudio.errors import InvalidParameter
from charstudio.library.images import open_normalised

__all__ = [
    "bucket_resolutions",
    "choose_bucket",
    "render_crop",
    "render_from_file",
    "subject_crop",
]

_FACE_HEIGHT_FRACTION = 1 / 3  # where the face centre sits, from the top of the crop
_MIN_BUCKET_SIDE = 256  # kohya's default min_bucket_reso


def bucket_resolutions(resolution: int, *, step: int = 64) -> list[tuple[int, int]]:
    """Every (width, height) bucket for a base resolution, landscape and portrait."""
    if resolution % step:
        raise InvalidParameter(f"resolution {resolution} is not a multiple of {step}")
    max_area = resolution * resolution
    min_side, max_side = min(_MIN_BUCKET_SIDE, resolution), resolution * 2
    buckets = {(resolution, resolution)}
    width = min_side
    while width <= max_side:
        height = min(max_side, (max_area // width) // step * step)
        if height >= min_side:
            buckets.add((width, height))
            buckets.add((height, width))
        width += step
    return sorted(buckets)


def choose_bucket(width: int, height: int, resolution: int) -> tuple[int, int]:
    """The bucket whose aspect ratio is nearest the image's (ties: the larger area)."""
    aspect = width / height
    return min(
        bucket_resolutions(resolution),
        key=lambda b: (abs(b[0] / b[1] - aspect), -(b[0] * b[1])),
    )


def subject_crop(
    *,
    image_size: tuple[int, int],
    face: tuple[float, float, float, float] | None,
    out_size: tuple[int, int],
    bounds: tuple[int, int, int, int] | None = None,
) -> CropBox:
    """The largest crop of ``out_size``'s aspect around the subject (see module docstring).

    Args:
        image_size: (width, height) of the upright source image.
        face: (x0, y0, x1, y1) of the face in that image, or ``None``.
        out_size: (width, height) the crop is resized to.
        bounds: (left, top, right, bottom) of the picture inside uniform borders (letterbox
            bars, ``ImageAnalysis.content``): the crop stays inside it. Default: the image.
    """
    if bounds is not None and bounds != (0, 0, *image_size):
        bx, by = bounds[0], bounds[1]
        inner = subject_crop(
            image_size=(bounds[2] - bx, bounds[3] - by),
            face=None if face is None else (face[0] - bx, face[1] - by, face[2] - bx, face[3] - by),
            out_size=out_size,
        )
        return inner.model_copy(
            update={
                "left": inner.left + bx,
                "top": inner.top + by,
                "right": inner.right + bx,
                "bottom": inner.bottom + by,
            }
        )
    width, height = image_size
    out_w, out_h = out_size
    aspect = out_w / out_h
    crop_w = min(width, round(height * aspect))
    crop_h = min(height, round(crop_w / aspect))
    crop_w = min(crop_w, round(crop_h * aspect))
    if face is None:
        cx, cy_top = width / 2, (height - crop_h) / 2
        left, top = cx - crop_w / 2, cy_top
    else:
        fx = (face[0] + face[2]) / 2
        fy = (face[1] + face[3]) / 2
        left = fx - crop_w / 2
        top = fy - crop_h * _FACE_HEIGHT_FRACTION
        # Never cut the face: keep its box inside the crop where the crop is large enough.
        top = min(top, face[1])
        top = max(top, face[3] - crop_h)
    left = round(min(max(left, 0), width - crop_w))
    top = round(min(max(top, 0), height - crop_h))
    return CropBox(
        left=left,
        top=top,
        right=left + crop_w,
        bottom=top + crop_h,
        out_width=out_w,
        out_height=out_h,
    )


def render_crop(image: Image.Image, crop: CropBox) -> Image.Image:
    """Cut and resize (Lanczos) to the output size; the aspect ratio is kept by construction."""
    region = image.crop((crop.left, crop.top, crop.right, crop.bottom))
    if region.size == (crop.out_width, crop.out_height):
        return region
    return region.resize((crop.out_width, crop.out_height), Image.Resampling.LANCZOS)


def render_from_file(path: Path, crop: CropBox, source_size: tuple[int, int]) -> Image.Image:
    """:func:`render_crop` from a file, decoding a JPEG no larger than the crop needs.

    ``crop`` is in pixels of the upright image of ``source_size``. When the crop is scaled
    down to the output, the JPEG is decoded at the smallest DCT scale (1/2, 1/4, 1/8) that
    still leaves the cropped region at least the output size, and the box is scaled to it.
    """
    factor = crop.width / crop.out_width
    at_least = math.ceil(min(source_size) / factor) if factor > 1 else None
    image = open_normalised(path, at_least=at_least)
    scale = image.width / source_size[0]
    if scale != 1:
        width = max(crop.out_width, round(crop.width * scale))
        height = round(width * crop.out_height / crop.out_width)  # keep the exact aspect
        left = min(round(crop.left * scale), image.width - width)
        top = min(round(crop.top * scale), image.height - height)
        crop = crop.model_copy(
            update={"left": left, "top": top, "right": left + width, "bottom": top + height}
        )
    return render_crop(image, crop)
