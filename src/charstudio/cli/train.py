"""``charstudio train NAME``: train a character LoRA version (or export the kohya command)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption, flag
from charstudio.training import KohyaExport, TrainingResult, load_config

__all__ = ["train"]


class _Rate(ProgressColumn):
    """Steps per second (rich measures it from the updates)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- it/s" if speed is None else f"{speed:.2f} it/s")


@contextlib.contextmanager
def _progress_bar(console: Console) -> Iterator[object]:
    bar = Progress(
        TextColumn("[bold]Training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        _Rate(),
        TimeRemainingColumn(),
        console=console.err,
        transient=True,
        disable=not console.err.is_terminal,
    )
    task = bar.add_task("train", total=None, loss="-")

    def update(step: int, total: int, loss: float) -> None:
        bar.update(task, completed=step, total=total, loss=f"{loss:.4f}")

    with bar:
        yield update


def train(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Character name.")],
    config: Annotated[
        Path | None, typer.Option("--config", help="Training config (YAML).", show_default=False)
    ] = None,
    overrides: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override one key, e.g. --set lora.rank=16 (repeatable)."),
    ] = None,
    resume: Annotated[
        bool, flag("--resume", help="Continue the interrupted run from its checkpoint.")
    ] = False,
    export_kohya: Annotated[
        bool,
        flag("--export-kohya", help="Write the kohya sd-scripts command instead."),
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Train a LoRA version from the character's prepared training set."""
    console = Console(json_mode=json_output)
    if resume and (config is not None or overrides):
        console.abort("--resume continues with the run's saved config.yaml; drop --config/--set", 2)
    if resume and export_kohya:
        console.abort("--export-kohya writes a new run's command; drop --resume", 2)
    services = services_of(ctx)
    settings = None if resume else load_config(config, overrides or [])
    if export_kohya:
        assert settings is not None
        _render_export(console, services.training.export_kohya(name, config=settings))
        return
    with _progress_bar(console) as progress:
        result = services.training.train(
            name,
            config=settings,
            resume=resume,
            progress=progress,  # type: ignore[arg-type]
        )
    _render(console, result)


def _render(console: Console, result: TrainingResult) -> None:
    if console.json_mode:
        console.json(result)
        return
    resumed = f", resumed at step {result.resumed_from_step}" if result.resumed_from_step else ""
    console.success(
        f"{result.character}: LoRA v{result.version} trained, {result.steps} steps{resumed}, "
        f"loss {result.first_loss:.4f} -> {result.final_loss:.4f}, "
        f"{result.seconds:.1f} s on {result.device} ({result.precision})"
    )
    console.info(f"file: {result.path}")
    console.info(f"samples: {len(result.samples)} in {result.run_dir}/samples")
    console.info(f"loss log: {result.loss_log}")
    if result.copied_to:
        console.info(f"copied to ComfyUI: {result.copied_to}")
    for warning in result.warnings:
        console.warning(warning)
    console.info(f"promote it with `charstudio lora promote {result.character} v{result.version}`")


def _render_export(console: Console, export: KohyaExport) -> None:
    if console.json_mode:
        console.json(export)
        return
    console.success(f"kohya sd-scripts run written: {export.script}")
    console.info(f"dataset config: {export.dataset_toml}")
    console.out.print(escape(export.command))
