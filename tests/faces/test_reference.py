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
from charstudio.faces.reference import export_reference, rank_references, square_crop_box
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
