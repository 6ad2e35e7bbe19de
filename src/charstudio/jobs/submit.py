"""Queueing work: one ``submit_*`` function per job kind, with the checks that can be made
before anything is queued (the character exists, the settings parse, the generation can
be planned). The CLI, the API and the studio call these, never the queue directly, so a
request refused on one surface is refused with the same message on the others.
"""

from __future__ import annotations

from pathlib import Path

from charstudio.backends import GenerateRequest
from charstudio.dataset import DatasetConfig
from charstudio.errors import InvalidParameter
from charstudio.faces import BackendName
from charstudio.jobs.kinds import (
    DATASET_PREPARE,
    FACES_EXTRACT,
    FACES_SCORE,
    GENERATE,
    REPORT,
    TRAIN,
    TUNE,
    DatasetPrepareParams,
    FacesExtractParams,
    FacesScoreParams,
    ReportParams,
    TrainParams,
    TuneParams,
)
from charstudio.jobs.queue import JobQueue
from charstudio.jobs.types import JobInfo
from charstudio.lab import MAX_TUNE_IMAGES
from charstudio.library import from_stored, to_stored
from charstudio.services import Services
from charstudio.training.config import load_config

__all__ = [
    "submit_dataset_prepare",
    "submit_faces_extract",
    "submit_faces_score",
    "submit_generate",
    "submit_report",
    "submit_train",
    "submit_tune",
]


def submit_faces_extract(
    services: Services, queue: JobQueue, name: str, *, backend: BackendName | None = None
) -> JobInfo:
    """Queue face identity extraction, with ``backend`` (e.g. ``ccip`` for a drawn
    character) as the character's from now on.

    Raises:
        NotFound: no such character.
        ModelFileMissing, BackendUnavailable, InvalidParameter: the backend's model files
            are not set up (``FaceService.extract_spec``: the CLI's message, naming the
            setting to set); refused now rather than failed in the worker.
    """
    stored = services.library.get_name(name)
    services.faces.extract_spec(stored, backend)
    params = FacesExtractParams(backend=backend)
    return queue.submit(FACES_EXTRACT, character=stored, params=params)


def submit_dataset_prepare(
    services: Services, queue: JobQueue, name: str, config: DatasetConfig
) -> JobInfo:
    """Queue training-set preparation; the tagger setting (``CHARSTUDIO_TAGGER``) applies
    as in the CLI. Raises NotFound: no such character."""
    stored = services.library.get_name(name)
    config = config.with_default_tagger(services.settings.tagger)
    return queue.submit(
        DATASET_PREPARE, character=stored, params=DatasetPrepareParams(config=config)
    )


def submit_faces_score(
    services: Services,
    queue: JobQueue,
    name: str,
    paths: list[Path],
    *,
    for_job: str | None = None,
) -> JobInfo:
    """Queue identity scores of stored images (a relative path is relative to the data
    root); the job names them relative to the root, so a worker that mounts it elsewhere
    finds them. Raises NotFound: no such character."""
    stored = services.library.get_name(name)
    home = services.store.home
    relative = [Path(to_stored(home, from_stored(home, str(path)))) for path in paths]
    return queue.submit(
        FACES_SCORE, character=stored, params=FacesScoreParams(paths=relative, for_job=for_job)
    )


def submit_train(
    services: Services, queue: JobQueue, name: str, overrides: list[str], *, resume: bool = False
) -> JobInfo:
    """Queue a LoRA training run; the settings are parsed now (a bad key is refused now).

    Raises:
        NotFound: no such character; InvalidParameter: a bad override.
    """
    stored = services.library.get_name(name)
    if not resume:
        load_config(None, overrides)
    return queue.submit(
        TRAIN, character=stored, params=TrainParams(overrides=overrides, resume=resume)
    )


def submit_generate(
    services: Services, queue: JobQueue, name: str, request: GenerateRequest
) -> JobInfo:
    """Queue a generation, planned first: what the worker would refuse is refused now.

    The job's message carries the plan's warnings (e.g. a pose photo that needs the
    preprocessor's weights on the server).

    A ``pose`` image must be under the data root (a relative path is relative to it); the
    job names it relative to the root, so a worker that mounts it elsewhere finds it.

    Raises:
        InvalidParameter, NotFound, UnsupportedImage: see ``GenerationService.plan``;
            a pose image outside the data root.
    """
    home = services.store.home
    if request.pose is not None:
        request = request.model_copy(update={"pose": from_stored(home, str(request.pose))})
    if request.pose is not None and not request.pose.resolve().is_relative_to(home.resolve()):
        raise InvalidParameter(
            f"pose image {request.pose.name}: a queued generation reads its pose image from "
            "the data root (where every worker finds it); upload it with the studio, or "
            "generate from the CLI with a local file"
        )
    plan = services.generation.plan(name, request)
    if request.pose is not None:
        request = request.model_copy(update={"pose": Path(to_stored(home, request.pose))})
    return queue.submit(
        GENERATE,
        character=plan.profile.name,
        params=request,
        message="; ".join(plan.warnings),
    )


def submit_tune(services: Services, queue: JobQueue, name: str, params: TuneParams) -> JobInfo:
    """Queue a tune run, planned first (a bad axis, no identity, or a grid over the limit
    without ``yes`` is refused now, with what it would cost).

    Raises:
        InvalidParameter, NotFound: see ``LabService.plan_tune``.
    """
    plan = services.lab.plan_tune(name, params.spec)
    if plan.images > MAX_TUNE_IMAGES and not params.yes:
        raise InvalidParameter(
            f"this grid is {len(plan.cells)} cells x {plan.images_per_cell} images = "
            f"{plan.images} images, over {MAX_TUNE_IMAGES}; send yes: true to run it, or use "
            "fewer strengths, prompts or seeds"
        )
    return queue.submit(TUNE, character=plan.character, params=params)


def submit_report(services: Services, queue: JobQueue, name: str, params: ReportParams) -> JobInfo:
    """Queue a report (measured, or from history).

    Raises:
        NotFound: no such character; no face identity (a measured report scores with it).
    """
    stored = services.library.get_name(name)
    if not params.from_history:
        services.qc.checker(stored)
    return queue.submit(REPORT, character=stored, params=params)
