"""The QC contact sheet: the face stage's sheet (each image's face, score, PASS/FAIL) with a
legend strip under it giving the thresholds the images were judged by."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from charstudio.faces.contact_sheet import render_contact_sheet
from charstudio.faces.reference import write_png_atomic
from charstudio.faces.types import FaceBox, ImageScore
from charstudio.qc.types import QCResult

__all__ = ["render_qc_sheet"]

_LINE = 18


def _as_score(result: QCResult) -> ImageScore:
    box = FaceBox(*result.face_box) if result.face_box is not None else None
    return ImageScore(
        source=result.source,
        status=result.face_status,
        faces_found=result.faces_found,
        similarity=result.identity,
        passed=result.passed,
        box=box,
    )


def render_qc_sheet(results: Sequence[QCResult], legend: Sequence[str], out_path: Path) -> Path:
    """Draw every image (its face when found) with identity score and overall PASS/FAIL,
    then the legend lines (thresholds) under the grid.

    Raises:
        InvalidParameter: no results.
    """
    with tempfile.TemporaryDirectory() as folder:
        grid_path = render_contact_sheet([_as_score(r) for r in results], Path(folder) / "g.png")
        with Image.open(grid_path) as opened:
            grid = opened.convert("RGB")
    height = grid.height + _LINE * (len(legend) + 1)
    sheet = Image.new("RGB", (max(grid.width, 480), height), (255, 255, 255))
    sheet.paste(grid, (0, 0))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=12)
    for i, line in enumerate(legend):
        draw.text((6, grid.height + 6 + i * _LINE), line, fill=(40, 40, 40), font=font)
    return write_png_atomic(sheet, out_path)
