"""The loop's other paths: no latent cache with augmentations, a disk cache, SDXL."""

from __future__ import annotations

from pathlib import Path

from charstudio.training.config import load_config
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
    outcome = _run(
        tiny_sd15,
        training_set,
        tmp_path / "run",
        "training.cache_latents=false",
        "augmentation.color_jitter=true",
        "augmentation.random_crop=true",
        "training.noise_offset=0.1",
        "training.min_snr_gamma=null",
    )
    assert len(outcome.losses) == 6  # type: ignore[attr-defined]
    assert not (tmp_path / "run" / "cache").exists()


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
