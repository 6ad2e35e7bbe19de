"""The metadata of a LoRA file, with kohya sd-scripts' keys.

See docs/reference/lora-trainers.md, section 2.2.

All values are strings, JSON where structured, as sd-scripts writes them, so A1111's and
ComfyUI's LoRA info panels, civitai and kohya tools read them. The SAI ModelSpec keys
(``modelspec.*``) and charstudio's own (``charstudio.*``: trigger word, training-set version
and hash, the full config) come after. ``sshs_*`` hashes are added when the file is written
(:func:`charstudio.training.kohya_format.addnet_hashes`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from charstudio import __version__
from charstudio.training.config import TrainingConfig
from charstudio.training.families import Family
from charstudio.training.optim import optimizer_name

__all__ = ["LoraFacts", "lora_metadata"]


@dataclass(frozen=True)
class LoraFacts:
    """What the metadata records besides the config."""

    output_name: str  # e.g. yuki_v3
    family: Family
    config: TrainingConfig
    steps: int
    num_images: int
    captions: list[str]
    base_model_name: str
    base_model_sha256: str
    base_model_legacy_hash: str
    trigger_word: str
    training_set_version: int
    training_set_hash: str
    session_id: int
    started_at: float  # unix time
    finished_at: float
    resolution: tuple[int, int]
    train_text_encoder: bool


def _tag_frequency(captions: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for caption in captions:
        for tag in (t.strip() for t in caption.split(",")):
            if tag:
                counts[tag] = counts.get(tag, 0) + 1
    return counts


def _kohya_keys(f: LoraFacts) -> dict[str, object]:
    cfg, t = f.config, f.config.training
    batches_per_epoch = math.ceil(f.num_images / t.batch_size)
    micro_steps = f.steps * t.gradient_accumulation_steps
    set_dir = f"1_{f.output_name.rsplit('_v', 1)[0]}"
    return {
        "ss_session_id": f.session_id,
        "ss_training_started_at": f.started_at,
        "ss_training_finished_at": f.finished_at,
        "ss_output_name": f.output_name,
        "ss_learning_rate": t.learning_rate,
        "ss_unet_lr": t.learning_rate,
        "ss_text_encoder_lr": t.text_encoder_lr if f.train_text_encoder else 0.0,
        "ss_network_train_unet_only": not f.train_text_encoder,
        "ss_num_train_images": f.num_images,
        "ss_num_reg_images": 0,
        "ss_num_batches_per_epoch": batches_per_epoch,
        "ss_num_epochs": math.ceil(
            t.train_steps * t.gradient_accumulation_steps / batches_per_epoch
        ),
        "ss_epoch": math.ceil(micro_steps / batches_per_epoch),
        "ss_steps": f.steps,
        "ss_max_train_steps": t.train_steps,
        "ss_batch_size_per_device": t.batch_size,
        "ss_total_batch_size": t.batch_size * t.gradient_accumulation_steps,
        "ss_gradient_checkpointing": cfg.optimization.gradient_checkpointing,
        "ss_gradient_accumulation_steps": t.gradient_accumulation_steps,
        "ss_lr_warmup_steps": t.lr_warmup_steps,
        "ss_lr_scheduler": t.lr_scheduler,
        "ss_optimizer": optimizer_name(cfg),
        "ss_network_module": "networks.lora",
        "ss_network_dim": cfg.lora.rank,
        "ss_network_alpha": cfg.lora.alpha,
        "ss_network_dropout": cfg.lora.dropout,
        "ss_network_args": json.dumps({"target_modules": list(cfg.lora.target_modules)}),
        "ss_mixed_precision": cfg.optimization.mixed_precision,
        "ss_full_fp16": False,
        "ss_v2": False,
        "ss_base_model_version": f.family.ss_base_model_version,
        "ss_clip_skip": None,
        "ss_max_token_length": None,
        "ss_cache_latents": t.cache_latents,
        "ss_seed": t.seed,
        "ss_lowram": False,
        "ss_noise_offset": t.noise_offset or None,
        "ss_min_snr_gamma": t.min_snr_gamma,
        "ss_max_grad_norm": t.max_grad_norm,
        "ss_sd_model_name": f.base_model_name,
        "ss_sd_model_hash": f.base_model_legacy_hash,
        "ss_new_sd_model_hash": f.base_model_sha256,
        "ss_vae_name": str(cfg.model.vae.name) if cfg.model.vae else None,
        "ss_resolution": f"({f.resolution[0]}, {f.resolution[1]})",
        "ss_flip_aug": cfg.augmentation.random_flip,
        "ss_color_aug": cfg.augmentation.color_jitter,
        "ss_random_crop": cfg.augmentation.random_crop,
        "ss_shuffle_caption": False,
        "ss_keep_tokens": 0,
        "ss_caption_dropout_rate": 0.0,
        "ss_prior_loss_weight": 1.0,
        "ss_tag_frequency": json.dumps({set_dir: _tag_frequency(f.captions)}),
        "ss_dataset_dirs": json.dumps({set_dir: {"n_repeats": 1, "img_count": f.num_images}}),
        "ss_training_comment": (
            f"trigger word: {f.trigger_word}; training set v{f.training_set_version}; "
            f"charstudio {__version__}"
        ),
    }


def lora_metadata(facts: LoraFacts) -> dict[str, str]:
    """The string-to-string metadata of the LoRA file (without the ``sshs_*`` hashes)."""
    meta = {k: str(v) for k, v in _kohya_keys(facts).items()}
    spec = {
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": facts.family.modelspec_architecture,
        "modelspec.implementation": (
            "diffusers"
            if facts.family.name == "sd15"
            else "https://github.com/Stability-AI/generative-models"
        ),
        "modelspec.title": facts.output_name,
        "modelspec.resolution": f"{facts.resolution[0]}x{facts.resolution[1]}",
        "modelspec.date": datetime.fromtimestamp(facts.finished_at, UTC).isoformat(),
        "modelspec.prediction_type": "epsilon",
        "modelspec.trigger_phrase": facts.trigger_word,
        "modelspec.implementation_version": f"charstudio/{__version__}",
    }
    own = {
        "charstudio.trigger_word": facts.trigger_word,
        "charstudio.training_set_version": str(facts.training_set_version),
        "charstudio.training_set_hash": facts.training_set_hash,
        "charstudio.config": json.dumps(facts.config.model_dump(mode="json")),
    }
    return meta | spec | own
