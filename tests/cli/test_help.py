"""Every command's --help: flags are shown without a value type (typer prints ``<bool>``
as if a flag took one); only typer's own --help and completion options keep it."""

from __future__ import annotations

import re

import pytest
import typer

from charstudio.cli import app
from tests.conftest import CliRunner

TYPERS_OWN = ("--help", "--install-completion", "--show-completion")


def commands() -> list[list[str]]:
    found: list[list[str]] = [[]]

    def walk(command: object, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            found.append([*path, name])
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


@pytest.mark.parametrize("path", commands(), ids=lambda p: " ".join(p) or "charstudio")
def test_flags_take_no_value_in_help(cli: CliRunner, path: list[str]) -> None:
    shown = cli(*path, "--help")
    assert shown.code == 0, shown.err
    wrong = [
        line.strip()
        for line in shown.out.splitlines()
        if "<bool>" in line and not any(own in line for own in TYPERS_OWN)
    ]
    assert wrong == []
    assert re.search(r"--help\b", shown.out)
