"""``charstudio generate``: images of a character on ComfyUI, with progress and output paths."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charstudio.backends import GenerateSpec, GenerationResult, ProgressEvent, ProgressSink
from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.library.types import ProgressCallback
from charstudio.workflows import Variation

__all__ = ["generate", "spec_options"]

NameArg = Annotated[str, typer.Argument(help="Character name.")]
PromptArg = Annotated[str, typer.Argument(help='What to generate, e.g. "red dress".')]
VariationOpt = Annotated[
    Variation | None,
    typer.Option(help="Prompt template: outfit, background or pose (default: prompt as is)."),
]
PoseOpt = Annotated[
    Path | None, typer.Option(help="Pose image for the OpenPose ControlNet (--variation pose).")
]
LoraOpt = Annotated[
    float | None, typer.Option(help="LoRA strength (profile default; 0.6-0.8 recommended).")
]
IPAdapterOpt = Annotated[
    float | None,
    typer.Option(help="IP-Adapter strength (profile default; 0.5-0.7 recommended)."),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(help="First seed, 0 to 2^64-1 (default: random, recorded with the image)."),
]
CountOpt = Annotated[int, typer.Option(help="How many images (seeds follow the first).")]
BackendOpt = Annotated[
    str, typer.Option(help="Where to generate: comfyui (servers) or diffusers (in this process).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def spec_options(
    name: str,
    prompt: str,
    variation: Variation | None,
    pose: Path | None,
    lora_strength: float | None,
    ipadapter_strength: float | None,
    seed: int | None,
    count: int,
    backend: str,
) -> GenerateSpec:
    """The typed spec of the options ``generate`` and ``workflow`` share."""
    return GenerateSpec(
        name=name,
        prompt=prompt,
        variation=variation,
        pose=pose,
        lora_strength=lora_strength,
        ipadapter_strength=ipadapter_strength,
        seed=seed,
        count=count,
        backend=backend,
    )


def generate(
    ctx: typer.Context,
    name: NameArg,
    prompt: PromptArg,
    variation: VariationOpt = None,
    pose: PoseOpt = None,
    lora_strength: LoraOpt = None,
    ipadapter_strength: IPAdapterOpt = None,
    seed: SeedOpt = None,
    count: CountOpt = 1,
    backend: BackendOpt = "comfyui",
    json_output: JsonOption = False,
) -> None:
    """Generate images of NAME (method and strengths from its profile), store and record them."""
    console = Console(json_mode=json_output)
    spec = spec_options(
        name, prompt, variation, pose, lora_strength, ipadapter_strength, seed, count, backend
    )
    with console.progress("Generating") as bar:
        result = services_of(ctx).generation.generate(spec, progress=_feed(bar, count))
    if json_output:
        console.json(result)
        return
    _render(console, result)


def _feed(bar: ProgressCallback, count: int) -> ProgressSink:
    """Turn backend events into the console's ``(done, total, message)`` progress."""
    finished: set[int] = set()

    def on_event(event: ProgressEvent) -> None:
        if event.kind == "finished":
            finished.add(event.index)
        label = f"image {event.index + 1}/{count} on {event.server}: {event.message}"
        bar(len(finished), count, label)

    return on_event


def _render(console: Console, result: GenerationResult) -> None:
    params = result.params
    strengths = ", ".join(
        f"{key} {value}"
        for key, value in (
            ("LoRA", params.lora_strength),
            ("IP-Adapter", params.ipadapter_strength),
        )
        if value is not None
    )
    drawn = " (random)" if result.seeds_drawn else ""
    console.success(
        f"{result.character}: {len(result.images)} image(s) with {result.method}"
        + (f" ({strengths})" if strengths else "")
        + f" on {result.backend}, job {result.job}"
    )
    console.table(
        None,
        ["image", "seed" + drawn, "server"],
        [(img.path, img.seed, img.server) for img in result.images],
    )
