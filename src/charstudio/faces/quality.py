"""Image-quality measures of a face crop: sharpness and brightness.

Both are measured on the face box resized to a fixed size, so they compare across faces
of different sizes.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from charstudio.faces.base import RGBImage
from charstudio.faces.types import FaceBox

__all__ = ["QUALITY_SIZE", "crop_box", "face_brightness", "face_sharpness"]

QUALITY_SIZE = 128
"""Side, in pixels, of the grey crop both measures are taken on."""

# ITU-R BT.601 luma weights, as Pillow's "L" conversion uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def crop_box(image: RGBImage, box: FaceBox) -> RGBImage:
    """The pixels of ``box`` (clipped to the image); at least 1x1."""
    height, width = image.shape[:2]
    clipped = box.clipped(width, height)
    x0, y0 = int(clipped.x0), int(clipped.y0)
    x1 = max(round(clipped.x1), min(x0 + 1, width))
    y1 = max(round(clipped.y1), min(y0 + 1, height))
    return image[y0:y1, x0:x1]


def _grey_crop(image: RGBImage, box: FaceBox) -> np.ndarray:
    crop = crop_box(image, box)
    grey = (
        Image.fromarray(crop)
        .convert("L")
        .resize((QUALITY_SIZE, QUALITY_SIZE), Image.Resampling.BILINEAR)
    )
    return np.asarray(grey, dtype=np.float64)


def face_sharpness(image: RGBImage, box: FaceBox) -> float:
    """Variance of the 4-neighbour Laplacian of the grey face crop (Pech-Pacheco et al. 2000).

    Sharp photographs of faces score in the hundreds; a Gaussian blur of radius 3 brings
    the same face below ~30.
    """
    g = _grey_crop(image, box)
    lap = -4.0 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return float(lap.var())


def face_brightness(image: RGBImage, box: FaceBox) -> float:
    """Mean luma (0-255) of the face crop."""
    crop = crop_box(image, box).astype(np.float64)
    return float((crop @ _LUMA).mean())
