"""Issue 15: ``serve`` refuses an empty or short API token, saying how to make one, and
removes the upload folders a killed server left behind before it starts (a real server
killed mid-upload, then started again)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import PHOTOS, TOKEN
from tests.backends.fake_comfyui import free_port
from tests.conftest import CliRunner

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """``uvicorn.run`` recorded instead of run: serve returns once it would have started."""
    import uvicorn

    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(app))
    return started


@pytest.mark.parametrize("weak", ["", "0123456789abcde"])
def test_serve_refuses_a_weak_token_file(
    cli: CliRunner, home: Path, no_server: list[object], weak: str
) -> None:
    assert cli("init").code == 0
    (home / "api_token").write_text(weak + "\n")
    result = cli("serve")
    assert result.code == 2, result.err
    assert "at least 16 are needed" in result.err
    assert "run `charstudio init` to write a new random one" in result.err
    assert no_server == []


def test_serve_removes_stale_uploads_and_keeps_fresh_ones(
    cli: CliRunner, home: Path, no_server: list[object]
) -> None:
    assert cli("init").code == 0
    stale, fresh = home / "tmp" / "upload-killed", home / "tmp" / "upload-running"
    for folder in (stale, fresh):
        (folder / "0000").mkdir(parents=True)
        (folder / "0000" / "big.jpg").write_bytes(b"x" * 1000)
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    result = cli("serve")
    assert result.code == 0, result.err
    assert len(no_server) == 1
    assert not stale.exists() and fresh.exists()
    assert "removed an unfinished upload: upload-killed" in result.out


class Served:
    """``charstudio serve`` as a real process on a free loopback port (restartable)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        path = [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
        self.env = {
            **os.environ,
            "CHARSTUDIO_HOME": str(home),
            "CHARSTUDIO_API_TOKEN": TOKEN,
            "PYTHONPATH": os.pathsep.join(path),
        }
        self.log = home.parent / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "charstudio", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"charstudio serve did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()  # SIGKILL, as a crash or the OOM killer does
        self.proc.wait(30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def served(home: Path) -> Iterator[Served]:
    server = Served(home)
    yield server
    server.stop()


def _stream_upload_start(port: int, *, body_bytes: int, first: bytes) -> socket.socket:
    """Open ``POST /api/v1/characters`` announcing a ``body_bytes`` image and send only
    ``first`` of it: the server is then in the middle of receiving the body."""
    boundary = "charstudio-killed-mid-upload"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nkilled\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    request = (
        f"POST /api/v1/characters HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + body_bytes + len(tail)}\r\n\r\n"
    ).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(request + head + first)
    return sock


def _received(home: Path) -> list[Path]:
    return [p for p in (home / "tmp").glob("upload-*/*/*") if p.is_file() and p.stat().st_size]


def test_a_server_killed_mid_upload_leaves_a_folder_the_next_serve_removes(
    cli: CliRunner, home: Path, served: Served
) -> None:
    """Issue 15, finding 5: a server killed while a multipart body streamed in left the
    upload under ``<home>/tmp/upload-*`` for ever. The next ``serve`` removes a folder
    that is older than any request can be (an hour; the folder is aged here as the hour
    passing would), and the upload added nothing to the library."""
    assert cli("init").code == 0
    served.start()
    photo = PHOTOS[0].read_bytes()
    first = photo + b"\0" * (4_000_000 - len(photo))
    sock = _stream_upload_start(served.port, body_bytes=20_000_000, first=first)
    try:
        deadline = time.monotonic() + 60  # until the server has written part of it
        while not _received(home) and time.monotonic() < deadline:
            time.sleep(0.1)
        partial = _received(home)
        assert len(partial) == 1 and partial[0].name == "big.jpg", served.log.read_text()
        served.kill()
    finally:
        sock.close()
    left = [p for p in (home / "tmp").glob("upload-*") if p.is_dir()]
    assert left == [partial[0].parent.parent] and partial[0].stat().st_size > 0
    an_hour_and_more = time.time() - 3700
    os.utime(left[0], (an_hour_and_more, an_hour_and_more))
    served.start()
    assert not left[0].exists(), served.log.read_text()
    assert f"removed an unfinished upload: {left[0].name}" in served.log.read_text()
    listed = httpx.get(
        f"{served.url}/api/v1/characters",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    assert listed.status_code == 200 and listed.json()["items"] == [], listed.text
    references = home / "character_data" / "references"
    assert not references.exists() or [p for p in references.rglob("*") if p.is_file()] == []
