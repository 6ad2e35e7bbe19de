"""The CLI's one output object: every command prints through it, never with ``print``.

Human output goes to stdout with rich; errors and warnings go to stderr; with ``--json`` a
command prints exactly one JSON document on stdout and nothing else there, so scripts can
pipe it. Progress bars are drawn on stderr and only when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import typer
from pydantic import BaseModel
from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from charstudio.library.types import ProgressCallback

__all__ = ["Console"]


class Console:
    """Terminal output for one command invocation."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.out = RichConsole(highlight=False, soft_wrap=True)
        self.err = RichConsole(stderr=True, highlight=False, soft_wrap=True)

    # -- messages ---------------------------------------------------------------------
    def info(self, message: str) -> None:
        if not self.json_mode:
            self.out.print(escape(message))

    def success(self, message: str) -> None:
        if not self.json_mode:
            self.out.print(f"[green]{escape(message)}[/green]")

    def warning(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {escape(message)}")

    def error(self, message: str) -> None:
        self.err.print(f"[red]error:[/red] {escape(message)}")

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Print one error line and end the command with ``code``."""
        self.error(message)
        raise typer.Exit(code)

    # -- structured output ------------------------------------------------------------
    def json(self, data: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
        """Print one JSON document (only in ``--json`` mode)."""
        if isinstance(data, BaseModel):
            payload: Any = data.model_dump(mode="json")
        elif isinstance(data, dict):
            payload = data
        else:
            payload = [item.model_dump(mode="json") for item in data]
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()

    def table(
        self, title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if self.json_mode:
            return
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(escape(str(cell)) for cell in row))
        self.out.print(table)

    def fields(self, title: str, values: Sequence[tuple[str, Any]]) -> None:
        """A two-column key/value block."""
        if self.json_mode:
            return
        table = Table(title=title, title_justify="left", show_header=False, box=None)
        table.add_column(style="bold")
        table.add_column()
        for key, value in values:
            table.add_row(escape(key), escape("-" if value is None else str(value)))
        self.out.print(table)

    # -- progress ---------------------------------------------------------------------
    @contextlib.contextmanager
    def progress(self, description: str) -> Iterator[ProgressCallback]:
        """A progress bar fed by a ``progress(done, total, message)`` callback."""
        bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[item]}"),
            console=self.err,
            transient=True,
            disable=not self.err.is_terminal,
        )
        task = bar.add_task(description, total=None, item="")

        def update(done: int, total: int, message: str) -> None:
            bar.update(task, completed=done, total=total, item=escape(message))

        with bar:
            yield update
