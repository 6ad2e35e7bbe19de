"""The prepared training set as training examples: images, captions, sizes, batches.

Reads what ``charstudio dataset prepare`` wrote (``images/<name>_001.png`` +
``captions/<name>_001.txt`` + ``config.json``). Each image is scaled so its longer side is
``training.resolution``, with both sides rounded down to what the VAE and UNet can divide
(never stretched: the aspect ratio stays within one rounding step). Images of equal size
form a bucket; batches never mix sizes.

The order of batches in epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees
exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageEnhance

from charstudio.training.types import NoTrainingSet

__all__ = [
    "Example",
    "TrainingSetInfo",
    "epoch_batches",
    "image_tensor",
    "read_training_set",
    "target_size",
]


@dataclass(frozen=True)
class Example:
    index: int
    image: Path
    caption: str
    size: tuple[int, int]  # (width, height) after scaling, in pixels


@dataclass(frozen=True)
class TrainingSetInfo:
    folder: Path
    examples: list[Example]
    trigger_word: str
    content_hash: str
    config: dict[str, Any]


def target_size(width: int, height: int, resolution: int, multiple: int) -> tuple[int, int]:
    """Scale so the longer side is ``resolution``; round both sides down to ``multiple``."""
    scale = resolution / max(width, height)
    return (
        max(multiple, int(width * scale) // multiple * multiple),
        max(multiple, int(height * scale) // multiple * multiple),
    )


def read_training_set(
    folder: Path, *, name: str, resolution: int, multiple: int
) -> TrainingSetInfo:
    """The examples of a prepared set.

    Raises:
        NoTrainingSet: no folder, no ``config.json``, no images, or an image without caption.
    """
    hint = f"run `charstudio dataset prepare {name}` first"
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise NoTrainingSet(f"{name!r} has no prepared training set at {folder}; {hint}")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    images = sorted((folder / "images").glob("*.png"))
    if not images:
        raise NoTrainingSet(f"the training set of {name!r} at {folder} has no images; {hint}")
    examples = []
    for index, image in enumerate(images):
        caption_file = folder / "captions" / f"{image.stem}.txt"
        if not caption_file.is_file():
            raise NoTrainingSet(
                f"{image.name} in {folder} has no caption file captions/{image.stem}.txt; {hint}"
            )
        with Image.open(image) as img:
            size = target_size(img.width, img.height, resolution, multiple)
        caption = caption_file.read_text(encoding="utf-8").strip()
        examples.append(Example(index=index, image=image, caption=caption, size=size))
    return TrainingSetInfo(
        folder=folder,
        examples=examples,
        trigger_word=str(config.get("trigger_word", "")),
        content_hash=str(config.get("content_hash", "")),
        config=config,
    )


def image_tensor(
    example: Example,
    *,
    flip: bool = False,
    jitter: random.Random | None = None,
    crop: random.Random | None = None,
) -> torch.Tensor:
    """The image as a ``[3, H, W]`` tensor in [-1, 1], with the asked augmentations."""
    with Image.open(example.image) as opened:
        img = opened.convert("RGB")
    if crop is not None:  # a random 90-100 % crop, resized back
        keep = crop.uniform(0.9, 1.0)
        w, h = int(img.width * keep), int(img.height * keep)
        left, top = crop.randint(0, img.width - w), crop.randint(0, img.height - h)
        img = img.crop((left, top, left + w, top + h))
    img = img.resize(example.size, Image.Resampling.LANCZOS)
    if jitter is not None:  # mild brightness / contrast / saturation jitter (+-10 %)
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhancer(img).enhance(jitter.uniform(0.9, 1.1))
    if flip:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    array = np.asarray(img, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def epoch_batches(
    examples: list[Example], *, batch_size: int, seed: int, epoch: int
) -> list[list[int]]:
    """Batches (lists of example indices) of one epoch: shuffled within and across buckets."""
    rng = random.Random(seed * 1_000_003 + epoch)
    buckets: dict[tuple[int, int], list[int]] = {}
    for example in examples:
        buckets.setdefault(example.size, []).append(example.index)
    batches: list[list[int]] = []
    for size in sorted(buckets):
        members = buckets[size]
        rng.shuffle(members)
        batches += [members[i : i + batch_size] for i in range(0, len(members), batch_size)]
    rng.shuffle(batches)
    return batches
