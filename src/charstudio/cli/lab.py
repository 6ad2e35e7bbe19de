"""``charstudio tune`` and ``charstudio report``: the consistency lab (``charstudio.lab``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption, flag
from charstudio.errors import InvalidParameter
from charstudio.lab import (
    DEFAULT_IPADAPTER_STRENGTHS,
    DEFAULT_LORA_STRENGTHS,
    MAX_TUNE_IMAGES,
    ConsistencyReport,
    ReportRow,
    TunePlan,
    TuneResult,
    TuneSpec,
    load_prompts,
    parse_strengths,
    write_html,
)
from charstudio.lab.types import Rates

__all__ = ["report", "tune"]

NameArg = Annotated[str, typer.Argument(help="Character name.")]
PromptsOpt = Annotated[
    Path | None,
    typer.Option(
        "--prompts",
        help="A file of prompts, one 'outfit: a red dress' / 'background: ...' / 'pose: ...' "
        "per line (default: one prompt per variation).",
    ),
]
SeedsOpt = Annotated[
    int, typer.Option("--seeds", min=1, max=16, help="Seeds per prompt in every cell or row.")
]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="First seed (the same for all).")]
BackendOpt = Annotated[str, typer.Option(help="comfyui (the server pool) or diffusers.")]


def _spec(prompts: Path | None, **values: Any) -> TuneSpec:
    given = {k: v for k, v in values.items() if v is not None}
    if prompts is not None:
        given["prompts"] = load_prompts(prompts)
    try:
        return TuneSpec(**given)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidParameter(f"invalid tune settings: {exc}") from exc


def tune(
    ctx: typer.Context,
    name: NameArg,
    lora_strengths: Annotated[
        str | None,
        typer.Option(help=f"LoRA strengths to try (default {DEFAULT_LORA_STRENGTHS})."),
    ] = None,
    ipadapter_strengths: Annotated[
        str | None,
        typer.Option(help=f"IP-Adapter strengths (default {DEFAULT_IPADAPTER_STRENGTHS})."),
    ] = None,
    character_weights: Annotated[
        str | None,
        typer.Option(
            help="Also try these identity-vs-outfit weights (0-1, e.g. 0.3,0.5,0.8); "
            "default: the profile's, not an axis."
        ),
    ] = None,
    prompts: PromptsOpt = None,
    seeds: SeedsOpt = 2,
    seed: SeedOpt = 1000,
    backend: BackendOpt = "comfyui",
    adherence_floor: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Least prompt adherence a cell needs to win."),
    ] = 0.8,
    dry_run: Annotated[
        bool, flag("--dry-run", help="Print the plan and estimate; run nothing.")
    ] = False,
    yes: Annotated[bool, flag("--yes", help=f"Run a grid over {MAX_TUNE_IMAGES} images.")] = False,
    apply: Annotated[
        bool, flag("--apply", help="Write the choice over strengths you set by hand too.")
    ] = False,
    no_apply: Annotated[
        bool, flag("--no-apply", help="Measure and choose; write nothing.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Measure a grid of LoRA x IP-Adapter strengths and write the best to the profile.

    Each cell generates the same prompts and seeds and QC scores them; the highest face
    consistency whose prompt adherence reaches the floor wins (ties: lower strengths). A
    run resumes where it stopped: cells already measured are kept.
    """
    console = Console(json_mode=json_output)
    spec = _spec(
        prompts,
        lora_strengths=parse_strengths(lora_strengths, "--lora-strengths"),
        ipadapter_strengths=parse_strengths(ipadapter_strengths, "--ipadapter-strengths"),
        character_weights=parse_strengths(character_weights, "--character-weights"),
        seeds=seeds,
        base_seed=seed,
        backend=backend,
        adherence_floor=adherence_floor,
    )
    lab = services_of(ctx).lab
    if dry_run:
        plan = lab.plan_tune(name, spec)
        console.json(plan) if json_output else _render_plan(console, plan)
        return
    with console.progress("Tuning") as bar:
        result = lab.tune(name, spec, yes=yes, apply=not no_apply, force=apply, progress=bar)
    if json_output:
        console.json(result)
        return
    _render_tune(console, result)


def report(
    ctx: typer.Context,
    name: NameArg,
    prompts: PromptsOpt = None,
    seeds: SeedsOpt = 2,
    seed: SeedOpt = 1000,
    backend: BackendOpt = "comfyui",
    from_history: Annotated[
        bool,
        flag("--from-history", help="Read past QC-scored generations; generate nothing."),
    ] = False,
    html: Annotated[bool, flag("--html/--no-html", help="Write the HTML report.")] = True,
    json_output: JsonOption = False,
) -> None:
    """The "Expected Results" table measured for NAME: one row per method its assets
    allow (and the tuned strengths, and each LoRA version), from the same prompts and seeds."""
    console = Console(json_mode=json_output)
    lab = services_of(ctx).lab
    if from_history:
        found = lab.report_from_history(name)
    else:
        spec = _spec(prompts, seeds=seeds, base_seed=seed, backend=backend)
        with console.progress("Measuring") as bar:
            found = lab.report(name, spec, progress=bar)
    if html:
        found = found.model_copy(update={"html": str(write_html(services_of(ctx).store, found))})
    if json_output:
        console.json(found)
        return
    _render_report(console, found)


def _pct(value: float | None) -> str:
    return "n/c" if value is None else f"{value:.0%}"


def _rates(rates: Rates) -> tuple[str, str, str, int]:
    similarity = "-" if rates.mean_similarity is None else f"{rates.mean_similarity:.3f}"
    return (_pct(rates.face_consistency), _pct(rates.prompt_adherence), similarity, rates.images)


def _render_plan(console: Console, plan: TunePlan) -> None:
    estimate = "unknown" if plan.estimate_s is None else f"about {plan.estimate_s / 60:.1f} min"
    console.fields(
        f"tune {plan.character} ({plan.method}, dry run)",
        [
            ("LoRA version", plan.lora_version),
            ("cells", f"{len(plan.cells)} ({plan.cells_done} measured before, kept)"),
            ("images", f"{plan.images} ({plan.images_per_cell} per cell)"),
            ("estimate", f"{estimate} ({plan.estimate_basis})"),
            ("run folder", plan.run_dir),
        ],
    )
    if plan.images > MAX_TUNE_IMAGES:
        console.warning(f"over {MAX_TUNE_IMAGES} images: the run needs --yes")


def _render_tune(console: Console, result: TuneResult) -> None:
    console.table(
        f"tune {result.plan.character} ({result.plan.method})",
        ["cell", "face consistency", "prompt adherence", "mean similarity", "images", ""],
        [
            (r.cell.label(), *_rates(r.rates), "<- chosen" if r.cell == result.chosen else "")
            for r in result.results
        ],
    )
    console.info(f"rule: {result.rule}")
    if result.chosen is None:
        console.warning("nothing chosen; the profile is unchanged")
    for key, value in result.applied.items():
        console.success(f"{key} set to {value:g} (provenance: {result.plan.run})")
    for key, value in result.kept_by_hand.items():
        console.warning(f"kept {key} {value:g}, set by hand; --apply writes the tuned value")


def _render_report(console: Console, found: ConsistencyReport) -> None:
    _report_table(console, f"{found.character}: expected results, measured", found.rows)
    if found.versions:
        _report_table(console, "per LoRA version", found.versions)
    if found.suggestion:
        console.success(found.suggestion)
    for note in found.notes:
        console.warning(note)
    if found.html:
        console.info(f"HTML report: {found.html}")


def _report_table(console: Console, title: str, rows: list[ReportRow]) -> None:
    variations = sorted({v for r in rows for v in r.per_variation})
    console.table(
        title,
        [
            "row",
            "strengths",
            "face consistency",
            "prompt adherence",
            "mean similarity",
            "images",
            "expected",
            *variations,
        ],
        [
            (
                r.label,
                r.cell.label(),
                *_rates(r.rates),
                r.expected or "-",
                *(
                    _pct(r.per_variation[v].face_consistency) if v in r.per_variation else "-"
                    for v in variations
                ),
            )
            for r in rows
        ],
    )
