"""The generation service: profile → request → backend → files with metadata → records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from charstudio.backends import (
    ComfyUIBackend,
    GenerateRequest,
    GenerationDefaults,
    GenerationService,
    WorkflowPlan,
    read_parameters,
    upload_name,
)
from charstudio.errors import InvalidParameter, NotFound, UnsupportedImage
from charstudio.faces.registry import backend_from_spec
from charstudio.library.models import Generation, Job
from charstudio.services import Services
from charstudio.workflows import Catalog
from tests.backends.conftest import FAST, give_lora_and_identity
from tests.backends.fake_comfyui import FakeComfyUI
from tests.backends.pose_images import write_skeleton
from tests.conftest import decompression_bomb, write_image

PORTRAIT = Path(__file__).parents[1] / "data" / "faces" / "obama_2009.jpg"


@pytest.fixture
def yuki(services: Services, refs: Path) -> str:
    services.library.create("yuki", [refs])
    give_lora_and_identity(services, "yuki")
    return "yuki"


_BACKENDS: list[ComfyUIBackend] = []


@pytest.fixture(autouse=True)
def _close_backends(fake: FakeComfyUI) -> Iterator[None]:
    yield
    while _BACKENDS:
        _BACKENDS.pop().close()


def service_for(
    services: Services,
    url: str,
    checkpoint: str | None = "rand_sd15.safetensors",
    *,
    preset: str = "PLUS FACE (portraits)",
) -> GenerationService:
    """A service with one ComfyUI backend for all its calls, as a process has."""
    backend = ComfyUIBackend([url], options=FAST)
    _BACKENDS.append(backend)
    return GenerationService(
        library=services.library,
        store=services.store,
        db=services.db,
        defaults=GenerationDefaults(checkpoint=checkpoint, ipadapter_preset=preset),
        backends={"comfyui": lambda: backend},
        faces=lambda: backend_from_spec(services.faces.spec),
    )


def test_generates_stores_and_records(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    service = service_for(services, fake.url)
    request = GenerateRequest(prompt="red dress", variation="outfit", seed=7, count=2)
    result = service.generate(yuki, request)
    assert (result.method, result.seeds_drawn) == ("lora_ipadapter", False)
    assert [img.seed for img in result.images] == [7, 8]
    folder = services.store.outputs_dir("yuki") / result.job
    assert result.output_dir == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == [
        f"yuki_{result.job}_01_7.png",
        f"yuki_{result.job}_02_8.png",
    ]
    embedded = read_parameters(Path(result.images[0].path))
    params = embedded["parameters"]
    assert params["seed"] == 7 and params["lora"] == "yuki_v1.safetensors"
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
    assert [r.seed for r in rows] == [7, 8]
    # The row names the image relative to the data root; the result, by its absolute path.
    assert (
        rows[0].path
        == f"outputs/{result.character}/{result.job}/{Path(result.images[0].path).name}"
    )
    assert services.store.home / rows[0].path == Path(result.images[0].path)
    assert job is not None and job.state == "succeeded" and job.kind == "generate"


def test_random_seed_is_drawn_and_recorded(
    services: Services, yuki: str, fake: FakeComfyUI
) -> None:
    result = service_for(services, fake.url).generate(yuki, GenerateRequest(prompt="a hat"))
    assert result.seeds_drawn
    seed = result.images[0].seed
    assert 0 <= seed <= 2**64 - 1
    assert read_parameters(Path(result.images[0].path))["prompt"]["10"]["inputs"]["seed"] == seed


def test_failed_job_is_recorded(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    fake.fail_at = "KSampler"
    with pytest.raises(Exception, match="failed at node 10 \\(KSampler\\)"):
        service_for(services, fake.url).generate(yuki, GenerateRequest(prompt="x", seed=1))
    with services.db.sessions() as session:
        job = session.scalars(select(Job)).one()
    assert job.state == "failed" and "ClipVision model not found." in job.error


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"seed": -1},
            "seed: seed -1 is out of range: seeds are 0 to 18446744073709551615 (2^64-1), and "
            "no value means 'random'; leave the seed out for a random one (it is recorded with "
            "the image)",
        ),
        (
            {"seed": 2**64},
            "seed: seed 18446744073709551616 is out of range: seeds are 0 to "
            "18446744073709551615 (2^64-1); use a seed in range, or leave it out for a random one",
        ),
        (
            {"seed": 2**64 - 1, "count": 2},
            "request: seed 18446744073709551615 is out of range for 2 image(s): seeds are 0 to "
            "18446744073709551615 (2^64-1) and each image takes the next one; use a seed up to "
            "18446744073709551614",
        ),
        ({"count": 0}, "count: count 0 is out of range: make 1 to 64 images"),
        (
            {"width": 500, "height": 512},
            "width: image size 500 is not a multiple of 8 of at least 64 (the latent is 1/8 of "
            "the image): use 496 or 504",
        ),
        (
            {"width": 32, "height": 512},
            "width: image size 32 is not a multiple of 8 of at least 64 (the latent is 1/8 of "
            "the image): use 64",
        ),
        ({"width": 512}, "request: give both width and height (or --size WxH), or an aspect ratio"),
        (
            {"aspect": "tall"},
            "aspect: aspect 'tall' does not parse: give width:height as whole numbers, e.g. 2:3 "
            "or 16:9",
        ),
        (
            {"aspect": "2:3", "width": 512, "height": 768},
            "request: give a size or an aspect ratio, not both",
        ),
        ({"steps": 0}, "steps: Input should be greater than or equal to 1"),
        ({"steps": 151}, "steps: Input should be less than or equal to 150"),
        ({"cfg": 31.0}, "cfg: Input should be less than or equal to 30"),
        ({"cfg": float("nan")}, "cfg: Input should be a finite number"),
        ({"denoise": 0.0}, "denoise: Input should be greater than 0"),
        (
            {"negative_prompt": "x" * 1001},
            "negative_prompt: String should have at most 1000 characters",
        ),
    ],
)
def test_bad_request_is_refused_at_the_door(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        GenerateRequest.parse(prompt="red dress", **changes)
    assert str(caught.value) == f"invalid generation request ({message})"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"lora_strength": 150.0},
            "invalid generation request (lora_strength: Input should be less than or equal to 2)",
        ),
        (
            {"width": 2048, "height": 512},
            "image size 2048 is over Stable Diffusion 1.5's largest side 1536: generate smaller "
            "and upscale afterwards",
        ),
        (
            {"sampler": "magic"},
            "unknown sampler 'magic': use one of "
            + ", ".join(Catalog.builtin().combo("KSampler", "sampler_name")),
        ),
        (
            {"scheduler": "weekly"},
            "unknown scheduler 'weekly': use one of "
            + ", ".join(Catalog.builtin().combo("KSampler", "scheduler")),
        ),
        (
            {"denoise": 0.5},
            "denoise does not apply: yuki is generated with lora_ipadapter (a LoRA and a face "
            "identity exist), which does not use it; leave it out",
        ),
        ({"backend": "diffusers"}, "unknown backend 'diffusers': use one of comfyui"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(
    services: Services, yuki: str, fake: FakeComfyUI, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        service_for(services, fake.url).generate(
            yuki, GenerateRequest.parse(prompt="red dress", **changes)
        )
    assert str(caught.value) == message
    assert fake.prompts_received == []
    assert fake.inputs == {}


def test_strength_the_method_does_not_use(
    services: Services, refs: Path, fake: FakeComfyUI
) -> None:
    services.library.create("aiko", [refs])
    request = GenerateRequest(prompt="x", lora_strength=0.7)
    with pytest.raises(InvalidParameter) as caught:
        service_for(services, fake.url).generate("aiko", request)
    assert str(caught.value) == (
        "lora strength does not apply: aiko is generated with img2img (no LoRA and no face "
        "identity yet: img2img from a reference image), which does not use it; leave it out"
    )


def test_pose_checks(services: Services, yuki: str, fake: FakeComfyUI, tmp_path: Path) -> None:
    service = service_for(services, fake.url)
    skeleton = write_skeleton(tmp_path / "pose.png")
    with pytest.raises(
        InvalidParameter, match="a pose image was given with variation outfit: use variation pose"
    ):
        GenerateRequest.parse(prompt="x", variation="outfit", pose=skeleton)
    with pytest.raises(NotFound, match=r"gone\.png"):
        service.plan(
            yuki, GenerateRequest(prompt="x", variation="pose", pose=tmp_path / "gone.png")
        )
    text = tmp_path / "pose.txt"
    text.write_text("no")
    with pytest.raises(UnsupportedImage, match=r"pose\.txt"):
        service.plan(yuki, GenerateRequest(prompt="x", variation="pose", pose=text))
    bomb = decompression_bomb(tmp_path / "bomb.png")
    with pytest.raises(UnsupportedImage, match=r"bomb\.png has too many pixels"):
        service.plan(yuki, GenerateRequest(prompt="x", variation="pose", pose=bomb))
    photo = tmp_path / "cut.jpg"
    photo.write_bytes(PORTRAIT.read_bytes()[:5000])  # a truncated JPEG
    with pytest.raises(UnsupportedImage, match=r"cut\.jpg is corrupt or truncated"):
        service.plan(yuki, GenerateRequest(prompt="x", variation="pose", pose=photo))
    blank = write_image(tmp_path / "blank.png", size=(256, 256))
    with pytest.raises(InvalidParameter, match="neither an OpenPose skeleton") as caught:
        service.plan(yuki, GenerateRequest(prompt="x", variation="pose", pose=blank))
    assert "--pose-kind" in str(caught.value)
    assert fake.prompts_received == [] and fake.inputs == {}


def test_a_skeleton_goes_straight_to_the_controlnet(
    services: Services, yuki: str, fake: FakeComfyUI, tmp_path: Path
) -> None:
    skeleton = write_skeleton(tmp_path / "pose.png")
    request = GenerateRequest(prompt="arms up", variation="pose", pose=skeleton, seed=3)
    planned = service_for(services, fake.url).plan(yuki, request)
    assert planned.request.pose_kind == "skeleton" and planned.warnings == ()
    result = service_for(services, fake.url).generate(yuki, request)
    embedded = read_parameters(Path(result.images[0].path))
    classes = {n["class_type"] for n in embedded["prompt"].values()}
    assert "ControlNetApplyAdvanced" in classes and "OpenposePreprocessor" not in classes
    assert embedded["parameters"]["pose_kind"] == "skeleton"


def test_a_pose_photo_goes_through_the_preprocessor_with_a_warning(
    services: Services, yuki: str, fake: FakeComfyUI
) -> None:
    request = GenerateRequest(prompt="arms up", variation="pose", pose=PORTRAIT, seed=3)
    planned = service_for(services, fake.url).plan(yuki, request)
    assert planned.request.pose_kind == "photo"
    assert len(planned.warnings) == 1 and "body_pose_model.pth" in planned.warnings[0]
    plan = service_for(services, fake.url).workflow(yuki, request)
    classes = {n["class_type"] for n in plan.graph.values()}
    assert "OpenposePreprocessor" in classes and plan.pose_kind == "photo"
    forced = request.model_copy(update={"pose_kind": "skeleton"})
    assert service_for(services, fake.url).plan(yuki, forced).request.pose_kind == "skeleton"


def test_no_checkpoint_configured(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    with pytest.raises(InvalidParameter) as caught:
        service_for(services, fake.url, checkpoint=None).plan(yuki, GenerateRequest(prompt="x"))
    assert str(caught.value) == (
        "no base model is set: set CHARSTUDIO_COMFYUI_CHECKPOINT to a file in the servers' "
        "models/checkpoints (e.g. v1-5-pruned-emaonly.safetensors)"
    )


def test_controls_reach_the_graph_the_png_and_the_record(
    services: Services, yuki: str, fake: FakeComfyUI
) -> None:
    services.library.update(yuki, overrides={"negative_prompt": "blurry"})
    request = GenerateRequest(
        prompt="red dress",
        variation="outfit",
        seed=5,
        aspect="2:3",
        negative_prompt="hat",
        steps=12,
        cfg=5.5,
        sampler="euler_ancestral",
        scheduler="normal",
    )
    result = service_for(services, fake.url).generate(yuki, request)
    assert result.size == (512, 768)
    embedded = read_parameters(Path(result.images[0].path))
    nodes = {n["class_type"]: n["inputs"] for n in embedded["prompt"].values()}
    assert (nodes["EmptyLatentImage"]["width"], nodes["EmptyLatentImage"]["height"]) == (512, 768)
    sampler = nodes["KSampler"]
    assert (sampler["steps"], sampler["cfg"]) == (12, 5.5)
    assert (sampler["sampler_name"], sampler["scheduler"]) == ("euler_ancestral", "normal")
    negatives = [
        n["inputs"]["text"]
        for n in embedded["prompt"].values()
        if n.get("_meta", {}).get("title") == "Negative"
    ]
    assert negatives == ["blurry, hat"]
    params = embedded["parameters"]
    assert params["size"] == [512, 768] and params["negative_prompt"] == "blurry, hat"
    assert params["params"]["sampler"] == "euler_ancestral" and params["params"]["steps"] == 12
    with services.db.sessions() as session:
        row = session.scalars(select(Generation)).one()
    assert row.params["size"] == [512, 768] and row.params["params"]["cfg"] == 5.5
    replaced = request.model_copy(update={"negative_prompt": "hat", "negative_mode": "replace"})
    plan = service_for(services, fake.url).workflow(yuki, replaced)
    assert plan.params.negative_prompt == "hat"


def test_unset_controls_keep_the_profile(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    services.library.update(yuki, overrides={"steps": 18, "sampler": "euler", "cfg": 6.0})
    plan = service_for(services, fake.url).workflow(yuki, GenerateRequest(prompt="x", seed=1))
    sampler = next(n["inputs"] for n in plan.graph.values() if n["class_type"] == "KSampler")
    assert (sampler["steps"], sampler["sampler_name"], sampler["cfg"]) == (18, "euler", 6.0)
    assert plan.size == (512, 512)


def test_face_presets_get_the_face_crop(
    services: Services, yuki: str, fake: FakeComfyUI, tmp_path: Path
) -> None:
    request = GenerateRequest(prompt="x", seed=1)
    full = service_for(services, fake.url).workflow(yuki, request)
    assert full.reference_input == "full"  # no crop exported yet: the photo
    crop = services.store.embeddings_dir / "yuki_reference_face.png"
    write_image(crop, size=(256, 256))
    plan = service_for(services, fake.url).workflow(yuki, request)
    assert (plan.reference, plan.reference_input) == (str(crop), "face")
    loaded = [n["inputs"]["image"] for n in plan.graph.values() if n["class_type"] == "LoadImage"]
    assert loaded == [upload_name(crop)]
    standard = service_for(services, fake.url, preset="STANDARD (medium strength)")
    assert standard.workflow(yuki, request).reference_input == "full"
    services.library.update(yuki, overrides={"method": "lora_only"})
    assert service_for(services, fake.url).workflow(yuki, request).reference is None


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
        return service_for(services, fake.url, preset=preset)

    request = GenerateRequest(prompt="red dress", variation="outfit", seed=1)
    graph = service("FACEID PLUS V2").workflow(yuki, request).graph
    classes = {node["class_type"] for node in graph.values()}
    assert {"IPAdapterUnifiedLoaderFaceID", "IPAdapterFaceID"} <= classes
    assert "IPAdapterAdvanced" not in classes
    with pytest.raises(InvalidParameter, match="unknown IP-Adapter preset 'FACE SWAP'"):
        service("FACE SWAP").workflow(yuki, request)


def test_one_pool_per_process(services: Services, yuki: str, fake: FakeComfyUI) -> None:
    """Jobs of one process share the pool: the server's catalog is read once, not per job."""
    service = service_for(services, fake.url)
    for seed in (1, 2, 3):
        service.generate(yuki, GenerateRequest(prompt="a hat", seed=seed))
    assert fake.requests["GET /object_info"] == 1
    comfyui = services.generation.backends["comfyui"]
    assert comfyui() is comfyui() is services.comfyui


def test_character_weight_picks_preset_reference_prompt_and_is_recorded(
    services: Services, yuki: str, fake: FakeComfyUI
) -> None:
    crop = services.store.embeddings_dir / "yuki_reference_face.png"
    write_image(crop, size=(256, 256))
    service = service_for(services, fake.url)
    photo = services.library.profile(yuki).reference_image

    def plan(weight: float | None) -> WorkflowPlan:
        request = GenerateRequest(
            prompt="a snowy street", variation="background", seed=1, character_weight=weight
        )
        return service.workflow(yuki, request)

    def inputs(plan: WorkflowPlan, class_type: str) -> dict[str, Any]:
        found: dict[str, Any] = next(
            n["inputs"] for n in plan.graph.values() if n["class_type"] == class_type
        )
        return found

    face, full = plan(0.0), plan(1.0)
    assert (face.reference, face.reference_input) == (str(crop), "face")
    assert inputs(face, "IPAdapterModelLoader")["ipadapter_file"] == (
        "ip-adapter-plus-face_sd15.safetensors"
    )
    assert (inputs(face, "IPAdapterAdvanced")["weight_type"], face.params.character_weight) == (
        "weak input",
        0.0,
    )
    assert (full.reference, full.reference_input) == (photo, "full")
    assert inputs(full, "IPAdapterModelLoader")["ipadapter_file"] == (
        "ip-adapter-plus_sd15.safetensors"
    )
    texts = [
        n["inputs"]["text"] for n in full.graph.values() if n["class_type"] == "CLIPTextEncode"
    ]
    assert texts[0] == "yukicharacter, standing in a snowy street, same outfit, same hair"

    # Unset, the profile's default: the graph of an explicit 0.5.
    def unsaved(plan: WorkflowPlan) -> dict[str, Any]:  # SaveImage names the job
        return {k: n for k, n in plan.graph.items() if n["class_type"] != "SaveImage"}

    assert unsaved(plan(None)) == unsaved(plan(0.5))
    assert plan(None).params.character_weight == 0.5
    # Recorded with the image, in the PNG and the generations row.
    request = GenerateRequest(prompt="a hat", seed=3, character_weight=0.2)
    result = service.generate(yuki, request)
    embedded = read_parameters(Path(result.images[0].path))
    assert embedded["parameters"]["params"]["character_weight"] == 0.2
    with services.db.sessions() as session:
        row = session.scalars(select(Generation)).one()
    assert row.params["params"]["character_weight"] == 0.2


def test_character_weight_without_ipadapter(
    services: Services, refs: Path, fake: FakeComfyUI
) -> None:
    services.library.create("aiko", [refs])
    request = GenerateRequest(prompt="x", character_weight=0.3)
    with pytest.raises(InvalidParameter) as caught:
        service_for(services, fake.url).workflow("aiko", request)
    assert str(caught.value) == (
        "character weight does not apply: aiko is generated with img2img (no LoRA and no face "
        "identity yet: img2img from a reference image), which does not use it; leave it out"
    )
