"""``charstudio accept``: keep a generated image's workflow in ``workflows/generated/``."""

from __future__ import annotations

from typing import Annotated

import typer

from charstudio.backends.accepted import accept_generated
from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption

__all__ = ["accept"]


def accept(
    ctx: typer.Context,
    generation_id: Annotated[
        int, typer.Argument(help="The image's generation id (`generate --json` prints it).")
    ],
    json_output: JsonOption = False,
) -> None:
    """Accept a generated image: save the workflow that made it, to run it again."""
    console = Console(json_mode=json_output)
    services = services_of(ctx)
    path = accept_generated(services.store, services.db, generation_id=generation_id)
    if json_output:
        console.json({"generation_id": generation_id, "workflow": str(path)})
        return
    console.success(f"accepted: workflow saved to {path}")
