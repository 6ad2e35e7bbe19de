"""The generation service: profile → request → backend → files with metadata → records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from charstudio.backends import (
    ComfyUIBackend,
    GenerateSpec,
    GenerationDefaults,
    GenerationService,
    read_parameters,
)
from charstudio.errors import InvalidParameter, NotFound, UnsupportedImage
from charstudio.library.models import Generation, Job
from charstudio.services import Services
from tests.backends.conftest import FAST, give_lora_and_identity
from tests.backends.fake_comfyui import FakeComfyUI
from tests.conftest import write_image


@pytest.fixture
def yuki(services: Services, refs: Path) -> str:
    services.library.create("yuki", [refs])
    give_lora_and_identity(services, "yuki")
    return "yuki"


def service_for(
    services: Services, url: str, checkpoint: str | None = "rand_sd15.safetensors"
) -> GenerationService:
    return GenerationService(
        library=services.library,
        store=services.store,
        db=services.db,
        defaults=GenerationDefaults(checkpoint=checkpoint),
        backends={"comfyui": lambda: ComfyUIBackend([url], options=FAST)},
    )


def test_generates_stores_and_records(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    service = service_for(services, fake.url)
    spec = GenerateSpec(name=yuki, prompt="red dress", variation="outfit", seed=7, count=2)
    result = service.generate(spec)
    assert (result.method, result.seeds_drawn) == ("lora_ipadapter", False)
    assert [img.seed for img in result.images] == ["7", "8"]
    folder = services.store.outputs_dir("yuki") / result.job
    assert result.output_dir == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"yuki_{result.job}_01_7.png",
        f"yuki_{result.job}_02_8.png",
    ]
    embedded = read_parameters(Path(result.images[0].path))
    params = embedded["parameters"]
    assert params["seed"] == "7" and params["lora"] == "yuki_v1.safetensors"
    assert (
        params["positive_prompt"] == "yukicharacter, wearing red dress, white background, full body"
    )
    assert params["params"]["lora_strength"] == 0.7 and params["server"] == fake.url
    assert embedded["prompt"]["1"]["class_type"] == "CheckpointLoaderSimple"
    # ComfyUI's two chunks: the API graph and the editor workflow, laid out from it.
    assert len(embedded["workflow"]["nodes"]) == len(embedded["prompt"])
    assert embedded["workflow"]["nodes"][0]["type"] == "CheckpointLoaderSimple"
    with services.db.sessions() as session:
        rows = session.scalars(select(Generation).order_by(Generation.id)).all()
        job = session.get(Job, result.job)
    assert [r.seed for r in rows] == ["7", "8"] and rows[0].path == result.images[0].path
    assert job is not None and job.state == "succeeded" and job.kind == "generate"


def test_random_seed_is_drawn_and_recorded(
    services: Services, yuki: str, fake: FakeComfyUI
) -> None:
    result = service_for(services, fake.url).generate(GenerateSpec(name=yuki, prompt="a hat"))
    assert result.seeds_drawn
    seed = int(result.images[0].seed)
    assert 0 <= seed <= 2**64 - 1
    assert read_parameters(Path(result.images[0].path))["prompt"]["10"]["inputs"]["seed"] == seed


def test_failed_job_is_recorded(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    fake.fail_at = "KSampler"
    with pytest.raises(Exception, match="failed at node 10 \\(KSampler\\)"):
        service_for(services, fake.url).generate(GenerateSpec(name=yuki, prompt="x", seed=1))
    with services.db.sessions() as session:
        job = session.scalars(select(Job)).one()
    assert job.state == "failed" and "ClipVision model not found." in job.error


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"seed": -1},
            "seed -1 is out of range: seeds are 0 to 18446744073709551615 (2^64-1), and no value "
            "means 'random'; leave --seed out for a random seed (it is recorded with the image)",
        ),
        (
            {"seed": 2**64},
            "seed 18446744073709551616 is out of range for 1 image(s): seeds are 0 to "
            "18446744073709551615 (2^64-1) and each image takes the next one; use a seed up to "
            "18446744073709551615",
        ),
        (
            {"seed": 2**64 - 1, "count": 2},
            "seed 18446744073709551615 is out of range for 2 image(s): seeds are 0 to "
            "18446744073709551615 (2^64-1) and each image takes the next one; use a seed up to "
            "18446744073709551614",
        ),
        (
            {"lora_strength": 150.0},
            "lora_strength 150.0 is outside ComfyUI's range for LoraLoader.strength_model on the "
            "built-in catalog (ComfyUI 0.3.64) (-100.0 to 100.0): use a value in range; 0.6-0.8 "
            "is recommended",
        ),
        (
            {"ipadapter_strength": 6.0},
            "ipadapter_strength 6.0 is outside ComfyUI's range for IPAdapterAdvanced.weight on "
            "the built-in catalog (ComfyUI 0.3.64) (-1 to 5): use a value in range; 0.5-0.7 is "
            "recommended",
        ),
        ({"count": 0}, "--count 0 is out of range: make 1 to 64 images"),
        ({"backend": "diffusers"}, "unknown backend 'diffusers': use one of comfyui"),
    ],
)
def test_bad_input_is_refused_at_the_door(
    services: Services, yuki: str, fake: FakeComfyUI, changes: dict[str, object], message: str
) -> None:
    spec = GenerateSpec.model_validate({"name": yuki, "prompt": "red dress", **changes})
    with pytest.raises(InvalidParameter) as caught:
        service_for(services, fake.url).generate(spec)
    assert str(caught.value) == message
    assert fake.prompts_received == []


def test_strength_the_method_does_not_use(
    services: Services, refs: Path, fake: FakeComfyUI
) -> None:
    services.library.create("aiko", [refs])
    spec = GenerateSpec(name="aiko", prompt="x", lora_strength=0.7)
    with pytest.raises(InvalidParameter) as caught:
        service_for(services, fake.url).generate(spec)
    assert str(caught.value) == (
        "--lora-strength does not apply: aiko is generated with img2img (no LoRA and no face "
        "identity yet: img2img from a reference image), which does not use it"
    )


def test_pose_checks(services: Services, yuki: str, fake: FakeComfyUI, tmp_path: Path) -> None:
    service = service_for(services, fake.url)
    pose = write_image(tmp_path / "pose.png", size=(64, 64))
    with pytest.raises(
        InvalidParameter, match="--pose was given with variation outfit: add --variation pose"
    ):
        service.plan(GenerateSpec(name=yuki, prompt="x", variation="outfit", pose=pose))
    with pytest.raises(NotFound, match=r"the pose image .*gone\.png does not exist"):
        service.plan(
            GenerateSpec(name=yuki, prompt="x", variation="pose", pose=tmp_path / "gone.png")
        )
    text = tmp_path / "pose.txt"
    text.write_text("no")
    with pytest.raises(UnsupportedImage, match="is not a readable image: use a PNG or JPEG"):
        service.plan(GenerateSpec(name=yuki, prompt="x", variation="pose", pose=text))
    result = service.generate(
        GenerateSpec(name=yuki, prompt="arms up", variation="pose", pose=pose, seed=3)
    )
    graph = read_parameters(Path(result.images[0].path))["prompt"]
    assert "ControlNetApplyAdvanced" in {n["class_type"] for n in graph.values()}


def test_no_checkpoint_configured(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    with pytest.raises(InvalidParameter) as caught:
        service_for(services, fake.url, checkpoint=None).plan(GenerateSpec(name=yuki, prompt="x"))
    assert str(caught.value) == (
        "no base model is set: set CHARSTUDIO_COMFYUI_CHECKPOINT to a file in the servers' "
        "models/checkpoints (e.g. v1-5-pruned-emaonly.safetensors)"
    )


def test_init_writes_the_workflow_templates(services: Services) -> None:
    result = services.init()
    paths = [Path(p) for p in result.templates]
    assert [p.name for p in paths] == ["base.json", "outfit.json", "background.json", "pose.json"]
    assert all(p.parent == services.store.templates_dir for p in paths)
    pose = json.loads(paths[3].read_text())
    assert pose["name"] == "pose" and pose["family"] == "sd15"
    classes = {node["class_type"] for node in pose["graph"].values()}
    assert {"ControlNetApplyAdvanced", "IPAdapterAdvanced", "SaveImage"} <= classes
    assert "{{pose_image}}" in paths[3].read_text()


def test_faceid_preset_from_the_settings(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    def service(preset: str) -> GenerationService:
        return GenerationService(
            library=services.library,
            store=services.store,
            db=services.db,
            defaults=GenerationDefaults(
                checkpoint="rand_sd15.safetensors", ipadapter_preset=preset
            ),
            backends={"comfyui": lambda: ComfyUIBackend([fake.url], options=FAST)},
        )

    spec = GenerateSpec(name=yuki, prompt="red dress", variation="outfit", seed=1)
    graph = service("FACEID PLUS V2").workflow(spec).graph
    classes = {node["class_type"] for node in graph.values()}
    assert {"IPAdapterUnifiedLoaderFaceID", "IPAdapterFaceID"} <= classes
    assert "IPAdapterAdvanced" not in classes
    with pytest.raises(InvalidParameter, match="unknown IP-Adapter preset 'FACE SWAP'"):
        service("FACE SWAP").workflow(spec)
