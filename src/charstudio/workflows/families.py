"""Model families and IP-Adapter presets as data: SD1.5 vs SDXL is a table, not a code path.

Preset names are ComfyUI_IPAdapter_plus v2's own strings (``IPAdapterUnifiedLoader`` and
``IPAdapterUnifiedLoaderFaceID`` combos). File names are the ones its README names and its
``utils.py`` regexes (``get_ipadapter_file``, ``get_clipvision_file``, ``get_lora_file``)
resolve; charstudio's explicit loaders name them directly, so a server that lacks a file
is found by validation against its ``/object_info`` instead of failing mid-run with
"IPAdapter model not found."
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from charstudio.errors import InvalidParameter

__all__ = [
    "CLIP_VISION_BIGG",
    "CLIP_VISION_VIT_H",
    "FACEID_PRESETS",
    "IPADAPTER_PRESETS",
    "MIN_SIDE",
    "MODEL_FAMILIES",
    "IPAdapterPreset",
    "ModelFamily",
    "ModelFamilyName",
    "default_ipadapter_preset",
    "parse_aspect",
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
        max_side: The longest side charstudio accepts: about 3x the training size for
            SD1.5 (past it the subject repeats and limbs multiply), 2x for SDXL.
        presets: Named sizes offered in the studio and by ``--aspect``: the sizes the
            family's users know (SD1.5: 512 on the short side; SDXL: its 1024-class
            training buckets, about one megapixel each).
    """

    name: ModelFamilyName
    label: str
    default_size: tuple[int, int]
    max_side: int
    presets: dict[str, tuple[int, int]]

    def size_for(self, aspect: str) -> tuple[int, int]:
        """Width and height for an aspect ratio such as ``2:3``.

        A preset's size when the ratio has one; otherwise the family's pixel area
        (``default_size``) at that ratio, each side rounded to a multiple of 64.

        Raises:
            InvalidParameter: the ratio does not parse, or is past 4:1.
        """
        across, down = parse_aspect(aspect)
        divisor = math.gcd(across, down)
        key = f"{across // divisor}:{down // divisor}"
        if key in self.presets:
            return self.presets[key]
        area = self.default_size[0] * self.default_size[1]
        width = math.sqrt(area * across / down)
        height = width * down / across
        return max(64, round(width / 64) * 64), max(64, round(height / 64) * 64)


# The smallest side the latent (1/8 of the image) still makes sense at.
MIN_SIDE = 64
_ASPECT = re.compile(r"\s*(\d{1,4})\s*[:x/]\s*(\d{1,4})\s*")


def parse_aspect(text: str) -> tuple[int, int]:
    """``"2:3"`` -> ``(2, 3)``.

    Raises:
        InvalidParameter: not ``W:H`` with positive whole numbers, or past 4:1.
    """
    found = _ASPECT.fullmatch(text)
    across, down = (int(found[1]), int(found[2])) if found else (0, 0)
    if not (across and down):
        raise InvalidParameter(
            f"aspect {text!r} does not parse: give width:height as whole numbers, e.g. 2:3 or 16:9"
        )
    if max(across / down, down / across) > 4:
        raise InvalidParameter(
            f"aspect {text!r} is past 4:1: the model makes repeated subjects that far off "
            "square; use a ratio from 1:4 to 4:1"
        )
    return across, down


MODEL_FAMILIES: dict[ModelFamilyName, ModelFamily] = {
    "sd15": ModelFamily(
        name="sd15",
        label="Stable Diffusion 1.5",
        default_size=(512, 512),
        max_side=1536,
        presets={
            "1:1": (512, 512),
            "2:3": (512, 768),
            "3:2": (768, 512),
            "3:4": (576, 768),
            "4:3": (768, 576),
            "9:16": (512, 912),
            "16:9": (912, 512),
        },
    ),
    "sdxl": ModelFamily(
        name="sdxl",
        label="Stable Diffusion XL",
        default_size=(1024, 1024),
        max_side=2048,
        presets={
            "1:1": (1024, 1024),
            "2:3": (832, 1216),
            "3:2": (1216, 832),
            "3:4": (896, 1152),
            "4:3": (1152, 896),
            "9:16": (768, 1344),
            "16:9": (1344, 768),
        },
    ),
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
        face_input: Whether the preset was trained on face crops (PLUS FACE, FULL FACE,
            FaceID): it is given the character's square face crop, not the whole photo.
    """

    name: str
    faceid: bool
    ipadapter_files: dict[ModelFamilyName, str | None]
    clip_vision: str = CLIP_VISION_VIT_H
    lora_files: dict[ModelFamilyName, str | None] | None = None
    face_input: bool = False

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
    face_input: bool = False,
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
        face_input=face_input or faceid,
    )


_PRESETS = (
    _preset(
        "PLUS FACE (portraits)",
        "ip-adapter-plus-face_sd15.safetensors",
        "ip-adapter-plus-face_sdxl_vit-h.safetensors",
        face_input=True,
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
        face_input=True,
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
