"""Uniform borders: the black (or any flat colour) bars of letterboxed or pillarboxed frames.

A video frame saved at 1920x1080 with a 4:3 picture in the middle has two flat bars, often
half the frame. Framing a training crop or scoring an IP-Adapter reference on the whole frame
keeps those bars (a 768 px crop kept 120 black columns; a reference with 1010 of 1920 columns
black beat a clean photo). :func:`content_box` finds the picture inside such bars so both
stages work on the picture alone.

The rule, per side: the border colour is the median of the outermost line of pixels; a line
belongs to the border while at least :data:`UNIFORM_SHARE` of its pixels are within
:data:`TOLERANCE` of that colour on every channel (JPEG noise and ringing stay inside it).
A side counts only when its border is at least :data:`MIN_BORDER_SHARE` of the side (a one-pixel
dark edge is not a bar), and the picture left over must keep at least :data:`MIN_CONTENT_SHARE`
of each side (a flat image has no picture to find). Lines are measured on a copy reduced to at
most :data:`WORK_SIDE` pixels; the box is scaled back and rounded inwards, so it never keeps a
line of border.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

__all__ = [
    "MIN_BORDER_SHARE",
    "MIN_CONTENT_SHARE",
    "TOLERANCE",
    "UNIFORM_SHARE",
    "WORK_SIDE",
    "content_box",
]

TOLERANCE = 16  # per channel, 0-255
UNIFORM_SHARE = 0.98
MIN_BORDER_SHARE = 0.02
MIN_CONTENT_SHARE = 0.25
WORK_SIDE = 1024
_CHUNK = 16

Box = tuple[int, int, int, int]


def content_box(image: npt.NDArray[np.uint8]) -> Box | None:
    """The picture inside uniform borders, as ``(left, top, right, bottom)`` pixel bounds of
    ``image`` (``(height, width, 3)`` uint8 RGB), or ``None`` when it has no such borders."""
    height, width = image.shape[:2]
    if min(height, width) < 8:
        return None
    step = max(1, math.ceil(max(height, width) / WORK_SIDE))
    small = image[::step, ::step]
    h, w = small.shape[:2]
    left = _border_lines(small.transpose(1, 0, 2))
    right = _border_lines(small.transpose(1, 0, 2)[::-1])
    top = _border_lines(small)
    bottom = _border_lines(small[::-1])
    left, right = _keep(left, right, w)
    top, bottom = _keep(top, bottom, h)
    if not (left or right or top or bottom):
        return None
    # Back to full-size pixels, rounded inwards: line i of the reduced copy is pixel i*step,
    # so the picture starts at most at pixel left*step and ends after pixel (w-right-1)*step.
    box = (
        left * step,
        top * step,
        (w - right - 1) * step + 1 if right else width,
        (h - bottom - 1) * step + 1 if bottom else height,
    )
    if box[2] - box[0] < MIN_CONTENT_SHARE * width or box[3] - box[1] < MIN_CONTENT_SHARE * height:
        return None
    return box


def _border_lines(lines: npt.NDArray[np.uint8]) -> int:
    """How many leading rows of ``lines`` (rows x pixels x 3) are flat in the first row's
    colour. Measured a chunk of rows at a time: a photo without bars costs one chunk."""
    colour = np.median(lines[0], axis=0).astype(np.int16)
    for start in range(0, len(lines), _CHUNK):
        chunk = lines[start : start + _CHUNK].astype(np.int16)
        close = (np.abs(chunk - colour).max(axis=2) <= TOLERANCE).mean(axis=1) >= UNIFORM_SHARE
        if not close.all():
            return start + int(np.argmin(close))
    return len(lines)


def _keep(start: int, end: int, side: int) -> tuple[int, int]:
    """Drop borders thinner than MIN_BORDER_SHARE of the side; a side that is border all the
    way across (a flat image) has none."""
    if start >= side or end >= side:
        return 0, 0
    minimum = MIN_BORDER_SHARE * side
    return (start if start >= minimum else 0), (end if end >= minimum else 0)
