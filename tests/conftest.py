"""Fixtures shared by every test package: settings in a temporary data root, images, the CLI."""

from __future__ import annotations

import hashlib
import sqlite3
import struct
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from charstudio.config import Settings, load_settings
from charstudio.services import Services, build_services


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's environment or a charstudio.toml in the work tree."""
    for var in [v for v in list(__import__("os").environ) if v.startswith("CHARSTUDIO_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home=home)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    yield built
    built.close()


def write_image(
    path: Path,
    size: tuple[int, int] = (96, 128),
    color: tuple[int, int, int] = (120, 80, 200),
    fmt: str | None = None,
    mode: str = "RGB",
) -> Path:
    """Write a small image whose pixels depend on ``color`` (distinct colours, distinct hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    for x in range(0, size[0], 7):  # a pattern so JPEG/PNG encoders have something to do
        img.putpixel((x, x % size[1]), (255 - color[0], color[1], 255 - color[2]))
    img.convert(mode).save(path, format=fmt)
    return path


@pytest.fixture
def refs(tmp_path: Path) -> Path:
    """A folder of four distinct reference images (PNG and JPEG) and one text file."""
    folder = tmp_path / "refs"
    for i in range(3):
        write_image(folder / f"yuki_{i}.png", color=(40 * i, 90, 160))
    write_image(folder / "yuki_3.jpg", color=(200, 30, 30))
    (folder / "notes.txt").write_text("not an image")
    return folder


def decompression_bomb(path: Path, width: int = 20_000, height: int = 20_000) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def snapshot(home: Path) -> dict[str, object]:
    """Everything a library holds: each table's rows and each file's hash (temp files too)."""
    state: dict[str, object] = {}
    db = home / "charstudio.db"
    if db.exists():
        with sqlite3.connect(db) as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            for table in sorted(tables):
                state[f"table:{table}"] = sorted(
                    map(repr, conn.execute(f"SELECT * FROM {table}").fetchall())
                )
    for path in sorted(home.rglob("*")):
        if path.is_file() and not path.name.startswith("charstudio.db") and path.suffix != ".lock":
            state[str(path.relative_to(home))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


@dataclass
class CliResult:
    code: int
    out: str
    err: str


CliRunner = Callable[..., CliResult]


@pytest.fixture
def cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> CliRunner:
    """Run ``charstudio ARGS`` in-process through the real entry point; returns code and output."""
    from charstudio.cli import main

    monkeypatch.setenv("CHARSTUDIO_HOME", str(home))
    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str, input: str | None = None) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["charstudio", *args])
        if input is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.StringIO(input))
        capsys.readouterr()
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code=code, out=captured.out, err=captured.err)

    return run
