"""The results grid of one generation job: its images with their scores.

A gated job (QC ran while it generated) carries every score in its result: each kept
image's QC, the rejected images with their reasons, and the job's rates; the grid shows
them at once, with a filter (kept, rejected, all). A job generated without QC (``--no-qc``,
or before the character had a face identity) is scored by a ``faces_score`` job the page
asks for once it ends, as before QC existed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from charstudio.jobs import JobInfo, JobQueue
from charstudio.library import from_stored
from charstudio.library.models import Generation
from charstudio.services import Services
from charstudio.web.render import file_url
from charstudio.web.views import latest_score_job

__all__ = [
    "SHOW",
    "QCSummary",
    "ResultImage",
    "Results",
    "generation_results",
    "stored_files",
]

Show = Literal["kept", "rejected", "all"]
SHOW: tuple[Show, ...] = ("kept", "rejected", "all")


@dataclass(frozen=True)
class ResultImage:
    index: int
    seed: str
    url: str | None
    path: str
    generation_id: int
    similarity: float | None
    passed: bool | None
    status: str | None
    adherence: float | None = None
    adherence_passed: bool | None = None  # None: not checked
    rejected: bool = False
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class QCSummary:
    """A gated job's rates and counts, as its result states them."""

    requested: int
    kept: int
    rejected: int
    attempts: int
    face_consistency: float
    prompt_adherence: float | None
    partial: bool


@dataclass(frozen=True)
class Results:
    job: JobInfo
    images: list[ResultImage]
    score_job: JobInfo | None
    can_score: bool
    qc: QCSummary | None = None
    show: Show = "kept"


def stored_files(services: Services, images: list[dict[str, Any]]) -> dict[int, Path]:
    """Where a job result's images are on this machine, by generation id, from the library's
    rows (relative to the data root): a result names them so too, but one stored before
    results were relative has the path the worker that made them saw (another machine may
    mount the root elsewhere)."""
    ids = [int(i["generation_id"]) for i in images if i.get("generation_id") is not None]
    if not ids:
        return {}
    with services.db.sessions() as session:
        rows = session.execute(
            select(Generation.id, Generation.path).where(Generation.id.in_(ids))
        ).all()
    return {row_id: from_stored(services.store.home, path) for row_id, path in rows}


def generation_results(
    services: Services, queue: JobQueue, job: JobInfo, *, show: Show = "kept"
) -> Results:
    """A generate job's images with their scores: from QC when the job was gated, else from
    its identity-score job (once that finished)."""
    if job.has_result and job.result.get("qc") is True:
        return _gated(services, job, show)
    made = job.result.get("images", []) if job.has_result else []
    files = stored_files(services, made)
    score_job = latest_score_job(queue, job.character, for_job=job.id) if job.character else None
    scores: dict[str, dict[str, Any]] = {}
    if score_job is not None and score_job.state == "succeeded":
        scores = {Path(s["source"]).name: s for s in score_job.result.get("images", [])}
    images = []
    for item in made:
        score = scores.get(Path(item["path"]).name, {})
        images.append(
            _image(
                services,
                item,
                files,
                similarity=score.get("similarity"),
                passed=score.get("passed"),
                status=score.get("status"),
            )
        )
    can_score = bool(job.character) and services.library.profile(job.character or "").has_embedding
    return Results(job=job, images=images, score_job=score_job, can_score=can_score)


def _gated(services: Services, job: JobInfo, show: Show) -> Results:
    result = job.result
    files = stored_files(
        services, [item["image"] for key in ("kept", "rejected") for item in result.get(key, [])]
    )
    kept = [_checked(services, item["image"], item["qc"], files) for item in result.get("kept", [])]
    rejected = [
        _checked(services, item["image"], item["qc"], files, reasons=tuple(item.get("reasons", ())))
        for item in result.get("rejected", [])
    ]
    summary = QCSummary(
        requested=int(result.get("requested", len(kept))),
        kept=len(kept),
        rejected=len(rejected),
        attempts=int(result.get("attempts", len(kept) + len(rejected))),
        face_consistency=float(result.get("face_consistency", 0.0)),
        prompt_adherence=result.get("prompt_adherence"),
        partial=bool(result.get("partial", False)),
    )
    images = {"kept": kept, "rejected": rejected, "all": kept + rejected}[show]
    return Results(job=job, images=images, score_job=None, can_score=False, qc=summary, show=show)


def _checked(
    services: Services,
    image: dict[str, Any],
    qc: dict[str, Any],
    files: dict[int, Path],
    reasons: tuple[str, ...] = (),
) -> ResultImage:
    """One image of a gated job, its scores read from its stored QC result."""
    checks = {c["check"]: c for c in qc.get("checks", [])}
    identity = checks.get("identity", {})
    adherence = next(
        (
            checks[name]
            for name in ("adherence_clip", "adherence_tags")
            if checks.get(name, {}).get("status", "not_checked") != "not_checked"
        ),
        None,
    )
    failed = any(c.get("status") == "fail" for c in checks.values())
    return _image(
        services,
        image,
        files,
        similarity=identity.get("score"),
        passed=not failed,
        status=qc.get("face_status"),
        adherence=None if adherence is None else adherence.get("score"),
        adherence_passed=None if adherence is None else adherence.get("status") == "pass",
        rejected=bool(reasons),
        reasons=reasons,
    )


def _image(
    services: Services, item: dict[str, Any], files: dict[int, Path], **scores: Any
) -> ResultImage:
    path = files.get(item["generation_id"], Path(item["path"]))
    return ResultImage(
        index=item["index"],
        seed=str(item["seed"]),
        url=file_url(services.settings.home, path),
        path=str(path),
        generation_id=item["generation_id"],
        **scores,
    )
