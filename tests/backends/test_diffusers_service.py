"""``--backend diffusers`` through the generation service: stored and recorded exactly like
ComfyUI's images (same folder, same embedded metadata, same library rows)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from charstudio.backends import GenerateRequest, read_parameters
from charstudio.config import load_settings
from charstudio.errors import InvalidParameter
from charstudio.library.models import Generation, Job
from charstudio.services import Services, build_services
from charstudio.workflows import MODEL_FAMILIES
from tests.backends.conftest import give_lora_and_identity
from tests.backends.diffusers_fixtures import World, sd15_world, tiny_sd15, tiny_sdxl

__all__ = ["sd15_world", "tiny_sd15", "tiny_sdxl"]


@pytest.fixture
def embedded(sd15_world: World, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    """Services configured for the diffusers backend on the tiny SD1.5 world.

    The family's default size is made 32x32: at 512x512 the tiny VAE (which only halves
    the image) would attend over 65,536 latent positions.
    """
    small = dataclasses.replace(MODEL_FAMILIES["sd15"], default_size=(32, 32))
    monkeypatch.setitem(MODEL_FAMILIES, "sd15", small)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    settings = load_settings(
        home=home,
        diffusers_base_model=sd15_world.base,
        diffusers_config_dir=sd15_world.config_dir,
        comfyui_models_dir=sd15_world.models,
        diffusers_device="cpu",
    )
    built = build_services(settings)
    yield built
    built.close()
    torch.set_num_threads(threads)


PORTRAIT = Path(__file__).parents[1] / "data" / "faces" / "obama_2009.jpg"


def test_generates_stores_and_records_like_comfyui(
    embedded: Services, sd15_world: World, refs: Path
) -> None:
    embedded.library.create("yuki", [refs])
    give_lora_and_identity(embedded, "yuki", sd15_world.lora)
    embedded.library.update("yuki", overrides={"steps": 2})
    request = GenerateRequest(
        prompt="red dress", variation="outfit", seed=7, count=2, backend="diffusers"
    )
    result = embedded.generation.generate("yuki", request)
    assert (result.backend, result.method) == ("diffusers", "lora_ipadapter")
    folder = embedded.store.outputs_dir("yuki") / result.job
    assert sorted(p.name for p in folder.iterdir()) == [
        f"yuki_{result.job}_01_7.png",
        f"yuki_{result.job}_02_8.png",
    ]
    embedded_chunks = read_parameters(Path(result.images[0].path))
    params = embedded_chunks["parameters"]
    assert params["backend"] == "diffusers" and params["server"] == "embedded"
    assert params["positive_prompt"] == (
        "yukicharacter, wearing red dress, white background, full body"
    )
    assert params["lora"] == "yuki_v1.safetensors" and params["device"] == "cpu"
    assert embedded_chunks["prompt"]["1"]["class_type"] == "CheckpointLoaderSimple"
    assert len(embedded_chunks["workflow"]["nodes"]) == len(embedded_chunks["prompt"])
    assert (result.images[0].width, result.images[0].height) == (32, 32)
    with embedded.db.sessions() as session:
        rows = session.scalars(select(Generation).order_by(Generation.id)).all()
        job = session.get(Job, result.job)
    assert [r.seed for r in rows] == [7, 8]
    # The row names the image relative to the data root; the result, by its absolute path.
    assert (
        rows[0].path
        == f"outputs/{result.character}/{result.job}/{Path(result.images[0].path).name}"
    )
    assert embedded.store.home / rows[0].path == Path(result.images[0].path)
    assert job is not None and job.state == "succeeded"


def test_per_request_controls_are_applied_in_process(
    embedded: Services, sd15_world: World, refs: Path
) -> None:
    embedded.library.create("yuki", [refs])
    give_lora_and_identity(embedded, "yuki", sd15_world.lora)
    request = GenerateRequest(
        prompt="red dress",
        seed=3,
        backend="diffusers",
        width=64,
        height=96,
        steps=2,
        cfg=4.0,
        sampler="euler",
        scheduler="normal",
        negative_prompt="hat",
        negative_mode="replace",
    )
    result = embedded.generation.generate("yuki", request)
    assert (result.images[0].width, result.images[0].height) == (64, 96)
    params = read_parameters(Path(result.images[0].path))["parameters"]
    assert params["size"] == [64, 96] and params["negative_prompt"] == "hat"
    assert (params["params"]["sampler"], params["params"]["scheduler"]) == ("euler", "normal")
    assert (params["params"]["steps"], params["params"]["cfg"]) == (2, 4.0)
    photo = GenerateRequest(
        prompt="arms up", variation="pose", pose=PORTRAIT, backend="diffusers", steps=2
    )
    with pytest.raises(InvalidParameter, match="in-process backend has no pose detector"):
        embedded.generation.plan("yuki", photo)


def test_character_with_neither_lora_nor_references(embedded: Services, refs: Path) -> None:
    embedded.library.create("mika", [refs])
    for reference in embedded.library.show("mika").references:
        embedded.library.remove_reference("mika", reference.sha256)
    request = GenerateRequest(prompt="red dress", backend="diffusers")
    with pytest.raises(InvalidParameter) as info:
        embedded.generation.generate("mika", request)
    assert str(info.value) == (
        "mika has no reference image for img2img: import some with "
        "`charstudio character import mika PATH`"
    )
