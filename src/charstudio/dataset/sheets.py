"""The two contact sheets of a prepared set: kept images with captions, rejected with reasons."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from charstudio.dataset.curate import Candidate
from charstudio.dataset.report import SheetTile, render_sheet
from charstudio.dataset.types import KeptImage, RejectedImage
from charstudio.errors import UnsupportedImage
from charstudio.library.images import open_normalised

__all__ = ["draw_sheets"]

_RED = (180, 20, 20)


def draw_sheets(
    staging: Path,
    final_dir: Path,
    kept: list[KeptImage],
    rejected: list[RejectedImage],
    candidates: list[Candidate],
    name: str,
) -> tuple[Path, Path | None]:
    """Draw ``contact_sheet.png`` (and ``rejected.png`` if any) into ``staging``.

    Returns:
        Their paths as they will be once the staging folder is swapped in.
    """
    tiles = []
    for image in kept:
        with Image.open(staging / "images" / image.file_name) as saved:
            tiles.append(SheetTile(saved.convert("RGB"), image.file_name, image.caption))
    render_sheet(
        tiles,
        staging / "contact_sheet.png",
        heading=f"{name}: {len(kept)} training images and their captions",
    )
    if not rejected:
        return final_dir / "contact_sheet.png", None
    paths = {c.sha256: c.path for c in candidates}
    bad_tiles = []
    for entry in rejected:
        img: Image.Image
        try:
            img = open_normalised(paths[entry.source_sha256])
        except UnsupportedImage:  # a corrupt file still gets its tile, blank
            img = Image.new("RGB", (64, 64), (235, 235, 235))
        title = f"{entry.reason.replace('_', ' ')}: {entry.source_name}"
        bad_tiles.append(SheetTile(img, title, entry.detail, colour=_RED))
    render_sheet(
        bad_tiles,
        staging / "rejected.png",
        heading=f"{name}: {len(rejected)} references left out, and why",
    )
    return final_dir / "contact_sheet.png", final_dir / "rejected.png"
