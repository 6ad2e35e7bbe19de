from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.errors import UnsupportedImage
from charstudio.library.images import load_rgb, probe_image
from tests.conftest import decompression_bomb, write_image

LIMITS = {"max_pixels": 64_000_000, "max_bytes": 200_000_000, "min_side": 1}


def test_probe_reports_format_size_and_hash(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png", size=(100, 60))
    info = probe_image(path, **LIMITS)
    assert (info.format, info.suffix, info.width, info.height) == ("PNG", "png", 100, 60)
    assert len(info.sha256) == 64 and info.size_bytes == path.stat().st_size


def test_format_comes_from_content_not_the_file_name(tmp_path: Path) -> None:
    path = write_image(tmp_path / "really_png.jpg", fmt="PNG")
    assert probe_image(path, **LIMITS).suffix == "png"


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(UnsupportedImage, match=r"notes.png: not an image file"):
        probe_image(path, **LIMITS)


def test_truncated_image(tmp_path: Path) -> None:
    full = write_image(tmp_path / "full.jpg", size=(256, 256))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(UnsupportedImage, match=r"cut.jpg: corrupt or truncated image"):
        probe_image(cut, **LIMITS)


def test_corrupt_image_data(tmp_path: Path) -> None:
    good = write_image(tmp_path / "good.png", size=(64, 64)).read_bytes()
    bad = tmp_path / "bad.png"
    bad.write_bytes(good[:60] + bytes(b ^ 0xFF for b in good[60:120]) + good[120:])
    with pytest.raises(UnsupportedImage, match=r"bad.png: corrupt or truncated image"):
        probe_image(bad, **LIMITS)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = decompression_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1_000
    with pytest.raises(UnsupportedImage) as info:
        probe_image(bomb, **LIMITS)
    assert "bomb.png: too many pixels, refused before decoding" in str(info.value)
    assert "downscale it" in str(info.value)


def test_image_over_the_configured_pixel_limit(tmp_path: Path) -> None:
    bomb = decompression_bomb(tmp_path / "big.png", width=9_000, height=9_000)
    with pytest.raises(UnsupportedImage) as info:
        probe_image(bomb, **LIMITS)
    message = str(info.value)
    assert "9000x9000 is 81,000,000 pixels, over the 64,000,000-pixel limit" in message
    assert "CHARSTUDIO_MAX_IMAGE_PIXELS" in message


def test_file_over_the_byte_limit(tmp_path: Path) -> None:
    path = write_image(tmp_path / "a.png")
    with pytest.raises(UnsupportedImage, match="over the 10-byte limit"):
        probe_image(path, max_pixels=10**9, max_bytes=10, min_side=1)


def test_too_small_image(tmp_path: Path) -> None:
    path = write_image(tmp_path / "tiny.png", size=(1, 1))
    with pytest.raises(UnsupportedImage, match="1x1 is smaller than 64 pixels on a side"):
        probe_image(path, max_pixels=10**9, max_bytes=10**9, min_side=64)


def test_unsupported_format(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    Image.new("P", (80, 80)).save(path)
    with pytest.raises(UnsupportedImage, match="GIF images are not supported"):
        probe_image(path, **LIMITS)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedImage, match="cannot read"):
        probe_image(tmp_path / "nope.png", **LIMITS)


def test_exif_rotation_is_honoured(tmp_path: Path) -> None:
    img = Image.new("RGB", (120, 40), (10, 20, 30))
    img.putpixel((0, 0), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    info = probe_image(path, **LIMITS)
    assert (info.width, info.height) == (40, 120)
    assert load_rgb(path).shape == (120, 40, 3)


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "I;16", "LA"])
def test_every_colour_mode_loads_as_8_bit_rgb(tmp_path: Path, mode: str) -> None:
    path = tmp_path / f"img_{mode.replace(';', '')}.{'jpg' if mode == 'CMYK' else 'png'}"
    if mode == "I;16":
        Image.fromarray(np.full((32, 48), 65535, dtype=np.uint16)).save(path)
    else:
        write_image(path, size=(48, 32), mode=mode)
    arr = load_rgb(path)
    assert arr.shape == (32, 48, 3) and arr.dtype == np.uint8
    if mode == "I;16":
        assert arr.min() == 255  # full-scale 16-bit white stays white, not clipped to grey


def test_transparent_pixels_become_white(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (0, 0, 0, 0)).save(path)
    assert load_rgb(path).min() == 255
