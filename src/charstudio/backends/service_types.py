"""What the generation service takes and returns."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from charstudio.backends.types import MAX_COUNT
from charstudio.errors import InvalidParameter
from charstudio.library.profile import GenerationControls, GenerationParams, Method
from charstudio.workflows import (
    SEED_MAX,
    ModelFamilyName,
    Variation,
    check_side,
    parse_aspect,
)

__all__ = [
    "PROMPT_MAX",
    "GenerateRequest",
    "GeneratedImage",
    "GenerationDefaults",
    "GenerationResult",
    "WorkflowPlan",
    "describe",
    "parse_size",
]

PROMPT_MAX = 2000


class GenerationDefaults(BaseModel):
    """Generation settings that come from the configuration, not the user's command.

    Attributes:
        checkpoint: Base model in ``models/checkpoints``; ``None`` until configured.
        family: ``sd15`` or ``sdxl``.
        openpose_controlnet: ControlNet used for ``--variation pose --pose IMAGE``.
        ipadapter_preset: IP-Adapter preset (PLUS FACE, or a FaceID preset for servers
            with InsightFace); the pool checks each server has its files before queueing.
    """

    model_config = ConfigDict(frozen=True)

    checkpoint: str | None
    family: ModelFamilyName = "sd15"
    openpose_controlnet: str = "control_v11p_sd15_openpose_fp16.safetensors"
    ipadapter_preset: str = "PLUS FACE (portraits)"


class GenerateRequest(GenerationControls):
    """ "Generate images of this character": the one model of a generation request.

    The CLI's options, the JSON API's body, the original form endpoint, the studio's form
    and the ``generate`` job's record are all this model; it is checked here, once, and
    what needs the character or the server (strengths the method uses, sizes for the
    family, sampler names in the node catalog) is checked when the service plans it,
    before anything is queued. The controls (strengths, steps, cfg, sampler, scheduler,
    denoise, negative prompt) are :class:`GenerationControls`, the fields a character's
    overrides take too; unset (``None``) they keep the character's profile.

    Attributes:
        prompt: What to generate ("red dress").
        variation: ``outfit``, ``background``, ``pose`` or ``None`` (the prompt as is).
        pose: Pose image for the OpenPose ControlNet (``pose`` variation only).
        pose_kind: ``auto`` (detected), ``skeleton`` (an OpenPose render: no
            preprocessor) or ``photo`` (a photo of a person: the preprocessor draws it).
        lora_strength: The LoRA strength for this request.
        ipadapter_strength: The IP-Adapter strength for this request.
        seed: First seed, 0 to 2^64-1 (each further image takes the next); ``None``
            draws random seeds (recorded with each image).
        count: How many images (1 to ``MAX_COUNT``).
        backend: ``comfyui`` (the server pool) or ``diffusers`` (in this process).
        width: Image width, a multiple of 8 from 64 to the family's largest side.
        height: Image height (with ``width``).
        aspect: An aspect ratio (``2:3``) sized for the base model's family, instead of
            width and height.
        negative_prompt: Added to the character's negative prompt, or replacing it.
        negative_mode: ``add`` (default) or ``replace``.
        steps: Sampler steps.
        cfg: Classifier-free guidance scale.
        sampler: KSampler sampler name (from the node catalog).
        scheduler: KSampler scheduler name (from the node catalog).
        denoise: How much of the reference img2img repaints (img2img only).
        qc: Check every image and regenerate failures when the character has a face
            identity (``charstudio.qc.gate``); ``False`` is ``--no-qc``: keep everything.
        method: Generate by this method, one the character's assets allow (refused,
            naming what is missing, otherwise); ``None``: the profile's.
        lora_version: Use this ready LoRA version instead of the promoted (or newest) one.
    """

    prompt: str = Field(min_length=1, max_length=PROMPT_MAX)
    variation: Variation | None = None
    pose: Path | None = None
    pose_kind: Literal["auto", "skeleton", "photo"] = "auto"
    seed: int | None = Field(
        default=None, ge=0, le=SEED_MAX, description="First seed; null draws random seeds."
    )
    count: int = Field(default=1, ge=1, le=MAX_COUNT)
    backend: str = Field(default="comfyui", min_length=1, max_length=32)
    width: int | None = None
    height: int | None = None
    aspect: str | None = Field(default=None, max_length=16, examples=["2:3"])
    negative_mode: Literal["add", "replace"] = "add"
    qc: bool = True
    method: Method | None = None
    lora_version: int | None = Field(default=None, ge=1, le=1_000_000)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the prompt is empty: say what to generate")
        return value.strip()

    @field_validator("seed", mode="before")
    @classmethod
    def _seed(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise ValueError(
                f"seed {value} is out of range: seeds are 0 to {SEED_MAX} (2^64-1), and no "
                "value means 'random'; leave the seed out for a random one (it is recorded "
                "with the image)"
            )
        if isinstance(value, int) and value > SEED_MAX:
            raise ValueError(
                f"seed {value} is out of range: seeds are 0 to {SEED_MAX} (2^64-1); use a seed "
                "in range, or leave it out for a random one"
            )
        return value

    @field_validator("count", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        if isinstance(value, int) and not 1 <= value <= MAX_COUNT:
            raise ValueError(f"count {value} is out of range: make 1 to {MAX_COUNT} images")
        return value

    @field_validator("width", "height")
    @classmethod
    def _side(cls, value: int | None) -> int | None:
        if value is not None:
            try:
                check_side(value)
            except InvalidParameter as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("aspect")
    @classmethod
    def _aspect(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                across, down = parse_aspect(value)
            except InvalidParameter as exc:
                raise ValueError(str(exc)) from None
            return f"{across}:{down}"
        return value

    @model_validator(mode="after")
    def _together(self) -> GenerateRequest:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height (or --size WxH), or an aspect ratio")
        if self.aspect is not None and self.width is not None:
            raise ValueError("give a size or an aspect ratio, not both")
        if self.pose is not None and self.variation != "pose":
            raise ValueError(
                f"a pose image was given with variation {self.variation or 'none'}: "
                "use variation pose"
            )
        if self.seed is not None and self.seed + self.count - 1 > SEED_MAX:
            raise ValueError(
                f"seed {self.seed} is out of range for {self.count} image(s): seeds are 0 to "
                f"{SEED_MAX} (2^64-1) and each image takes the next one; use a seed up to "
                f"{SEED_MAX - self.count + 1}"
            )
        return self

    @classmethod
    def parse(cls, **values: Any) -> GenerateRequest:
        """Validate, raising :class:`InvalidParameter` naming each bad field (CLI, jobs).

        Raises:
            InvalidParameter: the same messages the API's 422 and the studio's form show.
        """
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise InvalidParameter(f"invalid generation request ({describe(exc)})") from exc


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as ``field: message; ...`` with our own messages as written."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'request'}: "
        + err["msg"].removeprefix("Value error, ")
        for err in exc.errors()
    )


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` -> ``(768, 512)`` (the CLI's ``--size``).

    Raises:
        InvalidParameter: not ``WIDTHxHEIGHT``.
    """
    width, sep, height = text.lower().partition("x")
    if not (sep and width.strip().isdigit() and height.strip().isdigit()):
        raise InvalidParameter(f"size {text!r} does not parse: give WIDTHxHEIGHT, e.g. 768x512")
    return int(width), int(height)


class GeneratedImage(BaseModel):
    """One stored image."""

    model_config = ConfigDict(frozen=True)

    path: str
    seed: int
    index: int
    sha256: str
    width: int
    height: int
    server: str
    prompt_id: str | None
    generation_id: int


class GenerationResult(BaseModel):
    """What ``generate`` made."""

    model_config = ConfigDict(frozen=True)

    character: str
    job: str
    backend: str
    method: Method
    lora_version: int | None = None  # the LoRA version used (LoRA methods)
    params: GenerationParams
    size: tuple[int, int]
    reference_input: Literal["face", "full"] | None
    seeds_drawn: bool
    output_dir: str
    images: list[GeneratedImage]


class WorkflowPlan(BaseModel):
    """The graph a generate call would send, built and validated, without sending it.

    Attributes:
        graph: Exactly what ``generate`` POSTs for the first image: LoadImage names are
            the content-addressed names the upload gives the images (``uploads``).
        reference: The file IP-Adapter / img2img is given; ``reference_input`` says
            whether it is the face crop or the whole photo.
        runs_on: The server that would run it (``--check``).
        uploaded_to: The server the images were uploaded to (``--upload``).
        warnings: What to know before queueing it.
    """

    model_config = ConfigDict(frozen=True)

    character: str
    method: Method
    method_reason: str
    params: GenerationParams
    seed: int
    seeds_drawn: bool
    size: tuple[int, int]
    reference: str | None
    reference_input: Literal["face", "full"] | None
    pose_kind: Literal["skeleton", "photo"] | None
    uploads: dict[str, str]
    validated_against: str
    runs_on: str | None = None
    uploaded_to: str | None = None
    warnings: list[str] = []
    graph: dict[str, Any]
