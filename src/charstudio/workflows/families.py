"""Model families and IP-Adapter presets as data: SD1.5 vs SDXL is a table, not a code path.

Preset names are ComfyUI_IPAdapter_plus v2's own strings (``IPAdapterUnifiedLoader`` and
``IPAdapterUnifiedLoaderFaceID`` combos). File names are the ones its README names and its
``utils.py`` regexes (``get_ipadapter_file``, ``get_clipvision_file``, ``get_lora_file``)
resolve; charstudio's explicit loaders name them directly, so a server that lacks a file
is found by validation against its ``/object_info`` instead of failing mid-run with
"IPAdapter model not found."
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CLIP_VISION_BIGG",
    "CLIP_VISION_VIT_H",
    "FACEID_PRESETS",
    "IPADAPTER_PRESETS",
    "MODEL_FAMILIES",
    "IPAdapterPreset",
    "ModelFamily",
    "ModelFamilyName",
    "default_ipadapter_preset",
]

ModelFamilyName = Literal["sd15", "sdxl"]

CLIP_VISION_VIT_H = "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
CLIP_VISION_BIGG = "CLIP-ViT-bigG-14-laion2B-39B-b160k.safetensors"


@dataclass(frozen=True, slots=True)
class ModelFamily:
    """What differs between base-model families.

    Attributes:
        name: ``sd15`` or ``sdxl``.
        label: Human name.
        default_size: Width and height the family was trained at.
    """

    name: ModelFamilyName
    label: str
    default_size: tuple[int, int]


MODEL_FAMILIES: dict[ModelFamilyName, ModelFamily] = {
    "sd15": ModelFamily(name="sd15", label="Stable Diffusion 1.5", default_size=(512, 512)),
    "sdxl": ModelFamily(name="sdxl", label="Stable Diffusion XL", default_size=(1024, 1024)),
}


@dataclass(frozen=True, slots=True)
class IPAdapterPreset:
    """One IP-Adapter preset and the files it needs per family.

    Attributes:
        name: The preset string the unified loaders take.
        faceid: Whether it is a FaceID preset (needs InsightFace on the server, is applied
            with ``IPAdapterFaceID`` after ``IPAdapterUnifiedLoaderFaceID``).
        ipadapter_files: ``models/ipadapter`` file per family; ``None``: not available
            for that family.
        clip_vision: ``models/clip_vision`` file the preset's image encoder needs.
        lora_files: ``models/loras`` file FaceID presets load with the adapter.
    """

    name: str
    faceid: bool
    ipadapter_files: dict[ModelFamilyName, str | None]
    clip_vision: str = CLIP_VISION_VIT_H
    lora_files: dict[ModelFamilyName, str | None] | None = None

    def ipadapter_file(self, family: ModelFamilyName) -> str | None:
        """The adapter file for ``family``, or ``None`` if the preset does not support it."""
        return self.ipadapter_files[family]


def _preset(
    name: str,
    sd15: str | None,
    sdxl: str | None,
    *,
    clip_vision: str = CLIP_VISION_VIT_H,
    loras: tuple[str | None, str | None] | None = None,
    faceid: bool = False,
) -> IPAdapterPreset:
    lora_files: dict[ModelFamilyName, str | None] | None = None
    if loras is not None:
        lora_files = {"sd15": loras[0], "sdxl": loras[1]}
    return IPAdapterPreset(
        name=name,
        faceid=faceid,
        ipadapter_files={"sd15": sd15, "sdxl": sdxl},
        clip_vision=clip_vision,
        lora_files=lora_files,
    )


_PRESETS = (
    _preset(
        "PLUS FACE (portraits)",
        "ip-adapter-plus-face_sd15.safetensors",
        "ip-adapter-plus-face_sdxl_vit-h.safetensors",
    ),
    _preset(
        "PLUS (high strength)",
        "ip-adapter-plus_sd15.safetensors",
        "ip-adapter-plus_sdxl_vit-h.safetensors",
    ),
    _preset(
        "STANDARD (medium strength)",
        "ip-adapter_sd15.safetensors",
        "ip-adapter_sdxl_vit-h.safetensors",
    ),
    _preset(
        "FULL FACE - SD1.5 only (portraits stronger)",
        "ip-adapter-full-face_sd15.safetensors",
        None,
    ),
    _preset("LIGHT - SD1.5 only (low strength)", "ip-adapter_sd15_light_v11.bin", None),
    _preset(
        "VIT-G (medium strength)",
        "ip-adapter_sd15_vit-G.safetensors",
        "ip-adapter_sdxl.safetensors",
        clip_vision=CLIP_VISION_BIGG,
    ),
    _preset(
        "FACEID",
        "ip-adapter-faceid_sd15.bin",
        "ip-adapter-faceid_sdxl.bin",
        loras=(
            "ip-adapter-faceid_sd15_lora.safetensors",
            "ip-adapter-faceid_sdxl_lora.safetensors",
        ),
        faceid=True,
    ),
    _preset(
        "FACEID PLUS V2",
        "ip-adapter-faceid-plusv2_sd15.bin",
        "ip-adapter-faceid-plusv2_sdxl.bin",
        loras=(
            "ip-adapter-faceid-plusv2_sd15_lora.safetensors",
            "ip-adapter-faceid-plusv2_sdxl_lora.safetensors",
        ),
        faceid=True,
    ),
    _preset(
        "FACEID PORTRAIT (style transfer)",
        "ip-adapter-faceid-portrait-v11_sd15.bin",
        "ip-adapter-faceid-portrait_sdxl.bin",
        loras=(None, None),
        faceid=True,
    ),
)

IPADAPTER_PRESETS: dict[str, IPAdapterPreset] = {p.name: p for p in _PRESETS}
FACEID_PRESETS: tuple[str, ...] = tuple(p.name for p in _PRESETS if p.faceid)


def default_ipadapter_preset(*, has_insightface: bool) -> str:
    """PLUS FACE by default; FACEID PLUS V2 when the server has InsightFace.

    Args:
        has_insightface: Whether the target server can run InsightFace (the
            ``insightface`` package and ``models/insightface/models/buffalo_l``).
    """
    return "FACEID PLUS V2" if has_insightface else "PLUS FACE (portraits)"
