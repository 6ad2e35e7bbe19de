"""Base models load offline from single files and diffusers folders; bad ones are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from charstudio.errors import InvalidParameter, NotFound
from charstudio.training.loading import checkpoint_keys, file_hashes, load_base_model
from charstudio.training.types import BaseModelInvalid
from tests.training.conftest import TinyModel


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_single_file_loads_with_local_configs(tiny_sd15: TinyModel) -> None:
    assert tiny_sd15.single_file is not None
    base = load_base_model(tiny_sd15.single_file, family="sd15", config_dir=tiny_sd15.config_dir)
    assert base.family.name == "sd15"
    for part in ("unet", "vae", "text_encoder"):
        assert _same_weights(getattr(base.pipeline, part), getattr(tiny_sd15.pipeline, part))
    assert base.tokenizers[0]("a photo of a cat").input_ids[:3] == [49406, 320, 1125]
    assert base.sha256 == file_hashes([tiny_sd15.single_file])[0]
    assert len(base.legacy_hash) == 8
    assert base.noise_scheduler.config.num_train_timesteps == 1000


def test_sdxl_single_file_loads(tiny_sdxl: TinyModel) -> None:
    assert tiny_sdxl.single_file is not None
    base = load_base_model(tiny_sdxl.single_file, family="sdxl", config_dir=tiny_sdxl.config_dir)
    assert type(base.pipeline).__name__ == "StableDiffusionXLPipeline"
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        assert _same_weights(getattr(base.pipeline, part), getattr(tiny_sdxl.pipeline, part))
    with pytest.raises(BaseModelInvalid, match=r"tinyXL_v1.safetensors is a Stable Diffusion XL"):
        load_base_model(tiny_sdxl.single_file, family="sd15")


def test_ckpt_with_state_dict_loads(tiny_sd15: TinyModel, tmp_path: Path) -> None:
    assert tiny_sd15.single_file is not None
    ckpt = tmp_path / "tiny.ckpt"
    torch.save({"state_dict": load_file(str(tiny_sd15.single_file))}, ckpt)
    base = load_base_model(ckpt, family="sd15", config_dir=tiny_sd15.config_dir)
    assert _same_weights(base.unet, tiny_sd15.pipeline.unet)


def test_diffusers_folders_load(tiny_sd15: TinyModel, tiny_sdxl: TinyModel) -> None:
    sd15 = load_base_model(tiny_sd15.folder, family="sd15")
    assert _same_weights(sd15.unet, tiny_sd15.pipeline.unet)
    sdxl = load_base_model(tiny_sdxl.folder, family="sdxl")
    assert type(sdxl.pipeline).__name__ == "StableDiffusionXLPipeline"
    assert len(sdxl.text_encoders) == 2 and len(sdxl.tokenizers) == 2


def test_a_separate_vae_replaces_the_models(tiny_sd15: TinyModel, tmp_path: Path) -> None:
    vae_dir = tmp_path / "vae"
    vae = tiny_sd15.pipeline.vae
    torch.manual_seed(5)
    type(vae).from_config(vae.config).save_pretrained(vae_dir)
    base = load_base_model(tiny_sd15.folder, family="sd15", vae=vae_dir)
    assert not _same_weights(base.vae, vae)
    with pytest.raises(NotFound, match=r"VAE .* does not exist; fix model.vae or remove it"):
        load_base_model(tiny_sd15.folder, family="sd15", vae=tmp_path / "missing")


def _sdxl_like(path: Path) -> Path:
    tensors = {
        "conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.ones(4),
        "conditioner.embedders.1.model.ln_final.weight": torch.ones(4),
        "model.diffusion_model.label_emb.0.0.weight": torch.ones(4, 4),
        "first_stage_model.decoder.conv_in.weight": torch.ones(4),
    }
    save_file(tensors, str(path))
    return path


def test_sdxl_checkpoint_given_as_sd15_is_named(tmp_path: Path) -> None:
    path = _sdxl_like(tmp_path / "ponyDiffusionV6XL.safetensors")
    with pytest.raises(BaseModelInvalid) as caught:
        load_base_model(path, family="sd15")
    assert str(caught.value) == (
        "base checkpoint ponyDiffusionV6XL.safetensors is a Stable Diffusion XL (sdxl) model "
        "but model.family is sd15; set model.family: sdxl (or --set model.family=sdxl), or "
        "give a Stable Diffusion 1.5 checkpoint"
    )


def test_sd15_given_as_sdxl_is_named(tiny_sd15: TinyModel) -> None:
    assert tiny_sd15.single_file is not None
    with pytest.raises(
        BaseModelInvalid, match=r"is a Stable Diffusion 1.5 \(sd15\) model but model.family is sdxl"
    ):
        load_base_model(tiny_sd15.single_file, family="sdxl")
    with pytest.raises(BaseModelInvalid, match=r"set model.family: sd15"):
        load_base_model(tiny_sd15.folder, family="sdxl")


def test_missing_and_unset_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidParameter,
        match=r"model.base_checkpoint is not set; set it in the config or with --set",
    ):
        load_base_model(None, family="sd15")
    with pytest.raises(NotFound, match=r"does not exist; fix model.base_checkpoint"):
        load_base_model(tmp_path / "realisticVision_v51.safetensors", family="sd15")


def test_corrupt_checkpoint_is_refused(tiny_sd15: TinyModel, tmp_path: Path) -> None:
    assert tiny_sd15.single_file is not None
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(tiny_sd15.single_file.read_bytes()[:5000])
    with pytest.raises(
        BaseModelInvalid,
        match=r"cannot be read .*it is truncated or corrupt: download or copy it again",
    ):
        load_base_model(truncated, family="sd15")
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a pickle at all")
    with pytest.raises(BaseModelInvalid, match=r"truncated or corrupt"):
        checkpoint_keys(garbage)


def test_a_lora_or_a_vae_is_not_a_base_model(tmp_path: Path) -> None:
    lora = tmp_path / "yuki_v1.safetensors"
    save_file({"lora_unet_x.lora_down.weight": torch.ones(2, 2)}, str(lora))
    with pytest.raises(BaseModelInvalid, match=r"yuki_v1.safetensors is a LoRA, not a base model"):
        load_base_model(lora, family="sd15")
    vae = tmp_path / "vae-ft-mse.safetensors"
    save_file({"encoder.conv_in.weight": torch.ones(2, 2)}, str(vae))
    with pytest.raises(
        BaseModelInvalid, match=r"has no Stable Diffusion UNet and text-encoder keys"
    ):
        load_base_model(vae, family="sd15")


def test_other_bad_paths(tiny_sd15: TinyModel, tmp_path: Path) -> None:
    text = tmp_path / "model.txt"
    text.write_text("hello")
    with pytest.raises(BaseModelInvalid, match=r"model.txt is not a checkpoint"):
        load_base_model(text, family="sd15")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BaseModelInvalid, match=r"is a folder without model_index.json"):
        load_base_model(empty, family="sd15")
    with pytest.raises(NotFound, match=r"model.config_dir .* has no model_index.json"):
        load_base_model(tiny_sd15.folder, family="sd15", config_dir=empty)


def test_shapes_that_do_not_match_the_configs_are_explained(tiny_sd15: TinyModel) -> None:
    # The tiny file with charstudio's full-size SD1.5 configs: the shapes cannot match.
    assert tiny_sd15.single_file is not None
    with pytest.raises(BaseModelInvalid, match=r"could not be loaded as .*set model.config_dir"):
        load_base_model(tiny_sd15.single_file, family="sd15")


def test_checkpoints_without_a_state_dict_or_index(tmp_path: Path) -> None:
    odd = tmp_path / "odd.ckpt"
    torch.save([1, 2, 3], odd)
    with pytest.raises(BaseModelInvalid, match=r"odd.ckpt holds no state dict; give a Stable"):
        load_base_model(odd, family="sd15")
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    with pytest.raises(BaseModelInvalid, match=r"model_index.json is not a diffusers model index"):
        load_base_model(folder, family="sd15")


@pytest.mark.parametrize("component", ["text_encoder", "unet"])
def test_nan_or_inf_weights_are_refused_naming_the_component(
    tiny_sd15: TinyModel, tmp_path: Path, component: str
) -> None:
    # A checkpoint with uninitialised (NaN) text-encoder weights used to load and train to a
    # NaN loss; the LoRA it made gave black images.
    assert tiny_sd15.single_file is not None
    state = load_file(str(tiny_sd15.single_file))
    prefix = "cond_stage_model." if component == "text_encoder" else "model.diffusion_model."
    key = next(k for k in sorted(state) if k.startswith(prefix) and k.endswith(".weight"))
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan") if component == "text_encoder" else float("inf")
    broken = tmp_path / "broken.safetensors"
    save_file(state, str(broken))
    with pytest.raises(BaseModelInvalid) as caught:
        load_base_model(broken, family="sd15", config_dir=tiny_sd15.config_dir)
    message = str(caught.value)
    assert message.startswith(
        f"base checkpoint broken.safetensors: the {component} weights hold NaN or infinite values"
    )
    assert "training on it gives a NaN loss and black images" in message
