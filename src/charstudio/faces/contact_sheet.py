"""A contact sheet: every scored image's face with its similarity and PASS/FAIL under it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from charstudio.errors import InvalidParameter, UnsupportedImage
from charstudio.faces.reference import square_crop_box, write_png_atomic
from charstudio.faces.types import ImageScore
from charstudio.library.images import open_normalised

__all__ = ["render_contact_sheet"]

_PASS = (22, 130, 60)
_FAIL = (190, 30, 30)
_GREY = (120, 120, 120)
_LABEL_HEIGHT = 40


def _tile(score: ImageScore, size: int) -> Image.Image:
    try:
        image = open_normalised(Path(score.source))
    except UnsupportedImage:
        return Image.new("RGB", (size, size), _GREY)
    if score.box is not None:
        image = image.crop(square_crop_box(score.box, image.width, image.height, margin=0.25))
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    tile = Image.new("RGB", (size, size), (255, 255, 255))
    tile.paste(image, ((size - image.width) // 2, (size - image.height) // 2))
    return tile


def _label(score: ImageScore) -> tuple[str, tuple[int, int, int]]:
    verdict = "PASS" if score.passed else "FAIL"
    colour = _PASS if score.passed else _FAIL
    if score.similarity is None:
        return f"{verdict}  {score.status.replace('_', ' ')}", colour
    return f"{verdict}  {score.similarity:.3f}", colour


def render_contact_sheet(
    scores: Sequence[ImageScore], out_path: Path, *, tile: int = 160, columns: int = 6
) -> Path:
    """Draw each image's best face (or the whole image when none) with its score.

    Args:
        scores: the images' scores (``ScoreResult.images``); sources must be files.
        out_path: where to write the PNG (written to a temporary name, then renamed).
        tile: side of each face tile in pixels.
        columns: tiles per row.

    Returns:
        ``out_path``.

    Raises:
        InvalidParameter: no scores, or a bad tile size or column count.
    """
    if not scores:
        raise InvalidParameter("nothing to draw: the score list is empty")
    if not 32 <= tile <= 1024 or columns < 1:
        raise InvalidParameter(f"tile must be 32-1024 px and columns >= 1; got {tile}, {columns}")
    columns = min(columns, len(scores))
    rows = -(-len(scores) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + _LABEL_HEIGHT)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=16)
    small = ImageFont.load_default(size=11)
    for i, score in enumerate(scores):
        x, y = (i % columns) * tile, (i // columns) * (tile + _LABEL_HEIGHT)
        sheet.paste(_tile(score, tile), (x, y))
        text, colour = _label(score)
        draw.text((x + 6, y + tile + 2), text, fill=colour, font=font)
        draw.text((x + 6, y + tile + 22), Path(score.source).name[:24], fill=_GREY, font=small)
    return write_png_atomic(sheet, out_path)
