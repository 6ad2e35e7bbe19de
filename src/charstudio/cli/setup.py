"""``charstudio init``: create the data root and the database."""

from __future__ import annotations

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption

__all__ = ["init"]


def init(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Create the data root's folders and the database (or upgrade an older one)."""
    console = Console(json_mode=json_output)
    services = services_of(ctx)
    services.migrate = "always"  # init creates or upgrades the library, wherever it is
    result = services.init()
    if json_output:
        console.json(result)
        return
    console.success(f"charstudio library ready in {result.home}")
    console.fields(
        "",
        [
            ("database", result.database),
            ("schema revision", result.schema_revision),
            ("library id", result.library_id),
        ],
    )
