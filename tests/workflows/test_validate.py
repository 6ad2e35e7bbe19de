from __future__ import annotations

import copy
from typing import Any

import pytest

from charstudio.workflows import (
    Catalog,
    ModelMissing,
    WorkflowRejected,
    check_graph,
    validate_graph,
)

from .conftest import SERVER, recorded

# The original design's ComfyUI graph, as docs/ARCHITECTURE.md describes it
# ("Defects of the original sketch"): IPAdapterApply (removed
# from ComfyUI_IPAdapter_plus in 2024) without an IP-Adapter model or CLIP vision model,
# no EmptyLatentImage, no VAEDecode, no SaveImage, and seed 0 meant as "random".
ORIGINAL_DESIGN_GRAPH: dict[str, Any] = {
    "checkpoint_loader": {
        "class_type": "CheckpointLoaderSimple",
        "inputs": {"ckpt_name": "realisticVision_v51.safetensors"},
    },
    "lora_loader": {
        "class_type": "LoraLoader",
        "inputs": {
            "model": ["checkpoint_loader", 0],
            "clip": ["checkpoint_loader", 1],
            "lora_name": "yuki_v1.safetensors",
            "strength_model": 0.7,
            "strength_clip": 0.7,
        },
    },
    "reference_image": {"class_type": "LoadImage", "inputs": {"image": "yuki_reference.png"}},
    "ipadapter_apply": {
        "class_type": "IPAdapterApply",
        "inputs": {
            "model": ["lora_loader", 0],
            "image": ["reference_image", 0],
            "weight": 0.6,
            "noise": 0.0,
            "weight_type": "original",
        },
    },
    "positive": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "yukicharacter, wearing red dress", "clip": ["lora_loader", 1]},
    },
    "negative": {
        "class_type": "CLIPTextEncode",
        "inputs": {"text": "deformed", "clip": ["lora_loader", 1]},
    },
    "ksampler": {
        "class_type": "KSampler",
        "inputs": {
            "model": ["ipadapter_apply", 0],
            "seed": 0,
            "steps": 25,
            "cfg": 7.0,
            "sampler_name": "dpmpp_2m",
            "scheduler": "karras",
            "positive": ["positive", 0],
            "negative": ["negative", 0],
            "denoise": 1.0,
        },
    },
}


def _body(graph: dict[str, Any], catalog: Catalog) -> dict[str, Any]:
    result = validate_graph(graph, catalog)
    return {"error": result.error, "node_errors": result.node_errors}


def _types(graph: dict[str, Any], catalog: Catalog) -> dict[str, list[str]]:
    found = validate_graph(graph, catalog).node_errors
    return {node: [e["type"] for e in entry["errors"]] for node, entry in found.items()}


def test_graph_that_ran_validates(recorded_graph: dict[str, Any], live: Catalog) -> None:
    for catalog in (live, Catalog.builtin()):
        result = validate_graph(recorded_graph, catalog)
        assert result.ok
        assert result.good_outputs == ("10",)


def test_original_design_graph_gets_what_comfyui_answered(live: Catalog) -> None:
    expected = recorded("error_missing_node_IPAdapterApply.json")
    assert _body(ORIGINAL_DESIGN_GRAPH, live) == expected
    assert _body(ORIGINAL_DESIGN_GRAPH, Catalog.builtin()) == expected


def test_original_design_graph_is_rejected_naming_the_replacement() -> None:
    with pytest.raises(WorkflowRejected) as caught:
        check_graph(ORIGINAL_DESIGN_GRAPH, Catalog.builtin(), server=SERVER)
    assert str(caught.value) == (
        f"IPAdapterApply is not a node on {SERVER} (node 'ipadapter_apply'): it was removed in "
        "ComfyUI_IPAdapter_plus v2; install ComfyUI_IPAdapter_plus v2 "
        "(https://github.com/cubiq/ComfyUI_IPAdapter_plus) and use IPAdapterAdvanced instead"
    )
    assert caught.value.error["type"] == "invalid_prompt"
    assert caught.value.node_errors == {}


def test_original_design_graph_has_no_output_even_with_the_node_renamed() -> None:
    graph = copy.deepcopy(ORIGINAL_DESIGN_GRAPH)
    graph["ipadapter_apply"]["class_type"] = "IPAdapterAdvanced"
    assert validate_graph(graph, Catalog.builtin()).error == {
        "type": "prompt_no_outputs",
        "message": "Prompt has no outputs",
        "details": "",
        "extra_info": {},
    }
    with pytest.raises(WorkflowRejected, match=r"no output node.*add a SaveImage fed by VAEDecode"):
        check_graph(graph, Catalog.builtin())


def test_original_design_graph_saving_latents_stops_at_the_type_mismatch(live: Catalog) -> None:
    graph = copy.deepcopy(ORIGINAL_DESIGN_GRAPH)
    graph["ipadapter_apply"]["class_type"] = "IPAdapterAdvanced"
    graph["save"] = {"class_type": "SaveImage", "inputs": {"images": ["ksampler", 0]}}
    # As in ComfyUI, a mismatched link is not followed upstream.
    assert _types(graph, live) == {
        "save": [
            "return_type_mismatch",  # LATENT into images: no VAEDecode
            "required_input_missing",  # filename_prefix
        ]
    }
    with pytest.raises(WorkflowRejected) as caught:
        check_graph(graph, live, server=SERVER)
    assert (
        "node save (SaveImage) input 'images' is linked to an output of type LATENT, but it "
        "takes IMAGE: connect a IMAGE output" in str(caught.value)
    )


def test_original_design_graph_completed_lists_every_other_reason(live: Catalog) -> None:
    graph = copy.deepcopy(ORIGINAL_DESIGN_GRAPH)
    graph["ipadapter_apply"]["class_type"] = "IPAdapterAdvanced"
    graph["decode"] = {
        "class_type": "VAEDecode",
        "inputs": {"samples": ["ksampler", 0], "vae": ["checkpoint_loader", 2]},
    }
    graph["save"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["decode", 0], "filename_prefix": "yuki"},
    }
    assert _types(graph, live) == {
        "checkpoint_loader": ["value_not_in_list"],
        "lora_loader": ["value_not_in_list"],
        "ipadapter_apply": [
            "required_input_missing",  # ipadapter: no IP-Adapter model loaded at all
            "value_not_in_list",  # weight_type "original" is gone
            "required_input_missing",  # combine_embeds
            "required_input_missing",  # start_at
            "required_input_missing",  # end_at
            "required_input_missing",  # embeds_scaling
        ],
        "ksampler": ["required_input_missing"],  # latent_image: no EmptyLatentImage
    }
    with pytest.raises(ModelMissing) as caught:
        check_graph(graph, live, server=SERVER)
    message = str(caught.value)
    assert message.startswith(f"ComfyUI on {SERVER} would refuse the workflow (9 problems):")
    assert (
        "node ksampler (KSampler) input 'latent_image' is missing: connect an EmptyLatentImage"
        in message
    )
    assert (
        "node ipadapter_apply (IPAdapterAdvanced) input 'ipadapter' is missing: connect an "
        "IPAdapterUnifiedLoader or an IPAdapterModelLoader" in message
    )
    assert "input 'weight_type': 'original' is not one of the choices: use one of linear" in message
    assert (
        "node checkpoint_loader (CheckpointLoaderSimple) input 'ckpt_name': model "
        f"'realisticVision_v51.safetensors' not found on {SERVER}: put it in "
        "models/checkpoints (it has: rand_sd15.safetensors)" in message
    )
    assert [(m.folder, m.name) for m in caught.value.missing] == [
        ("checkpoints", "realisticVision_v51.safetensors"),
        ("loras", "yuki_v1.safetensors"),
    ]


def test_recorded_ckpt_and_seed_errors_are_reproduced_exactly(
    recorded_graph: dict[str, Any], live: Catalog
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["1"]["inputs"]["ckpt_name"] = "realisticVision_v51.safetensors"
    graph["8"]["inputs"]["seed"] = 2**64
    assert _body(graph, live) == recorded("error_validation_ckpt_and_seed.json")


def test_recorded_ckpt_and_seed_errors_message(
    recorded_graph: dict[str, Any], live: Catalog
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["1"]["inputs"]["ckpt_name"] = "realisticVision_v51.safetensors"
    graph["8"]["inputs"]["seed"] = 2**64
    with pytest.raises(ModelMissing) as caught:
        check_graph(graph, live, server=SERVER)
    assert str(caught.value).splitlines()[2] == (
        "- node 8 (KSampler) input 'seed': 18446744073709551616 is above the maximum "
        "18446744073709551615: use a value from 0 to 18446744073709551615"
    )


def test_builtin_catalog_does_not_guess_which_models_a_server_has(
    recorded_graph: dict[str, Any],
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["1"]["inputs"]["ckpt_name"] = "realisticVision_v51.safetensors"
    assert validate_graph(graph, Catalog.builtin()).ok


TO_INT = "Failed to convert an input value to a INT value"


@pytest.mark.parametrize(
    ("node", "name", "value", "kind", "message"),
    [
        ("8", "cfg", 101.0, "value_bigger_than_max", "Value 101.0 bigger than max of 100.0"),
        ("8", "steps", 0, "value_smaller_than_min", "Value 0 smaller than min of 1"),
        ("8", "seed", -1, "value_smaller_than_min", "Value -1 smaller than min of 0"),
        ("4", "weight", 5.5, "value_bigger_than_max", "Value 5.5 bigger than max of 5"),
        ("8", "sampler_name", "euler_x", "value_not_in_list", "Value not in list"),
        ("2", "preset", "PLUS", "value_not_in_list", "Value not in list"),
        ("8", "seed", "abc", "invalid_input_type", TO_INT),
        ("8", "steps", 2.5, "invalid_input_type", TO_INT),
        ("8", "cfg", True, "invalid_input_type", TO_INT.replace("INT", "FLOAT")),
        (
            "4",
            "model",
            "not a link",
            "invalid_input_type",
            "Input model takes a link to a MODEL output, not a value",
        ),
    ],
)
def test_bad_values(
    recorded_graph: dict[str, Any],
    live: Catalog,
    node: str,
    name: str,
    value: Any,
    kind: str,
    message: str,
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph[node]["inputs"][name] = value
    result = validate_graph(graph, live)
    assert result.error is not None and result.error["type"] == "prompt_outputs_failed_validation"
    [error] = result.node_errors[node]["errors"]
    assert (error["type"], error["message"]) == (kind, message)
    assert error["extra_info"]["input_name"] == name
    assert result.node_errors[node]["dependent_outputs"] == ["10"]


def test_long_choice_lists_are_not_echoed(recorded_graph: dict[str, Any], live: Catalog) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["8"]["inputs"]["sampler_name"] = "euler_x"
    [error] = validate_graph(graph, live).node_errors["8"]["errors"]
    assert error["details"] == "sampler_name: 'euler_x' not in (list of length 42)"
    assert error["extra_info"]["input_config"] is None


@pytest.mark.parametrize(
    ("link", "details"),
    [
        (["99", 0], "model: linked node '99' does not exist in the graph"),
        (
            ["1", 7],
            "model: CheckpointLoaderSimple has no output slot 7 (outputs: 0=MODEL, 1=CLIP, 2=VAE)",
        ),
        (["1"], "model"),
    ],
)
def test_bad_links(
    recorded_graph: dict[str, Any], live: Catalog, link: list[Any], details: str
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["8"]["inputs"]["model"] = link
    [error] = validate_graph(graph, live).node_errors["8"]["errors"]
    assert error["type"] == "bad_linked_input"
    assert error["details"] == details


def test_wrong_link_type(recorded_graph: dict[str, Any], live: Catalog) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["8"]["inputs"]["model"] = ["1", 2]  # VAE into MODEL
    [error] = validate_graph(graph, live).node_errors["8"]["errors"]
    assert error["type"] == "return_type_mismatch"
    assert error["details"] == "model, received_type(VAE) mismatch input_type(MODEL)"


def test_error_upstream_is_reported_once_where_it_is(
    recorded_graph: dict[str, Any], live: Catalog
) -> None:
    graph = copy.deepcopy(recorded_graph)
    del graph["7"]["inputs"]["width"]
    result = validate_graph(graph, live)
    assert list(result.node_errors) == ["7"]  # KSampler, VAEDecode, SaveImage carry nothing
    assert result.error is not None
    assert result.error["details"] == ""  # as ComfyUI: only the output node's own errors


def test_unknown_extra_inputs_are_ignored_as_comfyui_does(
    recorded_graph: dict[str, Any], live: Catalog
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["8"]["inputs"]["noise"] = 0.5
    assert validate_graph(graph, live).ok


def test_nodes_no_output_needs_are_not_validated(
    recorded_graph: dict[str, Any], live: Catalog
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["99"] = {"class_type": "KSampler", "inputs": {}}
    assert validate_graph(graph, live).ok


def test_missing_class_type(recorded_graph: dict[str, Any], live: Catalog) -> None:
    graph = copy.deepcopy(recorded_graph)
    del graph["3"]["class_type"]
    result = validate_graph(graph, live)
    assert result.error is not None
    assert result.error["message"] == (
        "Cannot execute because a node is missing the class_type property."
    )
    assert result.error["details"] == "Node ID '#3'"


def test_missing_custom_node_pack_names_the_pack(
    recorded_graph: dict[str, Any], object_info: dict[str, Any]
) -> None:
    no_pack = {k: v for k, v in object_info.items() if "IPAdapter_plus" not in v["python_module"]}
    live = Catalog.from_object_info(no_pack, source=SERVER)
    with pytest.raises(WorkflowRejected) as caught:
        check_graph(recorded_graph, live, server=SERVER)
    assert str(caught.value) == (
        f"IPAdapterUnifiedLoader is not a node on {SERVER} (node '2'): install "
        "ComfyUI_IPAdapter_plus v2 (https://github.com/cubiq/ComfyUI_IPAdapter_plus) in "
        "ComfyUI's custom_nodes and restart it"
    )


def test_unknown_node_of_no_known_pack(recorded_graph: dict[str, Any], live: Catalog) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["9"]["class_type"] = "VAEDecodeTurbo"
    with pytest.raises(WorkflowRejected, match="install the custom node pack that provides it"):
        check_graph(graph, live)


def test_cycle_is_an_error_not_a_hang(recorded_graph: dict[str, Any], live: Catalog) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["2"]["inputs"]["model"] = ["4", 0]  # 4 takes its model from 2
    types = [
        e["type"]
        for entry in validate_graph(graph, live).node_errors.values()
        for e in entry["errors"]
    ]
    assert types == ["dependency_cycle"]


def test_ipadapter_model_loader_without_clip_vision(
    recorded_graph: dict[str, Any], live: Catalog
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["2"] = {
        "class_type": "IPAdapterModelLoader",
        "inputs": {"ipadapter_file": "ip-adapter-plus-face_sd15.safetensors"},
    }
    graph["4"]["inputs"].update(model=["1", 0], ipadapter=["2", 0])
    [error] = validate_graph(graph, live).node_errors["4"]["errors"]
    assert error["type"] == "clip_vision_missing"
    graph["11"] = {
        "class_type": "CLIPVisionLoader",
        "inputs": {"clip_name": "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"},
    }
    graph["4"]["inputs"]["clip_vision"] = ["11", 0]
    assert validate_graph(graph, live).ok


def test_some_outputs_failing_is_still_a_rejection(
    recorded_graph: dict[str, Any], live: Catalog
) -> None:
    graph = copy.deepcopy(recorded_graph)
    graph["11"] = {"class_type": "SaveImage", "inputs": {"images": ["9", 0]}}
    result = validate_graph(graph, live)
    assert result.error is None and result.good_outputs == ("10",)
    assert not result.ok
    with pytest.raises(WorkflowRejected, match="input 'filename_prefix' is missing: set a STRING"):
        check_graph(graph, live)


def test_missing_class_type_message(recorded_graph: dict[str, Any], live: Catalog) -> None:
    graph = copy.deepcopy(recorded_graph)
    del graph["3"]["class_type"]
    with pytest.raises(WorkflowRejected) as caught:
        check_graph(graph, live)
    assert str(caught.value) == "node '3' has no class_type: give every node a class_type"


def test_graph_that_is_not_an_object(live: Catalog) -> None:
    with pytest.raises(WorkflowRejected) as caught:
        check_graph(["not", "a", "graph"], live)  # type: ignore[arg-type]
    assert str(caught.value).startswith(
        "The prompt is not a JSON object of nodes: send an API-format graph"
    )
