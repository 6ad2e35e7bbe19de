"""What the in-process diffusers backend refuses whatever files it has: checked by the
generation service before queueing, and by the backend again. Light on purpose: no torch."""

from __future__ import annotations

from charstudio.backends.diffusers_schedulers import check_sampler
from charstudio.backends.types import GenerationRequest
from charstudio.errors import InvalidParameter

__all__ = ["check_request"]


def check_request(request: GenerationRequest) -> None:
    """What the in-process backend refuses whatever files it has (the generation service
    asks before queueing).

    Raises:
        InvalidParameter: a sampler without a diffusers equivalent, or a pose photo (there
            is no pose detector in-process).
    """
    check_sampler(request.sampler, request.scheduler)
    if request.pose_file is not None and request.pose_kind != "skeleton":
        raise InvalidParameter(
            f"the pose image {request.pose_file.name} is a photo and the in-process backend has "
            "no pose detector: give an OpenPose skeleton image (--pose-kind skeleton) or "
            "generate with --backend comfyui"
        )
