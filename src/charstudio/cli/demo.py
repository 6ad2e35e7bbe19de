"""``charstudio demo``: the pipeline end to end on bundled sample photos."""

from __future__ import annotations

from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.options import JsonOption
from charstudio.config import load_settings
from charstudio.demo import DEMO_CHECKPOINT, DemoStep, run_demo
from charstudio.services import build_services

__all__ = ["demo"]


def demo(
    home: Annotated[
        str, typer.Option(help="Data root for the demo (kept separate from your library).")
    ] = "demo-output",
    json_output: JsonOption = False,
) -> None:
    """Show what charstudio does, end to end, on bundled public-domain photos."""
    from pathlib import Path

    console = Console(json_mode=json_output)
    settings = load_settings(home=Path(home))
    if settings.comfyui_checkpoint is None:
        settings = settings.model_copy(update={"comfyui_checkpoint": DEMO_CHECKPOINT})
    services = build_services(settings)

    def show(step: DemoStep) -> None:
        console.success(f"{step.number}. {step.title}: {step.summary}")
        console.info(f"   $ {step.command}")

    try:
        report = run_demo(services, on_step=show)
    finally:
        services.close()
    if json_output:
        console.json(report)
        return
    profile = report.profile
    console.fields(
        f"{profile.name}: how it will be generated",
        [(k, v) for k, v in profile.params.model_dump().items() if v is not None],
    )
    console.info(
        f"ComfyUI graph (API format: load it in ComfyUI or POST it to /prompt): "
        f"{report.workflow_file}"
    )
    console.info(
        f"Explore it: CHARSTUDIO_HOME={report.init.home} {charstudio_command()} "
        f"character show {profile.name}"
    )


def charstudio_command() -> str:
    """How to run this charstudio from the user's shell, as a command that works as printed.

    ``charstudio`` when it is on ``PATH`` and is this installation (the virtual environment
    is active); otherwise the path of this environment's launcher (``.venv/bin/charstudio``
    after ``scripts/demo.sh``, relative to the current folder when it is under it).
    """
    import shutil
    import sys
    from pathlib import Path

    launcher = Path(sys.executable).parent / "charstudio"
    found = shutil.which("charstudio")
    if found is not None and Path(found).resolve() == launcher.resolve():
        return "charstudio"
    try:
        return str(launcher.relative_to(Path.cwd()))
    except ValueError:
        return str(launcher)
