"""``charstudio qc ...``: quality control of any images against a character."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption
from charstudio.qc.report import Distribution, QCScoreReport
from charstudio.qc.types import CheckName, QCResult
from charstudio.workflows import Variation

__all__ = ["app"]

app = typer.Typer(
    help="Quality control: identity, prompt adherence and soundness of images.",
    no_args_is_help=True,
)
_COLUMNS: tuple[CheckName, ...] = (
    "identity",
    "black",
    "blank",
    "exposure",
    "blur",
    "adherence_clip",
    "adherence_tags",
)


@app.command("score")
def score(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Character name (its face identity is used).")],
    images: Annotated[list[str], typer.Argument(help="Image files or folders to check.")],
    prompt: Annotated[
        str, typer.Option(help="The prompt the images were made from (adherence, people).")
    ] = "",
    variation: Annotated[
        Variation | None, typer.Option(help="The variation the images were made with.")
    ] = None,
    subject: Annotated[
        str | None, typer.Option(help="The variation's subject text; default: the prompt.")
    ] = None,
    sheet: Annotated[
        str | None, typer.Option(help="Contact sheet PNG (default: in the outputs folder).")
    ] = None,
    fail_under: Annotated[
        float | None,
        typer.Option(
            "--fail-under",
            min=0.0,
            max=1.0,
            help="Exit 1 when the pass rate (0-1) is below RATE; unreadable files count as "
            "failures. For scripts.",
            metavar="RATE",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Check images against a character: identity, soundness, prompt adherence; a table,
    the distribution and a contact sheet with the thresholds in its legend."""
    console = Console(json_mode=json_output)
    with console.progress("Checking") as progress:
        report = services_of(ctx).qc.score(
            name,
            [Path(p) for p in images],
            prompt=prompt,
            variation=variation,
            subject=subject,
            sheet=Path(sheet) if sheet else None,
            progress=progress,
        )
    if json_output:
        console.json(report)
    else:
        _render(console, report)
    if fail_under is not None and report.pass_rate < fail_under:
        if not json_output:
            console.error(f"pass rate {report.pass_rate:.0%} is below --fail-under {fail_under:g}")
        raise typer.Exit(1)


def _cell(result: QCResult, check: CheckName) -> str:
    entry = result.get(check)
    if entry is None:
        return "-"
    if entry.status == "not_checked":
        return "n/c"
    value = "" if entry.score is None else f"{entry.score:.3g} "
    return f"{value}{'PASS' if entry.passed else 'FAIL'}"


def _render(console: Console, report: QCScoreReport) -> None:
    shown = [c for c in _COLUMNS if any(r.result.get(c) for r in report.images)]
    console.table(
        None,
        ["image", *shown, "result"],
        [
            (
                row.path,
                *(_cell(row.result, c) for c in shown),
                "PASS" if row.result.passed else "FAIL: " + "; ".join(row.result.reasons)[:80],
            )
            for row in report.images
        ],
    )
    console.info(f"identity {_spread(report.identity)}; adherence {_spread(report.adherence)}")
    if report.adherence_note:
        console.warning(report.adherence_note)
    if report.unreadable:
        console.warning(f"{report.unreadable} unreadable file(s), counted as failures")
    console.success(
        f"{report.passed}/{report.total} pass ({report.pass_rate:.0%}); face consistency "
        f"{report.face_consistency:.0%} at "
        f"{'score' if report.face_backend == 'ccip' else 'cosine'} "
        f">= {report.thresholds['identity']:.3f} "
        f"({report.face_backend})"
    )
    console.info(f"contact sheet: {report.contact_sheet}")


def _spread(dist: Distribution) -> str:
    if dist.count == 0:
        return "none measured"
    return (
        f"min {dist.minimum:.3f} median {dist.median:.3f} mean {dist.mean:.3f} "
        f"max {dist.maximum:.3f} (n={dist.count})"
    )
