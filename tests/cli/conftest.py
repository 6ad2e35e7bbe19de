"""Shared by the CLI tests that generate with QC: a fake ComfyUI returning real photographs
by seed and strength (tests/backends/photo_outputs.py), and ``obama`` with his face
identity extracted by the real dlib models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import PHOTOS
from tests.backends.fake_comfyui import FakeComfyUI
from tests.backends.photo_outputs import PhotoScenario
from tests.conftest import CliRunner


@pytest.fixture(scope="module")
def photo_comfy() -> Iterator[FakeComfyUI]:
    fake = FakeComfyUI(photos=PhotoScenario()).start()
    yield fake
    fake.stop()


@pytest.fixture
def obama(cli: CliRunner, photo_comfy: FakeComfyUI, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", photo_comfy.url)
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_CHECKPOINT", "rand_sd15.safetensors")
    assert cli("character", "add", "obama", "--images", *map(str, PHOTOS)).code == 0
    assert cli("faces", "extract", "obama").code == 0
    return "obama"
