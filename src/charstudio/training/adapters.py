"""LoRA layers on the UNet and the text encoders, with peft.

The UNet gets its adapter through diffusers' ``unet.add_adapter`` (peft underneath). The
text encoders get theirs through peft's own ``inject_adapter_in_model``: transformers 5.24's
``add_adapter`` refuses peft below 0.22, and 0.21.2 is the newest release
(docs/ARCHITECTURE.md, "Facts checked").

Initialisation is kohya's (docs/reference/lora-trainers.md, section 1): ``lora_down`` (peft
``lora_A``) Kaiming-uniform, ``lora_up`` (``lora_B``) zeros, so training starts from the
base model; the scale is ``alpha / rank``.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import LoraConfig, get_peft_model_state_dict, inject_adapter_in_model
from peft import set_peft_model_state_dict as _set_state

from charstudio.training.config import LoraSection

__all__ = [
    "TEXT_ENCODER_TARGETS",
    "adapter_parameters",
    "adapter_state",
    "add_lora",
    "load_adapter_state",
    "unet_targets",
]

ADAPTER = "default"
# CLIP attention, as the diffusers examples train it (docs/reference/lora-trainers.md, section 1).
TEXT_ENCODER_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
_UNET_NAMES = {
    "to_q": ("to_q",),
    "to_k": ("to_k",),
    "to_v": ("to_v",),
    "to_out": ("to_out.0",),
    "proj_in": ("proj_in",),
    "proj_out": ("proj_out",),
    "ff": ("ff.net.0.proj", "ff.net.2"),
}


def unet_targets(lora: LoraSection) -> list[str]:
    """peft ``target_modules`` for the configured names (``to_out`` is ``to_out.0``)."""
    return [name for key in lora.target_modules for name in _UNET_NAMES[key]]


def _config(lora: LoraSection, targets: list[str]) -> LoraConfig:
    return LoraConfig(
        r=lora.rank,
        lora_alpha=lora.alpha,  # type: ignore[arg-type]  # peft takes floats: scale = alpha / r
        lora_dropout=lora.dropout,
        target_modules=targets,
        init_lora_weights=True,
    )


def add_lora(
    *, unet: Any, text_encoders: list[Any], lora: LoraSection, train_text_encoder: bool
) -> None:
    """Freeze the base weights and add trainable LoRA layers (text encoders only if asked)."""
    unet.requires_grad_(False)
    unet.add_adapter(_config(lora, unet_targets(lora)))
    for encoder in text_encoders:
        encoder.requires_grad_(False)
        if train_text_encoder:
            inject_adapter_in_model(_config(lora, list(TEXT_ENCODER_TARGETS)), encoder, ADAPTER)


def adapter_parameters(module: Any) -> list[torch.nn.Parameter]:
    """The trainable LoRA parameters of one model, in a stable order."""
    return [p for name, p in module.named_parameters() if "lora_" in name and p.requires_grad]


def adapter_state(module: Any) -> dict[str, torch.Tensor]:
    """The adapter's weights with peft names (``...to_q.lora_A.weight``), detached copies."""
    state = get_peft_model_state_dict(module, adapter_name=ADAPTER)
    return {k: v.detach().clone() for k, v in state.items()}


def load_adapter_state(module: Any, state: dict[str, torch.Tensor]) -> None:
    """Put saved adapter weights back (resume)."""
    result = _set_state(module, state, adapter_name=ADAPTER)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise RuntimeError(f"checkpoint has adapter keys this model lacks: {unexpected[:3]}")
