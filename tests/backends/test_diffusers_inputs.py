"""Bad input for the in-process backend: every missing or mismatched file, refused with a
message naming the file and the folder searched, before any model is loaded."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from charstudio.backends.diffusers_backend import DiffusersBackend
from charstudio.backends.diffusers_inputs import lora_family, resolve_inputs
from charstudio.backends.diffusers_pipelines import PipelineCache, best_device
from charstudio.backends.diffusers_schedulers import check_sampler
from charstudio.backends.ipadapter_files import (
    base_cross_attention_dim,
    check_adapter_family,
    find_adapter_files,
    load_clip_vision,
    read_adapter,
)
from charstudio.errors import (
    GenerationFailed,
    InvalidParameter,
    ModelFileMissing,
    ModelMismatch,
    UnsupportedImage,
)
from tests.backends.diffusers_fixtures import World, sd15_world, sdxl_world, tiny_sd15, tiny_sdxl
from tests.backends.tiny_adapters import write_controlnet, write_ipadapter

__all__ = ["sd15_world", "sdxl_world", "tiny_sd15", "tiny_sdxl"]

FACE_SD15 = "ip-adapter-plus-face_sd15.safetensors"
VIT_H = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"


@pytest.fixture
def models(sd15_world: World, tmp_path: Path) -> Path:
    """A private copy of the SD1.5 models folder that a test may break."""
    copy = tmp_path / "models"
    shutil.copytree(sd15_world.models, copy)
    return copy


def resolve(world: World, models: Path | None, **changes: Any) -> Any:
    return resolve_inputs(world.request(**changes), base=world.base, models_dir=models)


def test_missing_base_model(sd15_world: World, tmp_path: Path) -> None:
    request = sd15_world.request()
    # Not configured: a wrong request (exit 2, as with --backend comfyui); configured but
    # gone: a missing file (exit 1, as a file missing on a ComfyUI server).
    with pytest.raises(InvalidParameter) as info:
        resolve_inputs(request, base=None, models_dir=None)
    assert info.value.exit_code == 2
    assert str(info.value) == (
        "--backend diffusers needs a base model: set CHARSTUDIO_DIFFUSERS_BASE_MODEL to a "
        ".safetensors/.ckpt file or diffusers folder, or CHARSTUDIO_COMFYUI_MODELS_DIR to a "
        f"ComfyUI models folder whose checkpoints/ holds {request.checkpoint}"
    )
    gone = tmp_path / "realisticVision_v51.safetensors"
    with pytest.raises(ModelFileMissing) as info:
        resolve_inputs(request, base=gone, models_dir=None)
    assert str(info.value) == (
        f"base model realisticVision_v51.safetensors not found in {tmp_path}: fix "
        "CHARSTUDIO_DIFFUSERS_BASE_MODEL"
    )
    with pytest.raises(ModelFileMissing) as info:
        resolve_inputs(request, base=None, models_dir=tmp_path)
    assert str(info.value) == (
        f"base model {request.checkpoint} not found in {tmp_path / 'checkpoints'}: fix "
        "CHARSTUDIO_COMFYUI_CHECKPOINT or CHARSTUDIO_COMFYUI_MODELS_DIR"
    )


def test_base_model_found_in_the_comfyui_checkpoints_folder(sd15_world: World) -> None:
    found = resolve_inputs(sd15_world.request(), base=None, models_dir=sd15_world.models)
    assert found.base == sd15_world.models / "checkpoints" / sd15_world.base.name


def test_missing_ipadapter_and_clip_vision_files(sd15_world: World, models: Path) -> None:
    with pytest.raises(ModelFileMissing) as info:
        resolve(sd15_world, None)
    assert str(info.value) == (
        "IP-Adapter needs a ComfyUI models folder: set CHARSTUDIO_COMFYUI_MODELS_DIR to the "
        "folder that holds ipadapter/ and clip_vision/ (e.g. ~/ComfyUI/models)"
    )
    (models / "clip_vision" / VIT_H).unlink()
    with pytest.raises(ModelFileMissing) as info:
        resolve(sd15_world, models)
    assert str(info.value) == (
        f"CLIP vision file {VIT_H} not found in {models / 'clip_vision'}: download it into "
        "that folder (ComfyUI_IPAdapter_plus's README names it), or point "
        "CHARSTUDIO_COMFYUI_MODELS_DIR at the models folder that has it"
    )
    (models / "ipadapter" / FACE_SD15).unlink()
    with pytest.raises(
        ModelFileMissing,
        match=re.escape(f"IP-Adapter file {FACE_SD15} not found in {models / 'ipadapter'}: "),
    ):
        resolve(sd15_world, models)
    # Methods without IP-Adapter do not need them.
    assert resolve(sd15_world, models, method="lora_only").adapter is None


def test_preset_without_a_file_for_the_family(sdxl_world: World) -> None:
    with pytest.raises(ModelMismatch) as info:
        find_adapter_files(
            sdxl_world.models, preset="LIGHT - SD1.5 only (low strength)", family="sdxl"
        )
    assert str(info.value) == (
        "IP-Adapter preset 'LIGHT - SD1.5 only (low strength)' has no SDXL file; use "
        "'PLUS FACE (portraits)'"
    )


def test_sdxl_ipadapter_with_an_sd15_base_is_refused_before_loading(
    sd15_world: World, sdxl_world: World, models: Path, tmp_path: Path
) -> None:
    # By name: the file says sdxl, the base is SD1.5.
    sdxl_file = sdxl_world.models / "ipadapter" / "ip-adapter-plus-face_sdxl_vit-h.safetensors"
    with pytest.raises(ModelMismatch) as info:
        check_adapter_family(sdxl_file, family="sd15", base=sd15_world.base)
    assert str(info.value) == (
        "IP-Adapter ip-adapter-plus-face_sdxl_vit-h.safetensors is an SDXL adapter but the base "
        f"model {sd15_world.base.name} is SD1.5: use the SD1.5 file of the preset, or set "
        "CHARSTUDIO_COMFYUI_FAMILY=sdxl with an SDXL base model"
    )
    # By shape: an SDXL adapter saved under the SD1.5 name, through the backend.
    shutil.copy(sdxl_file, models / "ipadapter" / FACE_SD15)
    backend = DiffusersBackend(sd15_world.options(models_dir=models), cache=PipelineCache())
    sdxl_width = sdxl_world.model.pipeline.unet.config.cross_attention_dim
    with pytest.raises(ModelMismatch) as info:
        backend.generate(sd15_world.request())
    assert str(info.value) == (
        f"IP-Adapter {FACE_SD15} conditions {sdxl_width}-wide text features but the base "
        f"model {sd15_world.base.name} (SD1.5) has 32: the adapter was made for another base "
        "family; use the matching file"
    )
    assert backend.cache._model is None  # nothing was loaded


def test_cross_attention_width_read_without_loading(sd15_world: World, sdxl_world: World) -> None:
    assert base_cross_attention_dim(sd15_world.base) == 32  # single file: attn2.to_k shape
    assert base_cross_attention_dim(sdxl_world.model.folder) == (
        sdxl_world.model.pipeline.unet.config.cross_attention_dim
    )
    assert base_cross_attention_dim(Path("model.ckpt")) is None


def test_lora_checks(sd15_world: World, models: Path, tmp_path: Path) -> None:
    assert lora_family(sd15_world.lora) == "sd15"
    assert lora_family(sd15_world.foreign_lora) == "sdxl"
    with pytest.raises(ModelMismatch) as info:
        resolve(sd15_world, models, lora_file=sd15_world.foreign_lora)
    name = sd15_world.foreign_lora.name
    assert str(info.value) == (
        f"LoRA {name} was trained on an SDXL base but the base model {sd15_world.base.name} is "
        "SD1.5: a LoRA only works on its own family; train one on "
        f"{sd15_world.base.name} or generate with an SDXL base"
    )
    missing = tmp_path / "yuki_v9.safetensors"
    with pytest.raises(ModelFileMissing) as info:
        resolve(sd15_world, models, lora_file=missing)
    assert str(info.value) == (
        f"LoRA yuki_v9.safetensors not found in {tmp_path}: train it again or promote another "
        "version (`charstudio lora list`)"
    )
    missing.write_bytes(b"not a safetensors file")
    with pytest.raises(
        ModelFileMissing,
        match=re.escape(f"LoRA yuki_v9.safetensors in {tmp_path} cannot be read ("),
    ):
        resolve(sd15_world, models, lora_file=missing)
    with pytest.raises(InvalidParameter) as info:
        resolve(sd15_world, models, lora_file=None)
    assert str(info.value) == (
        "method lora_ipadapter needs a LoRA file and a lora_strength: train one "
        "(`charstudio train`) or use ipadapter_only / img2img"
    )


def test_lora_family_from_keys_and_sd2_metadata(tmp_path: Path) -> None:
    one = {"w": torch.zeros(1)}
    save_file({"lora_te_text_model_x.alpha": torch.zeros(())}, str(tmp_path / "a.safetensors"))
    save_file({"lora_te1_text_model_x.alpha": torch.zeros(())}, str(tmp_path / "b.safetensors"))
    save_file(one, str(tmp_path / "c.safetensors"), {"ss_base_model_version": "sd_v2"})
    save_file(one, str(tmp_path / "d.safetensors"))
    assert [lora_family(tmp_path / f"{n}.safetensors") for n in "abcd"] == [
        "sd15",
        "sdxl",
        "sd2",
        None,
    ]


def test_reference_and_pose_images(sd15_world: World, models: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter) as info:
        resolve(sd15_world, models, reference_file=None)
    assert str(info.value) == (
        "method lora_ipadapter needs a reference image: import some with "
        "`charstudio character import yuki PATH`"
    )
    gone = tmp_path / "gone.png"
    with pytest.raises(ModelFileMissing) as info:
        resolve(sd15_world, models, method="img2img", reference_file=gone)
    assert str(info.value) == f"the reference image gone.png not found in {tmp_path}"
    gone.write_bytes(b"not an image")
    with pytest.raises(UnsupportedImage) as info:
        resolve(sd15_world, models, method="img2img", reference_file=gone)
    assert str(info.value) == f"the reference image {gone} is not a readable image"
    params = sd15_world.request("ipadapter_only").params.model_copy(
        update={"ipadapter_strength": None}
    )
    with pytest.raises(InvalidParameter) as info:
        resolve(sd15_world, models, method="ipadapter_only", params=params)
    assert str(info.value) == "method ipadapter_only needs an ipadapter_strength"


def test_controlnet_files(sd15_world: World, sdxl_world: World, models: Path) -> None:
    pose = {"variation": "pose", "pose_file": sd15_world.pose, "controlnet": "openpose.safetensors"}
    with pytest.raises(ModelFileMissing) as info:
        resolve(sd15_world, models, **pose)
    assert str(info.value) == (
        f"ControlNet openpose.safetensors not found in {models / 'controlnet'}: download the "
        "OpenPose ControlNet there, or set CHARSTUDIO_COMFYUI_OPENPOSE_CONTROLNET to the file "
        "you have"
    )
    with pytest.raises(ModelFileMissing) as info:
        resolve_inputs(
            sd15_world.request("lora_only", **pose), base=sd15_world.base, models_dir=None
        )
    assert str(info.value) == (
        "the pose ControlNet openpose.safetensors is read from a ComfyUI models folder: set "
        "CHARSTUDIO_COMFYUI_MODELS_DIR to the folder that holds controlnet/"
    )
    # An SDXL ControlNet with an SD1.5 base fails to load, and says which file.
    write_controlnet(sdxl_world.model.pipeline.unet, models / "controlnet" / "openpose.safetensors")
    backend = DiffusersBackend(sd15_world.options(models_dir=models), cache=PipelineCache())
    with pytest.raises(
        ModelFileMissing,
        match=re.escape(
            f"ControlNet openpose.safetensors in {models / 'controlnet'} could not be loaded for "
            "this Stable Diffusion 1.5 base model ("
        ),
    ) as info:
        backend.generate(sd15_world.request("lora_only", **pose))
    assert str(info.value).endswith("use an OpenPose ControlNet of the base model's family")


def test_samplers() -> None:
    check_sampler("euler", "normal")
    with pytest.raises(InvalidParameter) as info:
        check_sampler("lcm", "karras")
    assert str(info.value) == (
        "sampler 'lcm' has no diffusers equivalent in charstudio: use one of euler, "
        "euler_ancestral, dpmpp_2m, dpmpp_2m_sde, ddim, uni_pc, or generate with "
        "--backend comfyui"
    )
    with pytest.raises(InvalidParameter) as info:
        check_sampler("euler", "exponential")
    assert str(info.value) == (
        "scheduler 'exponential' is not supported by --backend diffusers: use normal or karras"
    )
    with pytest.raises(InvalidParameter) as info:
        check_sampler("ddim", "karras")
    assert str(info.value) == (
        "sampler 'ddim' has no karras schedule in diffusers: use scheduler 'normal'"
    )


def test_bad_adapter_and_encoder_files(models: Path, sd15_world: World) -> None:
    bad = models / "ipadapter" / FACE_SD15
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(
        ModelFileMissing,
        match=re.escape(f"IP-Adapter file {FACE_SD15} in {bad.parent} cannot be read ("),
    ):
        read_adapter(bad)
    save_file({"w": torch.zeros(1)}, str(bad))
    with pytest.raises(ModelFileMissing) as info:
        read_adapter(bad)
    assert str(info.value) == (
        f"{FACE_SD15} in {bad.parent} has no image_proj/ip_adapter weights: it is not an "
        "IP-Adapter file; put the preset's file there"
    )
    encoder = models / "clip_vision" / VIT_H
    with pytest.raises(ModelFileMissing) as info:
        load_clip_vision(bad)
    assert str(info.value) == (
        f"{FACE_SD15} in {bad.parent} is not a CLIP vision encoder with Hugging Face key names "
        "(no vision_model.embeddings.patch_embedding.weight); use the file "
        "ComfyUI_IPAdapter_plus's README names"
    )
    from safetensors.torch import load_file

    state = load_file(str(encoder))
    state["vision_model.extra.weight"] = torch.zeros(1)
    save_file(state, str(encoder))
    with pytest.raises(
        ModelFileMissing,
        match=re.escape(
            f"CLIP vision file {VIT_H} in {encoder.parent} does not match a CLIP vision encoder ("
        ),
    ):
        load_clip_vision(encoder)
    write_ipadapter(sd15_world.model.pipeline.unet, bad)
    assert set(read_adapter(bad)) == {"image_proj", "ip_adapter"}


@pytest.fixture
def failing_img2img(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from charstudio.backends.diffusers_pipelines import LoadedModel

    def broken(self: LoadedModel) -> Any:
        def run(**kwargs: Any) -> Any:
            raise RuntimeError("CUDA out of memory")

        return run

    monkeypatch.setattr(LoadedModel, "img2img", broken)
    yield


def test_failure_while_generating_is_wrapped(sd15_world: World, failing_img2img: None) -> None:
    backend = DiffusersBackend(sd15_world.options(), cache=PipelineCache())
    with pytest.raises(GenerationFailed) as info:
        backend.generate(sd15_world.request("img2img"))
    assert str(info.value) == (
        "diffusers failed on image 1 of 1 for yuki (RuntimeError: CUDA out of memory)"
    )


def test_check_without_generating(sd15_world: World, models: Path) -> None:
    backend = DiffusersBackend(sd15_world.options(models_dir=models), cache=PipelineCache())
    assert backend.check(sd15_world.request()) == "embedded"
    assert backend.cache._model is None
    (models / "ipadapter" / FACE_SD15).unlink()
    with pytest.raises(ModelFileMissing):
        backend.check(sd15_world.request())


def test_best_device() -> None:
    assert best_device("cuda:1") == "cuda:1"
    assert best_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")


def test_lora_that_does_not_fit_the_base(sd15_world: World, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(sd15_world.lora))
    widened = {
        k: torch.cat([v, v], dim=1) if k.endswith("lora_down.weight") else v
        for k, v in tensors.items()
    }
    bad = tmp_path / "yuki_v2.safetensors"
    save_file(widened, str(bad), {"ss_base_model_version": "sd_v1"})
    backend = DiffusersBackend(sd15_world.options(), cache=PipelineCache())
    with pytest.raises(ModelMismatch) as info:
        backend.generate(sd15_world.request("lora_only", lora_file=bad))
    assert str(info.value).startswith(
        f"LoRA yuki_v2.safetensors in {tmp_path} does not fit the base model "
        f"{sd15_world.base.name} ("
    )
    assert str(info.value).endswith("); train it on this base model")


def test_base_model_of_the_other_family(sd15_world: World, sdxl_world: World) -> None:
    from charstudio.training import BaseModelInvalid

    folder = sdxl_world.model.folder
    backend = DiffusersBackend(
        sd15_world.options(base_model=folder, config_dir=None), cache=PipelineCache()
    )
    with pytest.raises(BaseModelInvalid) as info:
        backend.generate(sd15_world.request("img2img"))
    assert str(info.value) == (
        f"base checkpoint {folder.name} is a Stable Diffusion XL (sdxl) model but model.family "
        "is sd15; set model.family: sdxl (or --set model.family=sdxl), or give a Stable "
        "Diffusion 1.5 checkpoint (for --backend diffusers, model.base_checkpoint is "
        "CHARSTUDIO_DIFFUSERS_BASE_MODEL and model.family is CHARSTUDIO_COMFYUI_FAMILY)"
    )


def test_faceid_presets_are_refused(sd15_world: World) -> None:
    with pytest.raises(InvalidParameter) as info:
        find_adapter_files(sd15_world.models, preset="FACEID PLUS V2", family="sd15")
    assert str(info.value) == (
        "IP-Adapter preset 'FACEID PLUS V2' conditions on InsightFace face embeddings, which "
        "--backend diffusers does not compute: use 'PLUS FACE (portraits)', or generate with "
        "--backend comfyui"
    )


def test_bin_adapter_files_are_read(sd15_world: World, tmp_path: Path) -> None:
    from tests.backends.tiny_adapters import ipadapter_plus_state

    flat = ipadapter_plus_state(sd15_world.model.pipeline.unet)
    nested: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in flat.items():
        group, _, rest = key.partition(".")
        nested[group][rest] = value
    torch.save(nested, tmp_path / "ip-adapter_sd15_light_v11.bin")
    state = read_adapter(tmp_path / "ip-adapter_sd15_light_v11.bin")
    assert set(state["ip_adapter"]) == set(nested["ip_adapter"])
    assert torch.equal(state["image_proj"]["latents"], nested["image_proj"]["latents"])
