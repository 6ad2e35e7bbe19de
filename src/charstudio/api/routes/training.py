"""Training: start (a job), LoRA versions, promote the one generation uses."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from charstudio.api.deps import QueueDep, ServicesDep
from charstudio.jobs import JobInfo
from charstudio.training import LoraVersionInfo
from charstudio.training.config import load_config

router = APIRouter(prefix="/characters/{name}", tags=["training"])


class TrainRequest(BaseModel):
    """``charstudio train``: ``set`` takes ``section.key=value`` overrides of the defaults."""

    model_config = ConfigDict(extra="forbid")

    set: list[str] = Field(
        default_factory=list, examples=[["lora.rank=16", "training.train_steps=800"]]
    )
    resume: bool = Field(default=False, description="Finish the last interrupted run.")


@router.post("/train", status_code=status.HTTP_202_ACCEPTED)
def train(name: str, body: TrainRequest, services: ServicesDep, queue: QueueDep) -> JobInfo:
    """Queue a LoRA training run (settings checked now: 400 names a bad key)."""
    stored = services.library.get_name(name)
    if not body.resume:
        load_config(None, body.set)
    return queue.submit(
        "train", character=stored, params={"overrides": body.set, "resume": body.resume}
    )


@router.get("/loras")
def list_loras(name: str, services: ServicesDep) -> list[LoraVersionInfo]:
    """Every LoRA version with its state, training set, loss curve and samples."""
    return services.training.list_versions(name)


@router.post("/loras/{version}/promote")
def promote_lora(name: str, version: str, services: ServicesDep) -> LoraVersionInfo:
    """Make this version (``v2`` or ``2``) the one generation uses."""
    return services.training.promote(name, version)
