"""Fixtures for the diffusers backend tests: a ComfyUI models folder of tiny files, requests.

Import the fixtures you use into the test module (``from tests.backends.diffusers_fixtures
import sd15_world, ...``). The base models are the trainer's tiny fixtures
(``tests/training/conftest.py``); the adapters are built by ``tiny_adapters``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from charstudio.backends import GenerationRequest
from charstudio.backends.diffusers_backend import DiffusersBackend
from charstudio.backends.diffusers_options import DiffusersOptions
from charstudio.backends.diffusers_pipelines import PipelineCache
from charstudio.library.profile import METHOD_DEFAULTS, Method
from charstudio.workflows.families import CLIP_VISION_VIT_H
from tests.backends.tiny_adapters import (
    write_clip_vision,
    write_controlnet,
    write_controlnet_ldm,
    write_ipadapter,
    write_lora,
)
from tests.conftest import write_image
from tests.training.conftest import TinyModel, tiny_sd15, tiny_sdxl

__all__ = [
    "World",
    "sd15_backend",
    "sd15_world",
    "sdxl_backend",
    "sdxl_world",
    "tiny_sd15",
    "tiny_sdxl",
]

# Pixels: the smallest side a request takes (MIN_SIDE; the latent is 1/8 of the image).
# The tiny VAE halves it and the tiny UNet halves it again.
SIZE = 64
OPENPOSE = "control_v11p_sd15_openpose_fp16.safetensors"
DIFFUSERS_CONTROLNET = "openpose_diffusers.safetensors"  # diffusers' key names


@dataclass(frozen=True)
class World:
    """A ComfyUI ``models`` folder and character files for one family.

    Attributes:
        family: ``sd15`` or ``sdxl``.
        models: The ``models`` folder (``checkpoints/``, ``ipadapter/``, ``clip_vision/``,
            ``controlnet/``).
        base: The base model as the backend is configured with it.
        config_dir: Component configs for a tiny single file (``None`` for folders).
        lora: The character's kohya LoRA (this family).
        foreign_lora: A LoRA of the other family.
        reference: The reference image.
        pose: An OpenPose-style skeleton image (requests say ``pose_kind="skeleton"``).
        model: The trainer's tiny model fixture.
    """

    family: str
    models: Path
    base: Path
    config_dir: Path | None
    lora: Path
    foreign_lora: Path
    reference: Path
    pose: Path
    model: TinyModel

    def options(self, **changes: Any) -> DiffusersOptions:
        values: dict[str, Any] = {
            "base_model": self.base,
            "config_dir": self.config_dir,
            "models_dir": self.models,
            "device": "cpu",
        }
        values.update(changes)
        return DiffusersOptions(**values)

    def request(self, method: Method = "lora_ipadapter", **changes: Any) -> GenerationRequest:
        """A 2-step, SIZE x SIZE request for yuki with this world's files.

        Sampler, scheduler and negative prompt are ``params`` values: pass ``params=``
        (e.g. ``request.params.model_copy(update={"sampler": "euler"})``).
        """
        values: dict[str, Any] = {
            "character": "yuki",
            "job": "job-1",
            "trigger_word": "yukicharacter",
            "prompt": "red dress",
            "variation": "outfit",
            "method": method,
            "params": METHOD_DEFAULTS[method].model_copy(update={"steps": 2}),
            "seeds": (1234,),
            "checkpoint": self.base.name,
            "family": self.family,
            "width": SIZE,
            "height": SIZE,
            "lora_file": self.lora if method in ("lora_ipadapter", "lora_only") else None,
            "reference_file": None if method == "lora_only" else self.reference,
            "pose_kind": "skeleton",  # the world's pose image is a skeleton (with pose_file)
        }
        values.update(changes)
        return GenerationRequest(**values)


def _pose_image(path: Path) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line([(32, 8), (32, 40), (16, 60)], fill=(255, 0, 0), width=3)
    draw.line([(32, 40), (48, 60)], fill=(0, 255, 0), width=3)
    draw.line([(12, 20), (52, 20)], fill=(0, 0, 255), width=3)
    image.save(path)
    return path


def build_world(model: TinyModel, other: TinyModel, root: Path) -> World:
    """Write the models folder and the character's files for ``model``'s family."""
    family = model.family
    models = root / "models"
    if model.single_file is not None:
        base = models / "checkpoints" / model.single_file.name
        base.parent.mkdir(parents=True)
        shutil.copy(model.single_file, base)
        config_dir: Path | None = model.config_dir
    else:
        base, config_dir = model.folder, None
    adapter = "ip-adapter-plus-face_sd15" if family == "sd15" else "ip-adapter-plus-face_sdxl_vit-h"
    write_ipadapter(model.pipeline.unet, models / "ipadapter" / f"{adapter}.safetensors")
    write_clip_vision(models / "clip_vision" / CLIP_VISION_VIT_H)
    controlnets = models / "controlnet"
    write_controlnet(model.pipeline.unet, controlnets / DIFFUSERS_CONTROLNET)
    if family == "sd15":  # the original key layout, under the name ComfyUI users have
        write_controlnet_ldm(model.pipeline.unet, controlnets / OPENPOSE)
    else:
        write_controlnet(model.pipeline.unet, controlnets / OPENPOSE)
    return World(
        family=family,
        models=models,
        base=base,
        config_dir=config_dir,
        lora=write_lora(model.pipeline, family, root / "lora_models" / "yuki_v1.safetensors"),  # type: ignore[arg-type]
        foreign_lora=write_lora(
            other.pipeline,
            other.family,  # type: ignore[arg-type]
            root / "lora_models" / f"other_{other.family}_v1.safetensors",
        ),
        reference=write_image(root / "yuki_reference.png", size=(48, 64), color=(200, 120, 90)),
        pose=_pose_image(root / "pose.png"),
        model=model,
    )


@pytest.fixture(scope="session")
def sd15_world(
    tiny_sd15: TinyModel, tiny_sdxl: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> World:
    return build_world(tiny_sd15, tiny_sdxl, tmp_path_factory.mktemp("world_sd15"))


@pytest.fixture(scope="session")
def sdxl_world(
    tiny_sdxl: TinyModel, tiny_sd15: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> World:
    return build_world(tiny_sdxl, tiny_sd15, tmp_path_factory.mktemp("world_sdxl"))


BackendMaker = Callable[..., DiffusersBackend]


@pytest.fixture(scope="module")
def sd15_backend(sd15_world: World) -> DiffusersBackend:
    """One backend (and pipeline cache) for a test module: the model loads once."""
    return DiffusersBackend(sd15_world.options(), cache=PipelineCache())


@pytest.fixture(scope="module")
def sdxl_backend(sdxl_world: World) -> DiffusersBackend:
    return DiffusersBackend(sdxl_world.options(), cache=PipelineCache())
