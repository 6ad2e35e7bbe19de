from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.dataset.crop import (
    bucket_resolutions,
    choose_bucket,
    render_crop,
    render_from_file,
    subject_crop,
)
from charstudio.errors import InvalidParameter
from charstudio.library.images import open_normalised


def test_buckets_are_multiples_of_64_within_the_area() -> None:
    buckets = bucket_resolutions(768)
    assert (768, 768) in buckets and (512, 1152) in buckets and (1152, 512) in buckets
    for w, h in buckets:
        assert w % 64 == 0 and h % 64 == 0
        assert w * h <= 768 * 768
        assert min(w, h) >= 256 and max(w, h) <= 1536


def test_bucket_nearest_the_aspect_ratio() -> None:
    assert choose_bucket(1000, 1000, 512) == (512, 512)
    w, h = choose_bucket(600, 1200, 512)
    assert h > w and abs(w / h - 0.5) < 0.06


def test_resolution_must_be_a_multiple_of_64() -> None:
    with pytest.raises(InvalidParameter, match="not a multiple of 64"):
        bucket_resolutions(700)


def test_square_crop_keeps_the_face_in_the_upper_third_and_never_cuts_it() -> None:
    # A portrait 600x1200 with the face near the top.
    crop = subject_crop(image_size=(600, 1200), face=(250, 100, 350, 220), out_size=(512, 512))
    assert (crop.width, crop.height) == (600, 600)  # the largest square that fits
    assert crop.top <= 100 and crop.bottom >= 220  # face inside
    assert crop.left == 0 and crop.top == 0  # clamped to the image


def test_face_low_in_a_landscape() -> None:
    crop = subject_crop(image_size=(1600, 900), face=(1300, 600, 1450, 780), out_size=(768, 768))
    assert (crop.width, crop.height) == (900, 900)
    assert crop.left <= 1300 and crop.right >= 1450 and crop.right <= 1600
    assert crop.top <= 600 and crop.bottom >= 780


def test_no_face_centres_the_crop() -> None:
    crop = subject_crop(image_size=(1000, 600), face=None, out_size=(512, 512))
    assert (crop.left, crop.top, crop.right, crop.bottom) == (200, 0, 800, 600)


def test_bucket_crop_keeps_the_aspect_and_never_stretches() -> None:
    crop = subject_crop(image_size=(800, 1000), face=(350, 100, 450, 220), out_size=(448, 576))
    assert abs(crop.width / crop.height - 448 / 576) < 0.01
    img = Image.new("RGB", (800, 1000))
    assert render_crop(img, crop).size == (448, 576)


@pytest.mark.parametrize("orientation", [1, 6])  # 6: stored on its side, shown upright
def test_reduced_jpeg_decode_gives_the_same_crop(tmp_path: Path, orientation: int) -> None:
    rng = np.random.default_rng(0)
    smooth = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).resize(
        (2000, 1500), Image.Resampling.BICUBIC
    )
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "photo.jpg"
    smooth.save(path, quality=95, exif=exif)
    upright = open_normalised(path)
    crop = subject_crop(image_size=upright.size, face=(600, 300, 900, 600), out_size=(384, 384))
    fast = render_from_file(path, crop, upright.size)
    full = render_crop(upright, crop)
    assert fast.size == full.size == (384, 384)
    diff = np.abs(np.asarray(fast, dtype=np.int16) - np.asarray(full, dtype=np.int16))
    assert diff.mean() < 2.0, diff.mean()
