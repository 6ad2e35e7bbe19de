"""What one generation asks for: a typed, validated request the graph builders read.

Every value is checked here, at the door, with a message naming the value and the fix
(docs/ARCHITECTURE.md, house rules: validate once, at the door). Ranges that depend on the
server (strengths, cfg, steps) are checked against the node catalog by the builders; what
never depends on it is checked here:

* the seed is one integer in ComfyUI's range ``[0, 2^64-1]``. There is no "random" seed
  value (the original design's seed 0, or -1): call :func:`random_seed`, record what it
  returns, and pass it in;
* width and height are multiples of 8 (the latent is 1/8 of the image), from 64 to the
  family's largest side;
* the variation is one of the three prompt templates of docs/ARCHITECTURE.md (or none, the base);
* the method's inputs exist (a LoRA for the LoRA methods, a reference image for
  IP-Adapter and img2img).
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from charstudio.errors import InvalidParameter
from charstudio.library.names import validate_name, validate_trigger_word
from charstudio.library.profile import DEFAULT_NEGATIVE_PROMPT, GenerationParams, Method
from charstudio.workflows.character_weight import carries_outfit
from charstudio.workflows.families import (
    IPADAPTER_PRESETS,
    MIN_SIDE,
    MODEL_FAMILIES,
    IPAdapterPreset,
    ModelFamilyName,
)

__all__ = [
    "BASE_PROMPT",
    "DEFAULT_NEGATIVE_PROMPT",
    "FULL_CHARACTER_PROMPTS",
    "SEED_MAX",
    "VARIATION_PROMPTS",
    "ParamsShortcuts",
    "PoseControl",
    "Variation",
    "WorkflowRequest",
    "check_side",
    "random_seed",
]

Variation = Literal["outfit", "background", "pose"]
VARIATIONS: tuple[Variation, ...] = get_args(Variation)
METHODS: tuple[Method, ...] = get_args(Method)

# docs/ARCHITECTURE.md, "The consistency methods": the variation prompt templates.
VARIATION_PROMPTS: dict[Variation, str] = {
    "outfit": "wearing {prompt}, white background, full body",
    "background": "standing in {prompt}, same outfit",
    "pose": "{prompt}, same outfit, same appearance",
}
BASE_PROMPT = "{prompt}"
# The templates when the character weight carries hair and outfit (above 0.5, see
# charstudio.workflows.character_weight). An outfit variation asks for a new outfit, so
# its template stays: the prompt names the outfit.
FULL_CHARACTER_PROMPTS: dict[Variation | None, str] = {
    None: "{prompt}, same outfit, same hair",
    "outfit": VARIATION_PROMPTS["outfit"],
    "background": "standing in {prompt}, same outfit, same hair",
    "pose": "{prompt}, same outfit, same hair, same appearance",
}

# KSampler.seed in ComfyUI's nodes.py: INT, min 0, max 0xffffffffffffffff.
SEED_MAX = 2**64 - 1
_JOB = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_side(value: int) -> int:
    """A width or height: a multiple of 8, at least 64 (family maxima are checked later).

    Raises:
        InvalidParameter: naming the two nearest sizes that would do.
    """
    if value % 8 or value < MIN_SIDE:
        low = max(MIN_SIDE, value - value % 8)
        high = max(MIN_SIDE, value - value % 8 + 8)
        sizes = f"{low} or {high}" if low != high and value >= MIN_SIDE else str(MIN_SIDE)
        raise InvalidParameter(
            f"image size {value} is not a multiple of 8 of at least {MIN_SIDE} (the latent is "
            f"1/8 of the image): use {sizes}"
        )
    return value


def random_seed() -> int:
    """A seed drawn uniformly from ComfyUI's whole range ``[0, 2^64-1]``.

    The caller records it (it is in the graph and the PNG metadata) so the image can be
    made again.
    """
    return secrets.randbelow(SEED_MAX + 1)


class _Strict(BaseModel):
    """Frozen, no unknown keys; pydantic's own errors become ``InvalidParameter``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="wrap")
    @classmethod
    def _as_invalid_parameter(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or cls.__name__}: {err['msg']}"
                for err in exc.errors()
            )
            raise InvalidParameter(f"invalid {cls.__name__} ({problems})") from exc


class ParamsShortcuts:
    """``negative_prompt``, ``sampler`` and ``scheduler`` of a request, read from its
    ``params`` (the generation and graph requests both carry them there)."""

    if TYPE_CHECKING:
        params: GenerationParams

    @property
    def negative_prompt(self) -> str:
        """The negative prompt (the profile's, with the request's additions)."""
        return self.params.negative_prompt

    @property
    def sampler(self) -> str:
        """KSampler ``sampler_name``."""
        return self.params.sampler

    @property
    def scheduler(self) -> str:
        """KSampler ``scheduler``."""
        return self.params.scheduler


class PoseControl(_Strict):
    """An OpenPose ControlNet for the pose variation.

    Attributes:
        image: The pose image's name on the server, as ``/upload/image`` answered it.
        controlnet: OpenPose ControlNet file in ``models/controlnet``
            (SD1.5: ``control_v11p_sd15_openpose_fp16.safetensors``).
        strength: ``ControlNetApplyAdvanced.strength``.
        start_percent: Where in the schedule the ControlNet starts acting.
        end_percent: Where it stops.
        preprocessor: comfyui_controlnet_aux node that draws the skeleton from a photo;
            ``None`` when ``image`` already is an OpenPose skeleton.
    """

    image: str
    controlnet: str
    strength: float = 1.0
    start_percent: float = 0.0
    end_percent: float = 1.0
    preprocessor: Literal["OpenposePreprocessor", "DWPreprocessor"] | None = "OpenposePreprocessor"


class WorkflowRequest(ParamsShortcuts, _Strict):
    """One generation: who, what, how, with which files on the server.

    Attributes:
        character: Character name (a safe path part; names the output folder).
        job: Job id, part of the SaveImage prefix.
        trigger_word: The LoRA's trigger word; always first in the positive prompt.
        prompt: What the user asked for ("red dress", "a snowy street").
        variation: ``outfit``, ``background`` or ``pose`` (docs/ARCHITECTURE.md's
            templates); ``None`` uses the prompt as it is (the base template).
        method: One of the four consistency methods.
        params: Strengths, cfg, steps, denoise, sampler, scheduler and negative prompt
            (the character's profile with the request's own values applied).
        seed: ``0`` to ``2^64-1``; see :func:`random_seed`.
        checkpoint: Base model file in ``models/checkpoints``.
        family: ``sd15`` or ``sdxl``; picks IP-Adapter files and the default size.
        width: Image width, a multiple of 8; default from the family.
        height: Image height, a multiple of 8; default from the family.
        lora: Character LoRA file in ``models/loras`` (LoRA methods).
        reference_image: Reference image name as uploaded (IP-Adapter methods, img2img).
        ipadapter_preset: IP-Adapter preset; PLUS FACE by default, a FaceID preset when
            the server has InsightFace (see ``default_ipadapter_preset``).
        ipadapter_loader: ``explicit`` names the adapter and CLIP vision files
            (IPAdapterModelLoader + CLIPVisionLoader, checkable before queueing);
            ``unified`` lets IPAdapterUnifiedLoader find them by preset at run time.
        faceid_provider: InsightFace execution provider for FaceID presets.
        prep_reference: Crop the reference for CLIP vision (PrepImageForClipVision).
        pose: OpenPose ControlNet for the pose variation.
        batch_size: Images per run.
    """

    character: str
    job: str
    trigger_word: str
    prompt: str
    variation: Variation | None = None
    method: Method
    params: GenerationParams
    seed: int
    checkpoint: str
    family: ModelFamilyName = "sd15"
    width: int | None = None
    height: int | None = None
    lora: str | None = None
    reference_image: str | None = None
    ipadapter_preset: str = "PLUS FACE (portraits)"
    ipadapter_loader: Literal["explicit", "unified"] = "explicit"
    faceid_provider: str = "CPU"
    prep_reference: bool = False
    pose: PoseControl | None = None
    batch_size: int = 1

    @field_validator("character")
    @classmethod
    def _character(cls, value: str) -> str:
        return validate_name(value)

    @field_validator("trigger_word")
    @classmethod
    def _trigger(cls, value: str) -> str:
        return validate_trigger_word(value)

    @field_validator("job")
    @classmethod
    def _job(cls, value: str) -> str:
        if not _JOB.fullmatch(value):
            raise InvalidParameter(
                f"job id {value!r} is not allowed: use 1-64 ASCII letters, digits, '-' or '_'"
            )
        return value

    @field_validator("prompt", "checkpoint")
    @classmethod
    def _not_blank(cls, value: str, info: ValidationInfo) -> str:
        if not value.strip():
            raise InvalidParameter(f"{info.field_name} is empty: give one")
        return value.strip()

    @field_validator("variation", mode="before")
    @classmethod
    def _variation(cls, value: Any) -> Any:
        if value is not None and value not in VARIATIONS:
            raise InvalidParameter(
                f"unknown variation {value!r}: use outfit, background or pose "
                "(or none for the base template)"
            )
        return value

    @field_validator("method", mode="before")
    @classmethod
    def _method(cls, value: Any) -> Any:
        if value not in METHODS:
            raise InvalidParameter(f"unknown method {value!r}: use one of {', '.join(METHODS)}")
        return value

    @field_validator("seed")
    @classmethod
    def _seed(cls, value: int) -> int:
        if value < 0:
            raise InvalidParameter(
                f"seed {value} is out of range: ComfyUI takes 0 to {SEED_MAX} (2^64-1), and "
                "no value means 'random'; draw one with random_seed() and record it"
            )
        if value > SEED_MAX:
            raise InvalidParameter(
                f"seed {value} is out of range: ComfyUI takes 0 to {SEED_MAX} (2^64-1); "
                "use a seed in range"
            )
        return value

    @field_validator("width", "height")
    @classmethod
    def _size(cls, value: int | None) -> int | None:
        if value is not None:
            check_side(value)
        return value

    @field_validator("ipadapter_preset")
    @classmethod
    def _preset(cls, value: str) -> str:
        if value not in IPADAPTER_PRESETS:
            raise InvalidParameter(
                f"unknown IP-Adapter preset {value!r}: use one of {', '.join(IPADAPTER_PRESETS)}"
            )
        return value

    @model_validator(mode="after")
    def _method_inputs(self) -> WorkflowRequest:
        needs_lora = self.method in ("lora_ipadapter", "lora_only")
        needs_reference = self.method != "lora_only"
        if needs_lora and (self.lora is None or self.params.lora_strength is None):
            raise InvalidParameter(
                f"method {self.method} needs a LoRA file and a lora_strength: train one "
                "(`charstudio train`) or use ipadapter_only / img2img"
            )
        if needs_reference and self.reference_image is None:
            raise InvalidParameter(
                f"method {self.method} needs a reference image: upload one and pass its name"
            )
        if self.uses_ipadapter and self.params.ipadapter_strength is None:
            raise InvalidParameter(f"method {self.method} needs an ipadapter_strength")
        weight = self.params.character_weight
        if self.uses_ipadapter and carries_outfit(weight) and self.preset.face_input:
            raise InvalidParameter(
                f"character weight {weight} carries hair and outfit: it needs a full-image "
                f"IP-Adapter preset on the whole reference, not {self.ipadapter_preset!r}: "
                "use 'PLUS (high strength)', or a character weight of 0.5 or less"
            )
        if self.uses_ipadapter and self.preset.ipadapter_file(self.family) is None:
            raise InvalidParameter(
                f"IP-Adapter preset {self.ipadapter_preset!r} has no {self.family} model: "
                "use 'PLUS FACE (portraits)'"
            )
        family = MODEL_FAMILIES[self.family]
        for side in (self.width, self.height):
            if side is not None and side > family.max_side:
                raise InvalidParameter(
                    f"image size {side} is over {family.label}'s largest side "
                    f"{family.max_side}: generate smaller and upscale afterwards"
                )
        if self.pose is not None and self.variation != "pose":
            raise InvalidParameter(
                f"a pose image was given with variation {self.variation!r}: use variation 'pose'"
            )
        return self

    @property
    def uses_ipadapter(self) -> bool:
        """Whether the method conditions on the reference image with IP-Adapter."""
        return self.method in ("lora_ipadapter", "ipadapter_only")

    @property
    def preset(self) -> IPAdapterPreset:
        """The IP-Adapter preset's data."""
        return IPADAPTER_PRESETS[self.ipadapter_preset]

    @property
    def size(self) -> tuple[int, int]:
        """Width and height, the family's default where not given."""
        default_width, default_height = MODEL_FAMILIES[self.family].default_size
        return self.width or default_width, self.height or default_height

    @property
    def positive_prompt(self) -> str:
        """Trigger word first, then the variation's template filled with the prompt (the
        "same outfit" templates when the character weight carries the outfit)."""
        template = VARIATION_PROMPTS[self.variation] if self.variation else BASE_PROMPT
        if self.uses_ipadapter and carries_outfit(self.params.character_weight):
            template = FULL_CHARACTER_PROMPTS[self.variation]
        return f"{self.trigger_word}, {template.format(prompt=self.prompt)}"

    @property
    def save_prefix(self) -> str:
        """SaveImage prefix: ``charstudio/<character>/<job>/<character>`` under output/."""
        return f"charstudio/{self.character}/{self.job}/{self.character}"
