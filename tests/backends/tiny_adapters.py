"""Tiny IP-Adapter, CLIP vision, ControlNet and LoRA files, shaped for the tiny test UNets.

Each builder writes the file the way users have it:

* an IP-Adapter ``.safetensors`` in h94's layout (``image_proj.*`` for the PLUS
  resampler: ``latents``, ``proj_in``, ``layers.N.0.to_kv`` ...; ``ip_adapter.N.to_k_ip``
  for each cross-attention layer, numbered 1, 3, 5 ... in the UNet's processor order) as
  ComfyUI's ``models/ipadapter`` holds it;
* a CLIP vision encoder ``.safetensors`` with Hugging Face key names
  (``vision_model.*``, ``visual_projection.weight``), as in ``models/clip_vision``;
* an OpenPose-style ControlNet as one ``.safetensors``, with diffusers' key names or the
  original ones (``control_model.*``);
* a kohya LoRA (``lora_unet_*``, ``lora_te*``) with ``ss_base_model_version`` metadata.

The weights are random (seeded) and scaled up where a zero-ish effect would hide a bug.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from diffusers import ControlNetModel
from safetensors.torch import save_file
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from charstudio.training.families import FAMILIES, FamilyName
from charstudio.training.kohya_format import kohya_state_dict, write_safetensors
from tests.training.tiny_models import unet_to_ldm

CLIP_HIDDEN = 32
CLIP_IMAGE = 32
RESAMPLER_HIDDEN = 64  # diffusers reads heads as to_q rows // 64
QUERIES = 4


def _random(generator: torch.Generator, *shape: int, scale: float = 0.2) -> torch.Tensor:
    return torch.randn(*shape, generator=generator) * scale


def ipadapter_plus_state(
    unet: Any,
    *,
    seed: int = 1,
    clip_hidden: int = CLIP_HIDDEN,
    hidden: int = RESAMPLER_HIDDEN,
    queries: int = QUERIES,
) -> dict[str, torch.Tensor]:
    """An IP-Adapter PLUS state dict (h94 key layout) for ``unet``.

    The defaults are tiny; ``clip_hidden=1280, hidden=768, queries=16`` is the real
    ``ip-adapter-plus-face_sd15`` (12 heads of 64).
    """
    g = torch.Generator().manual_seed(seed)
    cross = int(unet.config.cross_attention_dim)
    heads = hidden // 64
    ones, zeros = torch.ones(hidden), torch.zeros(hidden)
    proj: dict[str, torch.Tensor] = {
        "latents": _random(g, 1, queries, hidden, scale=1.0),
        "proj_in.weight": _random(g, hidden, clip_hidden),
        "proj_in.bias": torch.zeros(hidden),
        "proj_out.weight": _random(g, cross, hidden),
        "proj_out.bias": torch.zeros(cross),
        "norm_out.weight": torch.ones(cross),
        "norm_out.bias": torch.zeros(cross),
    }
    for i in range(4):  # IPAdapterPlusImageProjection's depth
        p = f"layers.{i}."
        proj |= {
            p + "0.norm1.weight": ones,
            p + "0.norm1.bias": zeros,
            p + "0.norm2.weight": ones,
            p + "0.norm2.bias": zeros,
            p + "0.to_q.weight": _random(g, 64 * heads, hidden),
            p + "0.to_kv.weight": _random(g, 128 * heads, hidden),
            p + "0.to_out.weight": _random(g, hidden, 64 * heads),
            p + "1.0.weight": ones,
            p + "1.0.bias": zeros,
            p + "1.1.weight": _random(g, 4 * hidden, hidden),
            p + "1.3.weight": _random(g, hidden, 4 * hidden),
        }
    state = {f"image_proj.{k}": v.clone() for k, v in proj.items()}
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        attention = unet.get_submodule(name.removesuffix(".processor"))
        shape = attention.to_k.weight.shape
        state[f"ip_adapter.{key_id}.to_k_ip.weight"] = _random(g, *shape, scale=1.0)
        state[f"ip_adapter.{key_id}.to_v_ip.weight"] = _random(g, *shape, scale=1.0)
        key_id += 2
    return state


def write_ipadapter(unet: Any, path: Path, **shape: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(ipadapter_plus_state(unet, **shape), str(path))
    return path


TINY_VISION: dict[str, Any] = {
    "hidden_size": CLIP_HIDDEN,
    "intermediate_size": 37,
    "num_attention_heads": 1,
    "num_hidden_layers": 2,
    "image_size": CLIP_IMAGE,
    "patch_size": 8,
    "projection_dim": CLIP_HIDDEN,
}
# OpenCLIP ViT-H/14 as CLIP-ViT-H-14-laion2B-s32B-b79K has it.
VIT_H_VISION: dict[str, Any] = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 16,
    "num_hidden_layers": 32,
    "image_size": 224,
    "patch_size": 14,
    "projection_dim": 1024,
}


def clip_vision_model(config: dict[str, Any] | None = None) -> CLIPVisionModelWithProjection:
    torch.manual_seed(2)
    values = {**(config or TINY_VISION), "hidden_act": "gelu"}
    model = CLIPVisionModelWithProjection(CLIPVisionConfig(**values))
    model.train(False)
    return model


def write_clip_vision(path: Path, config: dict[str, Any] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in clip_vision_model(config).state_dict().items()}
    save_file(state, str(path))
    return path


def write_controlnet(unet: Any, path: Path) -> Path:
    """A ControlNet copied from ``unet`` (as ControlNet training starts), saved as one file."""
    torch.manual_seed(3)
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    with torch.no_grad():  # zero convolutions would make the ControlNet a no-op
        for name, parameter in controlnet.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block")):
                parameter.normal_(0, 0.5)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in controlnet.state_dict().items()}, str(path))
    return path


def write_controlnet_ldm(unet: Any, path: Path) -> Path:
    """The same kind of ControlNet with the original (LDM) key names, as the OpenPose files in
    ComfyUI's ``models/controlnet`` have them (``control_model.input_blocks.*``,
    ``zero_convs.N.0``, ``middle_block_out.0``, ``input_hint_block.0, 2, 4 ... 14``: the
    last convolution is always 14, as diffusers' converter expects)."""
    torch.manual_seed(3)
    # A hint encoder that halves the image once, as the tiny VAE does (real ones: 8x, 8 convs).
    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16))
    with torch.no_grad():
        for name, parameter in controlnet.named_parameters():
            if name.startswith(("controlnet_down_blocks", "controlnet_mid_block")):
                parameter.normal_(0, 0.5)
    state = controlnet.state_dict()
    body = {k: v for k, v in state.items() if not k.startswith("controlnet_")}
    ldm = {
        k.removeprefix("model.diffusion_model."): v
        for k, v in unet_to_ldm(body, dict(unet.config)).items()
    }
    hint = "controlnet_cond_embedding."
    for key, value in state.items():
        if m := re.match(r"controlnet_down_blocks\.(\d+)\.(\w+)", key):
            ldm[f"zero_convs.{m[1]}.0.{m[2]}"] = value
        elif key.startswith("controlnet_mid_block."):
            ldm["middle_block_out.0." + key.split(".")[-1]] = value
        elif key.startswith(hint + "conv_in."):
            ldm["input_hint_block.0." + key.split(".")[-1]] = value
        elif m := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.(\w+)", key):
            ldm[f"input_hint_block.{2 * (int(m[1]) + 1)}.{m[2]}"] = value
        elif key.startswith(hint + "conv_out."):
            ldm["input_hint_block.14." + key.split(".")[-1]] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({f"control_model.{k}": v.contiguous() for k, v in ldm.items()}, str(path))
    return path


_UNET_TARGETS = re.compile(r".*attn[12]\.(to_q|to_k|to_v|to_out\.0)$")
_TEXT_TARGETS = re.compile(r".*self_attn\.(q_proj|k_proj|v_proj|out_proj)$")


def _adapter(module: Any, pattern: re.Pattern[str], g: torch.Generator) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for name, child in module.named_modules():
        if pattern.match(name) and isinstance(child, torch.nn.Linear):
            state[f"{name}.lora_A.weight"] = _random(g, 4, child.in_features, scale=0.5)
            state[f"{name}.lora_B.weight"] = _random(g, child.out_features, 4, scale=0.5)
    return state


def write_lora(pipe: Any, family: FamilyName, path: Path) -> Path:
    """A kohya LoRA over ``pipe``'s UNet and text encoders, as charstudio's trainer writes it."""
    g = torch.Generator().manual_seed(4)
    spec = FAMILIES[family]
    tensors = kohya_state_dict(
        family=spec,
        unet=_adapter(pipe.unet, _UNET_TARGETS, g),
        text_encoders=[_adapter(getattr(pipe, n), _TEXT_TARGETS, g) for n in spec.text_encoders],
        alpha=4,
        precision="fp32",
    )
    write_safetensors(path, tensors, {"ss_base_model_version": spec.ss_base_model_version})
    return path
