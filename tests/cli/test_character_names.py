"""Issue 15: a name is checked before it becomes a lock file, and a full disk is the
storage error (exit 1, with advice), never "internal error ... please report it"."""

from __future__ import annotations

import errno
import secrets
import shutil
from pathlib import Path

import pytest

from tests.conftest import CliRunner


def test_character_set_with_a_path_for_a_name_makes_no_file_and_exits_2(
    cli: CliRunner, home: Path
) -> None:
    assert cli("init").code == 0
    leaf = f"charstudio-escape-{secrets.token_hex(4)}"
    name = f"../../../../tmp/{leaf}"
    outside = (home / "locks" / f"{name}.lock").resolve()
    result = cli("character", "set", name, "--cfg", "7")
    assert result.code == 2, result.err
    assert "contains a path separator or '..'" in result.err
    assert "use 1-64 ASCII letters, digits" in result.err
    assert not outside.exists()
    assert not (Path("/tmp") / f"{leaf}.lock").exists()
    assert list((home / "locks").iterdir()) == []


def test_character_set_for_an_unknown_name_leaves_no_lock(cli: CliRunner, home: Path) -> None:
    assert cli("init").code == 0
    result = cli("character", "set", "nobody", "--cfg", "7")
    assert result.code == 1 and "no character named 'nobody'" in result.err
    assert list((home / "locks").iterdir()) == []


def test_a_full_disk_while_adding_is_the_storage_error(
    cli: CliRunner, refs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli("init").code == 0

    def full(source: Path, destination: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    result = cli("character", "add", "yuki", "--images", str(refs))
    assert result.code == 1
    assert "no space left writing" in result.err and "free disk space" in result.err
    assert "internal error" not in result.err and "please report" not in result.err
    assert cli("character", "show", "yuki").code == 1


def test_a_full_disk_outside_the_store_helpers_is_still_the_storage_error(
    cli: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charstudio.library.characters import Library

    def full(self: Library) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded", "/data/x.json")

    assert cli("init").code == 0
    monkeypatch.setattr(Library, "list_characters", full)
    result = cli("character", "list")
    assert result.code == 1
    assert "no space left writing /data/x.json (Disk quota exceeded)" in result.err
    assert "please report" not in result.err
