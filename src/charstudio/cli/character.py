"""``charstudio character ...``: add, import, list, show, set and remove characters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption, flag
from charstudio.lab import read_provenance
from charstudio.library import CharacterDetail, ImportResult, Method

__all__ = ["app"]

app = typer.Typer(help="Manage characters and their reference images.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Character name (letters, digits, - and _).")]
SkipBadOption = Annotated[
    bool,
    flag("--skip-bad", help="Import the good images and report the bad ones."),
]


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    images: Annotated[
        list[str] | None,
        typer.Option(
            "--images", "-i", help="Image files or folders (repeatable).", show_default=False
        ),
    ] = None,
    more: Annotated[
        list[str] | None,
        typer.Argument(
            help="More image files or folders (so --images a.png b/ works).", show_default=False
        ),
    ] = None,
    trigger_word: Annotated[
        str | None, typer.Option(help="Trigger word; default <name>character.")
    ] = None,
    description: Annotated[str, typer.Option(help="Free-text description.")] = "",
    skip_bad: SkipBadOption = False,
    json_output: JsonOption = False,
) -> None:
    """Create a character from reference images; originals are copied, never moved."""
    console = Console(json_mode=json_output)
    with console.progress("Checking images") as progress:
        result = services_of(ctx).library.create(
            name,
            [Path(p) for p in [*(images or []), *(more or [])]],
            trigger_word=trigger_word,
            description=description,
            skip_bad=skip_bad,
            progress=progress,
        )
    _render_import(console, result)


@app.command("import")
def import_(
    ctx: typer.Context,
    name: NameArg,
    images: Annotated[list[str], typer.Argument(help="Image files or folders.")],
    skip_bad: SkipBadOption = False,
    json_output: JsonOption = False,
) -> None:
    """Add more reference images to an existing character."""
    console = Console(json_mode=json_output)
    with console.progress("Checking images") as progress:
        result = services_of(ctx).library.import_images(
            name, [Path(p) for p in images], skip_bad=skip_bad, progress=progress
        )
    _render_import(console, result)


@app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """List every character with its method."""
    console = Console(json_mode=json_output)
    characters = services_of(ctx).library.list_characters()
    if json_output:
        console.json(characters)
        return
    if not characters:
        console.info("no characters yet: charstudio character add NAME --images PATH")
        return
    console.table(
        None,
        ["name", "trigger word", "references", "method", "LoRA", "face identity"],
        [
            (
                c.name,
                c.trigger_word,
                c.reference_images,
                c.method,
                _yes(c.has_lora),
                _yes(c.has_embedding),
            )
            for c in characters
        ],
    )


@app.command("show")
def show(ctx: typer.Context, name: NameArg, json_output: JsonOption = False) -> None:
    """Show a character's profile (method and parameters) and reference images."""
    console = Console(json_mode=json_output)
    services = services_of(ctx)
    detail = services.library.show(name)
    if json_output:
        console.json(detail)
        return
    _render_detail(console, detail)
    tuned = read_provenance(services.store, detail.name)
    if tuned is not None:
        console.info(
            f"strengths tuned by {tuned.run} on {tuned.date:%Y-%m-%d}"
            + (f" with LoRA v{tuned.lora_version}" if tuned.lora_version else "")
            + f": face consistency {tuned.face_consistency:.0%} "
            "(charstudio report NAME --from-history)".replace("NAME", detail.name)
        )


# The QC policy's options (``character set --qc-*``), in their own help panel.
_QC = "Quality control"
QCMinIdentityOpt = Annotated[
    float | None,
    typer.Option(
        help="QC: smallest identity similarity kept (0-1; default: the face backend's threshold).",
        rich_help_panel=_QC,
    ),
]
QCMinAdherenceOpt = Annotated[
    float | None,
    typer.Option(help="QC: smallest prompt-adherence score kept (0-1).", rich_help_panel=_QC),
]
QCExtraAttemptsOpt = Annotated[
    int | None,
    typer.Option(
        help="QC: images generated beyond the count per requested image (0-20, default 3).",
        rich_help_panel=_QC,
    ),
]
QCCandidatesOpt = Annotated[
    int | None,
    typer.Option(
        help="QC: candidates per requested image, the best passing kept (1-8, default 1).",
        rich_help_panel=_QC,
    ),
]


@app.command("set")
def set_(
    ctx: typer.Context,
    name: NameArg,
    lora_strength: Annotated[float | None, typer.Option(help="LoRA strength (0-2).")] = None,
    ipadapter_strength: Annotated[
        float | None, typer.Option(help="IP-Adapter strength (0-2).")
    ] = None,
    character_weight: Annotated[
        float | None,
        typer.Option(help="Identity vs outfit (0-1): 0 only the face, 1 face, hair and outfit."),
    ] = None,
    cfg: Annotated[float | None, typer.Option(help="CFG scale (1-30).")] = None,
    steps: Annotated[int | None, typer.Option(help="Sampling steps (1-150).")] = None,
    denoise: Annotated[float | None, typer.Option(help="img2img denoise (0-1].")] = None,
    sampler: Annotated[
        str | None, typer.Option(help="KSampler sampler (checked when generating).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="KSampler scheduler (checked when generating).")
    ] = None,
    negative_prompt: Annotated[
        str | None,
        typer.Option(
            help="The character's negative prompt (a generation's --negative adds to it)."
        ),
    ] = None,
    method: Annotated[
        Method | None, typer.Option(help="Pin a method the character's assets allow.")
    ] = None,
    trigger_word: Annotated[str | None, typer.Option(help="New trigger word.")] = None,
    description: Annotated[str | None, typer.Option(help="New description.")] = None,
    qc_min_identity: QCMinIdentityOpt = None,
    qc_min_adherence: QCMinAdherenceOpt = None,
    qc_extra_attempts: QCExtraAttemptsOpt = None,
    qc_candidates: QCCandidatesOpt = None,
    reset: Annotated[
        list[str] | None,
        typer.Option(help="Drop an override, back to the method default (repeatable)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Override a character's generation defaults."""
    console = Console(json_mode=json_output)
    profile = services_of(ctx).library.update(
        name,
        overrides={
            "lora_strength": lora_strength,
            "ipadapter_strength": ipadapter_strength,
            "character_weight": character_weight,
            "cfg": cfg,
            "steps": steps,
            "denoise": denoise,
            "sampler": sampler,
            "scheduler": scheduler,
            "negative_prompt": negative_prompt,
            "method": method,
            "qc_min_identity": qc_min_identity,
            "qc_min_adherence": qc_min_adherence,
            "qc_extra_attempts": qc_extra_attempts,
            "qc_candidates": qc_candidates,
        },
        reset=reset,
        trigger_word=trigger_word,
        description=description,
    )
    if json_output:
        console.json(profile)
        return
    console.success(f"updated {profile.name}")
    console.fields("parameters", [(k, v) for k, v in profile.params.model_dump().items()])
    for warning in profile.warnings:
        console.warning(warning)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: NameArg,
    yes: Annotated[bool, flag("--yes", "-y", help="Do not ask for confirmation.")] = False,
    purge: Annotated[
        bool, flag(help="Also delete the character's files (references, LoRAs, outputs).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Remove a character from the library; its files are kept unless --purge."""
    console = Console(json_mode=json_output)
    library = services_of(ctx).library
    stored = library.get_name(name)
    if not yes:
        what = "and DELETE its files" if purge else "(its files are kept)"
        if not typer.confirm(f"Remove character {stored!r} {what}?", default=False):
            console.abort("not removed", code=1)
    result = library.remove(stored, purge=purge)
    if json_output:
        console.json(result)
        return
    console.success(f"removed {result.name}")
    for path in result.files_kept:
        console.info(f"kept {path}")
    for path in result.files_removed:
        console.info(f"deleted {path}")


def _render_import(console: Console, result: ImportResult) -> None:
    if console.json_mode:
        console.json(result)
        return
    verb = "created" if result.created else "updated"
    console.success(
        f"{verb} {result.character}: {len(result.added)} image(s) added, "
        f"{len(result.duplicates)} duplicate(s), {len(result.skipped)} skipped"
    )
    for dup in result.duplicates:
        console.warning(f"duplicate: {dup.source} is the same image as {dup.duplicate_of}")
    for skipped in result.skipped:
        console.warning(f"skipped: {skipped.source}: {skipped.reason}")


def _render_detail(console: Console, detail: CharacterDetail) -> None:
    profile = detail.profile
    console.fields(
        f"character {detail.name}",
        [
            ("trigger word", detail.trigger_word),
            ("description", detail.description or None),
            ("method", f"{profile.method} ({profile.method_reason})"),
            ("LoRA", f"v{profile.lora_version} {profile.lora_path}" if profile.has_lora else None),
            (
                "face identity",
                f"{profile.embedding_path} (made by {profile.identity_backend})"
                if profile.has_embedding
                else None,
            ),
            ("reference image", profile.reference_image),
            ("reference images", profile.reference_images_count),
            ("training images", profile.training_images_count),
        ],
    )
    console.fields(
        "parameters",
        [(k, v) for k, v in profile.params.model_dump().items() if v is not None],
    )
    qc = profile.qc
    console.fields(
        "quality control",
        [
            (
                "min identity",
                "face backend's threshold" if qc.min_identity is None else qc.min_identity,
            ),
            ("min adherence", "scorer's default" if qc.min_adherence is None else qc.min_adherence),
            ("extra attempts", f"{qc.extra_attempts} per requested image"),
            ("candidates", f"{qc.candidates} per requested image (best passing kept)"),
        ],
    )
    if profile.overrides:
        console.fields("overrides", list(profile.overrides.items()))
    console.table(
        "references",
        ["#", "original name", "size", "format", "sha256"],
        [
            (ref.id, ref.original_name, f"{ref.width}x{ref.height}", ref.format, ref.sha256[:12])
            for ref in detail.references
        ],
    )
    for warning in profile.warnings:
        console.warning(warning)


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"
