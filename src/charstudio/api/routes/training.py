"""Training: start (a job), LoRA versions, promote the one generation uses."""

from __future__ import annotations

from fastapi import APIRouter, status

from charstudio.http import QueueDep, ServicesDep, TrainRequest
from charstudio.jobs import JobInfo, submit_train
from charstudio.training import LoraVersionInfo

router = APIRouter(prefix="/characters/{name}", tags=["training"])


@router.post("/train", status_code=status.HTTP_202_ACCEPTED)
def train(name: str, body: TrainRequest, services: ServicesDep, queue: QueueDep) -> JobInfo:
    """Queue a LoRA training run (settings checked now: 400 names a bad key)."""
    return submit_train(services, queue, name, body.set, resume=body.resume)


@router.get("/loras")
def list_loras(name: str, services: ServicesDep) -> list[LoraVersionInfo]:
    """Every LoRA version with its state, training set, loss curve and samples."""
    return services.training.list_versions(name)


@router.post("/loras/{version}/promote")
def promote_lora(name: str, version: str, services: ServicesDep) -> LoraVersionInfo:
    """Make this version (``v2`` or ``2``) the one generation uses."""
    return services.training.promote(name, version)
