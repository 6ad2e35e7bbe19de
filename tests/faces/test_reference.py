"""Reference ranking and export for ComfyUI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter

from charstudio.errors import InvalidParameter
from charstudio.faces.analysis import analyse_image
from charstudio.faces.base import FaceBackend
from charstudio.faces.identity import build_identity
from charstudio.faces.reference import (
    WEIGHTS,
    export_reference,
    rank_references,
    square_crop_box,
)
from charstudio.faces.types import FaceBox

Photo = Callable[[str], np.ndarray]


def test_frontal_sharp_beats_blurred_and_rotated(dlib_backend: FaceBackend, photo: Photo) -> None:
    upright = Image.fromarray(photo("obama_2012.jpg"))
    variants = {
        "sharp": upright,
        "blurred": upright.filter(ImageFilter.GaussianBlur(3)),
        "rotated": upright.rotate(22, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)),
    }
    analyses = [
        analyse_image(dlib_backend, np.asarray(img), source=name) for name, img in variants.items()
    ]
    assert [a.status for a in analyses] == ["ok", "ok", "ok"]
    identity = build_identity(analyses, threshold=dlib_backend.threshold)
    ranked = rank_references(analyses, identity)
    assert ranked[0].source == "sharp"
    parts = {c.source: c.parts for c in ranked}
    assert parts["sharp"]["sharp"] > parts["blurred"]["sharp"] + 0.3
    assert parts["sharp"]["frontal"] > parts["rotated"]["frontal"] + 0.2
    assert all(0.0 <= c.score <= 1.0 for c in ranked)


def test_square_crop_stays_inside_the_image() -> None:
    assert square_crop_box(FaceBox(0, 0, 100, 100), 400, 300, margin=0.5) == (0, 0, 200, 200)
    assert square_crop_box(FaceBox(350, 250, 400, 300), 400, 300, margin=0.5) == (
        300,
        200,
        400,
        300,
    )
    assert square_crop_box(FaceBox(0, 0, 400, 300), 400, 300, margin=0.5) == (50, 0, 350, 300)


def test_export_writes_pngs_for_loadimage(
    dlib_backend: FaceBackend, photo: Photo, tmp_path: Path
) -> None:
    image = photo("hopper.jpg")
    face = dlib_backend.detect(image)[0]
    out = export_reference(image, face, out_dir=tmp_path / "input", name="grace", crop_size=256)
    assert out.face_crop == tmp_path / "input" / "grace_face.png"
    with Image.open(out.face_crop) as crop, Image.open(out.full_image) as full:
        assert (crop.format, crop.size, crop.mode) == ("PNG", (256, 256), "RGB")
        assert (full.format, full.size) == ("PNG", (image.shape[1], image.shape[0]))
    assert sorted(p.name for p in out.face_crop.parent.iterdir()) == [
        "grace_face.png",
        "grace_full.png",
    ]


def test_export_refuses_bad_names(dlib_backend: FaceBackend, photo: Photo, tmp_path: Path) -> None:
    image = photo("hopper.jpg")
    face = dlib_backend.detect(image)[0]
    with pytest.raises(InvalidParameter, match=r"name must be a plain file name stem, got '../x'"):
        export_reference(image, face, out_dir=tmp_path, name="../x")


def _pillarboxed(picture: Image.Image) -> np.ndarray:
    """The picture in the middle third of a frame whose outer thirds are black bars."""
    frame = Image.new("RGB", (picture.width * 3, picture.height), (0, 0, 0))
    frame.paste(picture, (picture.width, 0))
    return np.asarray(frame)


def test_a_frame_of_black_bars_loses_to_a_clean_photo(
    dlib_backend: FaceBackend, photo: Photo, tmp_path: Path
) -> None:
    # A frame with 1010 of 1920 columns black used to be chosen over a clean photo: the face
    # parts alone cannot see the bars. Here the framed copy is the sharper one.
    upright = Image.fromarray(photo("obama_2012.jpg"))
    variants = {
        "framed": _pillarboxed(upright),
        "clean": np.asarray(upright.filter(ImageFilter.GaussianBlur(1))),
    }
    analyses = [analyse_image(dlib_backend, img, source=name) for name, img in variants.items()]
    framed = analyses[0]
    assert framed.content is not None
    left, top, right, bottom = framed.content
    assert (left, top, bottom) == (upright.width, 0, upright.height)
    assert 2 * upright.width - 2 <= right <= 2 * upright.width  # rounded inwards
    assert analyses[1].content is None
    identity = build_identity(analyses, threshold=dlib_backend.threshold)
    ranked = {c.source: c for c in rank_references(analyses, identity)}
    assert ranked["framed"].parts["sharp"] > ranked["clean"].parts["sharp"]
    assert ranked["framed"].parts["content"] == pytest.approx(1 / 3, abs=0.01)
    assert ranked["clean"].parts["content"] == 1.0
    assert ranked["clean"].score > ranked["framed"].score

    def face_only(source: str) -> float:  # the score before borders counted
        return sum(WEIGHTS[k] * ranked[source].parts[k] for k in WEIGHTS)

    assert face_only("framed") > face_only("clean")
    # Exported from the framed copy, neither file carries the bars.
    chosen = framed.chosen_face
    assert chosen is not None
    out = export_reference(
        variants["framed"], chosen.face, out_dir=tmp_path, name="x", content=framed.content
    )
    with Image.open(out.full_image) as full, Image.open(out.face_crop) as crop:
        assert full.size == (right - left, upright.height)
        assert np.asarray(full).max(axis=(0, 2)).min() > 0  # no all-black column
        assert np.asarray(crop).max(axis=(0, 2)).min() > 0
