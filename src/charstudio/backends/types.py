"""Types every generation backend shares: the request, progress, cancellation, the images.

A :class:`GenerationRequest` is backend-neutral: it names *local* files (the character's
LoRA, its reference image, a pose image) and the base model, never a server's upload
names. The ComfyUI backend uploads the images and names the LoRA as ``models/loras``
knows it; the in-process diffusers backend (issue 7) loads the same files directly.
Each backend returns :class:`BackendImage` values (PNG bytes with the graph and
parameters that made them); the generation service stores them the same way for both.

Exceptions live in :mod:`charstudio.errors` (``ComfyUIUnavailable``, ``ServerLost``,
``GenerationFailed``, ``GenerationCancelled``); this module re-exports none of them.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from charstudio.errors import InvalidParameter
from charstudio.library.names import validate_name, validate_trigger_word
from charstudio.library.profile import GenerationParams, Method
from charstudio.workflows import SEED_MAX, ModelFamilyName, PoseControl, Variation, WorkflowRequest
from charstudio.workflows.request import ParamsShortcuts
from charstudio.workflows.types import Graph

__all__ = [
    "MAX_COUNT",
    "BackendImage",
    "CancelToken",
    "GenerationRequest",
    "ProgressEvent",
    "ProgressKind",
    "ProgressSink",
    "ServerNames",
    "upload_name",
]

# More images than this in one command is a batch job, not a generate call.
MAX_COUNT = 64

ProgressKind = Literal[
    "queued", "started", "cached", "step", "preview", "node", "finished", "retry", "stored"
]


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One thing that happened while generating.

    Attributes:
        kind: ``queued`` (accepted by a server), ``started``, ``cached`` (nodes ComfyUI
            reused), ``node`` (a node began), ``step`` (a sampler step), ``preview``
            (a preview frame arrived), ``finished`` (an image's prompt is done),
            ``retry`` (a lost job is resent elsewhere), ``stored`` (saved to disk).
        index: Which image of the request (0-based).
        total: How many images the request makes.
        value: Steps done (``step``), else 0.
        max: Steps in all (``step``), else 0.
        node: The node concerned, if any.
        server: The server running it (``"embedded"`` for in-process backends).
        message: A short human description.
    """

    kind: ProgressKind
    index: int
    total: int
    value: int = 0
    max: int = 0
    node: str | None = None
    server: str = ""
    message: str = ""


ProgressSink = Callable[[ProgressEvent], None]


class CancelToken:
    """Cancels a running generation from any thread.

    Backends register what to do on cancel (interrupt a server, stop a denoising loop)
    with :meth:`on_cancel`; a callback registered after :meth:`cancel` runs at once, so
    there is no window in which a cancel is lost.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Ask every registered backend to stop; idempotent."""
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` on cancel; returns a function that unregisters it."""
        with self._lock:
            if not self._event.is_set():
                self._callbacks.append(callback)
                return lambda: self._remove(callback)
        callback()
        return lambda: None

    def _remove(self, callback: Callable[[], None]) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(callback)


def upload_name(path: Path) -> str:
    """The content-addressed name an image is uploaded to ComfyUI under (same bytes, same
    name): what ``workflow --print`` writes into LoadImage and what ``generate`` uploads."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"charstudio_{digest}{path.suffix.lower()}"


@dataclass(frozen=True, slots=True)
class ServerNames:
    """How one server names the request's files (upload answers, ``models/`` entries)."""

    reference_image: str | None = None
    pose_image: str | None = None
    lora: str | None = None


class GenerationRequest(ParamsShortcuts, BaseModel):
    """One generate call: who, what, with which local files; validated at the door.

    Attributes:
        character: Character name (names ``outputs/<name>/``).
        job: Job id (names ``outputs/<name>/<job>/`` and the SaveImage prefix).
        trigger_word: The LoRA trigger word, first in the prompt.
        prompt: What the user asked for.
        variation: ``outfit``, ``background``, ``pose`` or ``None`` (prompt as given).
        method: Consistency method (from the character's profile).
        params: Strengths, cfg, steps, denoise, sampler, scheduler, negative prompt: the
            profile's values with the request's own applied.
        seeds: One image per seed, each in ``[0, 2^64-1]``.
        seeds_drawn: Whether charstudio drew the seeds (the user asked for random ones).
        checkpoint: Base model (file name in ``models/checkpoints``).
        family: ``sd15`` or ``sdxl``.
        width: Image width (multiple of 8) or ``None`` for the family's default.
        height: Image height (multiple of 8) or ``None``.
        lora_file: The character's LoRA file (LoRA methods).
        lora_version_id: Its ``lora_versions`` row, recorded with each image.
        lora_version: Its version number, recorded with each image (the lab's report
            groups generations by it).
        reference_file: The IP-Adapter / img2img reference image: the square face crop
            for face presets, the whole photo otherwise.
        reference_input: ``face`` (the face crop) or ``full`` (the whole photo).
        pose_file: A pose image for the OpenPose ControlNet (pose variation).
        pose_kind: ``skeleton`` (goes straight to the ControlNet) or ``photo`` (through
            the OpenPose preprocessor first).
        controlnet: OpenPose ControlNet file (with ``pose_file``).
        ipadapter_preset: IP-Adapter preset.
        ipadapter_loader: ``explicit`` names the adapter files (checked in
            ``/object_info``); ``unified`` lets the preset loader find them by name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    character: str
    job: str
    trigger_word: str
    prompt: str
    variation: Variation | None = None
    method: Method
    params: GenerationParams
    seeds: tuple[int, ...] = Field(min_length=1, max_length=MAX_COUNT)
    seeds_drawn: bool = False
    checkpoint: str
    family: ModelFamilyName = "sd15"
    width: int | None = None
    height: int | None = None
    lora_file: Path | None = None
    lora_version_id: int | None = None
    lora_version: int | None = None
    reference_file: Path | None = None
    reference_input: Literal["face", "full"] | None = None
    pose_file: Path | None = None
    pose_kind: Literal["skeleton", "photo"] = "photo"
    controlnet: str | None = None
    ipadapter_preset: str = "PLUS FACE (portraits)"
    ipadapter_loader: Literal["explicit", "unified"] = "explicit"

    @model_validator(mode="wrap")
    @classmethod
    def _as_invalid_parameter(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'request'}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidParameter(f"invalid generation request ({problems})") from exc

    @field_validator("character")
    @classmethod
    def _character(cls, value: str) -> str:
        return validate_name(value)

    @field_validator("trigger_word")
    @classmethod
    def _trigger(cls, value: str) -> str:
        return validate_trigger_word(value)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for seed in value:
            if not 0 <= seed <= SEED_MAX:
                raise InvalidParameter(
                    f"seed {seed} is out of range: use 0 to {SEED_MAX} (2^64-1), or leave "
                    "the seed out for a random one (it is recorded with the image)"
                )
        if len(set(value)) != len(value):
            raise InvalidParameter("the same seed twice would make the same image: drop one")
        return value

    @model_validator(mode="after")
    def _files(self) -> GenerationRequest:
        if (self.pose_file is None) != (self.controlnet is None):
            raise InvalidParameter("a pose image needs an OpenPose ControlNet and vice versa")
        return self

    @property
    def count(self) -> int:
        """How many images the request makes."""
        return len(self.seeds)

    def workflow_request(self, index: int, names: ServerNames) -> WorkflowRequest:
        """The graph builders' request for image ``index``, with one server's file names.

        Images the server has not named yet get the content-addressed names the upload
        will give them (:func:`upload_name`), so a graph built without a server is the
        graph ``generate`` sends.

        Raises:
            InvalidParameter: a value the builders refuse (the message names it).
        """
        pose = None
        if self.pose_file is not None and self.controlnet is not None:
            pose = PoseControl(
                image=names.pose_image or upload_name(self.pose_file),
                controlnet=self.controlnet,
                preprocessor=None if self.pose_kind == "skeleton" else "OpenposePreprocessor",
            )
        reference = names.reference_image
        if reference is None and self.reference_file is not None:
            reference = upload_name(self.reference_file)
        return WorkflowRequest(
            character=self.character,
            job=self.job if self.count == 1 else f"{self.job}-{index + 1}",
            trigger_word=self.trigger_word,
            prompt=self.prompt,
            variation=self.variation,
            method=self.method,
            params=self.params,
            seed=self.seeds[index],
            checkpoint=self.checkpoint,
            family=self.family,
            width=self.width,
            height=self.height,
            lora=names.lora or (self.lora_file.name if self.lora_file else None),
            reference_image=reference,
            ipadapter_preset=self.ipadapter_preset,
            ipadapter_loader=self.ipadapter_loader,
            pose=pose,
        )


@dataclass(frozen=True)
class BackendImage:
    """One image a backend made, with everything needed to store and reproduce it.

    Attributes:
        index: Which image of the request (0-based).
        seed: Its seed.
        png: The PNG bytes as the backend produced them.
        graph: The API-format graph that made it (ComfyUI ``prompt`` chunk).
        workflow: The editor-format workflow (ComfyUI ``workflow`` chunk), if any.
        server: Where it ran (a URL, or ``"embedded"``).
        prompt_id: The server's prompt id, if any.
        extra: Backend details worth recording (timings, retries, cached nodes).
    """

    index: int
    seed: int
    png: bytes
    graph: Graph
    workflow: dict[str, Any] | None
    server: str
    prompt_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
