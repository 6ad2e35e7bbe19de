"""IP-Adapter and CLIP vision files for the in-process backend, read from ComfyUI's models folder.

Users already have these files where ComfyUI_IPAdapter_plus wants them:
``models/ipadapter/ip-adapter-plus-face_sd15.safetensors`` (h94's layout: ``image_proj.*``
and ``ip_adapter.N.to_k_ip``/``to_v_ip``) and ``models/clip_vision/CLIP-ViT-H-14-laion2B-
s32B-b79K.safetensors`` (Hugging Face ``CLIPVisionModelWithProjection`` keys). The file
names come from the preset table in :mod:`charstudio.workflows.families`, so both backends
ask for the same files.

The recipe (:func:`find_adapter_files`, then :func:`check_adapter_family`):

1. find both files, or say which file is missing from which folder;
2. refuse an adapter of the other family by its name (``sdxl`` in an SD1.5 run) and by the
   shape of its ``to_k_ip`` weights against the UNet's ``cross_attention_dim`` (768 for
   SD1.5, 2048 for SDXL), before diffusers reads a weight;
3. load the adapter's tensors once (:func:`read_adapter`) and the encoder strictly
   (:func:`load_clip_vision`): 0 missing, 0 unexpected keys, or an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from charstudio.errors import InvalidParameter, ModelFileMissing, ModelMismatch
from charstudio.workflows import IPADAPTER_PRESETS, ModelFamilyName

__all__ = [
    "AdapterFiles",
    "ClipVision",
    "base_cross_attention_dim",
    "check_adapter_family",
    "find_adapter_files",
    "load_clip_vision",
    "read_adapter",
]

_FAMILY_TITLES: dict[ModelFamilyName, str] = {"sd15": "SD1.5", "sdxl": "SDXL"}
# Attention heads of the CLIP vision towers IP-Adapter uses; shapes do not tell heads apart.
# (hidden size, layers) -> heads: OpenCLIP ViT-H/14, ViT-bigG/14, OpenAI ViT-L/14.
_KNOWN_HEADS = {(1280, 32): 16, (1664, 48): 16, (1024, 24): 16}


@dataclass(frozen=True, slots=True)
class AdapterFiles:
    """The two files one IP-Adapter preset needs.

    Attributes:
        ipadapter: The adapter (``models/ipadapter/...``).
        clip_vision: Its image encoder (``models/clip_vision/...``).
    """

    ipadapter: Path
    clip_vision: Path


@dataclass(frozen=True)
class ClipVision:
    """A loaded image encoder and the preprocessing its input size needs."""

    encoder: Any  # CLIPVisionModelWithProjection
    processor: Any  # CLIPImageProcessorPil
    path: Path


def _family_in_name(name: str) -> ModelFamilyName | None:
    lowered = name.lower()
    if "sdxl" in lowered:
        return "sdxl"
    if "sd15" in lowered or "sd1.5" in lowered:
        return "sd15"
    return None


def find_adapter_files(
    models_dir: Path | None, *, preset: str, family: ModelFamilyName
) -> AdapterFiles:
    """The preset's adapter and encoder for ``family`` in a ComfyUI ``models`` folder.

    Raises:
        ModelFileMissing: no models folder is set, or a file is not in its folder (the
            message names both).
        ModelMismatch: the preset has no file for ``family``.
        InvalidParameter: a FaceID preset (needs InsightFace embeddings).
    """
    if models_dir is None:
        raise ModelFileMissing(
            "IP-Adapter needs a ComfyUI models folder: set CHARSTUDIO_COMFYUI_MODELS_DIR to "
            "the folder that holds ipadapter/ and clip_vision/ (e.g. ~/ComfyUI/models)"
        )
    spec = IPADAPTER_PRESETS[preset]
    if spec.faceid:
        raise InvalidParameter(
            f"IP-Adapter preset {preset!r} conditions on InsightFace face embeddings, which "
            "--backend diffusers does not compute: use 'PLUS FACE (portraits)', or generate "
            "with --backend comfyui"
        )
    name = spec.ipadapter_file(family)
    if name is None:
        raise ModelMismatch(
            f"IP-Adapter preset {preset!r} has no {_FAMILY_TITLES[family]} file; use "
            "'PLUS FACE (portraits)'"
        )
    files = AdapterFiles(
        ipadapter=models_dir / "ipadapter" / name,
        clip_vision=models_dir / "clip_vision" / spec.clip_vision,
    )
    for path, what in ((files.ipadapter, "IP-Adapter"), (files.clip_vision, "CLIP vision")):
        if not path.is_file():
            raise ModelFileMissing(
                f"{what} file {path.name} not found in {path.parent}: download it into that "
                f"folder (ComfyUI_IPAdapter_plus's README names it), or point "
                "CHARSTUDIO_COMFYUI_MODELS_DIR at the models folder that has it"
            )
    return files


def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        names: list[str] = handle.keys()
        return {key: tuple(handle.get_slice(key).get_shape()) for key in names}


def base_cross_attention_dim(base: Path) -> int | None:
    """The width of the text features a base model's UNet attends to, read without loading.

    From ``unet/config.json`` (diffusers folder) or the first ``attn2.to_k`` weight's shape
    (single ``.safetensors``); ``None`` when neither tells (``.ckpt``, odd layouts).
    """
    if base.is_dir():
        config = base / "unet" / "config.json"
        if not config.is_file():
            return None
        value = json.loads(config.read_text(encoding="utf-8")).get("cross_attention_dim")
        return int(value) if isinstance(value, int) else None
    if base.suffix != ".safetensors":
        return None
    for key, shape in _tensor_shapes(base).items():
        if key.endswith("attn2.to_k.weight") and len(shape) == 2:
            return shape[1]
    return None


def check_adapter_family(
    path: Path, *, family: ModelFamilyName, base: Path, cross_attention_dim: int | None = None
) -> None:
    """Refuse an adapter made for the other family before any of its weights are loaded.

    Args:
        path: The adapter file.
        family: The base model's family.
        base: The base model (named in the message).
        cross_attention_dim: The loaded UNet's, when known; checked against ``to_k_ip``.

    Raises:
        ModelMismatch: the adapter's name or shapes say it is for the other family.
    """
    named = _family_in_name(path.name)
    if named is not None and named != family:
        raise ModelMismatch(
            f"IP-Adapter {path.name} is an {_FAMILY_TITLES[named]} adapter but the base model "
            f"{base.name} is {_FAMILY_TITLES[family]}: use the {_FAMILY_TITLES[family]} file "
            f"of the preset, or set CHARSTUDIO_COMFYUI_FAMILY={named} with an "
            f"{_FAMILY_TITLES[named]} base model"
        )
    if cross_attention_dim is None or path.suffix != ".safetensors":
        return
    shapes = _tensor_shapes(path)
    dims = {shape[1] for key, shape in shapes.items() if key.endswith("to_k_ip.weight")}
    if dims and dims != {cross_attention_dim}:
        raise ModelMismatch(
            f"IP-Adapter {path.name} conditions {sorted(dims)[0]}-wide text features but the "
            f"base model {base.name} ({_FAMILY_TITLES[family]}) has {cross_attention_dim}: "
            "the adapter was made for another base family; use the matching file"
        )


def read_adapter(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The adapter's tensors split as diffusers' ``load_ip_adapter`` takes a state dict.

    Raises:
        ModelFileMissing: the file cannot be read (truncated or not an IP-Adapter).
    """
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            flat = load_file(str(path))
            state: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
            for key, value in flat.items():
                group, _, rest = key.partition(".")
                if group in state:
                    state[group][rest] = value
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileMissing(
            f"IP-Adapter file {path.name} in {path.parent} cannot be read "
            f"({exc.__class__.__name__}); it is truncated or corrupt: download it again"
        ) from exc
    if not isinstance(state, dict) or not state.get("image_proj") or not state.get("ip_adapter"):
        raise ModelFileMissing(
            f"{path.name} in {path.parent} has no image_proj/ip_adapter weights: it is not an "
            "IP-Adapter file; put the preset's file there"
        )
    return state


def _vision_config(shapes: dict[str, tuple[int, ...]], path: Path) -> dict[str, Any]:
    try:
        patch = shapes["vision_model.embeddings.patch_embedding.weight"]
        positions = shapes["vision_model.embeddings.position_embedding.weight"][0]
        projection = shapes["visual_projection.weight"][0]
        intermediate = shapes["vision_model.encoder.layers.0.mlp.fc1.weight"][0]
    except KeyError as exc:
        raise ModelFileMissing(
            f"{path.name} in {path.parent} is not a CLIP vision encoder with Hugging Face key "
            f"names (no {exc.args[0]}); use the file ComfyUI_IPAdapter_plus's README names"
        ) from exc
    hidden = patch[0]
    layers = 1 + max(
        int(key.split(".")[3]) for key in shapes if key.startswith("vision_model.encoder.layers.")
    )
    heads = _KNOWN_HEADS.get((hidden, layers), max(1, hidden // 64))
    return {
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "patch_size": patch[2],
        "image_size": math.isqrt(positions - 1) * patch[2],
        "projection_dim": projection,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
    }


def load_clip_vision(path: Path) -> ClipVision:
    """Load a CLIP vision encoder file strictly, with the matching image preprocessing.

    The architecture is read from the tensors' shapes (hidden size, layers, patch and
    image size); heads come from the known towers (ViT-H/14, bigG/14, ViT-L/14), else
    hidden/64.

    Raises:
        ModelFileMissing: not a readable CLIP vision file, or its keys do not match.
    """
    from safetensors.torch import load_file
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    config = _vision_config(_tensor_shapes(path), path)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**config))
    state = {k: v for k, v in load_file(str(path)).items() if not k.endswith("position_ids")}
    try:
        encoder.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelFileMissing(
            f"CLIP vision file {path.name} in {path.parent} does not match a CLIP vision "
            f"encoder ({str(exc).splitlines()[0]}); use the file the preset names"
        ) from exc
    size = int(config["image_size"])
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}
    )
    encoder.train(False)
    return ClipVision(encoder=encoder, processor=processor, path=path)
