"""File modes: the data root is 0700 and its files 0600 whatever the umask; a group mode
(``file_mode = "group"``, ``CHARSTUDIO_FILE_MODE=group``) gives 0750 / 0640."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from charstudio.config import load_settings
from charstudio.services import build_services


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, so the modes must come from charstudio, not the process."""
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def _modes(home: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for path in home.rglob("*"):
        found[str(path.relative_to(home))] = stat.S_IMODE(path.stat().st_mode)
    return found


def _init_and_import(home: Path, refs: Path, **settings: str) -> dict[str, int]:
    services = build_services(load_settings(home=home, **settings))
    try:
        services.init()
        services.library.create("yuki", [refs])
    finally:
        services.close()
    return _modes(home)


@pytest.mark.sqlite_only  # about the SQLite file
@pytest.mark.usefixtures("open_umask")
def test_private_by_default(tmp_path: Path, refs: Path) -> None:
    modes = _init_and_import(tmp_path / "data", refs)
    references = [k for k in modes if k.startswith("character_data/references/yuki/")]
    assert len(references) == 4
    for key in [".", "character_data", "character_data/references", "locks", "outputs"]:
        assert modes[key] == 0o700, key
    for key in ["charstudio.db", "api_token", *references]:
        assert modes[key] == 0o600, key
    # Nothing under the root is readable or writable by others.
    assert {k: oct(m) for k, m in modes.items() if m & 0o007} == {}


@pytest.mark.sqlite_only  # about the SQLite file
@pytest.mark.usefixtures("open_umask")
def test_group_mode(tmp_path: Path, refs: Path) -> None:
    modes = _init_and_import(tmp_path / "data", refs, file_mode="group")
    references = [k for k in modes if k.startswith("character_data/references/yuki/")]
    assert modes["."] == 0o750
    assert modes["character_data/references"] == 0o750
    for key in ["charstudio.db", *references]:
        assert modes[key] == 0o640, key
    assert modes["api_token"] == 0o600  # the token stays the owner's
    assert {k: oct(m) for k, m in modes.items() if m & 0o007} == {}


def test_init_tightens_an_existing_root(tmp_path: Path) -> None:
    home = tmp_path / "data"
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    services = build_services(load_settings(home=home))
    try:
        services.init()
    finally:
        services.close()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700


def test_the_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHARSTUDIO_FILE_MODE", "group")
    assert load_settings().file_mode == "group"
    monkeypatch.setenv("CHARSTUDIO_FILE_MODE", "world")
    with pytest.raises(Exception, match="file_mode"):
        load_settings()
