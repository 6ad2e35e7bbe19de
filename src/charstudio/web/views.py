"""What the pages show, assembled from the services' typed results (no queries here).

Each builder takes the services (and the job queue) and returns small frozen records the
templates read; the numbers and words come from the services, not from the templates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from charstudio.errors import CharstudioError, NotFound
from charstudio.faces import BACKEND_NAMES, BackendName
from charstudio.jobs import JobInfo, JobQueue
from charstudio.library.profile import CharacterConsistencyProfile
from charstudio.library.types import ReferenceInfo
from charstudio.services import Services
from charstudio.training import LoraVersionInfo
from charstudio.web.plots import loss_svg
from charstudio.web.render import file_url

__all__ = [
    "BackendChoice",
    "BackendPicker",
    "Card",
    "LoraView",
    "ReferenceView",
    "backend_field",
    "backend_picker",
    "dataset_view",
    "latest_score_job",
    "library_cards",
    "lora_views",
    "reference_views",
]

# faces extract statuses in plain words (FaceImageReport.status).
STATUS_WORDS = {
    "ok": "one clear face",
    "outlier": "a face that does not match the others",
    "no_face": "no face found",
    "several_faces": "several faces, none clearly the main one",
    "face_too_small": "the face is too small",
    "unreadable": "the file could not be read",
}
BACKEND_LABELS: dict[BackendName, str] = {
    "dlib": "dlib: photographs",
    "insightface": "InsightFace: photographs (non-commercial weights)",
    "ccip": "CCIP: drawn characters (anime, illustration)",
}


@dataclass(frozen=True)
class Card:
    name: str
    trigger_word: str
    method: str
    references: int
    lora_version: int | None
    face_url: str | None
    consistency: float | None
    scored_images: int


def latest_score_job(
    queue: JobQueue, character: str, *, for_job: str | None = None
) -> JobInfo | None:
    """The newest identity-score job of a character (for one generation job, if given)."""
    for job in queue.store.page(character=character, limit=200, offset=0).items:
        if job.kind != "faces_score":
            continue
        if for_job is None and job.state == "succeeded":
            return job
        if for_job is not None and job.params.get("for_job") == for_job:
            return job
    return None


def latest_consistency(queue: JobQueue, character: str) -> tuple[float | None, int]:
    """The character's newest measured face consistency and how many images it is over:
    from a gated generation (QC while generating) or an identity-score job, the newer."""
    for job in queue.store.page(character=character, limit=200, offset=0).items:
        rate = job.result.get("face_consistency")
        if job.kind == "generate" and job.has_result and job.result.get("qc") and rate is not None:
            return float(rate), int(job.result.get("attempts", 0))
        if job.kind == "faces_score" and job.state == "succeeded":
            return rate, int(job.result.get("total", 0))
    return None, 0


def library_cards(services: Services, queue: JobQueue) -> list[Card]:
    home = services.settings.home
    cards = []
    for summary in services.library.list_characters():
        profile = services.library.profile(summary.name)
        face = services.store.embeddings_dir / f"{summary.name}_reference_face.png"
        consistency, scored = latest_consistency(queue, summary.name)
        cards.append(
            Card(
                name=summary.name,
                trigger_word=summary.trigger_word,
                method=summary.method,
                references=summary.reference_images,
                lora_version=profile.lora_version,
                face_url=file_url(home, face if face.is_file() else profile.reference_image),
                consistency=consistency,
                scored_images=scored,
            )
        )
    return cards


@dataclass(frozen=True)
class ReferenceView:
    ref: ReferenceInfo
    url: str | None
    status: str | None
    status_words: str
    box_style: str | None  # CSS left/top/width/height in % of the image
    similarity: float | None
    reason: str | None
    chosen: bool


def reference_views(services: Services, refs: list[ReferenceInfo]) -> list[ReferenceView]:
    views = []
    for ref in refs:
        details = ref.face_details
        box = details.get("box")
        style = None
        if box and ref.width and ref.height:
            x0, y0, x1, y1 = (float(v) for v in box)
            style = (
                f"left:{100 * x0 / ref.width:.2f}%;top:{100 * y0 / ref.height:.2f}%;"
                f"width:{100 * (x1 - x0) / ref.width:.2f}%;"
                f"height:{100 * (y1 - y0) / ref.height:.2f}%"
            )
        views.append(
            ReferenceView(
                ref=ref,
                url=file_url(services.settings.home, ref.stored_path),
                status=ref.face_status,
                status_words=STATUS_WORDS.get(ref.face_status or "", "not analysed yet"),
                box_style=style,
                similarity=details.get("similarity"),
                reason=details.get("reason"),
                chosen=ref.ipadapter_reference is not None,
            )
        )
    return views


def dataset_view(services: Services, name: str) -> dict[str, Any] | None:
    """The current training set (``config.json``) with image URLs, or ``None`` before one."""
    try:
        data = services.datasets.current(name)
    except NotFound:
        return None
    folder = services.store.training_set_dir(name) / "images"
    for image in data.get("images", []):
        image["url"] = file_url(services.settings.home, folder / image["file_name"])
    return data


@dataclass(frozen=True)
class LoraView:
    info: LoraVersionInfo
    plot: Markup | None
    samples: dict[str, list[str]]  # checkpoint folder -> image URLs


def lora_views(services: Services, name: str) -> list[LoraView]:
    """LoRA versions, newest first, with their loss curve and samples per checkpoint."""
    home = services.settings.home
    views = []
    for info in reversed(services.training.list_versions(name)):
        samples: dict[str, list[str]] = {}
        for sample in info.samples:
            url = file_url(home, home / sample)
            if url is not None:
                samples.setdefault(Path(sample).parent.name, []).append(url)
        plot = loss_svg(info.loss_curve, label=f"{name} v{info.version}")
        views.append(LoraView(info=info, plot=plot, samples=samples))
    return views


@dataclass(frozen=True)
class BackendChoice:
    name: BackendName
    label: str
    problem: str | None  # why it cannot be used now (models not set up), the fix named


@dataclass(frozen=True)
class BackendPicker:
    choices: list[BackendChoice]
    selected: str  # the character's identity backend, else the settings' default


def backend_picker(services: Services, profile: CharacterConsistencyProfile) -> BackendPicker:
    """The identity backends to choose from, each with what is missing to use it (the
    check an extract makes before it is queued: ``FaceService.extract_spec``)."""
    choices = [
        BackendChoice(name, BACKEND_LABELS[name], _backend_problem(services, profile.name, name))
        for name in BACKEND_NAMES
    ]
    made_by = (profile.identity_backend or "").split("/")[0]
    selected = made_by if made_by in BACKEND_NAMES else services.faces.spec.name
    return BackendPicker(choices=choices, selected=selected)


def backend_field(services: Services, name: str, text: str) -> tuple[BackendName | None, str]:
    """The form's identity backend (blank: the character's own) and its field error, ``""``
    when it can be used."""
    known: dict[str, BackendName] = {n: n for n in BACKEND_NAMES}
    if not text:
        return None, ""
    if text not in known:
        return None, f"{text!r} is not an identity backend; choose {', '.join(BACKEND_NAMES)}"
    return known[text], _backend_problem(services, name, known[text]) or ""


def _backend_problem(services: Services, name: str, backend: BackendName) -> str | None:
    try:
        services.faces.extract_spec(name, backend)
    except CharstudioError as exc:
        return str(exc)
    return None
