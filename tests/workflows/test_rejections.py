from __future__ import annotations

import copy
from typing import Any

from charstudio.errors import BackendError
from charstudio.workflows import ModelMissing, WorkflowRejected, rejection_from_response

from .conftest import SERVER, recorded


def test_missing_node_answer_from_a_server() -> None:
    body = recorded("error_missing_node_IPAdapterApply.json")
    error = rejection_from_response(body, server=SERVER)
    assert type(error) is WorkflowRejected
    assert isinstance(error, BackendError)
    assert str(error).startswith(
        f"IPAdapterApply is not a node on {SERVER} (node 'ipadapter_apply')"
    )
    assert "use IPAdapterAdvanced instead" in str(error)
    assert error.error == body["error"]
    assert error.server == SERVER


def test_validation_answer_from_a_server_is_a_missing_model() -> None:
    body = recorded("error_validation_ckpt_and_seed.json")
    error = rejection_from_response(body, server=SERVER)
    assert isinstance(error, ModelMissing)
    assert error.node_errors == body["node_errors"]
    [missing] = error.missing
    assert (missing.node_id, missing.folder, missing.name, missing.available) == (
        "1",
        "checkpoints",
        "realisticVision_v51.safetensors",
        ("rand_sd15.safetensors",),
    )
    assert str(error).splitlines() == [
        f"ComfyUI on {SERVER} would refuse the workflow (2 problems):",
        "- node 1 (CheckpointLoaderSimple) input 'ckpt_name': model "
        f"'realisticVision_v51.safetensors' not found on {SERVER}: put it in models/checkpoints "
        "(it has: rand_sd15.safetensors)",
        "- node 8 (KSampler) input 'seed': 18446744073709551616 is above the maximum "
        "18446744073709551615: use a value from 0 to 18446744073709551615",
    ]


def test_newest_comfyui_missing_node_shape() -> None:
    body = {
        "error": {
            "type": "missing_node_type",
            "message": "Node 'IPAdapter Apply' not found. The custom node may not be installed.",
            "details": "Node ID '#4'",
            "extra_info": {"node_id": "4", "class_type": "IPAdapterApply", "node_title": "x"},
        },
        "node_errors": {},
    }
    error = rejection_from_response(body, server=SERVER)
    assert str(error).startswith(f"IPAdapterApply is not a node on {SERVER} (node '4')")


def test_only_range_errors_are_not_a_missing_model() -> None:
    body: dict[str, Any] = copy.deepcopy(recorded("error_validation_ckpt_and_seed.json"))
    del body["node_errors"]["1"]
    error = rejection_from_response(body, server=SERVER)
    assert type(error) is WorkflowRejected
    assert "(1 problem):" in str(error)


def test_answer_in_an_unknown_format() -> None:
    error = rejection_from_response("<html>502 Bad Gateway</html>", server=SERVER)
    assert type(error) is WorkflowRejected
    assert str(error) == (
        f"{SERVER} refused the workflow with an unexpected answer: '<html>502 Bad Gateway</html>'"
    )
    assert error.error["type"] == "unexpected_response"
