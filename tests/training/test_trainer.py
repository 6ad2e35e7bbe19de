"""The loop's other paths: no latent cache with augmentations, a disk cache, SDXL."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler

from charstudio.training.config import load_config
from charstudio.training.data import image_tensor, read_training_set
from charstudio.training.objective import noise_batch
from charstudio.training.trainer import Trainer, TrainRequest
from tests.training.conftest import TRIGGER, TinyModel, tiny_overrides


def _run(model: TinyModel, set_folder: Path, run_dir: Path, *extra: str) -> object:
    config = load_config(overrides=tiny_overrides(model, *extra))
    request = TrainRequest(
        config=config, name="yuki", trigger_word=TRIGGER, set_folder=set_folder, run_dir=run_dir
    )
    return Trainer(request).run()


def test_augmentations_without_a_cache(
    tiny_sd15: TinyModel, training_set: Path, tmp_path: Path
) -> None:
    # Catches a loop that drops the augmentations on the way to the images (the run's losses
    # would equal a plain run's); the two tests below catch each augmentation doing nothing.
    augmented = (
        "augmentation.color_jitter=true",
        "augmentation.random_crop=true",
        "training.noise_offset=0.1",
    )
    common = ("training.cache_latents=false", "training.min_snr_gamma=null")
    outcome: Any = _run(tiny_sd15, training_set, tmp_path / "run", *common, *augmented)
    assert len(outcome.losses) == 6
    assert all(math.isfinite(loss) for loss in outcome.losses)
    assert not (tmp_path / "run" / "cache").exists()
    plain: Any = _run(tiny_sd15, training_set, tmp_path / "plain", *common)
    assert plain.losses != outcome.losses
    for option in augmented:  # each one alone changes the run
        alone: Any = _run(tiny_sd15, training_set, tmp_path / option, *common, option)
        assert alone.losses != plain.losses, option


def test_colour_jitter_and_random_crop_change_the_pixels(training_set: Path) -> None:
    # Catches colour jitter or random crop silently doing nothing.
    example = read_training_set(training_set, name="yuki", resolution=32, multiple=8).examples[0]
    plain = image_tensor(example)
    jittered = image_tensor(example, jitter=random.Random(1))
    cropped = image_tensor(example, crop=random.Random(1))
    assert plain.shape == jittered.shape == cropped.shape
    for changed in (jittered, cropped):
        assert float((changed - plain).abs().mean()) > 0.005
    assert not torch.equal(jittered, image_tensor(example, jitter=random.Random(2)))
    # Jitter changes colour, not geometry: per-pixel changes are strongly correlated.
    corr = torch.corrcoef(torch.stack([plain.flatten(), jittered.flatten()]))[0, 1]
    assert float(corr) > 0.95


def test_noise_offset_shifts_each_channel_by_a_constant() -> None:
    # Catches noise_offset being ignored: the offset noise is a per-(image, channel) constant.
    latents = torch.zeros(2, 4, 8, 8)
    scheduler = DDPMScheduler(num_train_timesteps=1000)
    plain = noise_batch(latents, scheduler, offset=0.0, generator=torch.Generator().manual_seed(3))
    shifted = noise_batch(
        latents, scheduler, offset=0.5, generator=torch.Generator().manual_seed(3)
    )
    delta = shifted.noise - plain.noise
    assert float(delta.abs().mean()) > 0.05
    per_channel = delta.mean(dim=(2, 3), keepdim=True)
    assert torch.allclose(delta, per_channel.expand_as(delta), atol=1e-6)


def test_latents_cached_on_disk_are_reused(
    tiny_sd15: TinyModel, training_set: Path, tmp_path: Path
) -> None:
    first = _run(tiny_sd15, training_set, tmp_path / "run", "training.cache_to_disk=true")
    cache = tmp_path / "run" / "cache" / "latents.pt"
    stamp = cache.stat().st_mtime_ns
    again = _run(tiny_sd15, training_set, tmp_path / "run", "training.cache_to_disk=true")
    assert cache.stat().st_mtime_ns == stamp  # read, not rewritten
    assert again.losses == first.losses  # type: ignore[attr-defined]


def test_sdxl_trains_unet_only(tiny_sdxl: TinyModel, training_set: Path, tmp_path: Path) -> None:
    outcome = _run(tiny_sdxl, training_set, tmp_path / "run", "sampling.enabled=true")
    assert set(outcome.adapters) == {"unet"}  # type: ignore[attr-defined]
    assert [p.name for p in outcome.samples] == ["p0_s1234.png", "p0_s1234.png"]  # type: ignore[attr-defined]
