"""Tiny SD1.5- and SDXL-shaped models built from configs, saved the ways users have them.

The models are random and a few hundred kilobytes, but they have the real classes and the
real key layouts: a diffusers folder (``save_pretrained``) and a single-file checkpoint with
LDM keys (``model.diffusion_model.*``, ``first_stage_model.*``,
``cond_stage_model.transformer.*``) as ComfyUI and A1111 save them. The diffusers -> LDM key
mapping below exists only for these fixtures; charstudio itself reads LDM files through
diffusers' ``from_single_file``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    AutoencoderKL,
    DDPMScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from safetensors.torch import save_file
from transformers import (
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTextModelWithProjection,
    CLIPTokenizer,
)

from charstudio.training.families import FAMILIES, Family, FamilyName, write_config_folder

TEXT_DIM = 32
TEXT_DIM_2 = 48  # differs from TEXT_DIM, as in SDXL (768 / 1280): loaders tell them apart by it


def _text_config(*, projection: bool) -> dict[str, Any]:
    dim = TEXT_DIM_2 if projection else TEXT_DIM
    return {
        "architectures": ["CLIPTextModelWithProjection" if projection else "CLIPTextModel"],
        "model_type": "clip_text_model",
        "hidden_size": dim,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "hidden_act": "gelu" if projection else "quick_gelu",
        "projection_dim": dim,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "layer_norm_eps": 1e-05,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "pad_token_id": 1,
    }


def tiny_family(name: FamilyName) -> Family:
    """The real family entry with tiny component configs."""
    base = FAMILIES[name]
    unet: dict[str, Any] = {
        "_class_name": "UNet2DConditionModel",
        "block_out_channels": [16, 32],
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "attention_head_dim": 4,
        "sample_size": 8,
        "in_channels": 4,
        "out_channels": 4,
    }
    if name == "sd15":
        unet |= {
            "cross_attention_dim": TEXT_DIM,
            "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
            "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
        }
    else:
        unet |= {
            "cross_attention_dim": TEXT_DIM + TEXT_DIM_2,
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
            "up_block_types": ["CrossAttnUpBlock2D", "UpBlock2D"],
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 8,
            "projection_class_embeddings_input_dim": TEXT_DIM_2 + 6 * 8,
            "transformer_layers_per_block": [1, 1],
            "use_linear_projection": True,
        }
    vae = {
        "_class_name": "AutoencoderKL",
        "block_out_channels": [8, 16],
        "down_block_types": ["DownEncoderBlock2D"] * 2,
        "up_block_types": ["UpDecoderBlock2D"] * 2,
        "latent_channels": 4,
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "sample_size": 32,
        "scaling_factor": base.components["vae"]["scaling_factor"],
    }
    components = {
        "unet": unet,
        "vae": vae,
        "text_encoder": _text_config(projection=False),
        "scheduler": base.components["scheduler"],
    }
    if name == "sdxl":
        components["text_encoder_2"] = _text_config(projection=True)
    return dataclasses.replace(base, components=components)


def build_pipeline(name: FamilyName, config_dir: Path) -> Any:
    """Random tiny models (seeded), with the derived CLIP tokenizer, as a diffusers pipeline."""
    family = tiny_family(name)
    write_config_folder(family, config_dir)
    torch.manual_seed(0)
    parts: dict[str, Any] = {
        "unet": UNet2DConditionModel.from_config(family.components["unet"]),
        "vae": AutoencoderKL.from_config(family.components["vae"]),
        "scheduler": DDPMScheduler.from_config(family.components["scheduler"]),
        "text_encoder": CLIPTextModel(CLIPTextConfig(**family.components["text_encoder"])),
        "tokenizer": CLIPTokenizer.from_pretrained(config_dir / "tokenizer"),
    }
    if name == "sd15":
        return StableDiffusionPipeline(
            **parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False
        )
    parts["text_encoder_2"] = CLIPTextModelWithProjection(
        CLIPTextConfig(**family.components["text_encoder_2"])
    )
    parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(config_dir / "tokenizer_2")
    return StableDiffusionXLPipeline(**parts)


# -- diffusers -> LDM key names (fixtures only) ----------------------------------------------
_RESNET = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("time_emb_proj", "emb_layers.1"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("conv_shortcut", "skip_connection"),
]


def _resnet(rest: str) -> str:
    for new, old in _RESNET:
        if rest.startswith(new + "."):
            return old + rest[len(new) :]
    return rest


def unet_to_ldm(state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    n = config["layers_per_block"] + 1
    up_has_attention = ["CrossAttn" in t for t in config["up_block_types"]]
    fixed = {
        "time_embedding.linear_1.": "time_embed.0.",
        "time_embedding.linear_2.": "time_embed.2.",
        "add_embedding.linear_1.": "label_emb.0.0.",
        "add_embedding.linear_2.": "label_emb.0.2.",
        "conv_in.": "input_blocks.0.0.",
        "conv_norm_out.": "out.0.",
        "conv_out.": "out.2.",
    }
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = next((v + key[len(k) :] for k, v in fixed.items() if key.startswith(k)), None)
        if new is None and (m := re.match(r"down_blocks\.(\d+)\.(\w+)\.(\d+)\.(.*)", key)):
            b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            if kind == "resnets":
                new = f"input_blocks.{b * n + j + 1}.0.{_resnet(rest)}"
            elif kind == "attentions":
                new = f"input_blocks.{b * n + j + 1}.1.{rest}"
            else:
                new = f"input_blocks.{(b + 1) * n}.0.op.{rest.removeprefix('conv.')}"
        elif new is None and (m := re.match(r"up_blocks\.(\d+)\.(\w+)\.(\d+)\.(.*)", key)):
            b, kind, j, rest = int(m[1]), m[2], int(m[3]), m[4]
            if kind == "resnets":
                new = f"output_blocks.{b * n + j}.0.{_resnet(rest)}"
            elif kind == "attentions":
                new = f"output_blocks.{b * n + j}.1.{rest}"
            else:
                new = f"output_blocks.{b * n + n - 1}.{2 if up_has_attention[b] else 1}.{rest}"
        elif new is None and (m := re.match(r"mid_block\.(\w+)\.(\d+)\.(.*)", key)):
            kind, j, rest = m[1], int(m[2]), m[3]
            new = (
                f"middle_block.{2 * j}.{_resnet(rest)}"
                if kind == "resnets"
                else f"middle_block.1.{rest}"
            )
        assert new is not None, key
        out["model.diffusion_model." + new] = value
    return out


_VAE_ATTENTION = [
    ("group_norm", "norm"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("to_out.0", "proj_out"),
]


def vae_to_ldm(state: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, torch.Tensor]:
    levels = len(config["up_block_types"])
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        new = key.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        if m := re.match(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", new):
            new = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
        elif m := re.match(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.(.*)", new):
            new = f"encoder.down.{m[1]}.downsample.{m[2]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.*)", new):
            new = f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3]}"
        elif m := re.match(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.(.*)", new):
            new = f"decoder.up.{levels - 1 - int(m[1])}.upsample.{m[2]}"
        elif m := re.match(r"(\w+)\.mid_block\.resnets\.(\d+)\.(.*)", new):
            new = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
        elif m := re.match(r"(\w+)\.mid_block\.attentions\.0\.(.*)", new):
            rest = m[2]
            for diffusers_name, ldm_name in _VAE_ATTENTION:
                if rest.startswith(diffusers_name + "."):
                    rest = ldm_name + rest[len(diffusers_name) :]
            new = f"{m[1]}.mid.attn_1.{rest}"
            if value.ndim == 2:  # LDM keeps these as 1x1 convolutions
                value = value[:, :, None, None]
        out["first_stage_model." + new] = value
    return out


_OPEN_CLIP = [
    ("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
    ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
    ("text_model.final_layer_norm.", "ln_final."),
    ("text_model.encoder.layers.", "transformer.resblocks."),
    ("self_attn.out_proj.", "attn.out_proj."),
    ("layer_norm1.", "ln_1."),
    ("layer_norm2.", "ln_2."),
    ("mlp.fc1.", "mlp.c_fc."),
    ("mlp.fc2.", "mlp.c_proj."),
]


def open_clip_to_ldm(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """SDXL's second text encoder in OpenCLIP's layout (fused q/k/v, transposed projection)."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key == "text_projection.weight":
            out[prefix + "text_projection"] = value.T.contiguous()
            continue
        if m := re.match(r"(.*)\.self_attn\.([qkv])_proj\.(weight|bias)", key):
            fused.setdefault(f"{m[1]}.self_attn.in_proj_{m[3]}", {})[m[2]] = value
            continue
        new = key
        for diffusers_name, ldm_name in _OPEN_CLIP:
            new = new.replace(diffusers_name, ldm_name)
        out[prefix + new] = value
    for key, parts in fused.items():
        new = key.replace("text_model.encoder.layers.", "transformer.resblocks.")
        new = new.replace("self_attn.", "attn.")
        out[prefix + new] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def save_single_file(pipe: Any, path: Path) -> Path:
    """Save a pipeline as one LDM-keyed ``.safetensors`` file (SDXL: SGM's conditioner keys)."""
    state = unet_to_ldm(pipe.unet.state_dict(), dict(pipe.unet.config))
    state |= vae_to_ldm(pipe.vae.state_dict(), dict(pipe.vae.config))
    # transformers >= 5.6 flattened CLIPTextModel (no ``text_model.``); LDM files keep it.
    first = (
        "cond_stage_model.transformer.text_model."
        if not hasattr(pipe, "text_encoder_2")
        else "conditioner.embedders.0.transformer.text_model."
    )
    state |= {
        first + k.removeprefix("text_model."): v for k, v in pipe.text_encoder.state_dict().items()
    }
    if hasattr(pipe, "text_encoder_2"):
        state |= open_clip_to_ldm(
            pipe.text_encoder_2.state_dict(), "conditioner.embedders.1.model."
        )
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
