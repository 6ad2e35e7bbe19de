"""Issue 15: ``serve`` refuses an empty or short API token, saying how to make one, and
removes the upload folders a killed server left behind before it starts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import CliRunner


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
