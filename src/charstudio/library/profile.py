"""The character consistency profile: which method a character can use, with which parameters.

This is the original system's ``CharacterConsistencyProfile``, computed from what the
library holds instead of from hard-coded paths. The method follows from the assets:

=================  ===============================  ======  ========  ====  =====  =======
method             when                             LoRA    IP-Adapt  cfg   steps  denoise
=================  ===============================  ======  ========  ====  =====  =======
lora_ipadapter     LoRA and face identity exist     0.7     0.6       7.0   25     1.0
lora_only          LoRA only                        0.8     --        7.5   30     1.0
ipadapter_only     face identity only               --      0.8       8.0   30     1.0
img2img            neither (fallback)               --      --        7.5   30     0.4
=================  ===============================  ======  ========  ====  =====  =======

(docs/ARCHITECTURE.md, "The consistency methods".) A character may override any parameter, and may
pin a method its assets allow; overrides that a method does not use are kept but unused.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from charstudio.errors import invalid_parameter_from
from charstudio.library.qc_policy import QC_OVERRIDE_KEYS, QCOverrides, QCPolicy

__all__ = [
    "CHARACTER_WEIGHT_DEFAULT",
    "CHARACTER_WEIGHT_RANGE",
    "DEFAULT_NEGATIVE_PROMPT",
    "DEFAULT_SAMPLER",
    "DEFAULT_SCHEDULER",
    "METHOD_DEFAULTS",
    "NEGATIVE_PROMPT_MAX",
    "RECOMMENDED_RANGES",
    "Assets",
    "CharacterConsistencyProfile",
    "GenerationControls",
    "GenerationParams",
    "Method",
    "MethodAssets",
    "Overrides",
    "build_profile",
    "choose_method",
    "feasible_methods",
    "missing_for",
    "select_method",
    "uses",
]

Method = Literal["lora_ipadapter", "lora_only", "ipadapter_only", "img2img"]
METHODS: tuple[Method, ...] = get_args(Method)


# The sampler and scheduler every method starts from (KSampler names; the diffusers
# backend maps them), and the negative prompt a character starts from.
DEFAULT_SAMPLER = "dpmpp_2m"
DEFAULT_SCHEDULER = "karras"
DEFAULT_NEGATIVE_PROMPT = (
    "lowres, blurry, bad anatomy, deformed, extra limbs, multiple people, watermark, text"
)
NEGATIVE_PROMPT_MAX = 1000
# Identity vs outfit (charstudio.workflows.character_weight): 0 carries only the face,
# 1 face, hair and outfit; the default is the graph charstudio has always built.
CHARACTER_WEIGHT_DEFAULT = 0.5
CHARACTER_WEIGHT_RANGE = (0.0, 1.0)


class GenerationParams(BaseModel):
    """Parameters a generation uses; ``None`` where the method does not use a value."""

    model_config = ConfigDict(frozen=True)

    lora_strength: float | None
    ipadapter_strength: float | None
    cfg: float
    steps: int
    denoise: float
    # Identity vs outfit; None where the method has no IP-Adapter (and in records made
    # before the control existed, which the default reproduces).
    character_weight: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    sampler: str = DEFAULT_SAMPLER
    scheduler: str = DEFAULT_SCHEDULER
    negative_prompt: str = DEFAULT_NEGATIVE_PROMPT


METHOD_DEFAULTS: dict[Method, GenerationParams] = {
    "lora_ipadapter": GenerationParams(
        lora_strength=0.7,
        ipadapter_strength=0.6,
        cfg=7.0,
        steps=25,
        denoise=1.0,
        character_weight=CHARACTER_WEIGHT_DEFAULT,
    ),
    "lora_only": GenerationParams(
        lora_strength=0.8, ipadapter_strength=None, cfg=7.5, steps=30, denoise=1.0
    ),
    "ipadapter_only": GenerationParams(
        lora_strength=None,
        ipadapter_strength=0.8,
        cfg=8.0,
        steps=30,
        denoise=1.0,
        character_weight=CHARACTER_WEIGHT_DEFAULT,
    ),
    "img2img": GenerationParams(
        lora_strength=None, ipadapter_strength=None, cfg=7.5, steps=30, denoise=0.4
    ),
}

# docs/ARCHITECTURE.md: "Recommended ranges: LoRA 0.6-0.8, IP-Adapter 0.5-0.7".
RECOMMENDED_RANGES: dict[str, tuple[float, float]] = {
    "lora_strength": (0.6, 0.8),
    "ipadapter_strength": (0.5, 0.7),
}


# Which methods use a parameter; cfg and steps are used by all. txt2img methods always
# denoise fully, so a denoise override only reaches img2img.
_USED_BY: dict[str, tuple[Method, ...]] = {
    "lora_strength": ("lora_ipadapter", "lora_only"),
    "ipadapter_strength": ("lora_ipadapter", "ipadapter_only"),
    "character_weight": ("lora_ipadapter", "ipadapter_only"),
    "denoise": ("img2img",),
}


def uses(method: Method, key: str) -> bool:
    """Whether ``method`` uses the parameter ``key`` (cfg, steps ... are used by all)."""
    return method in _USED_BY.get(key, METHODS)


class GenerationControls(BaseModel):
    """The parameters a character's overrides, or one generation request, may set; each
    defined once here, with its range. ``None`` keeps the value from the level below (the
    method default, or the character's profile)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    lora_strength: float | None = Field(default=None, ge=0.0, le=2.0)
    ipadapter_strength: float | None = Field(default=None, ge=0.0, le=2.0)
    cfg: float | None = Field(default=None, ge=1.0, le=30.0)
    steps: int | None = Field(default=None, ge=1, le=150)
    denoise: float | None = Field(default=None, gt=0.0, le=1.0)
    character_weight: float | None = Field(default=None, ge=0.0, le=1.0)
    # Names are checked against the node catalog when a generation is planned.
    sampler: str | None = Field(default=None, min_length=1, max_length=64)
    scheduler: str | None = Field(default=None, min_length=1, max_length=64)
    negative_prompt: str | None = Field(default=None, max_length=NEGATIVE_PROMPT_MAX)

    @field_validator("character_weight", mode="before")
    @classmethod
    def _character_weight(cls, value: Any) -> Any:
        """Out of range or not a number: one message that names the range and both ends."""
        try:
            number = float(value) if isinstance(value, int | float | str) else None
        except ValueError:
            return value  # not a number: pydantic says so
        low, high = CHARACTER_WEIGHT_RANGE
        if number is not None and not (math.isfinite(number) and low <= number <= high):
            raise ValueError(
                f"must be a number from {low:g} to {high:g}, got {value}: 0 carries only the "
                "face (outfit and hair from the prompt), 1 face, hair and outfit; default "
                f"{CHARACTER_WEIGHT_DEFAULT}"
            )
        return value


class Overrides(GenerationControls, QCOverrides):
    """Per-character overrides of the method defaults (unset fields keep the default), a
    method the character is pinned to, and the QC policy's ``qc_*`` keys."""

    method: Method | None = None


class Assets(BaseModel):
    """What the library holds for a character, as far as the method choice cares."""

    model_config = ConfigDict(frozen=True)

    has_lora: bool
    has_embedding: bool
    reference_images_count: int
    training_images_count: int
    lora_version: int | None = None
    lora_path: str | None = None
    embedding_path: str | None = None
    # Which backend/model made the face identity (dlib/..., ccip/<model folder>), if any.
    identity_backend: str | None = None
    # The image IP-Adapter and img2img start from: the face engine's (or the user's)
    # choice, else the first reference.
    reference_image: str | None = None


class CharacterConsistencyProfile(BaseModel):
    """How a character is generated consistently, and why."""

    model_config = ConfigDict(frozen=True)

    name: str
    trigger_word: str
    has_lora: bool
    has_embedding: bool
    reference_images_count: int
    training_images_count: int
    lora_version: int | None
    lora_path: str | None
    embedding_path: str | None
    reference_image: str | None
    method: Method
    method_reason: str
    available_methods: list[Method]
    params: GenerationParams
    overrides: dict[str, float | int | str]
    recommended_ranges: dict[str, tuple[float, float]]
    warnings: list[str]
    qc: QCPolicy = QCPolicy()
    # Which backend/model made the face identity: dlib/..., insightface/..., ccip/<folder>.
    identity_backend: str | None = None


class MethodAssets(Protocol):
    """What the method choice reads: :class:`Assets`, or a listing's two flags."""

    @property
    def has_lora(self) -> bool: ...

    @property
    def has_embedding(self) -> bool: ...


def feasible_methods(assets: MethodAssets) -> list[Method]:
    """Methods the character's assets allow, best first."""
    methods: list[Method] = []
    if assets.has_lora and assets.has_embedding:
        methods.append("lora_ipadapter")
    if assets.has_lora:
        methods.append("lora_only")
    if assets.has_embedding:
        methods.append("ipadapter_only")
    methods.append("img2img")
    return methods


def select_method(assets: MethodAssets) -> tuple[Method, str]:
    """The best method the assets allow, and a sentence saying why."""
    if assets.has_lora and assets.has_embedding:
        return "lora_ipadapter", "a LoRA and a face identity exist"
    if assets.has_lora:
        return "lora_only", "a LoRA exists but no face identity (run `charstudio faces extract`)"
    if assets.has_embedding:
        return "ipadapter_only", "a face identity exists but no LoRA (run `charstudio train`)"
    return "img2img", "no LoRA and no face identity yet: img2img from a reference image"


def choose_method(assets: MethodAssets, pinned: str | None) -> tuple[Method, str]:
    """The pinned method if the assets allow it, else :func:`select_method`'s choice (a
    pinned value that names no method counts as not possible)."""
    for method in feasible_methods(assets):
        if method == pinned:
            return method, "pinned by the character's overrides"
    return select_method(assets)


def parse_overrides(raw: dict[str, object]) -> Overrides:
    """Validate stored or user-given overrides.

    Raises:
        InvalidParameter: naming each bad key and its allowed range.
    """
    try:
        return Overrides.model_validate(raw)
    except ValidationError as exc:
        raise invalid_parameter_from(exc, "invalid override") from exc


def build_profile(
    *, name: str, trigger_word: str, assets: Assets, overrides: Overrides
) -> CharacterConsistencyProfile:
    """Compute the profile: method from assets (or a feasible pinned one), then parameters."""
    warnings: list[str] = []
    available = feasible_methods(assets)
    method, reason = choose_method(assets, overrides.method)
    if overrides.method is not None and overrides.method != method:
        warnings.append(
            f"pinned method {overrides.method!r} is not possible now "
            f"({missing_for(overrides.method, assets)}); using {method!r}"
        )
    if assets.reference_images_count == 0:
        warnings.append("no reference images: add some with `charstudio character import`")
    params = _apply(method, overrides)
    # Only a user's own values are checked: the design's ipadapter_only default (0.8) is
    # itself outside the range, which was given for the combined method.
    for key, (low, high) in RECOMMENDED_RANGES.items():
        value = getattr(params, key)
        if value is not None and getattr(overrides, key) is not None and not low <= value <= high:
            warnings.append(f"{key} {value} is outside the recommended range {low}-{high}")
    return CharacterConsistencyProfile(
        **assets.model_dump(),
        name=name,
        trigger_word=trigger_word,
        method=method,
        method_reason=reason,
        available_methods=available,
        params=params,
        overrides=overrides.model_dump(exclude_none=True),
        recommended_ranges=RECOMMENDED_RANGES,
        warnings=warnings,
        qc=overrides.qc_policy(),
    )


def _apply(method: Method, overrides: Overrides) -> GenerationParams:
    """Override the values the method uses; values it does not use stay ``None``."""
    values = METHOD_DEFAULTS[method].model_dump()
    controls = overrides.model_dump(exclude_none=True, exclude={"method", *QC_OVERRIDE_KEYS})
    for key, value in controls.items():
        if uses(method, key):
            values[key] = value
    return GenerationParams(**values)


def missing_for(method: Method, assets: Assets) -> str:
    """What the assets lack for ``method`` ("no LoRA and no face identity")."""
    missing = []
    if method in ("lora_ipadapter", "lora_only") and not assets.has_lora:
        missing.append("no LoRA")
    if method in ("lora_ipadapter", "ipadapter_only") and not assets.has_embedding:
        missing.append("no face identity")
    return " and ".join(missing)
