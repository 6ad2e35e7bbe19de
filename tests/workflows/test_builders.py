from __future__ import annotations

import copy
from typing import Any, get_args

import pytest

from charstudio.errors import InvalidParameter
from charstudio.library.profile import METHOD_DEFAULTS, GenerationParams, Method
from charstudio.workflows import (
    SEED_MAX,
    Catalog,
    Graph,
    PoseControl,
    WorkflowRejected,
    build_workflow,
    random_seed,
    validate_graph,
)

from .conftest import SERVER, RequestFactory

METHODS: tuple[Method, ...] = get_args(Method)
POSE = PoseControl(image="pose.png", controlnet="control_v11p_sd15_openpose_fp16.safetensors")


def nodes(graph: Graph, class_type: str) -> list[tuple[str, dict[str, Any]]]:
    return [(i, n["inputs"]) for i, n in graph.items() if n["class_type"] == class_type]


def one(graph: Graph, class_type: str) -> tuple[str, dict[str, Any]]:
    [found] = nodes(graph, class_type)
    return found


def source(graph: Graph, link: list[Any]) -> str:
    class_type: str = graph[link[0]]["class_type"]
    return class_type


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
@pytest.mark.parametrize("variation", ["outfit", "background", "pose", None])
@pytest.mark.parametrize("method", METHODS)
def test_every_method_variation_and_family_validates(
    make_request: RequestFactory, method: Method, variation: str | None, family: str
) -> None:
    graph = build_workflow(make_request(method, variation=variation, family=family))
    assert validate_graph(graph, Catalog.builtin()).ok
    assert len(nodes(graph, "VAEDecode")) == 1
    _, save = one(graph, "SaveImage")
    assert source(graph, save["images"]) == "VAEDecode"
    assert save["filename_prefix"] == "charstudio/yuki/job-1/yuki"
    _, sampler = one(graph, "KSampler")
    latent = "VAEEncode" if method == "img2img" else "EmptyLatentImage"
    assert source(graph, sampler["latent_image"]) == latent
    assert sampler["seed"] == 1234
    assert sampler["denoise"] == METHOD_DEFAULTS[method].denoise
    assert (sampler["cfg"], sampler["steps"]) == (
        METHOD_DEFAULTS[method].cfg,
        METHOD_DEFAULTS[method].steps,
    )


@pytest.mark.parametrize("preprocessor", ["OpenposePreprocessor", "DWPreprocessor", None])
@pytest.mark.parametrize("method", METHODS)
def test_pose_with_openpose_controlnet(
    make_request: RequestFactory, method: Method, preprocessor: str | None
) -> None:
    pose = POSE.model_copy(update={"preprocessor": preprocessor})
    graph = build_workflow(make_request(method, variation="pose", pose=pose))
    assert validate_graph(graph, Catalog.builtin()).ok
    apply_id, apply = one(graph, "ControlNetApplyAdvanced")
    assert source(graph, apply["control_net"]) == "ControlNetLoader"
    assert one(graph, "ControlNetLoader")[1]["control_net_name"] == POSE.controlnet
    assert source(graph, apply["image"]) == (preprocessor or "LoadImage")
    assert apply["strength"] == 1.0
    _, sampler = one(graph, "KSampler")
    assert sampler["positive"] == [apply_id, 0]
    assert sampler["negative"] == [apply_id, 1]
    if preprocessor is not None:
        assert one(graph, preprocessor)[1]["resolution"] == 512


def test_pose_without_controlnet_is_prompt_only(make_request: RequestFactory) -> None:
    graph = build_workflow(make_request(variation="pose", prompt="waving"))
    assert not nodes(graph, "ControlNetApplyAdvanced")
    texts = [inputs["text"] for _, inputs in nodes(graph, "CLIPTextEncode")]
    assert texts[0] == "yukicharacter, waving, same outfit, same appearance"


@pytest.mark.parametrize(
    ("variation", "positive"),
    [
        ("outfit", "yukicharacter, wearing red dress, white background, full body"),
        ("background", "yukicharacter, standing in red dress, same outfit"),
        ("pose", "yukicharacter, red dress, same outfit, same appearance"),
        (None, "yukicharacter, red dress"),
    ],
)
def test_trigger_word_first_in_the_positive_prompt(
    make_request: RequestFactory, variation: str | None, positive: str
) -> None:
    graph = build_workflow(make_request(variation=variation))
    _, sampler = one(graph, "KSampler")
    assert graph[sampler["positive"][0]]["inputs"]["text"] == positive
    assert graph[sampler["negative"][0]]["inputs"]["text"].startswith("lowres")


def test_lora_ipadapter_wiring(make_request: RequestFactory) -> None:
    params = GenerationParams(
        lora_strength=0.65, ipadapter_strength=0.55, cfg=7, steps=25, denoise=1
    )
    graph = build_workflow(make_request(params=params))
    lora_id, lora = one(graph, "LoraLoader")
    assert (lora["strength_model"], lora["strength_clip"]) == (0.65, 0.65)
    assert (lora["lora_name"], source(graph, lora["model"])) == (
        "yuki_v1.safetensors",
        "CheckpointLoaderSimple",
    )
    ipa_id, ipa = one(graph, "IPAdapterAdvanced")
    assert ipa["model"] == [lora_id, 0]
    assert ipa["weight"] == 0.55
    assert source(graph, ipa["ipadapter"]) == "IPAdapterModelLoader"
    assert source(graph, ipa["clip_vision"]) == "CLIPVisionLoader"
    assert source(graph, ipa["image"]) == "LoadImage"
    assert graph[ipa["image"][0]]["inputs"]["image"] == "yuki_reference.png"
    assert (
        one(graph, "IPAdapterModelLoader")[1]["ipadapter_file"]
        == "ip-adapter-plus-face_sd15.safetensors"
    )
    assert (
        one(graph, "CLIPVisionLoader")[1]["clip_name"]
        == "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
    )
    _, sampler = one(graph, "KSampler")
    assert sampler["model"] == [ipa_id, 0]
    for _, text in nodes(graph, "CLIPTextEncode"):
        assert text["clip"] == [lora_id, 1]  # the LoRA patches the text encoder too
    assert one(graph, "VAEDecode")[1]["vae"] == [one(graph, "CheckpointLoaderSimple")[0], 2]
    assert one(graph, "EmptyLatentImage")[1] == {"width": 512, "height": 512, "batch_size": 1}
    assert validate_graph(graph, Catalog.builtin()).ok


def test_sdxl_uses_its_files_and_size(make_request: RequestFactory) -> None:
    graph = build_workflow(make_request("ipadapter_only", family="sdxl"))
    assert one(graph, "IPAdapterModelLoader")[1]["ipadapter_file"] == (
        "ip-adapter-plus-face_sdxl_vit-h.safetensors"
    )
    assert one(graph, "EmptyLatentImage")[1]["width"] == 1024


def test_lora_only_has_no_ipadapter(make_request: RequestFactory) -> None:
    graph = build_workflow(make_request("lora_only"))
    assert not [n for n in graph.values() if n["class_type"].startswith("IPAdapter")]
    assert one(graph, "LoraLoader")[1]["strength_model"] == 0.8


def test_img2img_encodes_the_reference_at_the_profile_denoise(make_request: RequestFactory) -> None:
    graph = build_workflow(make_request("img2img", width=512, height=768))
    _, encode = one(graph, "VAEEncode")
    scaled = graph[encode["pixels"][0]]
    assert scaled["class_type"] == "ImageScale"
    assert (scaled["inputs"]["width"], scaled["inputs"]["height"]) == (512, 768)
    assert scaled["inputs"]["crop"] == "center"  # cropped to the aspect, never squashed
    assert graph[scaled["inputs"]["image"][0]]["inputs"]["image"] == "yuki_reference.png"
    assert one(graph, "KSampler")[1]["denoise"] == 0.4
    assert not nodes(graph, "EmptyLatentImage")


def test_faceid_preset(make_request: RequestFactory) -> None:
    graph = build_workflow(make_request(ipadapter_preset="FACEID PLUS V2", faceid_provider="CUDA"))
    _, loader = one(graph, "IPAdapterUnifiedLoaderFaceID")
    assert (loader["preset"], loader["provider"], loader["lora_strength"]) == (
        "FACEID PLUS V2",
        "CUDA",
        0.6,
    )
    _, apply = one(graph, "IPAdapterFaceID")
    assert (apply["weight"], apply["weight_faceidv2"]) == (0.6, 0.6)
    assert source(graph, apply["ipadapter"]) == "IPAdapterUnifiedLoaderFaceID"
    assert validate_graph(graph, Catalog.builtin()).ok


def test_prep_reference_for_clip_vision(make_request: RequestFactory) -> None:
    graph = build_workflow(make_request(prep_reference=True))
    _, apply = one(graph, "IPAdapterAdvanced")
    assert source(graph, apply["image"]) == "PrepImageForClipVision"


def test_unified_loader_rebuilds_the_graph_that_ran(
    make_request: RequestFactory, recorded_graph: Graph
) -> None:
    params = GenerationParams(
        lora_strength=None,
        ipadapter_strength=0.6,
        cfg=7.0,
        steps=2,
        denoise=1.0,
        negative_prompt="multiple people, deformed",
    )
    request = make_request(
        "ipadapter_only", params=params, ipadapter_loader="unified", seed=0, width=64, height=64
    )
    assert request.negative_prompt == "multiple people, deformed"
    graph = build_workflow(request)
    for node in graph.values():
        node.pop("_meta", None)
    expected = copy.deepcopy(recorded_graph)
    expected["10"]["inputs"]["filename_prefix"] = "charstudio/yuki/job-1/yuki"
    assert graph == expected


@pytest.mark.parametrize("seed", [0, 1, 2**63, SEED_MAX])
def test_seed_is_passed_through_exactly(make_request: RequestFactory, seed: int) -> None:
    graph = build_workflow(make_request(seed=seed))
    assert one(graph, "KSampler")[1]["seed"] == seed


def test_random_seed_is_in_range_and_recorded(make_request: RequestFactory) -> None:
    seeds = {random_seed() for _ in range(200)}
    assert all(0 <= s <= SEED_MAX for s in seeds)
    assert len(seeds) == 200
    seed = random_seed()
    assert one(build_workflow(make_request(seed=seed)), "KSampler")[1]["seed"] == seed


def test_validates_against_the_recorded_server(make_request: RequestFactory, live: Catalog) -> None:
    request = make_request("ipadapter_only", checkpoint="rand_sd15.safetensors")
    graph = build_workflow(request, catalog=live, server=SERVER)
    assert validate_graph(graph, live).ok


def test_server_without_ipadapter_plus(
    make_request: RequestFactory, object_info: dict[str, Any]
) -> None:
    no_pack = {k: v for k, v in object_info.items() if "IPAdapter_plus" not in v["python_module"]}
    live = Catalog.from_object_info(no_pack, source=SERVER)
    with pytest.raises(
        WorkflowRejected,
        match=r"IPAdapterModelLoader is not a node on .*install ComfyUI_IPAdapter_plus v2",
    ):
        build_workflow(make_request("ipadapter_only"), catalog=live, server=SERVER)
    build_workflow(make_request("img2img"), catalog=live, server=SERVER)  # no IP-Adapter needed


BUILTIN = "the built-in catalog (ComfyUI 0.3.64)"


@pytest.mark.parametrize(
    ("method", "changes", "message"),
    [
        (
            "lora_only",
            {"lora_strength": 150.0},
            f"lora_strength 150.0 is outside ComfyUI's range for LoraLoader.strength_model on "
            f"{BUILTIN} (-100.0 to 100.0): use a value in range; 0.6-0.8 is recommended",
        ),
        (
            "lora_ipadapter",
            {"ipadapter_strength": 5.5},
            f"ipadapter_strength 5.5 is outside ComfyUI's range for IPAdapterAdvanced.weight on "
            f"{BUILTIN} (-1 to 5): use a value in range; 0.5-0.7 is recommended",
        ),
        (
            "ipadapter_only",
            {"ipadapter_strength": -2.0},
            "ipadapter_strength -2.0 is outside ComfyUI's range for IPAdapterAdvanced.weight",
        ),
        ("lora_only", {"cfg": 101.0}, "cfg 101.0 is outside ComfyUI's range for KSampler.cfg"),
        ("lora_only", {"steps": 0}, "steps 0 is outside ComfyUI's range for KSampler.steps"),
        (
            "img2img",
            {"denoise": 1.5},
            "denoise 1.5 is outside ComfyUI's range for KSampler.denoise",
        ),
    ],
)
def test_values_outside_comfyui_ranges(
    make_request: RequestFactory, method: Method, changes: dict[str, Any], message: str
) -> None:
    params = METHOD_DEFAULTS[method].model_copy(update=changes)
    with pytest.raises(InvalidParameter) as caught:
        build_workflow(make_request(method, params=params))
    assert str(caught.value).startswith(message)


def test_faceid_strength_range_comes_from_the_faceid_node(make_request: RequestFactory) -> None:
    params = METHOD_DEFAULTS["ipadapter_only"].model_copy(update={"ipadapter_strength": 4.0})
    with pytest.raises(InvalidParameter, match=r"IPAdapterFaceID\.weight .*\(-1 to 3\)"):
        build_workflow(make_request("ipadapter_only", params=params, ipadapter_preset="FACEID"))


def test_ranges_come_from_the_live_catalog(
    make_request: RequestFactory, object_info: dict[str, Any]
) -> None:
    changed = copy.deepcopy(object_info)
    changed["KSampler"]["input"]["required"]["steps"][1]["max"] = 20
    live = Catalog.from_object_info(changed, source=SERVER)
    with pytest.raises(
        InvalidParameter, match=f"steps 30 is outside .*KSampler.steps on {SERVER} \\(1 to 20\\)"
    ):
        build_workflow(make_request("ipadapter_only"), catalog=live)


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("sampler", r"sampler 'euler_x' is not offered by KSampler\.sampler_name"),
        ("scheduler", r"scheduler 'euler_x' is not offered by KSampler\.scheduler"),
    ],
)
def test_sampler_the_server_does_not_have(
    make_request: RequestFactory, live: Catalog, field: str, message: str
) -> None:
    params = METHOD_DEFAULTS["ipadapter_only"].model_copy(update={field: "euler_x"})
    with pytest.raises(InvalidParameter, match=message):
        build_workflow(make_request("ipadapter_only", params=params), catalog=live)


def test_pose_controlnet_strength_range(make_request: RequestFactory) -> None:
    pose = POSE.model_copy(update={"strength": 11.0})
    with pytest.raises(
        InvalidParameter, match=r"pose strength 11.0 .*ControlNetApplyAdvanced.strength"
    ):
        build_workflow(make_request(variation="pose", pose=pose))


def test_img2img_batch_is_refused(make_request: RequestFactory) -> None:
    with pytest.raises(InvalidParameter, match="batch_size 4 does not apply to img2img"):
        build_workflow(make_request("img2img", batch_size=4))
