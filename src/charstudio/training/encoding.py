"""Encoding images to latents and captions to text embeddings, and caching both.

Latents are the VAE posterior's mean times the VAE's scaling factor (kohya caches one sample
of it; the mean is the noise-free version). With ``augmentation.random_flip`` both the image
and its mirror are cached, so flipping still works with a cache. Text embeddings are cached
only while the text encoders are frozen; when they train, captions are kept as token ids
and encoded every step.

SD1.5 conditions on the text encoder's last hidden state. SDXL concatenates the
penultimate hidden states of both encoders and adds the second encoder's pooled, projected
output plus the ``time_ids`` (original size, crop, target size) — as SDXL was trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from charstudio.errors import storage_errors
from charstudio.training.data import Example, image_tensor
from charstudio.training.families import Family

__all__ = [
    "TextBatch",
    "encode_latents",
    "encode_text",
    "latent_cache",
    "text_cache",
    "time_ids",
    "tokenize",
]


@dataclass
class TextBatch:
    embeds: torch.Tensor  # [B, 77, D]
    pooled: torch.Tensor | None  # [B, P] (SDXL) or None


def tokenize(tokenizers: list[Any], caption: str) -> list[torch.Tensor]:
    """Token ids, padded/truncated to 77, one ``[77]`` tensor per tokenizer."""
    return [
        tok(
            caption,
            padding="max_length",
            max_length=tok.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids[0]
        for tok in tokenizers
    ]


def encode_text(family: Family, encoders: list[Any], ids: list[torch.Tensor]) -> TextBatch:
    """Embeddings for a batch of token ids (one ``[B, 77]`` tensor per encoder)."""
    if family.name == "sd15":
        return TextBatch(embeds=encoders[0](ids[0].to(_device(encoders[0])))[0], pooled=None)
    hidden = []
    pooled = None
    for encoder, tokens in zip(encoders, ids, strict=True):
        out = encoder(tokens.to(_device(encoder)), output_hidden_states=True)
        hidden.append(out.hidden_states[-2])
        if hasattr(out, "text_embeds"):
            pooled = out.text_embeds
    return TextBatch(embeds=torch.cat(hidden, dim=-1), pooled=pooled)


def time_ids(sizes: list[tuple[int, int]], device: torch.device) -> torch.Tensor:
    """SDXL's micro-conditioning: (orig h, orig w, crop top, crop left, target h, target w)."""
    rows = [[h, w, 0, 0, h, w] for (w, h) in sizes]
    return torch.tensor(rows, dtype=torch.float32, device=device)


def _device(module: Any) -> torch.device:
    device: torch.device = next(module.parameters()).device
    return device


@torch.no_grad()
def encode_latents(vae: Any, pixels: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` pixels in [-1, 1] -> scaled latents (posterior mean)."""
    dist = vae.encode(pixels.to(_device(vae), dtype=vae.dtype)).latent_dist
    latents: torch.Tensor = dist.mean * vae.config.scaling_factor
    return latents


@torch.no_grad()
def latent_cache(
    vae: Any, examples: list[Example], *, flip: bool, disk: Path | None
) -> dict[tuple[int, bool], torch.Tensor]:
    """Latents per (example, flipped), computed once; read from ``disk`` when present there."""
    if disk is not None and disk.is_file():
        cached: dict[tuple[int, bool], torch.Tensor] = torch.load(disk, weights_only=True)
        if {k for k in cached} == {(e.index, f) for e in examples for f in _flips(flip)}:
            return cached
    cache: dict[tuple[int, bool], torch.Tensor] = {}
    for example in examples:
        for flipped in _flips(flip):
            pixels = image_tensor(example, flip=flipped)[None]
            cache[(example.index, flipped)] = encode_latents(vae, pixels)[0].to(
                "cpu", torch.float32
            )
    if disk is not None:
        with storage_errors(disk):
            disk.parent.mkdir(parents=True, exist_ok=True)
            with disk.open("wb") as out:  # a Python file: a full disk is an OSError
                torch.save(cache, out)
    return cache


def _flips(flip: bool) -> tuple[bool, ...]:
    return (False, True) if flip else (False,)


@torch.no_grad()
def text_cache(
    family: Family, encoders: list[Any], tokenizers: list[Any], captions: list[str]
) -> dict[str, TextBatch]:
    """Embeddings per distinct caption, for frozen text encoders."""
    cache = {}
    for caption in sorted(set(captions)):
        ids = [t[None] for t in tokenize(tokenizers, caption)]
        encoded = encode_text(family, encoders, ids)
        cache[caption] = TextBatch(
            embeds=encoded.embeds[0].to("cpu", torch.float32),
            pooled=None if encoded.pooled is None else encoded.pooled[0].to("cpu", torch.float32),
        )
    return cache
