"""Fixtures for the workflows tests: what a real ComfyUI 0.3.64 answered, and requests.

tests/data/comfyui/ holds copies of the recordings described in its README.md.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from charstudio.library.profile import METHOD_DEFAULTS, Method
from charstudio.workflows import Catalog, WorkflowRequest

DATA = Path(__file__).resolve().parent.parent / "data" / "comfyui"
SERVER = "http://127.0.0.1:8188"


def recorded(name: str) -> Any:
    """A recorded ComfyUI answer or request body from tests/data/comfyui/."""
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def object_info() -> dict[str, Any]:
    data: dict[str, Any] = recorded("object_info.json")
    return data


@pytest.fixture
def live(object_info: dict[str, Any]) -> Catalog:
    """The recorded server's catalog, as the client will read it from /object_info."""
    return Catalog.from_object_info(copy.deepcopy(object_info), source=SERVER)


@pytest.fixture
def recorded_graph() -> dict[str, Any]:
    """The graph that ran to success on the recorded server (API format)."""
    graph: dict[str, Any] = recorded("graph_ipadapter_plus_face.json")["prompt"]
    return graph


RequestFactory = Callable[..., WorkflowRequest]


@pytest.fixture
def make_request() -> RequestFactory:
    """A request for the character yuki, with files the recorded server has."""

    def make(method: Method = "lora_ipadapter", **changes: Any) -> WorkflowRequest:
        values: dict[str, Any] = {
            "character": "yuki",
            "job": "job-1",
            "trigger_word": "yukicharacter",
            "prompt": "red dress",
            "variation": "outfit",
            "method": method,
            "params": METHOD_DEFAULTS[method],
            "seed": 1234,
            "checkpoint": "rand_sd15.safetensors",
            "lora": "yuki_v1.safetensors" if method in ("lora_ipadapter", "lora_only") else None,
            "reference_image": None if method == "lora_only" else "yuki_reference.png",
        }
        values.update(changes)
        return WorkflowRequest(**values)

    return make
