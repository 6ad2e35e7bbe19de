"""The training configuration: a YAML file with the original design's keys, validated.

The original design's file, with its defaults::

    model:        base_checkpoint, vae
    training:     resolution 768, batch_size 1, gradient_accumulation_steps 4,
                  learning_rate 1e-4, lr_scheduler cosine, lr_warmup_steps 100,
                  train_steps 1500, save_every 500
    lora:         rank 32, alpha 32, dropout 0.1, target_modules [to_q, to_k, to_v, to_out]
    optimization: use_8bit_adam true, mixed_precision fp16, gradient_checkpointing true
                  (charstudio: use_8bit_adam auto, see OptimizationSection)
    augmentation: random_flip true, color_jitter false, random_crop false

and what a good trainer needs besides (docs/reference/lora-trainers.md, section 1):
``model.family``, ``model.config_dir``, ``training.seed``, ``training.train_text_encoder``
with its own ``text_encoder_lr``, ``min_snr_gamma``, ``noise_offset``, ``cache_latents``
(memory or disk), ``max_grad_norm`` and a ``sampling`` section (fixed prompts and seeds).

Every value is checked before any model is loaded; a bad one raises
:class:`~charstudio.errors.InvalidParameter` naming the key (``lora.rank: ...``).
``mixed_precision`` applies on a GPU; on a CPU training runs in fp32 and the result says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from charstudio.errors import InvalidParameter, invalid_parameter_from

__all__ = [
    "AugmentationSection",
    "LoraSection",
    "ModelSection",
    "OptimizationSection",
    "SamplingSection",
    "TrainingConfig",
    "TrainingSection",
    "apply_overrides",
    "load_config",
]

LrScheduler = Literal[
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
]
TargetModule = Literal["to_q", "to_k", "to_v", "to_out", "proj_in", "proj_out", "ff"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelSection(_Section):
    base_checkpoint: Path | None = None
    vae: Path | None = None
    family: Literal["sd15", "sdxl"] = "sd15"
    # A diffusers-style folder of component configs for a single-file checkpoint whose
    # shapes differ from the family's published ones; default: charstudio's own.
    config_dir: Path | None = None


class TrainingSection(_Section):
    resolution: int = Field(default=768, ge=8, le=2048)
    batch_size: int = Field(default=1, ge=1, le=64)
    gradient_accumulation_steps: int = Field(default=4, ge=1, le=256)
    learning_rate: float = Field(default=1e-4, gt=0, le=1.0)
    lr_scheduler: LrScheduler = "cosine"
    lr_warmup_steps: int = Field(default=100, ge=0)
    train_steps: int = Field(default=1500, ge=1, le=1_000_000)
    save_every: int = Field(default=500, ge=1)
    seed: int = Field(default=42, ge=0, le=2**32 - 1)
    train_text_encoder: bool = False
    text_encoder_lr: float = Field(default=5e-5, gt=0, le=1.0)
    min_snr_gamma: float | None = Field(default=5.0, gt=0)
    noise_offset: float = Field(default=0.0, ge=0.0, le=1.0)
    cache_latents: bool = True
    cache_to_disk: bool = False
    max_grad_norm: float | None = Field(default=1.0, gt=0)


class LoraSection(_Section):
    rank: int = Field(default=32, ge=1, le=1024)
    alpha: float = Field(default=32.0, gt=0)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    target_modules: tuple[TargetModule, ...] = ("to_q", "to_k", "to_v", "to_out")
    # Precision of the saved file (kohya's --save_precision); fp16 halves its size.
    save_precision: Literal["fp16", "bf16", "fp32"] = "fp16"


class OptimizationSection(_Section):
    # "auto": bitsandbytes' 8-bit AdamW where bitsandbytes and a CUDA GPU exist, else AdamW
    # (the run says which). true: 8-bit or refuse; false: AdamW. The original design's
    # default was true, which stopped every run on a machine without bitsandbytes.
    use_8bit_adam: bool | Literal["auto"] = "auto"
    mixed_precision: Literal["no", "fp16", "bf16"] = "fp16"
    gradient_checkpointing: bool = True

    @field_validator("mixed_precision", mode="before")
    @classmethod
    def _no_is_false(cls, value: object) -> object:
        # YAML 1.1 reads a bare `no` (`--set optimization.mixed_precision=no`) as false.
        return "no" if value is False else value


class AugmentationSection(_Section):
    random_flip: bool = True
    color_jitter: bool = False
    random_crop: bool = False


class SamplingSection(_Section):
    # "{trigger}" is replaced by the character's trigger word.
    prompts: tuple[str, ...] = (
        "{trigger}, portrait, looking at the viewer",
        "{trigger}, full body, standing, white background",
    )
    seeds: tuple[int, ...] = (1234,)
    steps: int = Field(default=20, ge=1, le=200)
    cfg: float = Field(default=7.0, ge=0.0, le=30.0)
    negative_prompt: str = "lowres, blurry, deformed"
    enabled: bool = True


class TrainingConfig(_Section):
    """Everything one training run reads; saved next to what it made (``config.yaml``)."""

    model: ModelSection = ModelSection()
    training: TrainingSection = TrainingSection()
    lora: LoraSection = LoraSection()
    optimization: OptimizationSection = OptimizationSection()
    augmentation: AugmentationSection = AugmentationSection()
    sampling: SamplingSection = SamplingSection()

    @model_validator(mode="after")
    def _consistent(self) -> TrainingConfig:
        aug, train = self.augmentation, self.training
        if train.cache_latents and (aug.color_jitter or aug.random_crop):
            raise ValueError(
                "augmentation.color_jitter and augmentation.random_crop change the image every "
                "step, so its latents cannot be cached; set training.cache_latents: false "
                "or turn those augmentations off"
            )
        if train.cache_to_disk and not train.cache_latents:
            raise ValueError(
                "training.cache_to_disk needs training.cache_latents: true; set both, or neither"
            )
        if train.save_every > train.train_steps:
            raise ValueError(
                f"training.save_every ({train.save_every}) is more than training.train_steps "
                f"({train.train_steps}), so no checkpoint would be saved before the end; "
                f"set training.save_every to at most {train.train_steps}"
            )
        if not self.lora.target_modules:
            raise ValueError("lora.target_modules is empty; name at least one, e.g. [to_q, to_v]")
        return self

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _validate(data: dict[str, Any], source: str) -> TrainingConfig:
    try:
        return TrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise invalid_parameter_from(exc, f"invalid training config ({source})") from exc


def apply_overrides(data: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML: ``16``, ``true``, ``[a, b]``).

    Raises:
        InvalidParameter: an override without ``=`` or without a section.
    """
    result = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().split(".")
        if not sep or len(parts) != 2 or not all(parts):
            raise InvalidParameter(
                f"--set {item!r} is not section.key=value; write e.g. --set lora.rank=16"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise InvalidParameter(f"--set {item!r}: the value is not valid YAML") from exc
        section = result.setdefault(parts[0], {})
        if not isinstance(section, dict):
            raise InvalidParameter(f"--set {item!r}: {parts[0]} is not a section")
        section[parts[1]] = value
    return result


def load_config(
    path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> TrainingConfig:
    """Read a YAML config (or the defaults), apply ``--set`` overrides and validate.

    Raises:
        NotFound-like InvalidParameter: the file is missing or not a YAML mapping.
        InvalidParameter: any bad value; the message names the key.
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        if not path.is_file():
            raise InvalidParameter(
                f"training config {path} does not exist; give an existing YAML file to --config"
            )
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise InvalidParameter(f"training config {path} is not valid YAML: {exc}") from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise InvalidParameter(
                f"training config {path} must be a mapping of sections (model:, training:, ...)"
            )
        data = loaded
    if overrides:
        source += " with --set"
    return _validate(apply_overrides(data, overrides), source)
