"""``charstudio workflow``: the graph ``generate`` would send, built and validated; with
``--upload`` its images are put on the server so the printed graph runs there as it is."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.generate import (
    AspectOpt,
    BackendOpt,
    CfgOpt,
    CharacterWeightOpt,
    DenoiseOpt,
    HeightOpt,
    IPAdapterOpt,
    LoraOpt,
    NameArg,
    NegativeOpt,
    PoseKindOpt,
    PoseOpt,
    PromptArg,
    ReplaceNegativeOpt,
    SamplerOpt,
    SchedulerOpt,
    SizeOpt,
    StepsOpt,
    VariationOpt,
    WidthOpt,
    build_request,
)
from charstudio.cli.options import JsonOption, flag

__all__ = ["workflow"]

CheckOpt = Annotated[
    bool,
    flag(
        "--check",
        help="Also check the servers: which one would run it, with every node and model file.",
    ),
]
UploadOpt = Annotated[
    bool,
    flag(
        "--upload",
        help="Upload the images the graph loads to the server that would run it, so the "
        "printed graph can be POSTed to its /prompt as it is.",
    ),
]
PrintOpt = Annotated[bool, flag("--print", help="Print the API-format graph (for POST /prompt).")]
GraphSeedOpt = Annotated[
    int | None, typer.Option(help="Seed, 0 to 2^64-1 (default: a random one, printed).")
]


def workflow(
    ctx: typer.Context,
    name: NameArg,
    prompt: PromptArg,
    variation: VariationOpt = None,
    pose: PoseOpt = None,
    pose_kind: PoseKindOpt = "auto",
    lora_strength: LoraOpt = None,
    ipadapter_strength: IPAdapterOpt = None,
    character_weight: CharacterWeightOpt = None,
    seed: GraphSeedOpt = None,
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
    print_graph: PrintOpt = False,
    check: CheckOpt = False,
    upload: UploadOpt = False,
    json_output: JsonOption = False,
) -> None:
    """Build NAME's graph for PROMPT exactly as `generate` would send it, and validate it."""
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
    )
    plan = services_of(ctx).generation.workflow(name, request, check_backend=check, upload=upload)
    if json_output:
        console.json(plan)
        return
    for warning in plan.warnings:
        console.warning(warning)
    if print_graph:
        console.info(json.dumps(plan.graph, indent=2))
        return
    width_, height_ = plan.size
    console.success(
        f"{plan.character}: {len(plan.graph)}-node {plan.method} graph, {width_}x{height_}, "
        f"seed {plan.seed}{' (random)' if plan.seeds_drawn else ''}, valid against "
        f"{plan.validated_against}"
    )
    if plan.reference is not None:
        console.info(f"IP-Adapter/img2img input: {plan.reference} ({plan.reference_input})")
    for local, remote in plan.uploads.items():
        console.info(f"LoadImage {remote} <- {local}")
    if plan.runs_on is not None:
        console.success(f"{plan.runs_on} has every node and model file it needs")
    if plan.uploaded_to is not None:
        console.success(f"uploaded the graph's images to {plan.uploaded_to}")
