"""The family table: full-size configs match the published models; keys tell families apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from charstudio.training.families import FAMILIES, family_of_keys, write_config_folder


def _params(module: object) -> int:
    return sum(p.numel() for p in module.parameters())  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("family", "unet", "vae", "encoders"),
    [
        # Parameter counts of stable-diffusion-v1-5 and stable-diffusion-xl-base-1.0.
        ("sd15", 859_520_964, 83_653_863, [123_060_480]),
        ("sdxl", 2_567_463_684, 83_653_863, [123_060_480, 694_659_840]),
    ],
)
def test_full_size_configs_build_the_published_models(
    tmp_path: Path, family: str, unet: int, vae: int, encoders: list[int]
) -> None:
    folder = write_config_folder(FAMILIES[family], tmp_path / family)  # type: ignore[index]
    index = json.loads((folder / "model_index.json").read_text())
    assert index["_class_name"] == FAMILIES[family].pipeline_class  # type: ignore[index]
    with init_empty_weights():  # shapes only, no memory
        assert (
            _params(
                UNet2DConditionModel.from_config(
                    json.loads((folder / "unet/config.json").read_text())
                )
            )
            == unet
        )
        assert (
            _params(AutoencoderKL.from_config(json.loads((folder / "vae/config.json").read_text())))
            == vae
        )
        for i, expected in enumerate(encoders):
            name = "text_encoder" if i == 0 else "text_encoder_2"
            config = CLIPTextConfig.from_pretrained(folder / name)
            cls = CLIPTextModel if i == 0 else CLIPTextModelWithProjection
            assert _params(cls(config)) == expected
            tokenizer = "tokenizer" if i == 0 else "tokenizer_2"
            assert (folder / tokenizer / "vocab.json").is_file()


def test_family_of_keys() -> None:
    assert (
        family_of_keys(["cond_stage_model.transformer.text_model.x", "model.diffusion_model.y"])
        == "sd15"
    )
    assert (
        family_of_keys(
            [
                "conditioner.embedders.1.model.ln_final.weight",
                "conditioner.embedders.0.transformer.t",
            ]
        )
        == "sdxl"
    )
    assert family_of_keys(["lora_unet_x.lora_down.weight"]) is None
