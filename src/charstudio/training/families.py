"""Model families as data: SD1.5 and SDXL differ in a table, not in copied code.

Each :class:`Family` says how to recognise a single-file checkpoint of that family from its
key names, which components it has, the kohya prefixes of its text encoders, and the
component configs needed to load a single-file checkpoint offline. Those configs are
written to a local folder at run time (:func:`write_config_folder`) together with the CLIP
tokenizer files derived in :mod:`charstudio.training.tokenizer_files`, so
``from_single_file(..., config=folder, local_files_only=True)`` never reaches a hub.

The numbers are the published configs of ``stable-diffusion-v1-5`` and
``stable-diffusion-xl-base-1.0`` (``unet/config.json``, ``vae/config.json``,
``text_encoder*/config.json``, ``scheduler/scheduler_config.json``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from charstudio.training.tokenizer_files import write_clip_tokenizer

__all__ = ["FAMILIES", "Family", "FamilyName", "family_of_keys", "write_config_folder"]

FamilyName = Literal["sd15", "sdxl"]

_DIFFUSERS = "0.42.1"

_SCALED_LINEAR = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "clip_sample": False,
    "set_alpha_to_one": False,
}


def _vae(scaling_factor: float, sample_size: int, force_upcast: bool) -> dict[str, Any]:
    return {
        "_class_name": "AutoencoderKL",
        "_diffusers_version": _DIFFUSERS,
        "act_fn": "silu",
        "block_out_channels": [128, 256, 512, 512],
        "down_block_types": ["DownEncoderBlock2D"] * 4,
        "up_block_types": ["UpDecoderBlock2D"] * 4,
        "in_channels": 3,
        "out_channels": 3,
        "latent_channels": 4,
        "layers_per_block": 2,
        "norm_num_groups": 32,
        "sample_size": sample_size,
        "scaling_factor": scaling_factor,
        "force_upcast": force_upcast,
    }


def _clip_text(
    *, hidden: int, layers: int, heads: int, act: str, arch: str, projection: int
) -> dict[str, Any]:
    return {
        "architectures": [arch],
        "model_type": "clip_text_model",
        "hidden_size": hidden,
        "intermediate_size": hidden * 4,
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "hidden_act": act,
        "projection_dim": projection,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "layer_norm_eps": 1e-05,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
    }


@dataclass(frozen=True)
class Family:
    """What charstudio needs to know about one model family."""

    name: FamilyName
    title: str
    # Key prefixes that only this family's single-file (LDM/SGM) checkpoints have.
    marker_keys: tuple[str, ...]
    text_encoders: tuple[str, ...]  # pipeline attribute names, in order
    kohya_te_prefixes: tuple[str, ...]  # one per text encoder (docs/reference/lora-trainers.md 2.1)
    ss_base_model_version: str  # kohya's ss_base_model_version
    modelspec_architecture: str  # SAI ModelSpec 1.0.1 modelspec.architecture
    pipeline_class: str
    components: dict[str, Any] = field(default_factory=dict)


SD15 = Family(
    name="sd15",
    title="Stable Diffusion 1.5",
    marker_keys=("cond_stage_model.transformer.",),
    text_encoders=("text_encoder",),
    kohya_te_prefixes=("lora_te",),
    ss_base_model_version="sd_v1",
    modelspec_architecture="stable-diffusion-v1/lora",
    pipeline_class="StableDiffusionPipeline",
    components={
        "unet": {
            "_class_name": "UNet2DConditionModel",
            "_diffusers_version": _DIFFUSERS,
            "act_fn": "silu",
            "attention_head_dim": 8,
            "block_out_channels": [320, 640, 1280, 1280],
            "cross_attention_dim": 768,
            "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            "up_block_types": ["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3,
            "in_channels": 4,
            "out_channels": 4,
            "layers_per_block": 2,
            "norm_num_groups": 32,
            "sample_size": 64,
        },
        "vae": _vae(0.18215, 512, False),
        "text_encoder": _clip_text(
            hidden=768, layers=12, heads=12, act="quick_gelu", arch="CLIPTextModel", projection=768
        ),
        "scheduler": {
            "_class_name": "PNDMScheduler",
            "_diffusers_version": _DIFFUSERS,
            **_SCALED_LINEAR,
            "skip_prk_steps": True,
        },
    },
)

SDXL = Family(
    name="sdxl",
    title="Stable Diffusion XL",
    marker_keys=("conditioner.embedders.1.", "model.diffusion_model.label_emb."),
    text_encoders=("text_encoder", "text_encoder_2"),
    kohya_te_prefixes=("lora_te1", "lora_te2"),
    ss_base_model_version="sdxl_base_v1-0",
    modelspec_architecture="stable-diffusion-xl-v1-base/lora",
    pipeline_class="StableDiffusionXLPipeline",
    components={
        "unet": {
            "_class_name": "UNet2DConditionModel",
            "_diffusers_version": _DIFFUSERS,
            "addition_embed_type": "text_time",
            "addition_embed_type_num_heads": 64,
            "addition_time_embed_dim": 256,
            "attention_head_dim": [5, 10, 20],
            "block_out_channels": [320, 640, 1280],
            "cross_attention_dim": 2048,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            "in_channels": 4,
            "out_channels": 4,
            "layers_per_block": 2,
            "projection_class_embeddings_input_dim": 2816,
            "sample_size": 128,
            "transformer_layers_per_block": [1, 2, 10],
            "use_linear_projection": True,
        },
        "vae": _vae(0.13025, 1024, True),
        "text_encoder": _clip_text(
            hidden=768, layers=12, heads=12, act="quick_gelu", arch="CLIPTextModel", projection=768
        ),
        "text_encoder_2": _clip_text(
            hidden=1280,
            layers=32,
            heads=20,
            act="gelu",
            arch="CLIPTextModelWithProjection",
            projection=1280,
        ),
        "scheduler": {
            "_class_name": "EulerDiscreteScheduler",
            "_diffusers_version": _DIFFUSERS,
            **_SCALED_LINEAR,
            "timestep_spacing": "leading",
            "interpolation_type": "linear",
            "prediction_type": "epsilon",
        },
    },
)

FAMILIES: dict[FamilyName, Family] = {"sd15": SD15, "sdxl": SDXL}


def family_of_keys(keys: set[str] | list[str]) -> FamilyName | None:
    """The family whose marker keys a single-file checkpoint has, or ``None``."""
    for family in (SDXL, SD15):  # SDXL first: its markers are the more specific ones
        if any(key.startswith(marker) for key in keys for marker in family.marker_keys):
            return family.name
    return None


def write_config_folder(family: Family, folder: Path) -> Path:
    """Write ``model_index.json``, the component configs and the tokenizers into ``folder``.

    This is the local ``config=`` folder ``from_single_file`` needs to load offline.
    """
    library = {"unet": "diffusers", "vae": "diffusers", "scheduler": "diffusers"}
    index: dict[str, Any] = {
        "_class_name": family.pipeline_class,
        "_diffusers_version": _DIFFUSERS,
    }
    for name, config in family.components.items():
        sub = folder / name
        sub.mkdir(parents=True, exist_ok=True)
        file = "scheduler_config.json" if name == "scheduler" else "config.json"
        (sub / file).write_text(json.dumps(config, indent=2), encoding="utf-8")
        class_name = config.get("_class_name") or config["architectures"][0]
        index[name] = [library.get(name, "transformers"), class_name]
    for i, encoder in enumerate(family.text_encoders):
        tokenizer = "tokenizer" if i == 0 else f"tokenizer_{i + 1}"
        write_clip_tokenizer(folder / tokenizer, pad_token="!" if i else "<|endoftext|>")
        index[tokenizer] = ["transformers", "CLIPTokenizer"]
        assert encoder in index
    if family.name == "sd15":
        index |= {
            "safety_checker": [None, None],
            "feature_extractor": [None, None],
            "requires_safety_checker": False,
        }
    else:
        index |= {"force_zeros_for_empty_prompt": True}
    (folder / "model_index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    return folder
