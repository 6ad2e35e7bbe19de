"""Fixtures for the QC tests: the character (obama, its identity extracted by the real dlib
models from the real photographs), and test images made from those photographs with PIL."""

from __future__ import annotations

import pytest
from PIL import Image, ImageEnhance, ImageFilter

from charstudio.faces.registry import load_backend
from charstudio.library.qc_policy import QCPolicy
from charstudio.qc.checker import QualityChecker
from charstudio.qc.identity import CharacterIdentity, load_identity
from charstudio.services import Services
from tests.faces.conftest import DATA, PEOPLE


def make_character(services: Services) -> CharacterIdentity:
    """``obama`` from his three photographs, identity extracted with the real dlib models."""
    services.library.create("obama", [DATA / f for f in PEOPLE["obama"]])
    services.faces.extract("obama")
    return load_identity(services.store.embeddings_dir, "obama")


@pytest.fixture(scope="session")
def identity(tmp_path_factory: pytest.TempPathFactory) -> CharacterIdentity:
    from charstudio.config import load_settings
    from charstudio.services import build_services

    built = build_services(load_settings(home=tmp_path_factory.mktemp("qc-home")))
    try:
        return make_character(built)
    finally:
        built.close()


@pytest.fixture(scope="session")
def checker(identity: CharacterIdentity) -> QualityChecker:
    return QualityChecker(backend=load_backend("dlib"), identity=identity, policy=QCPolicy())


def photo(name: str) -> Image.Image:
    with Image.open(DATA / name) as opened:
        return opened.convert("RGB")


def side_by_side(left: str, right: str) -> Image.Image:
    """Two portraits pasted side by side: a two-person image."""
    a, b = photo(left), photo(right)
    height = max(a.height, b.height)
    canvas = Image.new("RGB", (a.width + b.width, height), (128, 128, 128))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    return canvas


def blank(colour: tuple[int, int, int] = (200, 200, 200), size: int = 512) -> Image.Image:
    return Image.new("RGB", (size, size), colour)


def exposed(name: str, factor: float) -> Image.Image:
    return ImageEnhance.Brightness(photo(name)).enhance(factor)


def blurred(name: str, radius: float = 3) -> Image.Image:
    return photo(name).filter(ImageFilter.GaussianBlur(radius))


def small_face(name: str) -> Image.Image:
    """The portrait shrunk to a third and centred on a 640 px grey canvas: a ~50 px face."""
    shrunk = photo(name)
    shrunk = shrunk.resize((shrunk.width // 3, shrunk.height // 3), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", (640, 640), (128, 128, 128))
    canvas.paste(shrunk, ((640 - shrunk.width) // 2, (640 - shrunk.height) // 2))
    return canvas
