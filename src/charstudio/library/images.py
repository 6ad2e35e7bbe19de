"""Reading image files safely: probe, fully decode, normalise orientation and colour.

Every image that enters charstudio passes :func:`probe_image` first: it reads the header,
refuses decompression bombs *before* decoding (the pixel limit is a setting), then decodes
the whole file so truncated or corrupt data is caught at the door rather than mid-training,
and refuses a PNG, JPEG or WEBP with data after the image's end (after ``IEND``, ``EOI`` or
the RIFF size): a reference is an image end to end, not a carrier for an HTML page or an
archive. Trailing NUL padding is allowed.
"""

from __future__ import annotations

import hashlib
import mmap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from charstudio.errors import UnsupportedImage

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageInfo",
    "load_rgb",
    "open_normalised",
    "probe_image",
    "sha256_file",
]

# Formats charstudio accepts, by Pillow's format name -> the suffix the store uses.
_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"})
_HASH_CHUNK = 1 << 20
_EXIF_ORIENTATION = 0x0112
_ROTATED_90 = {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`probe_image` learned about a file."""

    path: Path
    sha256: str
    format: str
    suffix: str
    width: int
    height: int
    mode: str
    size_bytes: int


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def probe_image(path: Path, *, max_pixels: int, max_bytes: int, min_side: int = 1) -> ImageInfo:
    """Check that ``path`` is a complete, decodable image of acceptable size.

    Width and height are reported as displayed, i.e. after the EXIF orientation.

    Raises:
        UnsupportedImage: unreadable, not an image, unsupported format, too many pixels,
            too large a file, too small, truncated or corrupt. The message names the file.
    """
    try:
        size_bytes = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UnsupportedImage(
            f"{path}: cannot read ({exc.strerror}); check the path and its permissions"
        ) from exc
    if size_bytes > max_bytes:
        raise UnsupportedImage(
            f"{path}: file is {size_bytes:,} bytes, over the {max_bytes:,}-byte limit; "
            "downscale it or raise CHARSTUDIO_MAX_IMAGE_BYTES"
        )
    try:
        with warnings.catch_warnings():
            # Our own pixel limit (below) decides; Pillow's warning would only duplicate it.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt = img.format or "?"
                width, height = img.size
                if width * height > max_pixels:
                    raise UnsupportedImage(
                        f"{path}: {width}x{height} is {width * height:,} pixels, over the "
                        f"{max_pixels:,}-pixel limit (decompression-bomb guard); downscale it "
                        "or raise CHARSTUDIO_MAX_IMAGE_PIXELS"
                    )
                if fmt not in _FORMATS:
                    raise UnsupportedImage(
                        f"{path}: {fmt} images are not supported; convert to PNG, JPEG or WEBP"
                    )
                img.load()  # full decode: catches truncated and corrupt data
                mode = img.mode
                if img.getexif().get(_EXIF_ORIENTATION) in _ROTATED_90:
                    width, height = height, width
    except UnsupportedImage:
        raise
    except UnidentifiedImageError as exc:
        raise UnsupportedImage(
            f"{path}: not an image file (or a format Pillow cannot read); use PNG, JPEG or WEBP"
        ) from exc
    except Image.DecompressionBombError as exc:  # Pillow's hard limit, 2x its warning size
        raise UnsupportedImage(
            f"{path}: too many pixels, refused before decoding ({exc}); downscale it"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImage(
            f"{path}: corrupt or truncated image ({exc}); re-export or re-download it"
        ) from exc
    _refuse_trailing_data(path, fmt)
    if min(width, height) < min_side:
        raise UnsupportedImage(
            f"{path}: {width}x{height} is smaller than {min_side} pixels on a side; "
            "use a larger image"
        )
    return ImageInfo(
        path=path,
        sha256=sha256_file(path),
        format=fmt,
        suffix=_FORMATS[fmt],
        width=width,
        height=height,
        mode=mode,
        size_bytes=size_bytes,
    )


def open_normalised(path: Path, *, at_least: int | None = None) -> Image.Image:
    """Open an image upright (EXIF orientation applied) in 8-bit RGB.

    Greyscale, palette, CMYK, 16-bit and alpha images all come back as RGB; transparent
    pixels are composited onto white, the usual background for character sheets.

    Args:
        path: the image file.
        at_least: if given, a JPEG may be decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT
            scaling, several times faster than a full decode) as long as both sides stay at
            least this long; other formats are decoded in full.
    """
    try:
        with Image.open(path) as img:
            if at_least is not None and img.format == "JPEG":
                img.draft("RGB", (at_least, at_least))
            img.load()
            upright = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnsupportedImage(f"{path}: cannot decode ({exc})") from exc
    return _to_rgb(upright)


def load_rgb(path: Path) -> np.ndarray:
    """:func:`open_normalised` as a ``(height, width, 3)`` uint8 array."""
    return np.asarray(open_normalised(path), dtype=np.uint8)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / peak * 255.0, 0, 255).astype(np.uint8), mode="L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


_END_NAMES = {"PNG": "its IEND chunk", "JPEG": "its EOI marker", "WEBP": "its RIFF size"}


def _refuse_trailing_data(path: Path, fmt: str) -> None:
    """Refuse bytes other than NUL padding after the end of a PNG, JPEG or WEBP image."""
    if fmt not in _END_NAMES:
        return
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        end = {"PNG": _png_end, "JPEG": _jpeg_end, "WEBP": _webp_end}[fmt](m)
        if end is None or end >= len(m):
            return  # the end cannot be told (Pillow decoded it) or nothing follows it
        extra = len(m) - end
        if not m[end:].strip(b"\x00"):
            return
    raise UnsupportedImage(
        f"{path}: {extra:,} bytes of other data follow the {fmt} image after "
        f"{_END_NAMES[fmt]}; a reference must be an image end to end: re-export it "
        "(open and save it again in an image editor)"
    )


def _png_end(data: mmap.mmap) -> int | None:
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length
        if kind == b"IEND":
            return pos
    return None


def _jpeg_end(data: mmap.mmap) -> int | None:
    """Just past the top-level EOI: segments are skipped by their lengths and scans to the
    next marker, so an EXIF thumbnail's own EOI (inside APP1) is not taken for the end."""
    size = len(data)
    pos = 2
    while pos < size:
        if data[pos] != 0xFF:
            return None
        while pos < size and data[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= size:
            return None
        marker = data[pos]
        pos += 1
        if marker == 0xD9:
            return pos
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:
            continue  # no length
        if pos + 2 > size:
            return None
        pos += int.from_bytes(data[pos : pos + 2], "big")
        if marker == 0xDA:  # entropy-coded data runs to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= size:
                    return None
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7:
                    pos += 2  # a stuffed 0xFF or a restart marker
                elif following == 0xFF:
                    pos += 1
                else:
                    break
    return None


def _webp_end(data: mmap.mmap) -> int | None:
    if data[:4] != b"RIFF" or len(data) < 8:
        return None
    return 8 + int.from_bytes(data[4:8], "little")
