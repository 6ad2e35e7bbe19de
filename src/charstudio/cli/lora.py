"""``charstudio lora ...``: a character's LoRA versions."""

from __future__ import annotations

from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption

__all__ = ["app"]

app = typer.Typer(help="LoRA versions: list, promote.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Character name.")]


@app.command("list")
def list_versions(ctx: typer.Context, name: NameArg, json_output: JsonOption = False) -> None:
    """List the character's LoRA versions (* marks the promoted one)."""
    console = Console(json_mode=json_output)
    versions = services_of(ctx).training.list_versions(name)
    if console.json_mode:
        console.json(versions)
        return
    if not versions:
        console.info(f"no LoRA versions yet; train one with `charstudio train {name}`")
        return
    console.table(
        None,
        ["version", "status", "set", "parent", "steps", "final loss", "base model", "file"],
        [
            (
                f"v{v.version}{' *' if v.promoted else ''}",
                v.status,
                f"v{v.training_set_version}" if v.training_set_version else "-",
                f"v{v.parent_version}" if v.parent_version else "-",
                v.steps if v.steps is not None else "-",
                f"{v.final_loss:.4f}" if v.final_loss is not None else "-",
                v.base_model or "-",
                v.path if v.file_exists else f"{v.path} (missing)",
            )
            for v in versions
        ],
    )


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, typer.Argument(help="Version to use for generation, e.g. v3.")],
    json_output: JsonOption = False,
) -> None:
    """Make a version the one generation uses."""
    console = Console(json_mode=json_output)
    info = services_of(ctx).training.promote(name, version)
    if console.json_mode:
        console.json(info)
        return
    console.success(f"{name}: LoRA v{info.version} promoted; generation now uses {info.path}")
