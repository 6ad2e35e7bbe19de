"""Stored images: ComfyUI's chunks kept, ours added, garbage refused."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from charstudio.backends import BackendImage, read_parameters, store_image
from charstudio.errors import GenerationFailed


def png(text: dict[str, str]) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in text.items():
        info.add_text(key, value)
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (1, 2, 3)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def image(data: bytes) -> BackendImage:
    graph = {"1": {"class_type": "SaveImage", "inputs": {}}}
    return BackendImage(index=1, seed=2**64 - 1, png=data, graph=graph, workflow=None, server="s")


def test_chunks_are_kept_and_ours_added(tmp_path: Path) -> None:
    data = png({"prompt": "{}", "workflow": json.dumps({"nodes": []}), "note": "kept"})
    stored = store_image(
        tmp_path, image=image(data), parameters={"character": "yuki", "job": "j1", "seed": "1"}
    )
    assert stored.path == tmp_path / f"yuki_j1_02_{2**64 - 1}.png"
    assert (stored.width, stored.height) == (16, 16)
    read = read_parameters(stored.path)
    assert read["prompt"] == {"1": {"class_type": "SaveImage", "inputs": {}}}
    assert read["workflow"] == {"nodes": []} and read["parameters"]["seed"] == "1"
    with Image.open(stored.path) as saved:
        assert saved.info["note"] == "kept"
        assert saved.getpixel((0, 0)) == (1, 2, 3)


def test_garbage_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GenerationFailed) as caught:
        store_image(tmp_path, image=image(b"<html>"), parameters={"character": "y", "job": "j"})
    assert str(caught.value) == (
        "s returned something that is not an image for seed 18446744073709551615 (6 bytes): "
        "check the server's output folder and logs"
    )
    assert list(tmp_path.iterdir()) == []
