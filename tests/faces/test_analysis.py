"""Image statuses and bad input, through the dlib backend and real files."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.errors import InvalidParameter, UnsupportedImage
from charstudio.faces.analysis import analyse_image, analyse_path, analyse_paths
from charstudio.faces.base import FaceBackend, similarity
from charstudio.faces.registry import BackendSpec

from .conftest import DATA, NO_FACE

Photo = Callable[[str], np.ndarray]


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + right.shape[1], 3), 255, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] :] = right
    return canvas


def resized(image: np.ndarray, factor: float) -> np.ndarray:
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def test_one_face_is_ok_and_embedded(dlib_backend: FaceBackend, photo: Photo) -> None:
    result = analyse_image(dlib_backend, photo("hopper.jpg"), source="hopper")
    assert result.status == "ok" and result.chosen == 0
    assert result.embedding is not None and result.embedding.backend == "dlib"
    assert result.message.startswith("one face, ")


def test_no_face(dlib_backend: FaceBackend) -> None:
    result = analyse_path(dlib_backend, DATA / NO_FACE)
    assert (result.status, result.message, result.faces) == ("no_face", "no face found", ())
    assert result.embedding is None


def test_two_similar_faces_are_several_faces(dlib_backend: FaceBackend, photo: Photo) -> None:
    image = side_by_side(photo("obama_2012.jpg"), resized(photo("biden_2013.jpg"), 0.6))
    result = analyse_image(dlib_backend, image)
    assert result.status == "several_faces" and result.chosen is None
    assert len(result.faces) == 2
    assert "the next (needs 2.0x to be chosen); crop the image to one person" in result.message
    assert result.embedding is None


def test_a_dominant_face_is_chosen(dlib_backend: FaceBackend, photo: Photo) -> None:
    big = photo("obama_2012.jpg")
    image = side_by_side(big, resized(photo("biden_2013.jpg"), 0.3))
    result = analyse_image(dlib_backend, image)
    assert result.status == "ok" and len(result.faces) == 2 and result.chosen == 0
    alone = analyse_image(dlib_backend, big).embedding
    assert alone is not None and result.embedding is not None
    assert similarity(alone, result.embedding) > 0.99  # it chose Obama, the larger face


def test_face_too_small(dlib_backend: FaceBackend, photo: Photo) -> None:
    small = resized(photo("obama_2012.jpg"), 0.4)  # face ~54 px
    canvas = np.full((480, 640, 3), 255, np.uint8)
    canvas[: small.shape[0], : small.shape[1]] = small
    result = analyse_image(dlib_backend, canvas)
    assert result.status == "face_too_small"
    assert "below the 64 px minimum; use a closer or larger image" in result.message
    assert result.embedding is None


def test_one_pixel_image(dlib_backend: FaceBackend, tmp_path: Path) -> None:
    path = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (10, 20, 30)).save(path)
    result = analyse_path(dlib_backend, path)
    assert result.status == "no_face"
    assert result.message == "no face found: the image is only 1x1 pixels"


def test_corrupt_file(dlib_backend: FaceBackend, tmp_path: Path) -> None:
    path = tmp_path / "broken.jpg"
    path.write_bytes((DATA / "hopper.jpg").read_bytes()[:300])
    with pytest.raises(UnsupportedImage, match=re.escape("broken.jpg")):
        analyse_path(dlib_backend, path)


@pytest.mark.parametrize("mode", ["L", "CMYK", "I;16", "RGBA"])
def test_colour_modes_find_the_same_face(
    dlib_backend: FaceBackend, photo: Photo, tmp_path: Path, mode: str
) -> None:
    rgb = Image.fromarray(photo("obama_2012.jpg"))
    if mode == "I;16":
        grey = np.asarray(rgb.convert("L"), np.uint16) * 257
        converted, path = Image.fromarray(grey), tmp_path / "deep.png"
    elif mode == "RGBA":
        converted, path = rgb.convert("RGBA"), tmp_path / "alpha.png"
        alpha = np.full((rgb.height, rgb.width), 255, np.uint8)
        alpha[:, :40] = 0  # transparent strip on the left
        converted.putalpha(Image.fromarray(alpha))
    else:
        converted, path = rgb.convert(mode), tmp_path / f"{mode}.jpg"
    converted.save(path)
    with Image.open(path) as check:
        assert check.mode == mode
    reference = analyse_image(dlib_backend, np.asarray(rgb))
    result = analyse_path(dlib_backend, path)
    assert result.status == "ok"
    assert result.faces[0].face.box.iou(reference.faces[0].face.box) > 0.7
    assert result.embedding is not None and reference.embedding is not None
    assert similarity(result.embedding, reference.embedding) >= dlib_backend.threshold


def test_exif_rotation_is_honoured(dlib_backend: FaceBackend, photo: Photo, tmp_path: Path) -> None:
    upright = Image.fromarray(photo("obama_2012.jpg"))
    sideways = upright.transpose(Image.Transpose.ROTATE_90)  # stored lying on its side
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    sideways.save(path, exif=exif)
    result = analyse_path(dlib_backend, path)
    reference = analyse_image(dlib_backend, np.asarray(upright))
    assert (result.width, result.height) == upright.size
    assert result.status == "ok"
    assert result.faces[0].face.box.iou(reference.faces[0].face.box) > 0.7


def test_folder_in_two_processes_keeps_order_and_records_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    paths = [DATA / "obama_2012.jpg", broken, DATA / NO_FACE, DATA / "collins.jpg"]
    results = analyse_paths(BackendSpec(name="dlib"), paths, workers=2)
    assert [r.source for r in results] == [str(p) for p in paths]
    assert [r.status for r in results] == ["ok", "unreadable", "no_face", "ok"]
    assert "broken.png" in results[1].message
    serial = analyse_paths(BackendSpec(name="dlib"), paths[:1], workers=1)
    assert serial[0].embedding is not None and results[0].embedding is not None
    assert similarity(serial[0].embedding, results[0].embedding) > 0.9999


def test_bad_settings_are_refused(dlib_backend: FaceBackend, photo: Photo) -> None:
    with pytest.raises(
        InvalidParameter, match=re.escape("dominance must be at least 1.0, got 0.5")
    ):
        analyse_image(dlib_backend, photo("hopper.jpg"), dominance=0.5)
    with pytest.raises(InvalidParameter, match=re.escape("workers must be at least 1, got 0")):
        analyse_paths(BackendSpec(name="dlib"), [DATA / "hopper.jpg"], workers=0)
