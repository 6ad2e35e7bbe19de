"""``charstudio generate``: images of a character, with progress and output paths.

The options map one to one onto :class:`~charstudio.backends.GenerateRequest` (the model
the API, the studio and the job record use too); ``--size WxH`` is a shorthand for
``--width``/``--height``. ``charstudio workflow`` shares them (see :func:`build_request`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from charstudio.backends import GenerateRequest, GenerationResult, ProgressEvent, ProgressSink
from charstudio.backends.service_types import parse_size
from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption, flag
from charstudio.library.types import ProgressCallback
from charstudio.qc.gate import CheckedResult, generate_gated
from charstudio.workflows import Variation

# Exit status when QC kept fewer images than asked (the job is "partial"; the kept ones are
# stored and listed). 1 and 2 are errors and bad input.
PARTIAL_EXIT = 3

__all__ = ["build_request", "generate"]

NameArg = Annotated[str, typer.Argument(help="Character name.")]
PromptArg = Annotated[str, typer.Argument(help='What to generate, e.g. "red dress".')]
VariationOpt = Annotated[
    Variation | None,
    typer.Option(help="Prompt template: outfit, background or pose (default: prompt as is)."),
]
PoseOpt = Annotated[
    Path | None, typer.Option(help="Pose image for the OpenPose ControlNet (--variation pose).")
]
PoseKindOpt = Annotated[
    Literal["auto", "skeleton", "photo"],
    typer.Option(
        help="The pose image is an OpenPose skeleton (used as is) or a photo of a person "
        "(the server's preprocessor draws the skeleton; needs its annotator weights)."
    ),
]
LoraOpt = Annotated[
    float | None, typer.Option(help="LoRA strength (profile default; 0.6-0.8 recommended).")
]
IPAdapterOpt = Annotated[
    float | None,
    typer.Option(help="IP-Adapter strength (profile default; 0.5-0.7 recommended)."),
]
CharacterWeightOpt = Annotated[
    float | None,
    typer.Option(
        help="Identity vs outfit, 0-1: 0 carries only the face (outfit and hair from the "
        "prompt), 1 face, hair and outfit (profile default 0.5).",
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(help="First seed, 0 to 2^64-1 (default: random, recorded with the image)."),
]
CountOpt = Annotated[int, typer.Option(help="How many images (seeds follow the first).")]
BackendOpt = Annotated[
    str, typer.Option(help="Where to generate: comfyui (servers) or diffusers (in this process).")
]
SizeOpt = Annotated[
    str | None,
    typer.Option(
        help="Image size WIDTHxHEIGHT, multiples of 8 (default: 512x512 SD1.5, 1024x1024 SDXL)."
    ),
]
WidthOpt = Annotated[int | None, typer.Option(help="Image width (with --height).")]
HeightOpt = Annotated[int | None, typer.Option(help="Image height (with --width).")]
AspectOpt = Annotated[
    str | None,
    typer.Option(help="Aspect ratio W:H sized for the base model, e.g. 2:3 (SD1.5: 512x768)."),
]
NegativeOpt = Annotated[
    str | None,
    typer.Option("--negative", help="Negative prompt added to the character's own."),
]
ReplaceNegativeOpt = Annotated[
    bool,
    flag("--replace-negative", help="--negative replaces the character's negative prompt."),
]
StepsOpt = Annotated[int | None, typer.Option(help="Sampler steps, 1-150 (profile default).")]
CfgOpt = Annotated[float | None, typer.Option(help="CFG scale, 1-30 (profile default).")]
SamplerOpt = Annotated[
    str | None, typer.Option(help="KSampler sampler, e.g. euler_ancestral (default dpmpp_2m).")
]
SchedulerOpt = Annotated[
    str | None, typer.Option(help="KSampler scheduler, e.g. normal (default karras).")
]
NoQcOpt = Annotated[
    bool,
    flag(
        "--no-qc",
        help="Keep every image: no QC (default: with a face identity, failing images are "
        "rejected to the job's rejected/ folder and regenerated with the next seeds).",
    ),
]
DenoiseOpt = Annotated[
    float | None, typer.Option(help="img2img only: how much of the reference is repainted.")
]


def build_request(**options: Any) -> GenerateRequest:
    """The request from the CLI's options (``size`` and ``replace_negative`` unpacked).

    Raises:
        InvalidParameter: a bad value, with the message the API and the studio give.
    """
    size = options.pop("size", None)
    if size is not None:
        options["width"], options["height"] = parse_size(size)
    if options.pop("replace_negative", False):
        options["negative_mode"] = "replace"
    given = {key: value for key, value in options.items() if value is not None}
    return GenerateRequest.parse(**given)


def generate(
    ctx: typer.Context,
    name: NameArg,
    prompt: PromptArg,
    variation: VariationOpt = None,
    pose: PoseOpt = None,
    pose_kind: PoseKindOpt = "auto",
    lora_strength: LoraOpt = None,
    ipadapter_strength: IPAdapterOpt = None,
    character_weight: CharacterWeightOpt = None,
    seed: SeedOpt = None,
    count: CountOpt = 1,
    backend: BackendOpt = "comfyui",
    size: SizeOpt = None,
    width: WidthOpt = None,
    height: HeightOpt = None,
    aspect: AspectOpt = None,
    negative: NegativeOpt = None,
    replace_negative: ReplaceNegativeOpt = False,
    steps: StepsOpt = None,
    cfg: CfgOpt = None,
    sampler: SamplerOpt = None,
    scheduler: SchedulerOpt = None,
    denoise: DenoiseOpt = None,
    no_qc: NoQcOpt = False,
    json_output: JsonOption = False,
) -> None:
    """Generate images of NAME (method and defaults from its profile), store and record them.

    With a face identity every image is checked (identity, prompt adherence, soundness) and
    failures are generated again; exit status 3 when fewer than COUNT passed ("partial").
    """
    console = Console(json_mode=json_output)
    request = build_request(
        prompt=prompt,
        variation=variation,
        pose=pose,
        pose_kind=pose_kind,
        lora_strength=lora_strength,
        ipadapter_strength=ipadapter_strength,
        character_weight=character_weight,
        seed=seed,
        count=count,
        backend=backend,
        size=size,
        width=width,
        height=height,
        aspect=aspect,
        negative_prompt=negative,
        replace_negative=replace_negative,
        steps=steps,
        cfg=cfg,
        sampler=sampler,
        scheduler=scheduler,
        denoise=denoise,
        qc=not no_qc,
    )
    services = services_of(ctx)
    generation = services.generation
    planned = generation.plan(name, request)
    for warning in planned.warnings:
        console.warning(warning)
    with console.progress("Generating") as bar:
        result = generate_gated(
            generation, services.qc.gate, name, request, progress=_feed(bar, count)
        )
    if json_output:
        console.json(result)
    else:
        _render(console, result)
    if isinstance(result, CheckedResult) and result.partial:
        raise typer.Exit(PARTIAL_EXIT)


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
            ("character weight", params.character_weight),
        )
        if value is not None
    )
    drawn = " (random)" if result.seeds_drawn else ""
    width, height = result.size
    console.success(
        f"{result.character}: {len(result.images)} image(s) with {result.method}"
        + (f" ({strengths})" if strengths else "")
        + f", {width}x{height}, {params.steps} steps {params.sampler}/{params.scheduler} "
        f"cfg {params.cfg}, on {result.backend}, job {result.job}"
    )
    console.table(
        None,
        ["image", "seed" + drawn, "server"],
        [(img.path, img.seed, img.server) for img in result.images],
    )
    if isinstance(result, CheckedResult):
        _render_qc(console, result)


def _render_qc(console: Console, result: CheckedResult) -> None:
    adherence = (
        "not checked" if result.prompt_adherence is None else f"{result.prompt_adherence:.0%}"
    )
    consistency = (
        "not checked" if result.face_consistency is None else f"{result.face_consistency:.0%}"
    )
    console.success(
        f"QC: kept {len(result.images)}/{result.requested}, rejected {len(result.rejected)}, "
        f"{result.attempts} image(s) generated ({result.extra_attempts} extra); face "
        f"consistency {consistency}, prompt adherence {adherence}"
    )
    for rejected in result.rejected:
        console.warning(f"rejected {rejected.image.path}: {'; '.join(rejected.reasons)}")
    if result.partial:
        console.warning(
            f"partial: only {len(result.images)} of {result.requested} image(s) passed QC "
            "before the extra attempts ran out"
        )
