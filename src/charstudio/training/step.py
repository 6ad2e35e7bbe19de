"""One micro-step of training, and the fixed-noise loss used to compare checkpoints.

A micro-step: seed the generators from ``(seed, micro)``; take the batch's latents (cached,
or encoded now with the augmentations), its text conditioning (cached, or encoded now when
the text encoders train), noise them, predict, and return the loss.

The fixed-noise loss is the same objective over the whole training set with noise and
timesteps drawn from one fixed seed, so it differs between checkpoints only because the
weights differ — a steadier signal than the per-step training loss (kohya added the same
idea as validation loss, docs/reference/lora-trainers.md section 1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from charstudio.training.config import TrainingConfig
from charstudio.training.data import TrainingSetInfo, image_tensor
from charstudio.training.encoding import (
    TextBatch,
    encode_latents,
    encode_text,
    time_ids,
    tokenize,
)
from charstudio.training.loading import BaseModel
from charstudio.training.objective import denoising_loss, noise_batch

__all__ = ["Batches", "StepInputs", "fixed_loss", "micro_step", "step_seed"]

FIXED_LOSS_SEED = 20_231_124


@dataclass
class Batches:
    data: TrainingSetInfo
    latents: dict[tuple[int, bool], torch.Tensor] | None  # None: encode every step
    texts: dict[str, TextBatch] | None  # None: the text encoders train


@dataclass
class StepInputs:
    base: BaseModel
    config: TrainingConfig
    batches: Batches
    indices: list[int]
    micro: int
    device: torch.device


def step_seed(seed: int, micro: int) -> int:
    """A 63-bit seed for one micro-step (an LCG mix of the run seed and the step)."""
    return (seed * 6364136223846793005 + (micro + 1) * 1442695040888963407) % (2**63)


def _latents(inputs: StepInputs, flips: list[bool], rng: random.Random) -> torch.Tensor:
    examples = [inputs.batches.data.examples[i] for i in inputs.indices]
    cache = inputs.batches.latents
    if cache is not None:
        stacked = torch.stack([cache[(e.index, f)] for e, f in zip(examples, flips, strict=True)])
        return stacked.to(inputs.device, inputs.base.unet.dtype)
    aug = inputs.config.augmentation
    pixels = torch.stack(
        [
            image_tensor(
                e,
                flip=f,
                jitter=rng if aug.color_jitter else None,
                crop=rng if aug.random_crop else None,
            )
            for e, f in zip(examples, flips, strict=True)
        ]
    )
    return encode_latents(inputs.base.vae, pixels).to(inputs.base.unet.dtype)


def _text(inputs: StepInputs) -> TextBatch:
    captions = [inputs.batches.data.examples[i].caption for i in inputs.indices]
    cache = inputs.batches.texts
    if cache is not None:
        pooled = [cache[c].pooled for c in captions]
        return TextBatch(
            embeds=torch.stack([cache[c].embeds for c in captions]).to(inputs.device),
            pooled=None if pooled[0] is None else torch.stack(pooled).to(inputs.device),  # type: ignore[arg-type]
        )
    ids = [tokenize(inputs.base.tokenizers, c) for c in captions]
    per_encoder = [torch.stack([row[i] for row in ids]) for i in range(len(ids[0]))]
    return encode_text(inputs.base.family, inputs.base.text_encoders, per_encoder)


def _predict(
    base: BaseModel, noisy: torch.Tensor, timesteps: torch.Tensor, text: TextBatch
) -> torch.Tensor:
    kwargs: dict[str, Any] = {}
    if text.pooled is not None:  # SDXL's added conditioning
        factor = 2 ** (len(base.vae.config.block_out_channels) - 1)
        sizes = [(noisy.shape[-1] * factor, noisy.shape[-2] * factor)] * noisy.shape[0]
        kwargs["added_cond_kwargs"] = {
            "text_embeds": text.pooled.to(noisy.dtype),
            "time_ids": time_ids(sizes, noisy.device).to(noisy.dtype),
        }
    out = base.unet(noisy, timesteps, encoder_hidden_states=text.embeds.to(noisy.dtype), **kwargs)
    return out.sample  # type: ignore[no-any-return]


def micro_step(inputs: StepInputs) -> torch.Tensor:
    """The loss of one micro-batch (call ``backward`` on it)."""
    cfg = inputs.config
    seed = step_seed(cfg.training.seed, inputs.micro)
    torch.manual_seed(seed)  # LoRA dropout masks
    generator = torch.Generator("cpu").manual_seed(seed)
    rng = random.Random(seed)
    count = len(inputs.indices)
    flips = (
        (torch.rand(count, generator=generator) < 0.5).tolist()
        if cfg.augmentation.random_flip
        else [False] * count
    )
    latents = _latents(inputs, flips, rng)
    text = _text(inputs)
    scheduler = inputs.base.noise_scheduler
    noised = noise_batch(latents, scheduler, offset=cfg.training.noise_offset, generator=generator)
    prediction = _predict(inputs.base, noised.noisy, noised.timesteps, text)
    return denoising_loss(
        prediction, latents, noised, scheduler, min_snr_gamma=cfg.training.min_snr_gamma
    )


@torch.no_grad()
def fixed_loss(
    base: BaseModel, config: TrainingConfig, batches: Batches, device: torch.device
) -> float:
    """The unweighted loss over the set with fixed noise and timesteps (no flips, no dropout)."""
    modules = [base.unet, *base.text_encoders]
    was_training = [m.training for m in modules]
    for module in modules:
        module.eval()
    generator = torch.Generator("cpu").manual_seed(FIXED_LOSS_SEED)
    total = 0.0
    try:
        for example in batches.data.examples:
            inputs = StepInputs(
                base=base,
                config=config,
                batches=batches,
                indices=[example.index],
                micro=0,
                device=device,
            )
            if batches.latents is not None:
                latents = batches.latents[(example.index, False)][None].to(device, base.unet.dtype)
            else:
                latents = encode_latents(base.vae, image_tensor(example)[None]).to(base.unet.dtype)
            noised = noise_batch(latents, base.noise_scheduler, offset=0.0, generator=generator)
            prediction = _predict(base, noised.noisy, noised.timesteps, _text(inputs))
            loss = denoising_loss(
                prediction, latents, noised, base.noise_scheduler, min_snr_gamma=None
            )
            total += float(loss)
    finally:
        for module, mode in zip(modules, was_training, strict=True):
            module.train(mode)
    return total / len(batches.data.examples)
