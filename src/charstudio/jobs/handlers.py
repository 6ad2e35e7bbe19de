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

from charstudio.dataset import DatasetConfig
from charstudio.errors import InvalidParameter
from charstudio.jobs.types import JobContext
from charstudio.services import Services

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


HANDLERS: dict[str, Handler] = {
    "faces_extract": extract_faces,
    "dataset_prepare": prepare_dataset,
    "faces_score": score_faces,
}
