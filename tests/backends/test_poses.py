"""Pose images: OpenPose skeleton renders vs photos of a person, and what is refused."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.backends.poses import (
    MIN_DARK_SHARE,
    MIN_SATURATED_SHARE,
    FaceDetector,
    PoseInput,
    classify_pose,
)
from charstudio.errors import InvalidParameter, NotFound, UnsupportedImage
from charstudio.faces.base import FaceBackend, RGBImage
from charstudio.faces.registry import load_backend
from charstudio.faces.types import DetectedFace
from tests.backends.pose_images import placed, write_skeleton

ROOT = Path(__file__).resolve().parents[2]
FACES = ROOT / "tests" / "data" / "faces"
SAMPLES = ROOT / "src" / "charstudio" / "demo" / "samples"
PORTRAITS = [
    FACES / name
    for name in (
        "obama_2009.jpg",
        "obama_2010.jpg",
        "obama_2012.jpg",
        "biden_2010.jpg",
        "biden_2013.jpg",
        "collins.jpg",
        "hopper.jpg",
    )
] + [SAMPLES / "obama_2012.jpg", SAMPLES / "others" / "biden_2010.jpg"]


@pytest.fixture(scope="module")
def dlib() -> FaceBackend:
    return load_backend("dlib")


class NoDetector:
    """A detector that must not be asked (skeletons and forced kinds need none)."""

    def detect(self, image: RGBImage) -> Sequence[DetectedFace]:
        raise AssertionError("no face check expected")


def _save(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array.astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("size", [(256, 384), (512, 512), (768, 512), (1024, 1536)])
@pytest.mark.parametrize("pose", ["standing", "arms_up", "sitting_side", "walking", "two"])
@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_skeletons_are_skeletons(
    tmp_path: Path, size: tuple[int, int], pose: str, suffix: str
) -> None:
    people = (
        [placed("standing", dx=-0.22, scale=0.8), placed("walking", dx=0.22, scale=0.8)]
        if pose == "two"
        else [pose]
    )
    path = write_skeleton(tmp_path / f"pose{suffix}", size, people, quality=60)

    result = classify_pose(path, faces=NoDetector())

    assert result.kind == "skeleton" and not result.forced
    assert not result.needs_preprocessor
    assert result.figures.dark_share >= MIN_DARK_SHARE + 0.1
    assert result.figures.saturated_share >= MIN_SATURATED_SHARE + 0.15
    assert result.figures.hues >= 8
    assert result.figures.faces is None
    assert (result.figures.width, result.figures.height) == size
    assert "skeleton" in result.reason


def test_heavily_compressed_thick_skeleton_is_a_skeleton(tmp_path: Path) -> None:
    people = [placed(p, dx=dx, scale=0.6) for p, dx in (("arms_up", -0.3), ("walking", 0.3))]
    path = write_skeleton(tmp_path / "thick.jpg", (256, 384), people, quality=30, stickwidth=10)

    assert classify_pose(path, faces=None).kind == "skeleton"


def test_skeleton_with_alpha_reads_as_comfyui_does(tmp_path: Path) -> None:
    path = write_skeleton(tmp_path / "pose.png", (512, 768))
    Image.open(path).convert("RGBA").save(path)

    assert classify_pose(path, faces=None).kind == "skeleton"


@pytest.mark.parametrize("path", PORTRAITS, ids=lambda p: p.name)
def test_photos_of_people_are_photos(path: Path, dlib: FaceBackend) -> None:
    result = classify_pose(path, faces=dlib)

    assert result.kind == "photo" and not result.forced
    assert result.needs_preprocessor
    assert result.figures.faces == 1
    assert result.figures.dark_share < 0.4
    assert "1 face(s)" in result.reason


def test_detector_factory_is_called_only_for_photos(tmp_path: Path, dlib: FaceBackend) -> None:
    calls: list[int] = []

    def factory() -> FaceDetector:
        calls.append(1)
        return dlib

    classify_pose(write_skeleton(tmp_path / "pose.png"), faces=factory)
    assert calls == []
    assert classify_pose(PORTRAITS[0], faces=factory).kind == "photo"
    assert calls == [1]


def _black(tmp_path: Path) -> Path:
    return _save(tmp_path / "black.png", np.zeros((512, 512, 3)))


def _white(tmp_path: Path) -> Path:
    return _save(tmp_path / "white.png", np.full((512, 512, 3), 255))


def _flat(tmp_path: Path) -> Path:
    return _save(tmp_path / "flat.png", np.full((384, 512, 3), (120, 80, 200)))


def _gradient(tmp_path: Path) -> Path:
    ramp = np.tile(np.linspace(0, 255, 512), (512, 1))
    return _save(tmp_path / "gradient.png", np.stack([ramp, ramp[::-1], np.full_like(ramp, 90)], 2))


def _noise(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return _save(tmp_path / "noise.png", rng.integers(0, 256, (512, 512, 3)))


def _dark_noise(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    return _save(tmp_path / "dark.png", rng.integers(0, 30, (512, 512, 3)))


@pytest.mark.parametrize(
    ("make", "not_skeleton", "not_photo"),
    [
        (_black, "nothing is drawn on its black background", "one flat colour"),
        (_white, "only 0% of it is near black", "one flat colour"),
        (_flat, "only 0% of it is near black", "one flat colour"),
        (_gradient, "of it is near black", "no face found"),
        (_noise, "of it is near black", "no face found"),
        (_dark_noise, "nothing is drawn on its black background", "no face found"),
        (lambda _: FACES / "coffee.jpg", "only 10% of it is near black", "no face found"),
    ],
    ids=["black", "white", "flat", "gradient", "noise", "dark_noise", "coffee"],
)
def test_neither_is_refused_with_the_reason(
    tmp_path: Path, dlib: FaceBackend, make: object, not_skeleton: str, not_photo: str
) -> None:
    path = make(tmp_path)  # type: ignore[operator]

    with pytest.raises(InvalidParameter) as caught:
        classify_pose(path, faces=dlib)

    message = str(caught.value)
    assert f"pose image {path.name} is neither an OpenPose skeleton (" in message
    assert not_skeleton in message and not_photo in message
    assert "--pose-kind skeleton" in message and "photo of a person" in message


def test_dark_image_with_one_colour_is_not_a_skeleton(tmp_path: Path, dlib: FaceBackend) -> None:
    canvas = np.zeros((512, 512, 3))
    canvas[200:260, 100:400] = (255, 0, 0)  # a red bar on black: dark, saturated, one hue
    path = _save(tmp_path / "bar.png", canvas)

    with pytest.raises(InvalidParameter, match=r"has 1 hue\(s\)"):
        classify_pose(path, faces=dlib)


@pytest.mark.parametrize("make", [_noise, _black])
def test_forced_skeleton_skips_the_checks(tmp_path: Path, make: object) -> None:
    result = classify_pose(make(tmp_path), kind="skeleton", faces=NoDetector())  # type: ignore[operator]

    assert result.kind == "skeleton" and result.forced
    assert "not checked" in result.reason


def test_forced_photo_needs_no_face(tmp_path: Path) -> None:
    result = classify_pose(FACES / "coffee.jpg", kind="photo", faces=NoDetector())

    assert isinstance(result, PoseInput)
    assert result.kind == "photo" and result.forced and result.needs_preprocessor
    assert result.figures.faces is None


def test_forced_photo_of_a_skeleton_is_a_photo(tmp_path: Path) -> None:
    path = write_skeleton(tmp_path / "pose.png")

    assert classify_pose(path, kind="photo").kind == "photo"


@pytest.mark.parametrize("kind", ["auto", "skeleton", "photo"])
def test_corrupt_file_is_unsupported(tmp_path: Path, kind: str) -> None:
    good = write_skeleton(tmp_path / "pose.png").read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[: len(good) // 2])
    text = tmp_path / "notes.png"
    text.write_text("not an image")

    for path in (truncated, text):
        with pytest.raises(UnsupportedImage, match=rf"pose image {re.escape(path.name)} is "):
            classify_pose(path, kind=kind, faces=NoDetector())  # type: ignore[arg-type]


def test_missing_file_and_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="not found"):
        classify_pose(tmp_path / "nope.png", faces=None)
    with pytest.raises(InvalidParameter, match="auto, skeleton or photo"):
        classify_pose(FACES / "coffee.jpg", kind="sketch", faces=None)  # type: ignore[arg-type]


def test_photo_check_without_a_detector_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameter, match="needs a face detector"):
        classify_pose(FACES / "hopper.jpg", faces=None)
