"""Identity vs outfit: the character weight's graphs at both ends, in between, and at the
default (which must be the graph charstudio built before the control existed)."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from charstudio.errors import InvalidParameter
from charstudio.library.profile import METHOD_DEFAULTS, GenerationParams, Method
from charstudio.workflows import (
    Catalog,
    Graph,
    IPAdapterApplication,
    build_workflow,
    ipadapter_application,
    preset_for,
    validate_graph,
)

from .conftest import RequestFactory

BEFORE = Path(__file__).with_name("graphs_before_character_weight.json")
PLUS = "PLUS (high strength)"
FACE = "PLUS FACE (portraits)"


def one(graph: Graph, class_type: str) -> dict[str, Any]:
    [found] = [n["inputs"] for n in graph.values() if n["class_type"] == class_type]
    return found


def positive(graph: Graph) -> str:
    text: str = next(
        n["inputs"]["text"] for n in graph.values() if n.get("_meta", {}).get("title") == "Positive"
    )
    return text


def weighted(method: Method, weight: float | None, strength: float = 0.6) -> GenerationParams:
    return METHOD_DEFAULTS[method].model_copy(
        update={"character_weight": weight, "ipadapter_strength": strength}
    )


def _before() -> dict[str, str]:
    hashes: dict[str, str] = json.loads(BEFORE.read_text(encoding="utf-8"))["sha256"]
    return hashes


@pytest.mark.parametrize("weight", [0.5, None])
@pytest.mark.parametrize("key", sorted(_before()))
def test_the_default_builds_the_graphs_from_before_the_control(
    make_request: RequestFactory, key: str, weight: float | None
) -> None:
    """Every default graph (method, variation, family, preset) is byte for byte the one
    commit fc9c902 built, node order and input order included."""
    method, variation, family, preset = key.split("/")
    params = METHOD_DEFAULTS[method].model_copy(update={"character_weight": weight})  # type: ignore[index]
    request = make_request(
        method,
        variation=None if variation == "base" else variation,
        family=family,
        ipadapter_preset=preset,
        params=params,
    )
    graph = build_workflow(request)
    assert hashlib.sha256(json.dumps(graph).encode()).hexdigest() == _before()[key]


def test_the_default_is_the_graph_that_ran_on_comfyui(
    make_request: RequestFactory, recorded_graph: Graph
) -> None:
    params = GenerationParams(
        lora_strength=None,
        ipadapter_strength=0.6,
        cfg=7.0,
        steps=2,
        denoise=1.0,
        character_weight=0.5,
        negative_prompt="multiple people, deformed",
    )
    request = make_request(
        "ipadapter_only", params=params, ipadapter_loader="unified", seed=0, width=64, height=64
    )
    graph = build_workflow(request)
    for node in graph.values():
        node.pop("_meta", None)
    expected = copy.deepcopy(recorded_graph)
    expected["10"]["inputs"]["filename_prefix"] = "charstudio/yuki/job-1/yuki"
    assert graph == expected


def test_face_end_carries_only_the_face(make_request: RequestFactory, live: Catalog) -> None:
    request = make_request(
        "lora_ipadapter",
        variation="background",
        prompt="a snowy street",
        params=weighted("lora_ipadapter", 0.0),
    )
    graph = build_workflow(request)
    ipa = one(graph, "IPAdapterAdvanced")
    settings = {k: v for k, v in ipa.items() if not isinstance(v, list)}
    assert settings == {
        "weight": 0.6,
        "weight_type": "weak input",
        "combine_embeds": "concat",
        "start_at": 0.3,
        "end_at": 1.0,
        "embeds_scaling": "V only",
    }
    assert one(graph, "IPAdapterModelLoader")["ipadapter_file"] == (
        "ip-adapter-plus-face_sd15.safetensors"
    )
    assert positive(graph) == "yukicharacter, standing in a snowy street, same outfit"
    assert validate_graph(graph, Catalog.builtin()).ok
    for catalog in (Catalog.builtin(), live):  # the recorded server offers both types
        for node in ("IPAdapterAdvanced", "IPAdapterFaceID"):
            assert {"weak input", "linear"} <= set(catalog.combo(node, "weight_type"))


def test_full_end_carries_face_hair_and_outfit(make_request: RequestFactory) -> None:
    for variation, prompt, expected in [
        ("background", "a snowy street", "standing in a snowy street, same outfit, same hair"),
        ("pose", "sitting", "sitting, same outfit, same hair, same appearance"),
        (None, "reading", "reading, same outfit, same hair"),
        ("outfit", "red dress", "wearing red dress, white background, full body"),
    ]:
        request = make_request(
            "ipadapter_only",
            variation=variation,
            prompt=prompt,
            params=weighted("ipadapter_only", 1.0),
            ipadapter_preset=PLUS,
        )
        graph = build_workflow(request)
        ipa = one(graph, "IPAdapterAdvanced")
        assert (ipa["weight"], ipa["weight_type"], ipa["start_at"], ipa["end_at"]) == (
            0.6,
            "linear",
            0.0,
            1.0,
        )
        assert one(graph, "IPAdapterModelLoader")["ipadapter_file"] == (
            "ip-adapter-plus_sd15.safetensors"
        )
        assert positive(graph) == f"yukicharacter, {expected}"
        assert validate_graph(graph, Catalog.builtin()).ok


@pytest.mark.parametrize(
    ("weight", "preset", "inputs"),
    [
        (0.1, FACE, (0.6, "weak input", 0.24, 1.0)),
        (0.25, FACE, (0.6, "linear", 0.15, 1.0)),
        (0.4, FACE, (0.6, "linear", 0.06, 1.0)),
        (0.75, PLUS, (0.525, "linear", 0.0, 1.0)),
        (0.9, PLUS, (0.57, "linear", 0.0, 1.0)),
    ],
)
def test_in_between_weight_and_start_move(
    make_request: RequestFactory,
    weight: float,
    preset: str,
    inputs: tuple[float, str, float, float],
) -> None:
    request = make_request(
        "lora_ipadapter", params=weighted("lora_ipadapter", weight), ipadapter_preset=preset
    )
    ipa = one(build_workflow(request), "IPAdapterAdvanced")
    assert (ipa["weight"], ipa["weight_type"], ipa["start_at"], ipa["end_at"]) == inputs


def test_faceid_preset_at_the_face_end(make_request: RequestFactory) -> None:
    request = make_request(
        params=weighted("lora_ipadapter", 0.0, strength=0.7), ipadapter_preset="FACEID PLUS V2"
    )
    graph = build_workflow(request)
    apply = one(graph, "IPAdapterFaceID")
    assert (apply["weight"], apply["weight_faceidv2"]) == (0.7, 0.7)
    assert (apply["weight_type"], apply["start_at"], apply["end_at"]) == ("weak input", 0.3, 1.0)
    assert validate_graph(graph, Catalog.builtin()).ok


def test_weights_that_carry_the_outfit_need_a_full_image_preset(
    make_request: RequestFactory,
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(params=weighted("lora_ipadapter", 0.8), ipadapter_preset=FACE)
    assert str(caught.value) == (
        "character weight 0.8 carries hair and outfit: it needs a full-image IP-Adapter "
        "preset on the whole reference, not 'PLUS FACE (portraits)': use 'PLUS (high "
        "strength)', or a character weight of 0.5 or less"
    )


def test_methods_without_ipadapter_ignore_the_weight(make_request: RequestFactory) -> None:
    params = METHOD_DEFAULTS["lora_only"].model_copy(update={"character_weight": 1.0})
    graph = build_workflow(make_request("lora_only", params=params, variation="background"))
    assert positive(graph) == "yukicharacter, standing in red dress, same outfit"


@pytest.mark.parametrize(
    ("weight", "expected"),
    [
        (0.0, IPAdapterApplication("face", 1.0, "weak input", 0.3, 1.0)),
        (0.2, IPAdapterApplication("face", 1.0, "weak input", 0.18, 1.0)),
        (0.5, IPAdapterApplication("face", 1.0, "linear", 0.0, 1.0)),
        (None, IPAdapterApplication("face", 1.0, "linear", 0.0, 1.0)),
        (0.6, IPAdapterApplication("full", 0.8, "linear", 0.0, 1.0)),
        (1.0, IPAdapterApplication("full", 1.0, "linear", 0.0, 1.0)),
    ],
)
def test_application_table(weight: float | None, expected: IPAdapterApplication) -> None:
    assert ipadapter_application(weight) == expected


def test_preset_for() -> None:
    assert preset_for(0.5, FACE) == FACE
    assert preset_for(None, "FACEID PLUS V2") == "FACEID PLUS V2"
    assert preset_for(0.51, FACE) == PLUS
    assert preset_for(1.0, "FACEID PLUS V2") == PLUS
    assert preset_for(1.0, "STANDARD (medium strength)") == "STANDARD (medium strength)"
    assert preset_for(1.0, "FACE SWAP") == "FACE SWAP"  # refused with the graph, by name
