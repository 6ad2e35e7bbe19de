"""Training sets: prepare (a job), read the current set, edit captions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from charstudio.http import CaptionEdit, DatasetRequest, QueueDep, ServicesDep
from charstudio.jobs import JobInfo, submit_dataset_prepare

router = APIRouter(prefix="/characters/{name}/dataset", tags=["datasets"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def prepare_dataset(
    name: str, body: DatasetRequest, services: ServicesDep, queue: QueueDep
) -> JobInfo:
    """Queue training-set preparation with these settings (checked now, 400 if wrong)."""
    return submit_dataset_prepare(services, queue, name, body.config())


@router.get("")
def current_dataset(name: str, services: ServicesDep) -> dict[str, Any]:
    """The current training set's ``config.json``: images, captions, rejections, settings."""
    return services.datasets.current(name)


@router.put("/captions/{image}")
def edit_caption(name: str, image: str, body: CaptionEdit, services: ServicesDep) -> dict[str, Any]:
    """Set (or with null drop) an image's caption; applied by the next prepare."""
    services.datasets.edit_caption(name, image, body.text)
    return {"image": image, "caption": body.text}
