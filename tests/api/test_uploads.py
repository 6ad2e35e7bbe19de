"""Issue 15, uploads: files stream into the data root's ``tmp/`` (never the system's
temporary folder, never copied twice) and every way a request can end removes them."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.datastructures import UploadFile

from charstudio.library.characters import Library
from charstudio.services import Services
from tests.api.conftest import PHOTOS, TOKEN, files


def leftovers(services: Services) -> list[Path]:
    return sorted((services.settings.home / "tmp").glob("upload-*"))


@pytest.fixture
def big_photo(tmp_path: Path) -> Path:
    """A real image over Starlette's 1 MB spooling size (noise does not compress)."""
    pixels = np.random.default_rng(7).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    path = tmp_path / "big.png"
    Image.fromarray(pixels).save(path)
    assert 1_000_000 < path.stat().st_size < 4_000_000
    return path


@pytest.fixture
def system_temp_files(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every file created in the system's temporary folder (where Starlette's spooled
    uploads roll over to, unnamed, so a folder listing would not show them)."""
    made: list[Any] = []
    original = tempfile.TemporaryFile

    def recording(*args: Any, **kwargs: Any) -> Any:
        made.append(kwargs.get("dir") or tempfile.gettempdir())
        return original(*args, **kwargs)

    monkeypatch.setattr(tempfile, "TemporaryFile", recording)
    return made


def test_an_upload_streams_into_the_data_root_only(
    obama: TestClient,
    api_services: Services,
    big_photo: Path,
    system_temp_files: list[Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Path] = []
    importing = Library.import_images

    def watch(self: Library, name: str, images: list[Path], **kwargs: Any) -> Any:
        seen.extend(images)
        return importing(self, name, images, **kwargs)

    monkeypatch.setattr(Library, "import_images", watch)
    answer = obama.post(
        "/api/v1/characters/obama/references",
        files=[("files", ("big.png", big_photo.read_bytes(), "image/png"))],
    )
    assert answer.status_code == 201, answer.text
    assert system_temp_files == []  # nothing spooled to /tmp
    home = api_services.settings.home
    assert [p.name for p in seen] == ["big.png"]
    assert seen[0].is_relative_to(home / "tmp")  # the import read it where it streamed
    assert leftovers(api_services) == []


def test_a_form_route_takes_no_file(
    obama: TestClient, api_services: Services, big_photo: Path, system_temp_files: list[Any]
) -> None:
    """Routes with Form fields (the original generate endpoint, studio forms) would have
    Starlette spool any file sent with them; they refuse files instead."""
    answer = obama.post(
        "/character/obama/generate_consistent",
        data={"prompt": "a portrait"},
        files=[("extra", ("big.png", big_photo.read_bytes(), "image/png"))],
    )
    assert answer.status_code == 400 and "Too many files" in answer.text
    assert system_temp_files == []
    assert leftovers(api_services) == []


def _streamed(limit_over: bool) -> Iterator[bytes]:
    yield (
        b'--zzz\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n"
    )
    for _ in range(12 if limit_over else 1):
        yield b"y" * 500_000
    yield b"\r\n--zzz--\r\n"


@pytest.mark.parametrize(
    ("send", "status", "says"),
    [
        (  # cut off at the body cap while a file streams in
            {"content": _streamed(True)},
            413,
            "byte limit",
        ),
        ({"content": _streamed(False)}, 400, "a.png"),  # not an image
        ({"data": {"x": "y"}}, 400, "no files in the form field"),
        (
            {"files": [("other", ("a.png", PHOTOS[0].read_bytes(), "image/png"))]},
            400,
            "unexpected file field 'other'",
        ),
        (  # more files than allowed
            {"files": [("files", (f"{i}.png", b"x", "image/png")) for i in range(25)]},
            413,
            "more than 20 files",
        ),
    ],
)
def test_every_refused_upload_leaves_nothing(
    obama: TestClient, api_services: Services, send: dict[str, Any], status: int, says: str
) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=zzz"} if "content" in send else {}
    answer = obama.post("/api/v1/characters/obama/references", headers=headers, **send)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"]
    assert leftovers(api_services) == []


def test_a_full_disk_while_a_file_streams_in_is_507_and_leaves_nothing(
    obama: TestClient, api_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full(self: UploadFile, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(UploadFile, "write", full)
    answer = obama.post("/api/v1/characters/obama/references", files=files(PHOTOS[0]))
    assert answer.status_code == 507 and answer.json()["type"] == "DiskFull"
    assert leftovers(api_services) == []


def test_a_client_that_goes_away_mid_upload_leaves_nothing(
    obama: TestClient, api_services: Services
) -> None:
    app = obama.app
    head = (
        b'--zzz\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + b"y" * 100_000
    )
    messages = [
        {"type": "http.request", "body": head, "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/characters/obama/references",
        "raw_path": b"/api/v1/characters/obama/references",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"content-type", b"multipart/form-data; boundary=zzz"),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    # A disconnect may surface as an error: what counts is what is left.
    with contextlib.suppress(Exception):
        asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert leftovers(api_services) == []
