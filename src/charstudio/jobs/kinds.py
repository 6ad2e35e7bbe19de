"""Every kind of job, declared once: its name, its params model, its result model and its
handler.

A job record stores its params as JSON (``params.model_dump(mode="json")``); the worker
reads them back through the same model (:meth:`JobKind.parse`), so a record written by an
older version, or edited by hand, is refused with the field named instead of crashing
the handler. Adding a kind is one :class:`JobKind` here plus a ``submit_*`` function in
:mod:`charstudio.jobs.submit`.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from charstudio.backends import GenerateRequest, GenerationResult
from charstudio.backends.records import discard_generations
from charstudio.backends.service_types import describe
from charstudio.backends.types import CancelToken, ProgressEvent
from charstudio.dataset import DatasetConfig, PrepareResult
from charstudio.errors import GenerationCancelled, InvalidParameter
from charstudio.faces import BackendName, ExtractReport, ScoreReport
from charstudio.jobs.types import JobCancelled, JobContext
from charstudio.lab import ConsistencyReport, TuneResult, TuneSpec, write_html
from charstudio.library import from_stored
from charstudio.qc.gate import generate_gated
from charstudio.services import Services
from charstudio.training import TrainingResult
from charstudio.training.config import load_config

__all__ = [
    "DATASET_PREPARE",
    "FACES_EXTRACT",
    "FACES_SCORE",
    "GENERATE",
    "KINDS",
    "REPORT",
    "TRAIN",
    "TUNE",
    "DatasetPrepareParams",
    "FacesExtractParams",
    "FacesScoreParams",
    "JobKind",
    "NoParams",
    "ReportParams",
    "TrainParams",
    "TuneParams",
]

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class JobKind(Generic[P, R]):
    """One kind of job.

    Attributes:
        name: What the job record's ``kind`` says.
        params: The params model (what ``submit_*`` stores, what the handler gets).
        result: The result model (what the handler returns, stored as JSON).
        handler: Does the work: ``(services, context, params) -> result``.
    """

    name: str
    params: type[P]
    result: type[R]
    handler: Callable[[Services, JobContext, P], R]

    def parse(self, raw: Mapping[str, Any]) -> P:
        """The stored params, checked again: a record outlives the code that wrote it.

        Raises:
            InvalidParameter: naming each bad field.
        """
        try:
            return self.params.model_validate(raw)
        except ValidationError as exc:
            raise InvalidParameter(f"invalid {self.name} job parameters ({describe(exc)})") from exc

    def run(self, services: Services, ctx: JobContext) -> dict[str, Any]:
        """Parse the params, run the handler, return the result as JSON."""
        result = self.handler(services, ctx, self.parse(ctx.params))
        return result.model_dump(mode="json")


class NoParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FacesExtractParams(BaseModel):
    """``backend``: the character's identity backend from now on (``ccip`` for a drawn
    character); ``None`` keeps its current one (jobs queued before it existed parse too)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    backend: BackendName | None = None


class DatasetPrepareParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    config: DatasetConfig = Field(default_factory=DatasetConfig)


class FacesScoreParams(BaseModel):
    """Images under the data root to score; ``for_job``: the generation they came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    paths: list[Path] = Field(min_length=1)
    for_job: str | None = None


class TrainParams(BaseModel):
    """``section.key=value`` overrides of the training defaults, or ``resume``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    overrides: list[str] = Field(default_factory=list)
    resume: bool = False


class TuneParams(BaseModel):
    """``charstudio tune`` as a job: the grid, and whether to confirm, apply, overwrite."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: TuneSpec = Field(default_factory=TuneSpec)
    yes: bool = False
    apply: bool = True
    force: bool = False


class ReportParams(BaseModel):
    """``charstudio report`` as a job (``from_history``: generate nothing)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: TuneSpec = Field(default_factory=TuneSpec)
    from_history: bool = False
    html: bool = True


def character_of(ctx: JobContext) -> str:
    if ctx.character is None:
        raise InvalidParameter(f"job {ctx.job_id} names no character (it was deleted?)")
    return ctx.character


def _extract_faces(
    services: Services, ctx: JobContext, params: FacesExtractParams
) -> ExtractReport:
    return services.faces.extract(character_of(ctx), backend=params.backend, progress=ctx.progress)


def _prepare_dataset(
    services: Services, ctx: JobContext, params: DatasetPrepareParams
) -> PrepareResult:
    return services.datasets.prepare(character_of(ctx), params.config, progress=ctx.progress)


def _score_faces(services: Services, ctx: JobContext, params: FacesScoreParams) -> ScoreReport:
    # Relative to the data root (an older record's absolute path is read as it is).
    paths = [from_stored(services.store.home, str(path)) for path in params.paths]
    home = services.store.home.resolve()
    for path in paths:
        if not path.resolve().is_relative_to(home):
            raise InvalidParameter(f"{path} is outside the data root; score stored images only")
    return services.faces.score(character_of(ctx), paths, progress=ctx.progress)


def _generate(services: Services, ctx: JobContext, params: GenerateRequest) -> GenerationResult:
    if params.pose is not None:  # relative to the data root, as the job names it
        params = params.model_copy(
            update={"pose": from_stored(services.store.home, str(params.pose))}
        )
    if ctx.attempt > 1:
        _discard_earlier_attempt(services, ctx)
    token = CancelToken()
    try:
        return generate_gated(
            services.generation,
            services.qc.gate,
            character_of(ctx),
            params,
            progress=_StepCounter(ctx, token),
            cancel=token,
            job_id=ctx.job_id,
        )
    except GenerationCancelled as exc:
        raise JobCancelled(str(exc)) from exc


def _discard_earlier_attempt(services: Services, ctx: JobContext) -> None:
    """An attempt whose worker died may have stored images and rows: the job starts over
    (its outputs folder and its ``generations`` rows), so outputs and rows stay one for one
    and no image is counted twice."""
    discard_generations(services.db, ctx.job_id)
    shutil.rmtree(services.store.outputs_dir(character_of(ctx)) / ctx.job_id, ignore_errors=True)


class _StepCounter:
    """Backend progress events -> job progress (sampler steps over all images); a cancel
    request seen at a step cancels the backend through its token."""

    def __init__(self, ctx: JobContext, token: CancelToken) -> None:
        self.ctx, self.token = ctx, token
        self.step, self.total = 0, 0

    def __call__(self, event: ProgressEvent) -> None:
        if event.kind == "step" and event.max:
            self.total = event.total * event.max
            self.step = event.index * event.max + event.value
        try:
            self.ctx.progress(self.step, self.total, event.message or event.kind)
        except JobCancelled:
            self.token.cancel()


def _train(services: Services, ctx: JobContext, params: TrainParams) -> TrainingResult:
    config = None if params.resume else load_config(None, params.overrides)

    def steps(step: int, total: int, loss: float) -> None:
        ctx.progress(step, total, f"step {step}/{total}, loss {loss:.4f}")

    return services.training.train(
        character_of(ctx), config=config, resume=params.resume, progress=steps
    )


def _lab_progress(ctx: JobContext, token: CancelToken) -> Callable[[int, int, str], None]:
    """Cells/rows done -> job progress; a cancel request stops the backend through its token."""

    def progress(done: int, total: int, message: str) -> None:
        try:
            ctx.progress(done, total, message)
        except JobCancelled:
            token.cancel()
            raise

    return progress


def _tune(services: Services, ctx: JobContext, params: TuneParams) -> TuneResult:
    token = CancelToken()
    try:
        return services.lab.tune(
            character_of(ctx),
            params.spec,
            yes=params.yes,
            apply=params.apply,
            force=params.force,
            progress=_lab_progress(ctx, token),
            cancel=token,
        )
    except GenerationCancelled as exc:
        raise JobCancelled(str(exc)) from exc


def _report(services: Services, ctx: JobContext, params: ReportParams) -> ConsistencyReport:
    token = CancelToken()
    name = character_of(ctx)
    try:
        if params.from_history:
            found = services.lab.report_from_history(name)
        else:
            found = services.lab.report(
                name, params.spec, progress=_lab_progress(ctx, token), cancel=token
            )
    except GenerationCancelled as exc:
        raise JobCancelled(str(exc)) from exc
    if params.html:
        found = found.model_copy(update={"html": str(write_html(services.store, found))})
    return found


FACES_EXTRACT = JobKind("faces_extract", FacesExtractParams, ExtractReport, _extract_faces)
DATASET_PREPARE = JobKind("dataset_prepare", DatasetPrepareParams, PrepareResult, _prepare_dataset)
FACES_SCORE = JobKind("faces_score", FacesScoreParams, ScoreReport, _score_faces)
GENERATE = JobKind("generate", GenerateRequest, GenerationResult, _generate)
TRAIN = JobKind("train", TrainParams, TrainingResult, _train)
TUNE = JobKind("tune", TuneParams, TuneResult, _tune)
REPORT = JobKind("report", ReportParams, ConsistencyReport, _report)

KINDS: dict[str, JobKind[Any, Any]] = {
    kind.name: kind
    for kind in (FACES_EXTRACT, DATASET_PREPARE, FACES_SCORE, GENERATE, TRAIN, TUNE, REPORT)
}
