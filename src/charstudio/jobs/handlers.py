"""What each kind of job does: one service call, with the job's progress callback.

A handler takes the services and a :class:`JobContext` and returns a JSON-able result
(the service's typed result, dumped). Parameters were validated when the job was
submitted (the API's request models), and are validated again here because a job record
outlives the code that wrote it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from charstudio.backends.service_types import GenerateSpec
from charstudio.backends.types import CancelToken, ProgressEvent
from charstudio.dataset import DatasetConfig
from charstudio.errors import GenerationCancelled, InvalidParameter
from charstudio.jobs.types import JobCancelled, JobContext
from charstudio.services import Services
from charstudio.training.config import load_config

__all__ = ["HANDLERS", "Handler"]

Handler = Callable[[Services, JobContext], dict[str, Any]]


def _character(ctx: JobContext) -> str:
    if ctx.character is None:
        raise InvalidParameter(f"job {ctx.job_id} names no character (it was deleted?)")
    return ctx.character


def extract_faces(services: Services, ctx: JobContext) -> dict[str, Any]:
    """``charstudio faces extract``: identity and IP-Adapter reference."""
    report = services.faces.extract(_character(ctx), progress=ctx.progress)
    return report.model_dump(mode="json")


def prepare_dataset(services: Services, ctx: JobContext) -> dict[str, Any]:
    """``charstudio dataset prepare`` with the submitted settings."""
    config = DatasetConfig.parse(**ctx.params.get("config", {}))
    result = services.datasets.prepare(_character(ctx), config, progress=ctx.progress)
    return result.model_dump(mode="json")


def score_faces(services: Services, ctx: JobContext) -> dict[str, Any]:
    """``charstudio faces score`` on images stored under the data root."""
    home = services.store.home.resolve()
    paths = [Path(p) for p in ctx.params.get("paths", [])]
    for path in paths:
        if not path.resolve().is_relative_to(home):
            raise InvalidParameter(f"{path} is outside the data root; score stored images only")
    report = services.faces.score(_character(ctx), paths, progress=ctx.progress)
    return report.model_dump(mode="json")


def generate_images(services: Services, ctx: JobContext) -> dict[str, Any]:
    """``charstudio generate``: images on the backend the request names."""
    spec = dict(ctx.params.get("spec", {}))
    if spec.get("seed") is not None:
        spec["seed"] = int(spec["seed"])  # stored as text: seeds reach 2^64-1
    token = CancelToken()
    steps = _StepCounter(ctx, token)
    try:
        result = services.generation.generate(
            GenerateSpec(name=_character(ctx), **spec),
            progress=steps,
            cancel=token,
            job_id=ctx.job_id,
        )
    except GenerationCancelled as exc:
        raise JobCancelled(str(exc)) from exc
    return result.model_dump(mode="json")


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


def train_lora(services: Services, ctx: JobContext) -> dict[str, Any]:
    """``charstudio train``: a LoRA version (or ``resume`` the interrupted one)."""
    resume = bool(ctx.params.get("resume", False))
    config = None if resume else load_config(None, list(ctx.params.get("overrides", [])))

    def steps(step: int, total: int, loss: float) -> None:
        ctx.progress(step, total, f"step {step}/{total}, loss {loss:.4f}")

    result = services.training.train(_character(ctx), config=config, resume=resume, progress=steps)
    return result.model_dump(mode="json")


HANDLERS: dict[str, Handler] = {
    "faces_extract": extract_faces,
    "dataset_prepare": prepare_dataset,
    "faces_score": score_faces,
    "generate": generate_images,
    "train": train_lora,
}
