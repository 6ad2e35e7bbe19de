"""Graph builders: the four consistency methods and the three variations, SD1.5 and SDXL.

Every graph is one recipe (:data:`METHOD_RECIPES` says which stages a method uses) and
reads like the pipeline ComfyUI runs, checked against the graph that really ran on
ComfyUI 0.3.64 (tests/data/comfyui/graph_ipadapter_plus_face.json)::

    CheckpointLoaderSimple ─► LoraLoader ─► IP-Adapter ─► KSampler ─► VAEDecode ─► SaveImage
         │ CLIP ─► CLIPTextEncode (+/-) ─► [ControlNetApplyAdvanced ◄─ OpenPose]     ▲
         └ VAE ─────────────────────────────── EmptyLatentImage | VAEEncode(reference) ┘

SD1.5 and SDXL differ only in data (:mod:`charstudio.workflows.families`): the IP-Adapter
and CLIP vision files and the default size.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from charstudio.errors import InvalidParameter
from charstudio.library.profile import RECOMMENDED_RANGES, Method
from charstudio.workflows.catalog import Catalog, merge_catalogs
from charstudio.workflows.character_weight import ipadapter_application
from charstudio.workflows.graph import GraphBuilder, InputValue
from charstudio.workflows.request import PoseControl, WorkflowRequest
from charstudio.workflows.types import Graph, Link
from charstudio.workflows.validate import check_graph

__all__ = [
    "IPADAPTER_DEFAULTS",
    "METHOD_RECIPES",
    "MethodRecipe",
    "assemble",
    "build_workflow",
    "check_request",
]


@dataclass(frozen=True, slots=True)
class MethodRecipe:
    """Which stages a consistency method uses.

    Attributes:
        lora: Load the character LoRA onto model and CLIP.
        ipadapter: Condition the model on the reference image with IP-Adapter.
        latent: Start from an empty latent (text-to-image) or the encoded reference.
    """

    lora: bool
    ipadapter: bool
    latent: Literal["empty", "reference"]


METHOD_RECIPES: dict[Method, MethodRecipe] = {
    "lora_ipadapter": MethodRecipe(lora=True, ipadapter=True, latent="empty"),
    "lora_only": MethodRecipe(lora=True, ipadapter=False, latent="empty"),
    "ipadapter_only": MethodRecipe(lora=False, ipadapter=True, latent="empty"),
    "img2img": MethodRecipe(lora=False, ipadapter=False, latent="reference"),
}

# IPAdapterAdvanced settings of the graph that ran (weight comes from the profile;
# weight_type, start_at and end_at from the character weight, whose default keeps these).
IPADAPTER_DEFAULTS: dict[str, InputValue] = {
    "weight_type": "linear",
    "combine_embeds": "concat",
    "start_at": 0.0,
    "end_at": 1.0,
    "embeds_scaling": "V only",
}
# IPAdapterUnifiedLoaderFaceID.lora_strength default in IPAdapterPlus.py.
_FACEID_LORA_STRENGTH = 0.6


@dataclass(frozen=True, slots=True)
class _Models:
    """The current MODEL, CLIP and VAE outputs as stages patch them."""

    model: Link
    clip: Link
    vae: Link


def build_workflow(
    request: WorkflowRequest, *, catalog: Catalog | None = None, server: str | None = None
) -> Graph:
    """Build the API-format graph for ``request`` and validate it.

    Args:
        request: What to generate.
        catalog: The target server's catalog; the built-in one if not given.
        server: The server's URL, named in error messages.

    Returns:
        A plain API-format graph, ready for ``POST /prompt``.

    Raises:
        InvalidParameter: a strength, cfg, steps, size, sampler ... is outside what the
            server's nodes accept.
        WorkflowRejected: the server lacks a node the graph needs (ModelMissing: a model
            file it names).
    """
    target = catalog or Catalog.builtin()
    # 1. Check the request's numbers and names against the server's nodes.
    check_request(request, merge_catalogs(target, Catalog.builtin()))
    # 2. Assemble the graph from the method's recipe.
    graph = assemble(request)
    # 3. Validate it as ComfyUI will.
    check_graph(graph, target, server=server)
    return graph


def assemble(request: WorkflowRequest) -> Graph:
    """The graph for ``request``, unvalidated (see :func:`build_workflow`)."""
    g = GraphBuilder()
    recipe = METHOD_RECIPES[request.method]
    models = _load_checkpoint(g, request)
    if recipe.lora:
        models = _apply_lora(g, request, models)
    if recipe.ipadapter:
        models = _apply_ipadapter(g, request, models)
    positive, negative = _encode_prompts(g, request, models.clip)
    if request.pose is not None:
        positive, negative = _apply_pose(g, request.pose, request.size, positive, negative, models)
    if recipe.latent == "empty":
        latent = _empty_latent(g, request)
    else:
        latent = _encode_reference(g, request, models.vae)
    sampler = g.add(
        "KSampler",
        {
            "model": models.model,
            "seed": request.seed,
            "steps": request.params.steps,
            "cfg": request.params.cfg,
            "sampler_name": request.sampler,
            "scheduler": request.scheduler,
            "positive": positive,
            "negative": negative,
            "latent_image": latent,
            "denoise": request.params.denoise,
        },
    )
    decoded = g.add("VAEDecode", {"samples": sampler.out("LATENT"), "vae": models.vae})
    g.add(
        "SaveImage",
        {"images": decoded.out("IMAGE"), "filename_prefix": request.save_prefix},
        title=f"Save {request.character} {request.job}",
    )
    return g.graph()


def check_request(request: WorkflowRequest, catalog: Catalog) -> None:
    """Check the request's values against the ranges and choices ``catalog`` publishes.

    Nodes the catalog lacks are skipped here; graph validation reports them.

    Raises:
        InvalidParameter: naming the value, the node input that bounds it, and the range.
    """
    recipe = METHOD_RECIPES[request.method]
    width, height = request.size
    size_node = "EmptyLatentImage" if recipe.latent == "empty" else "ImageScale"
    checks: list[tuple[str, object, str, str]] = [
        ("cfg", request.params.cfg, "KSampler", "cfg"),
        ("steps", request.params.steps, "KSampler", "steps"),
        ("denoise", request.params.denoise, "KSampler", "denoise"),
        ("sampler", request.sampler, "KSampler", "sampler_name"),
        ("scheduler", request.scheduler, "KSampler", "scheduler"),
        ("width", width, size_node, "width"),
        ("height", height, size_node, "height"),
    ]
    if recipe.latent == "empty":
        checks.append(("batch_size", request.batch_size, "EmptyLatentImage", "batch_size"))
    elif request.batch_size != 1:
        raise InvalidParameter(
            f"batch_size {request.batch_size} does not apply to img2img (one reference, one "
            "latent): queue several jobs with different seeds instead"
        )
    if recipe.lora:
        checks.append(
            ("lora_strength", request.params.lora_strength, "LoraLoader", "strength_model")
        )
    if recipe.ipadapter:
        faceid = request.preset.faceid
        apply = "IPAdapterFaceID" if faceid else "IPAdapterAdvanced"
        checks.append(("ipadapter_strength", request.params.ipadapter_strength, apply, "weight"))
        if faceid:
            provider = ("faceid_provider", request.faceid_provider)
            checks.append((*provider, "IPAdapterUnifiedLoaderFaceID", "provider"))
    if request.pose is not None:
        checks.append(
            ("pose strength", request.pose.strength, "ControlNetApplyAdvanced", "strength")
        )
    for label, value, class_type, input_name in checks:
        _check_one(catalog, label, value, class_type, input_name)


def _check_one(catalog: Catalog, label: str, value: object, class_type: str, name: str) -> None:
    spec = catalog.get(class_type)
    socket = spec.inputs.get(name) if spec is not None else None
    if socket is None or value is None:
        return
    where = f"{class_type}.{name} on {catalog.source}"
    if socket.options is not None and socket.options_enforced and value not in socket.options:
        choices = ", ".join(str(o) for o in socket.options)
        raise InvalidParameter(f"{label} {value!r} is not offered by {where}: use one of {choices}")
    if not isinstance(value, int | float):
        return
    low, high = socket.min, socket.max
    if (low is not None and value < low) or (high is not None and value > high):
        hint = ""
        if label in RECOMMENDED_RANGES:
            rec_low, rec_high = RECOMMENDED_RANGES[label]
            hint = f"; {rec_low}-{rec_high} is recommended"
        raise InvalidParameter(
            f"{label} {value} is outside ComfyUI's range for {where} ({low} to {high}): "
            f"use a value in range{hint}"
        )


def _load_checkpoint(g: GraphBuilder, request: WorkflowRequest) -> _Models:
    checkpoint = g.add(
        "CheckpointLoaderSimple", {"ckpt_name": request.checkpoint}, title="Base model"
    )
    return _Models(checkpoint.out("MODEL"), checkpoint.out("CLIP"), checkpoint.out("VAE"))


def _apply_lora(g: GraphBuilder, request: WorkflowRequest, models: _Models) -> _Models:
    assert request.lora is not None and request.params.lora_strength is not None  # request checks
    strength = request.params.lora_strength
    lora = g.add(
        "LoraLoader",
        {
            "model": models.model,
            "clip": models.clip,
            "lora_name": request.lora,
            "strength_model": strength,
            "strength_clip": strength,
        },
        title=f"{request.character} LoRA",
    )
    return replace(models, model=lora.out("MODEL"), clip=lora.out("CLIP"))


def _apply_ipadapter(g: GraphBuilder, request: WorkflowRequest, models: _Models) -> _Models:
    """IP-Adapter on the reference image: explicit files, unified preset, or FaceID, at the
    character weight's weight, weight_type and start/end (``character_weight`` module).

    Node order follows the graph that ran: loader(s), reference image, apply node.
    """
    assert request.params.ipadapter_strength is not None  # request checks
    application = ipadapter_application(request.params.character_weight)
    preset = request.preset
    weight = application.weight(request.params.ipadapter_strength)
    loaded: dict[str, InputValue]
    if preset.faceid:
        loader = g.add(
            "IPAdapterUnifiedLoaderFaceID",
            {
                "model": models.model,
                "preset": preset.name,
                "lora_strength": _FACEID_LORA_STRENGTH,
                "provider": request.faceid_provider,
            },
        )
        loaded = {"model": loader.out("MODEL"), "ipadapter": loader.out("ipadapter")}
    elif request.ipadapter_loader == "unified":
        loader = g.add("IPAdapterUnifiedLoader", {"model": models.model, "preset": preset.name})
        loaded = {"model": loader.out("model"), "ipadapter": loader.out("ipadapter")}
    else:
        adapter_file = preset.ipadapter_file(request.family)
        assert adapter_file is not None  # request checks the preset supports the family
        adapter = g.add("IPAdapterModelLoader", {"ipadapter_file": adapter_file})
        vision = g.add("CLIPVisionLoader", {"clip_name": preset.clip_vision})
        loaded = {
            "model": models.model,
            "ipadapter": adapter.out("IPADAPTER"),
            "clip_vision": vision.out("CLIP_VISION"),
        }
    settings: dict[str, InputValue] = {
        "image": _reference_for_clip_vision(g, request),
        "weight": weight,
        **IPADAPTER_DEFAULTS,
        "weight_type": application.weight_type,
        "start_at": application.start_at,
        "end_at": application.end_at,
    }
    if preset.faceid:
        applied = g.add("IPAdapterFaceID", {**loaded, **settings, "weight_faceidv2": weight})
    else:
        applied = g.add("IPAdapterAdvanced", {**loaded, **settings})
    return replace(models, model=applied.out("MODEL"))


def _reference_for_clip_vision(g: GraphBuilder, request: WorkflowRequest) -> Link:
    assert request.reference_image is not None  # request checks
    loaded = g.add("LoadImage", {"image": request.reference_image}, title="Reference image")
    reference = loaded.out("IMAGE")
    if request.prep_reference:
        prep: dict[str, InputValue] = {
            "image": reference,
            "interpolation": "LANCZOS",
            "crop_position": "top",
            "sharpening": 0.0,
        }
        reference = g.add("PrepImageForClipVision", prep).out("IMAGE")
    return reference


def _encode_prompts(g: GraphBuilder, request: WorkflowRequest, clip: Link) -> tuple[Link, Link]:
    positive = g.add(
        "CLIPTextEncode", {"text": request.positive_prompt, "clip": clip}, title="Positive"
    )
    negative = g.add(
        "CLIPTextEncode", {"text": request.negative_prompt, "clip": clip}, title="Negative"
    )
    return positive.out("CONDITIONING"), negative.out("CONDITIONING")


def _apply_pose(
    g: GraphBuilder,
    pose: PoseControl,
    size: tuple[int, int],
    positive: Link,
    negative: Link,
    models: _Models,
) -> tuple[Link, Link]:
    """OpenPose ControlNet on both conditionings, from a photo or a ready skeleton."""
    image = g.add("LoadImage", {"image": pose.image}, title="Pose image").out("IMAGE")
    if pose.preprocessor is not None:
        # controlnet_aux's resolution is INT [64, 16384] step 64: the shorter side, rounded.
        resolution = max(64, round(min(size) / 64) * 64)
        detect = {"detect_hand": "enable", "detect_body": "enable", "detect_face": "enable"}
        skeleton = g.add(pose.preprocessor, {"image": image, **detect, "resolution": resolution})
        image = skeleton.out("IMAGE")
    controlnet = g.add(
        "ControlNetLoader", {"control_net_name": pose.controlnet}, title="OpenPose ControlNet"
    )
    applied = g.add(
        "ControlNetApplyAdvanced",
        {
            "positive": positive,
            "negative": negative,
            "control_net": controlnet.out("CONTROL_NET"),
            "image": image,
            "strength": pose.strength,
            "start_percent": pose.start_percent,
            "end_percent": pose.end_percent,
            "vae": models.vae,
        },
    )
    return applied.out("positive"), applied.out("negative")


def _empty_latent(g: GraphBuilder, request: WorkflowRequest) -> Link:
    width, height = request.size
    latent = g.add(
        "EmptyLatentImage", {"width": width, "height": height, "batch_size": request.batch_size}
    )
    return latent.out("LATENT")


def _encode_reference(g: GraphBuilder, request: WorkflowRequest, vae: Link) -> Link:
    """img2img: the reference, cropped to the target aspect (never squashed), encoded."""
    assert request.reference_image is not None  # request checks
    width, height = request.size
    reference = g.add("LoadImage", {"image": request.reference_image}, title="Reference image")
    scaled = g.add(
        "ImageScale",
        {
            "image": reference.out("IMAGE"),
            "upscale_method": "lanczos",
            "width": width,
            "height": height,
            "crop": "center",
        },
    )
    encoded = g.add("VAEEncode", {"pixels": scaled.out("IMAGE"), "vae": vae})
    return encoded.out("LATENT")
