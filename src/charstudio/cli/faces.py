"""``charstudio faces ...``: identity extraction, the IP-Adapter reference, identity scores."""

from __future__ import annotations

from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption
from charstudio.cli.qc import score as qc_score
from charstudio.faces.service_types import ExtractReport, ReferenceReport
from charstudio.faces.types import BackendName

__all__ = ["app"]

app = typer.Typer(
    help="Face identity: extract, choose the reference, score images.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Character name.")]
BackendOption = Annotated[
    BackendName | None,
    typer.Option(
        "--backend",
        help="Identity backend for this character: dlib or insightface (photographs; "
        "CHARSTUDIO_INSIGHTFACE_ROOT), ccip (drawn characters; CHARSTUDIO_CCIP_MODEL_DIR). "
        "Default: the one its identity was made with, else CHARSTUDIO_FACE_BACKEND.",
    ),
]


@app.command("extract")
def extract(
    ctx: typer.Context,
    name: NameArg,
    backend: BackendOption = None,
    json_output: JsonOption = False,
) -> None:
    """Detect and embed the face (or drawn character) in every reference; build the
    identity; flag outliers; choose the IP-Adapter reference."""
    console = Console(json_mode=json_output)
    with console.progress("Analysing faces") as progress:
        report = services_of(ctx).faces.extract(name, backend=backend, progress=progress)
    if json_output:
        console.json(report)
        return
    _render_extract(console, report)


@app.command("reference")
def reference(
    ctx: typer.Context,
    name: NameArg,
    use: Annotated[
        str | None,
        typer.Option("--use", help="Make this image (file name or SHA-256 prefix) the reference."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show (or set) the image IP-Adapter uses for the character."""
    console = Console(json_mode=json_output)
    faces = services_of(ctx).faces
    report = faces.choose_reference(name, use) if use else faces.reference(name)
    if json_output:
        console.json(report)
        return
    _render_reference(console, report)


# ``faces score`` is ``qc score`` under its first name: the same options and report.
app.command(
    "score", help="Alias of `charstudio qc score`: identity, soundness and prompt adherence."
)(qc_score)


def _render_extract(console: Console, report: ExtractReport) -> None:
    unusable = len(report.images) - report.inliers - report.outliers
    console.success(
        f"{report.character}: identity from {report.inliers} image(s); {report.outliers} "
        f"outlier(s) and {unusable} without one usable {report.subject} left out "
        f"({report.backend}/{report.model}, {report.dim}-D, "
        f"{_decision(report.backend, report.threshold)})"
    )
    if report.note:
        console.warning(report.note)
    console.table(
        None,
        ["image", "status", "faces", "similarity", "note"],
        [
            (
                img.original_name,
                img.status,
                img.faces,
                "-" if img.similarity is None else f"{img.similarity:.3f}",
                img.reason or img.message,
            )
            for img in report.images
        ],
    )
    for path in report.files:
        console.info(f"wrote {path}")
    if report.reference is not None:
        _render_reference(console, report.reference)


def _render_reference(console: Console, report: ReferenceReport) -> None:
    console.fields(
        "IP-Adapter reference",
        [
            ("image", f"{report.original_name} ({report.chosen_by})"),
            ("score", None if report.score is None else f"{report.score:.3f}"),
            ("face crop", report.face_crop),
            ("full image", report.full_image),
        ],
    )


def _decision(backend: str, threshold: float) -> str:
    """The same-person (or same-character) rule in the backend's own terms."""
    if backend == "ccip":
        return (
            f"same character at score >= {threshold:.3f}, i.e. CCIP difference "
            f"<= {1.0 - threshold:.3f}"
        )
    return f"same person at cosine >= {threshold:.3f}"
