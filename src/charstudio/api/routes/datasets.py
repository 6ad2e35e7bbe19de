"""Training sets: prepare (a job), read the current set, edit captions."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, status

from charstudio.api.deps import QueueDep, ServicesDep
from charstudio.api.schemas import CaptionEdit, DatasetRequest
from charstudio.dataset import DatasetConfig
from charstudio.errors import NotFound
from charstudio.jobs import JobInfo

router = APIRouter(prefix="/characters/{name}/dataset", tags=["datasets"])


@router.post("", status_code=status.HTTP_202_ACCEPTED)
def prepare_dataset(
    name: str, body: DatasetRequest, services: ServicesDep, queue: QueueDep
) -> JobInfo:
    """Queue training-set preparation with these settings (checked now, 400 if wrong)."""
    stored = services.library.get_name(name)
    # The tagger setting (CHARSTUDIO_TAGGER) applies here as in the CLI: the job gets it.
    config = DatasetConfig.parse(**body.model_dump()).with_default_tagger(services.settings.tagger)
    return queue.submit(
        "dataset_prepare", character=stored, params={"config": config.model_dump(mode="json")}
    )


@router.get("")
def current_dataset(name: str, services: ServicesDep) -> dict[str, Any]:
    """The current training set's ``config.json``: images, captions, rejections, settings."""
    stored = services.library.get_name(name)
    path = services.store.training_set_dir(stored) / "config.json"
    if not path.is_file():
        raise NotFound(
            f"{stored!r} has no training set yet; POST /api/v1/characters/{stored}/dataset"
        )
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@router.put("/captions/{image}")
def edit_caption(name: str, image: str, body: CaptionEdit, services: ServicesDep) -> dict[str, Any]:
    """Set (or with null drop) an image's caption; applied by the next prepare."""
    services.datasets.edit_caption(name, image, body.text)
    return {"image": image, "caption": body.text}
