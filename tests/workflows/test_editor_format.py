"""API graphs laid out as ComfyUI editor workflows (the PNG ``workflow`` chunk)."""

from __future__ import annotations

from typing import Any

from charstudio.workflows import build_workflow, editor_workflow
from tests.workflows.conftest import RequestFactory


def test_recorded_graph_as_an_editor_workflow(recorded_graph: dict[str, Any]) -> None:
    workflow = editor_workflow(recorded_graph)
    nodes = {n["id"]: n for n in workflow["nodes"]}
    assert sorted(nodes) == list(range(1, 11)) and workflow["version"] == 0.4
    # Widget order as ComfyUI's own exports: seed, its control value, then the rest.
    assert nodes[8]["widgets_values"] == [0, "fixed", 2, 7.0, "dpmpp_2m", "karras", 1.0]
    assert nodes[3]["widgets_values"] == ["yuki_reference.png", "image"]
    assert nodes[7]["widgets_values"] == [64, 64, 1]
    assert nodes[10]["widgets_values"] == ["yuki_test"]
    # Every API link is one link row, and both ends name it.
    api_links = [
        (src, slot, int(dst), name)
        for dst, node in recorded_graph.items()
        for name, value in node["inputs"].items()
        if isinstance(value, list)
        for src, slot in [value]
    ]
    assert len(workflow["links"]) == len(api_links) == workflow["last_link_id"]
    for link_id, src, slot, dst, index, kind in workflow["links"]:
        target = nodes[dst]["inputs"][index]
        assert target["link"] == link_id and target["type"] == kind
        assert link_id in nodes[src]["outputs"][slot]["links"]
        assert (str(src), slot, dst, target["name"]) in api_links
    sampler_inputs = [i["name"] for i in nodes[8]["inputs"]]
    assert sampler_inputs == ["model", "positive", "negative", "latent_image"]
    decode_link = nodes[9]["inputs"][0]["link"]
    assert nodes[8]["outputs"] == [
        {"name": "LATENT", "type": "LATENT", "links": [decode_link], "slot_index": 0}
    ]
    # Columns follow the flow: loaders first, SaveImage last.
    assert nodes[1]["pos"][0] == 0 and nodes[10]["pos"][0] == max(
        n["pos"][0] for n in nodes.values()
    )


def test_builder_graphs_convert(make_request: RequestFactory) -> None:
    for method in ("lora_ipadapter", "lora_only", "ipadapter_only", "img2img"):
        graph = build_workflow(make_request(method))
        workflow = editor_workflow(graph)
        assert len(workflow["nodes"]) == len(graph)
        titled = [n for n in workflow["nodes"] if "title" in n]
        assert {n["title"] for n in titled} >= {"Base model", "Positive", "Negative"}
