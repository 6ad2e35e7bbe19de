"""``charstudio workflow``: build and validate the graph ``generate`` would send, send nothing."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.generate import (
    BackendOpt,
    CountOpt,
    IPAdapterOpt,
    JsonOption,
    LoraOpt,
    NameArg,
    PoseOpt,
    PromptArg,
    SeedOpt,
    VariationOpt,
    spec_options,
)

__all__ = ["workflow"]

CheckOpt = Annotated[
    bool,
    typer.Option(
        "--check",
        help="Also check the servers: which one would run it, with every node and model file.",
    ),
]
PrintOpt = Annotated[
    bool, typer.Option("--print", help="Print the API-format graph (for POST /prompt).")
]


def workflow(
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
    print_graph: PrintOpt = False,
    check: CheckOpt = False,
    json_output: JsonOption = False,
) -> None:
    """Build NAME's ComfyUI graph for PROMPT and validate it against the node catalog."""
    console = Console(json_mode=json_output)
    spec = spec_options(
        name, prompt, variation, pose, lora_strength, ipadapter_strength, seed, count, backend
    )
    plan = services_of(ctx).generation.workflow(spec, check_backend=check)
    if json_output:
        console.json(plan)
        return
    if print_graph:
        console.info(json.dumps(plan.graph, indent=2))
        return
    console.success(
        f"{plan.character}: {len(plan.graph)}-node {plan.method} graph, seed {plan.seed}"
        f"{' (random)' if plan.seeds_drawn else ''}, valid against {plan.validated_against}"
    )
    if plan.runs_on is not None:
        console.success(f"{plan.runs_on} has every node and model file it needs")
