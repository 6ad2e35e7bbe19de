"""Generation backends: one :class:`Backend` interface, a ComfyUI server pool behind it.

``types`` (request, progress, cancellation, images), ``base`` (the Protocol),
``comfyui`` (one server's client), ``comfyui_events`` (its ``/ws`` stream),
``comfyui_follow`` (following a prompt to its end), ``comfyui_errors`` (run-time
failures as messages), ``model_files`` (files the IP-Adapter presets look for),
``pool`` (choosing servers, retrying lost jobs), ``comfyui_backend`` (the Backend over a
pool), ``outputs`` (PNG files with embedded parameters), ``records`` (library rows) and
``service`` (the generation service the CLI, API and jobs call).
"""

from charstudio.backends.base import Backend, SupportsCheck
from charstudio.backends.comfyui import ClientOptions, ComfyUIClient, PromptOutcome
from charstudio.backends.comfyui_backend import ComfyUIBackend, run_request
from charstudio.backends.comfyui_events import Event, EventStream
from charstudio.backends.outputs import PARAMETERS_KEY, StoredImage, read_parameters, store_image
from charstudio.backends.pool import ComfyUIPool, PoolJob, PoolOptions, ServerState
from charstudio.backends.service import GenerationPlan, GenerationService
from charstudio.backends.service_types import (
    GeneratedImage,
    GenerateRequest,
    GenerationDefaults,
    GenerationResult,
    WorkflowPlan,
)
from charstudio.backends.types import (
    MAX_COUNT,
    BackendImage,
    CancelToken,
    GenerationRequest,
    ProgressEvent,
    ProgressSink,
    ServerNames,
    upload_name,
)

__all__ = [
    "MAX_COUNT",
    "PARAMETERS_KEY",
    "Backend",
    "BackendImage",
    "CancelToken",
    "ClientOptions",
    "ComfyUIBackend",
    "ComfyUIClient",
    "ComfyUIPool",
    "Event",
    "EventStream",
    "GenerateRequest",
    "GeneratedImage",
    "GenerationDefaults",
    "GenerationPlan",
    "GenerationRequest",
    "GenerationResult",
    "GenerationService",
    "PoolJob",
    "PoolOptions",
    "ProgressEvent",
    "ProgressSink",
    "PromptOutcome",
    "ServerNames",
    "ServerState",
    "StoredImage",
    "SupportsCheck",
    "WorkflowPlan",
    "read_parameters",
    "run_request",
    "store_image",
    "upload_name",
]
