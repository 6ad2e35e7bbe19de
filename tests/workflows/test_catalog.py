from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest

from charstudio.workflows import (
    BUILTIN_CLASS_TYPES,
    Catalog,
    InvalidObjectInfo,
    extract_builtin,
    merge_catalogs,
)

from .conftest import SERVER


def test_builtin_is_an_unchanged_copy_of_the_recording(object_info: dict[str, Any]) -> None:
    shipped = resources.files("charstudio.workflows").joinpath("data/object_info_builtin.json")
    assert json.loads(shipped.read_text(encoding="utf-8")) == extract_builtin(object_info)


def test_builtin_has_the_nodes_the_builders_use() -> None:
    catalog = Catalog.builtin()
    assert set(catalog.nodes) == set(BUILTIN_CLASS_TYPES)
    assert catalog.skipped == ()
    assert not catalog.complete
    for name in ("IPAdapterAdvanced", "IPAdapterUnifiedLoaderFaceID", "OpenposePreprocessor"):
        assert name in catalog
    assert "IPAdapterApply" not in catalog


def test_every_recorded_node_parses(live: Catalog) -> None:
    assert len(live) == 579
    assert live.skipped == ()
    assert live.complete


def test_core_node_inputs_ranges_and_outputs() -> None:
    catalog = Catalog.builtin()
    lora = catalog.spec("LoraLoader")
    strength = lora.inputs["strength_model"]
    assert (strength.type, strength.default, strength.min, strength.max, strength.step) == (
        "FLOAT",
        1.0,
        -100.0,
        100.0,
        0.01,
    )
    assert [o.type for o in lora.outputs] == ["MODEL", "CLIP"]
    seed = catalog.spec("KSampler").inputs["seed"]
    assert (seed.min, seed.max) == (0, 2**64 - 1)
    assert catalog.spec("SaveImage").output_node
    assert not catalog.spec("KSampler").output_node
    weight = catalog.spec("IPAdapterAdvanced").inputs["weight"]
    assert (weight.min, weight.max) == (-1, 5)
    clip_vision = catalog.spec("IPAdapterAdvanced").inputs["clip_vision"]
    assert clip_vision.is_link and not clip_vision.required


def test_outputs_are_found_by_name_then_by_unique_type() -> None:
    catalog = Catalog.builtin()
    assert catalog.spec("CheckpointLoaderSimple").output_slot("VAE") == 2
    assert catalog.spec("IPAdapterUnifiedLoader").output_slot("ipadapter") == 1
    assert catalog.spec("IPAdapterUnifiedLoader").output_slot("MODEL") == 0  # by type
    controlnet = catalog.spec("ControlNetApplyAdvanced")
    assert controlnet.output_slot("negative") == 1
    with pytest.raises(KeyError, match="no single output 'CONDITIONING'"):
        controlnet.output_slot("CONDITIONING")


def test_legacy_combo_form(live: Catalog) -> None:
    scheduler = live.spec("KSampler").inputs["scheduler"]
    assert scheduler.type == "COMBO"
    assert scheduler.options is not None and "karras" in scheduler.options
    assert scheduler.options_enforced
    preset = live.spec("IPAdapterUnifiedLoader").inputs["preset"]
    assert preset.options is not None and "PLUS FACE (portraits)" in preset.options


def test_v3_combo_form(live: Catalog) -> None:
    method = live.spec("ImageScaleToTotalPixels").inputs["upscale_method"]
    assert method.type == "COMBO"
    assert method.options == ("nearest-exact", "bilinear", "area", "bicubic", "lanczos")
    assert method.config[0] == "COMBO"
    empty = live.spec("UpscaleModelLoader").inputs["model_name"]
    assert (empty.options, empty.model_folder) == ((), "upscale_models")


def test_both_combo_forms_from_a_hand_written_object_info() -> None:
    info = {
        "Pick": {
            "input": {
                "required": {
                    "legacy": [["a", "b"], {"default": "a"}],
                    "v3": ["COMBO", {"options": ["x", "y"], "multiselect": False}],
                    "bare": [["only"]],
                }
            },
            "output": [["a", "b"]],  # a combo output is published as its list
            "output_name": ["choice"],
            "output_node": False,
        }
    }
    spec = Catalog.from_object_info(info).spec("Pick")
    assert spec.inputs["legacy"].options == ("a", "b")
    assert spec.inputs["legacy"].default == "a"
    assert spec.inputs["v3"].options == ("x", "y")
    assert spec.inputs["bare"].options == ("only",)
    assert spec.outputs[0].type == "COMBO"


def test_model_lists_are_enforced_only_when_they_come_from_the_server(live: Catalog) -> None:
    builtin_ckpt = Catalog.builtin().spec("CheckpointLoaderSimple").inputs["ckpt_name"]
    live_ckpt = live.spec("CheckpointLoaderSimple").inputs["ckpt_name"]
    assert builtin_ckpt.model_folder == live_ckpt.model_folder == "checkpoints"
    assert not builtin_ckpt.options_enforced
    assert live_ckpt.options_enforced
    assert live_ckpt.options == ("rand_sd15.safetensors",)
    # LoadImage checks the file itself (VALIDATE_INPUTS), never against the list.
    assert not live.spec("LoadImage").inputs["image"].options_enforced


def test_live_catalog_wins_over_the_builtin(object_info: dict[str, Any]) -> None:
    changed = json.loads(json.dumps(object_info))
    changed["KSampler"]["input"]["required"]["steps"][1]["max"] = 150
    live = Catalog.from_object_info(changed, source=SERVER)
    merged = merge_catalogs(live, Catalog.builtin())
    assert merged.spec("KSampler").inputs["steps"].max == 150
    assert merged.source == SERVER


def test_complete_live_catalog_drops_nodes_the_server_lacks(
    object_info: dict[str, Any],
) -> None:
    without_ipadapter = {k: v for k, v in object_info.items() if not k.startswith("IPAdapter")}
    live = Catalog.from_object_info(without_ipadapter, source=SERVER)
    merged = merge_catalogs(live, Catalog.builtin())
    assert "IPAdapterAdvanced" not in merged


def test_partial_live_catalog_keeps_builtin_nodes(object_info: dict[str, Any]) -> None:
    partial = Catalog.from_object_info({"KSampler": object_info["KSampler"]}, complete=False)
    merged = merge_catalogs(partial, Catalog.builtin())
    assert "IPAdapterAdvanced" in merged
    assert merged.spec("KSampler") is partial.spec("KSampler")


def test_malformed_node_is_skipped_with_its_reason() -> None:
    info = {
        "Good": {"input": {"required": {"x": ["INT", {"min": 0}]}}, "output": ["INT"]},
        "NoType": {"input": {"required": {"x": []}}, "output": []},
        "NotAnObject": "oops",
    }
    catalog = Catalog.from_object_info(info)
    assert list(catalog.nodes) == ["Good"]
    assert len(catalog.skipped) == 2
    assert catalog.skipped[0].startswith("NoType: input 'x' has no type")


def test_answer_that_is_not_object_info_is_refused() -> None:
    with pytest.raises(InvalidObjectInfo, match=r"is a list, not a JSON object of node classes"):
        Catalog.from_object_info(["<html>"], source=SERVER)  # type: ignore[arg-type]
