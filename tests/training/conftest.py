"""Tiny base models on disk (built once per session) and a tiny prepared training set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from charstudio.library.models import Character, TrainingSet
from charstudio.services import Services
from tests.training.tiny_models import build_pipeline, save_single_file

TRIGGER = "yukicharacter"


@dataclass(frozen=True)
class TinyModel:
    family: str
    folder: Path  # diffusers folder (save_pretrained)
    config_dir: Path  # model_index.json + component configs + tokenizers, no weights
    single_file: Path | None  # LDM/SGM-keyed .safetensors
    pipeline: Any


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; with more, a busy machine makes every small op
    wait on thread hand-offs (measured: a 6-step run took 3.8 s on one thread, 41 s on two
    while other test suites shared the two cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_sd15(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    root = tmp_path_factory.mktemp("tiny_sd15")
    pipe = build_pipeline("sd15", root / "configs")
    pipe.save_pretrained(root / "diffusers")
    single = save_single_file(pipe, root / "tinySD15_v1.safetensors")
    return TinyModel("sd15", root / "diffusers", root / "configs", single, pipe)


@pytest.fixture(scope="session")
def tiny_sdxl(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    root = tmp_path_factory.mktemp("tiny_sdxl")
    pipe = build_pipeline("sdxl", root / "configs")
    pipe.save_pretrained(root / "diffusers")
    single = save_single_file(pipe, root / "tinyXL_v1.safetensors")
    return TinyModel("sdxl", root / "diffusers", root / "configs", single, pipe)


def write_training_set(folder: Path, name: str = "yuki", count: int = 4, size: int = 64) -> Path:
    """A prepared set as ``charstudio dataset prepare`` lays it out: distinct simple images."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "captions").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[:, :, i % 3] = 200
        quarter = size // 4
        pixels[quarter : 3 * quarter, quarter : 3 * quarter] = rng.integers(0, 255, 3)
        stem = f"{name}_{i + 1:03d}"
        Image.fromarray(pixels).save(folder / "images" / f"{stem}.png")
        (folder / "captions" / f"{stem}.txt").write_text(f"{TRIGGER}, person, colour {i}\n")
    config = {
        "character_name": name,
        "num_images": count,
        "resolution": size,
        "trigger_word": TRIGGER,
        "version": 1,
        "content_hash": "0" * 64,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def add_training_set(services: Services, name: str = "Yuki") -> Path:
    """A prepared set in the data root, recorded as training-set v1 of ``name``."""
    folder = write_training_set(services.store.training_set_dir(name), name=name)
    with services.db.sessions.begin() as session:
        character = session.query(Character).filter_by(name=name).one()
        session.add(
            TrainingSet(
                character_id=character.id,
                version=1,
                content_hash="0" * 64,
                num_images=4,
                resolution=64,
                settings={},
                path=str(folder),
            )
        )
    return folder


@pytest.fixture
def training_set(tmp_path: Path) -> Path:
    return write_training_set(tmp_path / "set")


def tiny_overrides(model: TinyModel, *extra: str) -> list[str]:
    """Settings that make a training run take about a second on two CPU cores."""
    return [
        f"model.base_checkpoint={model.folder}",
        f"model.family={model.family}",
        "training.resolution=32",
        "training.train_steps=6",
        "training.save_every=3",
        "training.lr_warmup_steps=0",
        "training.learning_rate=1e-3",
        "training.gradient_accumulation_steps=2",
        "training.batch_size=2",
        "optimization.use_8bit_adam=false",
        "sampling.enabled=false",  # tests that check samples turn them on
        "sampling.steps=2",
        "sampling.prompts=['{trigger}, portrait']",
        "lora.rank=4",
        "lora.alpha=4",
        "lora.save_precision=fp32",
        *extra,
    ]
