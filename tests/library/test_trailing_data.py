"""References are images end to end: data after a PNG's IEND, a JPEG's EOI or a WEBP's
RIFF size is refused at import (NUL padding is allowed)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from charstudio.errors import UnsupportedImage
from charstudio.library.images import probe_image
from charstudio.services import Services
from tests.conftest import write_image
from tests.faces.conftest import DATA

HTML = b"<html><script>alert(document.cookie)</script></html>"
LIMITS = {"max_pixels": 10_000_000, "max_bytes": 50_000_000}


def _appended(source: Path, target: Path, extra: bytes) -> Path:
    target.write_bytes(source.read_bytes() + extra)
    return target


@pytest.mark.parametrize(
    ("suffix", "fmt", "end"),
    [("png", "PNG", "IEND"), ("jpg", "JPEG", "EOI"), ("webp", "WEBP", "RIFF")],
)
def test_data_after_the_image_is_refused(tmp_path: Path, suffix: str, fmt: str, end: str) -> None:
    clean = write_image(tmp_path / f"clean.{suffix}", fmt=fmt)
    probe_image(clean, **LIMITS)
    bad = _appended(clean, tmp_path / f"bad.{suffix}", HTML)
    with pytest.raises(UnsupportedImage, match=rf"bad\.{suffix}: 5\d bytes .* after its {end}"):
        probe_image(bad, **LIMITS)


def test_real_photographs_and_tricky_jpegs_are_accepted(tmp_path: Path) -> None:
    for photo in sorted(DATA.glob("*.jpg")):
        probe_image(photo, **LIMITS)
    img = Image.open(write_image(tmp_path / "a.png")).convert("RGB")
    # An EXIF thumbnail is a JPEG inside APP1, with its own EOI before the image's end.
    thumb = io.BytesIO()
    img.resize((16, 16)).save(thumb, format="JPEG")
    exif = Image.Exif()
    exif[0x010E] = "with a thumbnail"
    progressive = tmp_path / "progressive.jpg"
    img.save(progressive, format="JPEG", progressive=True, exif=exif.tobytes())
    restarts = tmp_path / "restarts.jpg"
    img.save(restarts, format="JPEG", restart_marker_blocks=1)
    with_thumb = tmp_path / "thumb.jpg"
    data = progressive.read_bytes()
    with_thumb.write_bytes(data[:2] + _app1(thumb.getvalue()) + data[2:])
    padded = _appended(write_image(tmp_path / "p.png"), tmp_path / "padded.png", b"\0" * 64)
    for path in (progressive, restarts, with_thumb, padded):
        probe_image(path, **LIMITS)


def _app1(payload: bytes) -> bytes:
    body = b"XMP\0" + payload  # any APP1 payload: the parser must skip it by its length
    return b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body


def test_import_refuses_a_png_carrying_html(services: Services, tmp_path: Path) -> None:
    services.init()
    bad = _appended(write_image(tmp_path / "in" / "a.png"), tmp_path / "in" / "page.png", HTML)
    (tmp_path / "in" / "a.png").unlink()
    with pytest.raises(UnsupportedImage, match=r"page\.png"):
        services.library.create("yuki", [bad])
    assert not services.store.references_dir("yuki").exists() or not any(
        services.store.references_dir("yuki").iterdir()
    )
