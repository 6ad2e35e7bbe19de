"""Everything a diffusers generation reads from disk, found and checked before any loading.

:func:`resolve_inputs` turns a :class:`GenerationRequest` into local paths (the base model,
the LoRA, the IP-Adapter and CLIP vision files, the ControlNet, the images) and refuses,
with a message naming the file and the folder searched, anything missing or of the wrong
family: an SDXL IP-Adapter or LoRA with an SD1.5 base is caught from names, metadata and
key prefixes, before a weight is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from charstudio.backends.diffusers_checks import check_request
from charstudio.backends.ipadapter_files import (
    AdapterFiles,
    base_cross_attention_dim,
    check_adapter_family,
    find_adapter_files,
)
from charstudio.backends.types import GenerationRequest
from charstudio.errors import InvalidParameter, ModelFileMissing, ModelMismatch, UnsupportedImage
from charstudio.workflows import ModelFamilyName

__all__ = ["DiffusersInputs", "lora_family", "resolve_inputs"]

_TITLES: dict[str, str] = {"sd15": "SD1.5", "sdxl": "SDXL", "sd2": "SD2"}


@dataclass(frozen=True, slots=True)
class DiffusersInputs:
    """The local files one request needs, all checked to exist.

    Attributes:
        base: Base model (single file or diffusers folder).
        lora: The character's LoRA (LoRA methods).
        adapter: IP-Adapter and CLIP vision files (IP-Adapter methods).
        controlnet: OpenPose ControlNet file (pose variation with a pose image).
        reference: The reference image (IP-Adapter methods, img2img).
        pose: The pose image.
    """

    base: Path
    lora: Path | None
    adapter: AdapterFiles | None
    controlnet: Path | None
    reference: Image.Image | None
    pose: Image.Image | None


def lora_family(path: Path) -> str | None:
    """The base family a LoRA file was trained on, from its metadata or key names.

    ``ss_base_model_version`` (kohya: ``sd_v1``, ``sd_v2``, ``sdxl_base_v1-0``) first;
    else kohya's text-encoder prefixes (``lora_te_`` SD1.5, ``lora_te1_``/``lora_te2_``
    SDXL) or diffusers' (``text_encoder_2.`` SDXL); ``None`` when nothing tells.

    Raises:
        ModelFileMissing: the file is not a readable ``.safetensors``.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            keys = list(handle.keys())
    except Exception as exc:
        raise ModelFileMissing(
            f"LoRA {path.name} in {path.parent} cannot be read ({exc.__class__.__name__}); "
            "it is truncated or not a .safetensors LoRA: train or copy it again"
        ) from exc
    version = metadata.get("ss_base_model_version", "")
    if version.startswith("sdxl"):
        return "sdxl"
    if version.startswith(("sd_v1", "sd_v2")):
        return "sd15" if version.startswith("sd_v1") else "sd2"
    if any(k.startswith(("lora_te1_", "lora_te2_", "text_encoder_2.")) for k in keys):
        return "sdxl"
    if any(k.startswith("lora_te_") for k in keys):
        return "sd15"
    return None


def _base_path(request: GenerationRequest, base: Path | None, models_dir: Path | None) -> Path:
    if base is not None:
        path, setting = base, "CHARSTUDIO_DIFFUSERS_BASE_MODEL"
    elif models_dir is not None:
        path = models_dir / "checkpoints" / request.checkpoint
        setting = "CHARSTUDIO_COMFYUI_CHECKPOINT or CHARSTUDIO_COMFYUI_MODELS_DIR"
    else:
        # Not configured at all: a wrong request, exit 2, as with --backend comfyui.
        raise InvalidParameter(
            "--backend diffusers needs a base model: set CHARSTUDIO_DIFFUSERS_BASE_MODEL to a "
            ".safetensors/.ckpt file or diffusers folder, or CHARSTUDIO_COMFYUI_MODELS_DIR to "
            f"a ComfyUI models folder whose checkpoints/ holds {request.checkpoint}"
        )
    if not path.exists():
        raise ModelFileMissing(f"base model {path.name} not found in {path.parent}: fix {setting}")
    return path


def _lora(request: GenerationRequest, base: Path) -> Path | None:
    if request.method not in ("lora_ipadapter", "lora_only"):
        return None
    path = request.lora_file
    if path is None or request.params.lora_strength is None:
        raise InvalidParameter(
            f"method {request.method} needs a LoRA file and a lora_strength: train one "
            "(`charstudio train`) or use ipadapter_only / img2img"
        )
    if not path.is_file():
        raise ModelFileMissing(
            f"LoRA {path.name} not found in {path.parent}: train it again or promote "
            "another version (`charstudio lora list`)"
        )
    trained_on = lora_family(path)
    if trained_on is not None and trained_on != request.family:
        raise ModelMismatch(
            f"LoRA {path.name} was trained on an {_TITLES[trained_on]} base but the base model "
            f"{base.name} is {_TITLES[request.family]}: a LoRA only works on its own family; "
            f"train one on {base.name} or generate with an {_TITLES[trained_on]} base"
        )
    return path


def _image(path: Path | None, what: str) -> Image.Image | None:
    if path is None:
        return None
    if not path.is_file():
        raise ModelFileMissing(f"the {what} {path.name} not found in {path.parent}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise UnsupportedImage(f"the {what} {path} is not a readable image") from exc


def _controlnet(request: GenerationRequest, models_dir: Path | None) -> Path | None:
    if request.pose_file is None or request.controlnet is None:
        return None
    if models_dir is None:
        raise ModelFileMissing(
            f"the pose ControlNet {request.controlnet} is read from a ComfyUI models folder: "
            "set CHARSTUDIO_COMFYUI_MODELS_DIR to the folder that holds controlnet/"
        )
    path = models_dir / "controlnet" / request.controlnet
    if not path.is_file():
        raise ModelFileMissing(
            f"ControlNet {path.name} not found in {path.parent}: download the OpenPose "
            "ControlNet there, or set CHARSTUDIO_COMFYUI_OPENPOSE_CONTROLNET to the file you have"
        )
    return path


def resolve_inputs(
    request: GenerationRequest, *, base: Path | None, models_dir: Path | None
) -> DiffusersInputs:
    """Find and check every file ``request`` needs, in the order a user would fix them.

    Args:
        request: The validated request.
        base: ``CHARSTUDIO_DIFFUSERS_BASE_MODEL``; ``None`` looks the request's checkpoint
            up in ``models_dir/checkpoints``.
        models_dir: ComfyUI's ``models`` folder (IP-Adapter, CLIP vision, ControlNet).

    Raises:
        ModelFileMissing: a file is missing (named, with the folder searched).
        ModelMismatch: an IP-Adapter or LoRA of the other family.
        InvalidParameter: a sampler without a diffusers equivalent, a method without inputs,
            a pose photo (no pose detector in-process).
        UnsupportedImage: the reference or pose image is not an image.
    """
    check_request(request)
    base_path = _base_path(request, base, models_dir)
    adapter = None
    if request.method in ("lora_ipadapter", "ipadapter_only"):
        family: ModelFamilyName = request.family
        adapter = find_adapter_files(models_dir, preset=request.ipadapter_preset, family=family)
        check_adapter_family(
            adapter.ipadapter,
            family=family,
            base=base_path,
            cross_attention_dim=base_cross_attention_dim(base_path),
        )
        if request.params.ipadapter_strength is None:
            raise InvalidParameter(f"method {request.method} needs an ipadapter_strength")
    if request.method != "lora_only" and request.reference_file is None:
        raise InvalidParameter(
            f"method {request.method} needs a reference image: import some with "
            f"`charstudio character import {request.character} PATH`"
        )
    return DiffusersInputs(
        base=base_path,
        lora=_lora(request, base_path),
        adapter=adapter,
        controlnet=_controlnet(request, models_dir),
        reference=_image(
            request.reference_file if request.method != "lora_only" else None, "reference image"
        ),
        pose=_image(request.pose_file, "pose image"),
    )
