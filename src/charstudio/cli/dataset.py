"""``charstudio dataset ...``: prepare a character's training set and edit its captions."""

from __future__ import annotations

from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption, flag
from charstudio.dataset import DEFAULTS as D
from charstudio.dataset import DatasetConfig, PrepareResult

__all__ = ["app"]

app = typer.Typer(help="Training sets: curate, crop, caption, lay out.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Character name.")]


@app.command("prepare")
def prepare(
    ctx: typer.Context,
    name: NameArg,
    resolution: Annotated[int, typer.Option(help="Output size (multiple of 64).")] = D.resolution,
    bucket: Annotated[
        bool, flag("--bucket", help="Aspect-ratio buckets instead of squares.")
    ] = False,
    repeats: Annotated[int, typer.Option(help="kohya repeats per image per epoch.")] = D.repeats,
    class_word: Annotated[str, typer.Option(help="Class word after the trigger.")] = D.class_word,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Tag for every caption (repeatable).")
    ] = None,
    description: Annotated[str, typer.Option(help="Free text for every caption.")] = D.description,
    kohya: Annotated[
        bool, flag("--kohya", help="Also write kohya sd-scripts' folder layout.")
    ] = False,
    max_upscale: Annotated[float, typer.Option(help="Largest upscale allowed.")] = D.max_upscale,
    blur_threshold: Annotated[
        float, typer.Option(help="Least face sharpness kept.")
    ] = D.blur_threshold,
    tagger: Annotated[
        str | None,
        typer.Option(
            help="WD14-style ONNX tagger (folder or .onnx) whose tags join the captions; "
            "default: the 'tagger' setting (CHARSTUDIO_TAGGER)."
        ),
    ] = None,
    tagger_threshold: Annotated[float, typer.Option(help="Least tag probability used.")] = (
        D.tagger_threshold
    ),
    json_output: JsonOption = False,
) -> None:
    """Curate the references, crop around the subject, caption, and version the set."""
    console = Console(json_mode=json_output)
    services = services_of(ctx)
    config = DatasetConfig.parse(
        resolution=resolution,
        bucket=bucket,
        kohya=kohya,
        repeats=repeats,
        class_word=class_word,
        tags=tuple(tag or ()),
        description=description,
        max_upscale=max_upscale,
        blur_threshold=blur_threshold,
        tagger=tagger,
        tagger_threshold=tagger_threshold,
    ).with_default_tagger(services.settings.tagger)
    with console.progress("Preparing") as progress:
        result = services.datasets.prepare(name, config, progress=progress)
    _render(console, result)


@app.command("caption")
def caption(
    ctx: typer.Context,
    name: NameArg,
    image: Annotated[str, typer.Argument(help="Training image (yuki_003.png) or reference.")],
    text: Annotated[
        str | None, typer.Argument(help="The caption, trigger word first.", show_default=False)
    ] = None,
    reset: Annotated[
        bool, flag("--reset", help="Drop the edit; use the generated caption.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Set an image's caption (kept across regeneration) and rebuild the set."""
    console = Console(json_mode=json_output)
    if (text is None) == (not reset):
        console.abort("give the caption text, or --reset to drop an edit", code=2)
    services = services_of(ctx)
    services.datasets.edit_caption(name, image, None if reset else text)
    config = services.datasets.last_config(name)
    if config is None:
        console.success(f"caption saved; run `charstudio dataset prepare {name}` to use it")
        return
    with console.progress("Rebuilding") as progress:
        result = services.datasets.prepare(name, config, progress=progress)
    _render(console, result)


def _render(console: Console, result: PrepareResult) -> None:
    if console.json_mode:
        console.json(result)
        return
    state = "unchanged" if result.unchanged else "new"
    console.success(
        f"{result.character}: training set v{result.version} ({state}), "
        f"{len(result.kept)} image(s) kept, {len(result.rejected)} left out"
    )
    console.table(
        None,
        ["file", "from", "view", "framing", "caption"],
        [
            (
                k.file_name,
                k.source_name,
                k.view or "-",
                k.framing or "-",
                k.caption + (" (edited)" if k.caption_edited else ""),
            )
            for k in result.kept
        ],
    )
    if result.rejected:
        console.table(
            "left out",
            ["image", "reason", "detail"],
            [(r.source_name, r.reason.replace("_", " "), r.detail) for r in result.rejected],
        )
    console.info(f"set: {result.path}")
    console.info(f"contact sheet: {result.contact_sheet}")
    if result.rejected_sheet:
        console.info(f"rejected sheet: {result.rejected_sheet}")
    if result.kohya_path:
        console.info(f"kohya layout: {result.kohya_path} (dataset.toml inside)")
    for warning in result.warnings:
        console.warning(warning)
