"""The in-process backend on tiny SD1.5 and SDXL pipelines: methods, variations, adapters,
determinism, progress and cancellation, through the real loading code."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from charstudio.backends import (
    BackendImage,
    CancelToken,
    GenerationRequest,
    ProgressEvent,
    upload_name,
)
from charstudio.backends.diffusers_backend import DiffusersBackend
from charstudio.backends.diffusers_pipelines import PipelineCache, ipadapter_scale
from charstudio.backends.diffusers_schedulers import make_scheduler
from charstudio.errors import GenerationCancelled
from charstudio.library.profile import METHOD_DEFAULTS
from charstudio.training.loading import load_base_model
from tests.backends.diffusers_fixtures import (
    DIFFUSERS_CONTROLNET,
    OPENPOSE,
    SIZE,
    World,
    sd15_backend,
    sd15_world,
    sdxl_backend,
    sdxl_world,
    tiny_sd15,
    tiny_sdxl,
)
from tests.backends.tiny_adapters import write_ipadapter


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; more only contend on a shared 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


__all__ = ["sd15_backend", "sd15_world", "sdxl_backend", "sdxl_world", "tiny_sd15", "tiny_sdxl"]


def pixels(image: BackendImage) -> np.ndarray[Any, Any]:
    with Image.open(io.BytesIO(image.png)) as opened:
        return np.asarray(opened.convert("RGB"), dtype=np.int16)


def differ(a: BackendImage, b: BackendImage) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


@pytest.mark.parametrize("method", ["lora_ipadapter", "lora_only", "ipadapter_only", "img2img"])
def test_every_method_makes_an_image_with_its_graph(
    sd15_backend: DiffusersBackend, sd15_world: World, method: Any
) -> None:
    [image] = sd15_backend.generate(sd15_world.request(method))
    assert (image.index, image.seed, image.server) == (0, 1234, "embedded")
    assert pixels(image).shape == (SIZE, SIZE, 3)
    classes = {node["class_type"] for node in image.graph.values()}
    assert ("LoraLoader" in classes) == (method in ("lora_ipadapter", "lora_only"))
    assert ("IPAdapterAdvanced" in classes) == (method in ("lora_ipadapter", "ipadapter_only"))
    assert ("VAEEncode" in classes) == (method == "img2img")
    assert image.workflow is not None and len(image.workflow["nodes"]) == len(image.graph)
    # Images are named as the ComfyUI upload would name them (content-addressed).
    loaded = [n["inputs"]["image"] for n in image.graph.values() if n["class_type"] == "LoadImage"]
    expected = [] if method == "lora_only" else [upload_name(sd15_world.reference)]
    assert loaded == expected
    assert image.extra["device"] == "cpu" and image.extra["seconds"] > 0


@pytest.mark.parametrize("variation", [None, "outfit", "background", "pose"])
def test_variations_use_the_workflow_templates(
    sd15_backend: DiffusersBackend, sd15_world: World, variation: Any
) -> None:
    request = sd15_world.request("lora_ipadapter", variation=variation)
    [image] = sd15_backend.generate(request)
    expected = request.workflow_request(0, _names()).positive_prompt
    positive = next(n for n in image.graph.values() if n["class_type"] == "CLIPTextEncode")
    assert positive["inputs"]["text"] == expected
    assert expected.startswith("yukicharacter, ")


def _names() -> Any:
    from charstudio.backends import ServerNames

    return ServerNames()


def test_same_request_and_seed_give_the_same_image(
    sd15_backend: DiffusersBackend, sd15_world: World
) -> None:
    request = sd15_world.request("lora_ipadapter", seeds=(5, 6))
    first, second = sd15_backend.generate(request)
    again = sd15_backend.generate(request)
    assert differ(first, again[0]) == 0 and differ(second, again[1]) == 0
    assert differ(first, second) > 0  # another seed, another image
    # Swapping adapters away and back leaves no trace.
    sd15_backend.generate(sd15_world.request("img2img"))
    assert differ(sd15_backend.generate(request)[0], first) == 0
    # A fresh load (another process would do the same) makes the same image.
    fresh = DiffusersBackend(sd15_world.options(), cache=PipelineCache())
    assert differ(fresh.generate(request)[0], first) == 0


def _plain_diffusers(
    world: World, *, prepare: Callable[[Any], None] | None = None, **call: Any
) -> np.ndarray[Any, Any]:
    """The same prompt through diffusers' own pipeline, no charstudio code in the loop."""
    pipe = load_base_model(world.base, family=world.family, config_dir=world.config_dir).pipeline  # type: ignore[arg-type]
    pipe.set_progress_bar_config(disable=True)
    if prepare is not None:
        prepare(pipe)
    pipe.scheduler = make_scheduler(pipe.scheduler.config, sampler="dpmpp_2m", scheduler="karras")
    image = pipe(
        **call, generator=torch.Generator("cpu").manual_seed(1234), output_type="pil"
    ).images[0]
    return np.asarray(image, dtype=np.int16)


# diffusers' own scheduler code trips numpy 2's __array__ warning (see diffusers_backend.py).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_lora_strength_zero_equals_no_lora(
    sd15_backend: DiffusersBackend, sd15_world: World
) -> None:
    def lora_only(strength: float) -> BackendImage:
        request = sd15_world.request("lora_only")
        params = request.params.model_copy(update={"lora_strength": strength})
        return sd15_backend.generate(request.model_copy(update={"params": params}))[0]

    off = lora_only(0.0)
    workflow = sd15_world.request("lora_only").workflow_request(0, _names())
    plain = _plain_diffusers(
        sd15_world,
        prompt=workflow.positive_prompt,
        negative_prompt=workflow.negative_prompt,
        num_inference_steps=2,
        guidance_scale=7.5,
        width=SIZE,
        height=SIZE,
    )
    assert int(np.abs(pixels(off) - plain).max()) <= 1
    assert differ(lora_only(0.8), off) > 0


# diffusers' own scheduler code trips numpy 2's __array__ warning (see diffusers_backend.py).
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")
def test_ipadapter_matches_plain_diffusers_and_encodes_once(
    sd15_backend: DiffusersBackend, sd15_world: World
) -> None:
    from charstudio.backends.ipadapter_files import load_clip_vision

    request = sd15_world.request("ipadapter_only", seeds=(7, 1234))
    ours = sd15_backend.generate(request)
    # The reference is encoded once for both seeds; the second image is the one a request
    # for its seed alone makes.
    alone = sd15_backend.generate(sd15_world.request("ipadapter_only"))[0]
    assert differ(ours[1], alone) == 0
    workflow = request.workflow_request(1, _names())
    folder = sd15_world.models

    def with_adapter(pipe: Any) -> None:
        encoder = load_clip_vision(
            folder / "clip_vision" / "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
        )
        pipe.image_encoder, pipe.feature_extractor = encoder.encoder, encoder.processor
        pipe.load_ip_adapter(
            str(folder / "ipadapter"),
            subfolder="",
            weight_name="ip-adapter-plus-face_sd15.safetensors",
            image_encoder_folder=None,
        )
        pipe.set_ip_adapter_scale(0.8)

    plain = _plain_diffusers(
        sd15_world,
        prepare=with_adapter,
        prompt=workflow.positive_prompt,
        negative_prompt=workflow.negative_prompt,
        ip_adapter_image=Image.open(sd15_world.reference).convert("RGB"),
        num_inference_steps=2,
        guidance_scale=8.0,
        width=SIZE,
        height=SIZE,
    )
    assert int(np.abs(pixels(alone) - plain).max()) <= 1


def test_ipadapter_strength_changes_the_output(
    sd15_backend: DiffusersBackend, sd15_world: World
) -> None:
    def ipadapter(strength: float) -> BackendImage:
        request = sd15_world.request("ipadapter_only")
        params = request.params.model_copy(update={"ipadapter_strength": strength})
        return sd15_backend.generate(request.model_copy(update={"params": params}))[0]

    assert differ(ipadapter(0.8), ipadapter(0.3)) > 0


@pytest.mark.parametrize("controlnet", [OPENPOSE, DIFFUSERS_CONTROLNET])
def test_pose_controlnet_path_runs_and_steers(
    sd15_backend: DiffusersBackend, sd15_world: World, controlnet: str
) -> None:
    plain = sd15_world.request("lora_ipadapter", variation="pose")
    posed = plain.model_copy(update={"pose_file": sd15_world.pose, "controlnet": controlnet})
    [with_pose] = sd15_backend.generate(posed)
    classes = {node["class_type"] for node in with_pose.graph.values()}
    assert "ControlNetApplyAdvanced" in classes
    # A skeleton goes straight to the ControlNet, as the backend used it.
    assert posed.pose_kind == "skeleton" and "OpenposePreprocessor" not in classes
    loaded = {
        n["inputs"]["image"] for n in with_pose.graph.values() if n["class_type"] == "LoadImage"
    }
    assert loaded == {upload_name(sd15_world.reference), upload_name(sd15_world.pose)}
    assert differ(with_pose, sd15_backend.generate(plain)[0]) > 0


def test_progress_per_step_and_cache_between_requests(
    sd15_backend: DiffusersBackend, sd15_world: World
) -> None:
    events: list[ProgressEvent] = []
    request = sd15_world.request("lora_ipadapter", seeds=(1, 2))
    sd15_backend.generate(request, progress=events.append)
    steps = [(e.index, e.value, e.max) for e in events if e.kind == "step"]
    assert steps == [(0, 1, 2), (0, 2, 2), (1, 1, 2), (1, 2, 2)]
    assert [e.kind for e in events if e.kind != "step"] == ["started", "finished", "finished"]
    assert all(e.server == "embedded" for e in events)
    model = sd15_backend.cache.get(
        sd15_world.base.resolve(), family="sd15", config_dir=sd15_world.config_dir, device="cpu"
    )
    assert model[1] is False  # still loaded: not read again
    loras = model[0].pipeline.get_list_adapters()
    assert sum(len(names) for names in loras.values()) == len(loras)  # one LoRA, loaded once
    events.clear()
    sd15_backend.generate(request, progress=events.append)
    assert events[0].message == "model cached"


def test_cancel_mid_generation_stops_between_steps(
    sd15_backend: DiffusersBackend, sd15_world: World
) -> None:
    cancel = CancelToken()
    seen: list[int] = []

    def on_progress(event: ProgressEvent) -> None:
        if event.kind == "step":
            seen.append(event.value)
            if event.value == 2:
                cancel.cancel()

    request = sd15_world.request("lora_ipadapter").model_copy(
        update={"params": sd15_world.request().params.model_copy(update={"steps": 6})}
    )
    with pytest.raises(GenerationCancelled, match="generation job-1 for yuki was cancelled"):
        sd15_backend.generate(request, progress=on_progress, cancel=cancel)
    assert seen == [1, 2]
    assert len(sd15_backend.generate(sd15_world.request("lora_ipadapter"))) == 1  # still usable
    with pytest.raises(GenerationCancelled):
        sd15_backend.generate(request, cancel=cancel)  # cancelled before it starts


@pytest.mark.parametrize("method", ["lora_ipadapter", "img2img"])
def test_sdxl(sdxl_backend: DiffusersBackend, sdxl_world: World, method: Any) -> None:
    request = sdxl_world.request(method)
    [image] = sdxl_backend.generate(request)
    assert pixels(image).shape == (SIZE, SIZE, 3)
    assert differ(image, sdxl_backend.generate(request)[0]) == 0


def test_sdxl_pose_controlnet(sdxl_backend: DiffusersBackend, sdxl_world: World) -> None:
    request = sdxl_world.request(
        "lora_ipadapter",
        variation="pose",
        pose_file=sdxl_world.pose,
        controlnet="control_v11p_sd15_openpose_fp16.safetensors",
    )
    [image] = sdxl_backend.generate(request)
    assert pixels(image).shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize(
    ("sampler", "scheduler", "cls", "karras"),
    [
        ("euler", "normal", "EulerDiscreteScheduler", False),
        ("ddim", "normal", "DDIMScheduler", None),
        ("dpmpp_2m", "karras", "DPMSolverMultistepScheduler", True),
    ],
)
def test_each_request_gets_its_own_scheduler(
    sd15_backend: DiffusersBackend,
    sd15_world: World,
    sampler: str,
    scheduler: str,
    cls: str,
    karras: bool | None,
) -> None:
    sd15_backend.generate(sd15_world.request("lora_only"))  # dpmpp_2m karras first
    params = METHOD_DEFAULTS["lora_only"].model_copy(
        update={"steps": 2, "sampler": sampler, "scheduler": scheduler}
    )
    request = sd15_world.request("lora_only", params=params)
    assert (request.sampler, request.scheduler) == (sampler, scheduler)
    [image] = sd15_backend.generate(request)
    [sampling] = [n["inputs"] for n in image.graph.values() if n["class_type"] == "KSampler"]
    assert (sampling["sampler_name"], sampling["scheduler"]) == (sampler, scheduler)
    model, _ = sd15_backend.cache.get(
        sd15_world.base.resolve(), family="sd15", config_dir=sd15_world.config_dir, device="cpu"
    )
    used = model.pipeline.scheduler
    assert type(used).__name__ == cls
    assert used.config.get("use_karras_sigmas") == karras  # never the last request's


def test_original_and_diffusers_controlnet_files_load_the_same(
    sd15_backend: DiffusersBackend, sd15_world: World
) -> None:
    """Both fixtures hold the same weights; only the key names differ."""
    made = [
        sd15_backend.generate(
            sd15_world.request(
                "lora_only", variation="pose", pose_file=sd15_world.pose, controlnet=name
            )
        )[0]
        for name in (OPENPOSE, DIFFUSERS_CONTROLNET)
    ]
    assert differ(*made) == 0


def test_switching_ipadapter_files(sd15_world: World, tmp_path: Path) -> None:
    """Another preset's adapter replaces the first; coming back gives the first image again."""
    models = tmp_path / "models"
    shutil.copytree(sd15_world.models, models)
    adapter = models / "ipadapter" / "ip-adapter-plus_sd15.safetensors"
    write_ipadapter(sd15_world.model.pipeline.unet, adapter, seed=5)  # other weights
    backend = DiffusersBackend(sd15_world.options(models_dir=models), cache=PipelineCache())
    face = sd15_world.request("ipadapter_only")
    plus = face.model_copy(update={"ipadapter_preset": "PLUS (high strength)"})
    first = backend.generate(face)[0]
    assert differ(backend.generate(plus)[0], first) > 0
    assert differ(backend.generate(face)[0], first) == 0


def _ip_scales(backend: DiffusersBackend, world: World) -> dict[str, set[float]]:
    """The IP-Adapter scales the cached UNet's cross-attention processors hold, by part."""
    model, loaded = backend.cache.get(
        world.base, family=world.family, config_dir=world.config_dir, device="cpu"
    )
    assert not loaded  # the model the generation used
    scales: dict[str, set[float]] = {}
    for name, processor in model.pipeline.unet.attn_processors.items():
        if isinstance(getattr(processor, "scale", None), list):  # IP-Adapter processors
            scales.setdefault(name.split("_")[0], set()).update(processor.scale)
    return scales


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        (0.0, {"down": 0.16, "mid": 0.8, "up": 0.8}),  # weak input: down blocks at 0.2x
        (0.2, {"down": 0.16, "mid": 0.8, "up": 0.8}),
        (0.3, 0.8),
        (None, 0.8),
        (0.5, 0.8),
        (0.75, 0.7),  # full-image preset at 0.875x
        (1.0, 0.8),
    ],
)
def test_character_weight_maps_onto_the_ipadapter_scale(
    weight: float | None, expected: float | dict[str, float]
) -> None:
    params = METHOD_DEFAULTS["ipadapter_only"].model_copy(update={"character_weight": weight})
    assert ipadapter_scale(params) == expected


def test_character_weight_in_process(
    sd15_world: World, sd15_backend: DiffusersBackend, tmp_path: Path
) -> None:
    """The face end weakens the down blocks only; the default is the image without the
    control; the full end runs the full-image preset at its scale."""
    request = sd15_world.request("ipadapter_only")

    def weighted(weight: float | None, base: GenerationRequest = request) -> GenerationRequest:
        params = base.params.model_copy(update={"character_weight": weight})
        return base.model_copy(update={"params": params})

    face = sd15_backend.generate(weighted(0.0))[0]
    assert _ip_scales(sd15_backend, sd15_world) == {"down": {0.16}, "mid": {0.8}, "up": {0.8}}
    default = sd15_backend.generate(weighted(0.5))[0]
    assert _ip_scales(sd15_backend, sd15_world) == {"down": {0.8}, "mid": {0.8}, "up": {0.8}}
    assert differ(sd15_backend.generate(weighted(None))[0], default) == 0
    assert differ(face, default) > 0
    # The full end: PLUS on the whole photo (the service picks the preset and the photo).
    models = tmp_path / "models"
    shutil.copytree(sd15_world.models, models)
    write_ipadapter(
        sd15_world.model.pipeline.unet, models / "ipadapter" / "ip-adapter-plus_sd15.safetensors"
    )
    backend = DiffusersBackend(sd15_world.options(models_dir=models), cache=PipelineCache())
    plus = request.model_copy(update={"ipadapter_preset": "PLUS (high strength)"})
    made = backend.generate(weighted(0.75, plus))[0]
    assert _ip_scales(backend, sd15_world) == {"down": {0.7}, "mid": {0.7}, "up": {0.7}}
    nodes = {n["class_type"]: n["inputs"] for n in made.graph.values()}
    assert nodes["IPAdapterAdvanced"]["weight"] == 0.7
    assert nodes["IPAdapterModelLoader"]["ipadapter_file"] == "ip-adapter-plus_sd15.safetensors"
