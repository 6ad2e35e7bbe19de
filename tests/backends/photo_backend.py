"""A :class:`~charstudio.backends.base.Backend` that returns real photographs: the in-process
backend's test double for tests that run the generation service (and QC) without ComfyUI.

Use it as ``GenerationService(backends={"photos": lambda: PhotoBackend(scenario)})`` and
``GenerateRequest(backend="photos", ...)``. Each seed of the request gets the photograph
the :class:`~tests.backends.photo_outputs.PhotoScenario` chooses for it at the request's
identity strength (the larger of ``params.lora_strength`` and ``params.ipadapter_strength``),
at the request's size (the family's default when it gives none; img2img: the reference's),
as PNG with the ComfyUI graph the diffusers backend would record.
"""

from __future__ import annotations

import json

from PIL import Image

from charstudio.backends.types import (
    BackendImage,
    CancelToken,
    GenerationRequest,
    ProgressEvent,
    ProgressSink,
    ServerNames,
)
from charstudio.errors import GenerationCancelled
from charstudio.workflows import build_workflow, editor_workflow
from tests.backends.photo_outputs import PhotoScenario, identity_strength

SERVER = "embedded"


class PhotoBackend:
    """Photographs by seed and strength, through the :class:`Backend` interface."""

    name = "photos"

    def __init__(self, scenario: PhotoScenario) -> None:
        self.scenario = scenario
        self.requests: list[GenerationRequest] = []

    def generate(
        self,
        request: GenerationRequest,
        *,
        progress: ProgressSink | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BackendImage]:
        """One photograph per seed (see :class:`~charstudio.backends.base.Backend`)."""
        self.requests.append(request)
        strength = identity_strength(
            request.params.lora_strength, request.params.ipadapter_strength
        )
        images: list[BackendImage] = []
        for index, seed in enumerate(request.seeds):
            if cancel is not None and cancel.cancelled:
                raise GenerationCancelled(f"generation of {request.character} was cancelled")
            graph = build_workflow(request.workflow_request(index, ServerNames()))
            text = {"prompt": json.dumps(graph)}
            png = self.scenario.png(seed, strength, _size(request), text)
            images.append(
                BackendImage(
                    index=index,
                    seed=seed,
                    png=png,
                    graph=graph,
                    workflow=editor_workflow(graph),
                    server=SERVER,
                )
            )
            if progress is not None:
                progress(
                    ProgressEvent(
                        kind="finished",
                        index=index,
                        total=request.count,
                        server=SERVER,
                        message=f"image {index + 1} of {request.count}",
                    )
                )
        return images


def _size(request: GenerationRequest) -> tuple[int, int]:
    """The size the request makes; img2img keeps the reference's, as ComfyUI's does."""
    if request.method == "img2img" and request.reference_file is not None:
        with Image.open(request.reference_file) as reference:
            return reference.size
    return request.workflow_request(0, ServerNames()).size
