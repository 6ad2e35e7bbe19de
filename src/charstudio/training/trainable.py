"""The base model made trainable: step 4 of :meth:`~charstudio.training.trainer.Trainer.run`.

LoRA layers on the UNet (and on the text encoders when they train), PyTorch's SDPA
attention, gradient checkpointing, and the weight precision: the frozen weights in the
mixed-precision dtype on CUDA, the trainable LoRA weights always in fp32. Also which parts
train, and their adapter weights as checkpoints and the LoRA file save and restore them.
"""

from __future__ import annotations

from typing import Any

import torch

from charstudio.training import adapters as lora_layers
from charstudio.training.config import TrainingConfig
from charstudio.training.loading import BaseModel

__all__ = ["adapter_states", "load_adapter_states", "prepare_models", "trained_encoders"]


def trained_encoders(base: BaseModel, config: TrainingConfig) -> list[Any]:
    """The text encoders that train (none unless ``training.train_text_encoder``)."""
    return base.text_encoders if config.training.train_text_encoder else []


def adapter_states(base: BaseModel, config: TrainingConfig) -> dict[str, dict[str, torch.Tensor]]:
    """The LoRA weights by owner: ``unet`` and each trained text encoder's family name."""
    states = {"unet": lora_layers.adapter_state(base.unet)}
    for name, encoder in zip(
        base.family.text_encoders, trained_encoders(base, config), strict=False
    ):
        states[name] = lora_layers.adapter_state(encoder)
    return states


def load_adapter_states(
    base: BaseModel, config: TrainingConfig, adapters: dict[str, dict[str, torch.Tensor]]
) -> None:
    """Put saved LoRA weights (:func:`adapter_states`' layout) back into the model."""
    lora_layers.load_adapter_state(base.unet, adapters["unet"])
    for name, encoder in zip(
        base.family.text_encoders, trained_encoders(base, config), strict=False
    ):
        lora_layers.load_adapter_state(encoder, adapters[name])


def prepare_models(base: BaseModel, config: TrainingConfig, device: torch.device) -> str:
    """Add the LoRA layers and move the model to ``device`` in its training precision.

    Returns:
        The mixed precision in effect: ``config.optimization.mixed_precision`` on CUDA,
        ``"no"`` elsewhere.
    """
    from diffusers.models.attention_processor import AttnProcessor2_0

    cfg = config
    sdpa: Any = AttnProcessor2_0
    base.unet.set_attn_processor(sdpa())  # PyTorch scaled_dot_product_attention
    torch.manual_seed(cfg.training.seed)  # LoRA initialisation (lora_down) is random
    lora_layers.add_lora(
        unet=base.unet,
        text_encoders=base.text_encoders,
        lora=cfg.lora,
        train_text_encoder=cfg.training.train_text_encoder,
    )
    base.vae.requires_grad_(False)
    if cfg.optimization.gradient_checkpointing:
        base.unet.enable_gradient_checkpointing()
        for encoder in trained_encoders(base, cfg):
            encoder.activation_checkpointing_enable({"use_reentrant": False})
    precision = cfg.optimization.mixed_precision if device.type == "cuda" else "no"
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    keep_vae_fp32 = bool(base.vae.config.get("force_upcast", False))
    for module in [base.vae, base.unet, *base.text_encoders]:
        module.to(device)
        dtype = torch.float32 if module is base.vae and keep_vae_fp32 else weight_dtype
        if dtype != torch.float32:
            module.to(dtype=dtype)
    for module in [base.unet, *trained_encoders(base, cfg)]:
        for param in lora_layers.adapter_parameters(module):
            param.data = param.data.float()  # trainable weights stay fp32
    base.unet.train()
    for encoder in base.text_encoders:
        encoder.train(cfg.training.train_text_encoder)
    return precision
