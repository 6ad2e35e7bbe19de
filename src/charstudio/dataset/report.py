"""Contact sheets: what went into a training set (with captions) and what was left out (why)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from charstudio.errors import storage_errors

__all__ = ["SheetTile", "render_sheet"]

_TILE = 224
_TEXT_LINES = 4
_LINE_HEIGHT = 15
_PAD = 8
_COLUMNS = 5


@dataclass(frozen=True)
class SheetTile:
    """One image on a sheet with a title line and wrapped text under it."""

    image: Image.Image
    title: str
    text: str
    colour: tuple[int, int, int] = (30, 30, 30)


def render_sheet(tiles: Sequence[SheetTile], destination: Path, *, heading: str) -> Path:
    """Draw the tiles in a grid under a heading and save a PNG (temporary name, then rename)."""
    font = ImageFont.load_default(size=12)
    bold = ImageFont.load_default(size=14)
    columns = max(1, min(_COLUMNS, len(tiles)))
    rows = max(1, -(-len(tiles) // columns))
    cell_w = _TILE + 2 * _PAD
    cell_h = _TILE + (_TEXT_LINES + 1) * _LINE_HEIGHT + 2 * _PAD
    sheet = Image.new("RGB", (columns * cell_w, 32 + rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((_PAD, 8), heading, fill=(0, 0, 0), font=bold)
    for i, tile in enumerate(tiles):
        x = (i % columns) * cell_w + _PAD
        y = 32 + (i // columns) * cell_h + _PAD
        thumb = tile.image.copy()
        thumb.thumbnail((_TILE, _TILE))
        sheet.paste(thumb, (x + (_TILE - thumb.width) // 2, y + (_TILE - thumb.height) // 2))
        draw.rectangle((x - 1, y - 1, x + _TILE, y + _TILE), outline=(200, 200, 200))
        ty = y + _TILE + 4
        draw.text((x, ty), tile.title, fill=tile.colour, font=bold)
        lines = textwrap.wrap(tile.text, width=34)[:_TEXT_LINES]
        for n, line in enumerate(lines):
            draw.text((x, ty + (n + 1) * _LINE_HEIGHT), line, fill=(60, 60, 60), font=font)
    tmp = destination.with_name(f".tmp-{destination.name}")
    try:
        with storage_errors(destination):
            destination.parent.mkdir(parents=True, exist_ok=True)
            sheet.save(tmp, format="PNG")
            tmp.replace(destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return destination
