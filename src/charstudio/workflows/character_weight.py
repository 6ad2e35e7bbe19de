"""Identity vs outfit: one "character weight" from 0 to 1, mapped onto IP-Adapter.

At 0 only the face is carried: the face preset (PLUS FACE, or the FaceID preset a server
with InsightFace uses) on the square face crop, applied from 30 % of the schedule and at a
fifth of its weight in the UNet's input blocks, where composition, hair and clothes are
laid down, so those come from the prompt. At 1 face, hair and outfit are carried: the
full-image preset (PLUS) on the whole reference photo, from the first step to the last,
and the prompt templates say "same outfit, same hair". In between the values move:

=========  ===================  ==========  ==============  ========  ======  ===========
weight     preset, image        weight      weight_type     start_at  end_at  prompt
=========  ===================  ==========  ==============  ========  ======  ===========
0          face preset, crop    strength    weak input      0.3       1.0     as written
0-0.25     face preset, crop    strength    weak input      0.3-0.15  1.0     as written
0.25-0.5   face preset, crop    strength    linear          0.15-0    1.0     as written
0.5 (def)  face preset, crop    strength    linear          0.0       1.0     as written
0.5-1      PLUS, whole photo    0.75-1 x s  linear          0.0       1.0     same outfit
1          PLUS, whole photo    strength    linear          0.0       1.0     same outfit
=========  ===================  ==========  ==============  ========  ======  ===========

The default, 0.5, is the graph charstudio built before the control existed (the
IPAdapterAdvanced settings of the graph that ran on ComfyUI 0.3.64), so nothing changes
for a character that does not set it. ``weight_type`` values are ComfyUI_IPAdapter_plus's
(``WEIGHT_TYPES``): ``weak input`` multiplies the weight by 0.2 in the input blocks and
keeps it elsewhere (IPAdapterPlus.py, docs/reference/comfyui.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from charstudio.library.profile import CHARACTER_WEIGHT_DEFAULT
from charstudio.workflows.families import IPADAPTER_PRESETS

__all__ = [
    "FACE_LATE_START",
    "FULL_IMAGE_PRESET",
    "FULL_MIN_FACTOR",
    "WEAK_INPUT_BELOW",
    "WEAK_INPUT_FACTOR",
    "IPAdapterApplication",
    "carries_outfit",
    "ipadapter_application",
    "preset_for",
]

# The preset that carries the whole picture: trained on whole images, not face crops
# (families.py: face_input False), with SD1.5 and SDXL files.
FULL_IMAGE_PRESET = "PLUS (high strength)"
# Where the face adapter starts at weight 0: the first 30 % of the schedule (composition,
# hair, clothes) follows the prompt alone.
FACE_LATE_START = 0.3
# Below this weight the face adapter uses ``weak input``.
WEAK_INPUT_BELOW = 0.25
# IPAdapterPlus.py: "weak input" -> weight * 0.2 in the input blocks.
WEAK_INPUT_FACTOR = 0.2
# The full-image adapter's weight just above the default, as a share of the strength.
FULL_MIN_FACTOR = 0.75


@dataclass(frozen=True, slots=True)
class IPAdapterApplication:
    """How the IP-Adapter is applied at one character weight.

    Attributes:
        carries: ``face`` (the face preset on the face crop) or ``full`` (the full-image
            preset on the whole reference).
        weight_factor: The IP-Adapter weight is the strength times this.
        weight_type: IPAdapterAdvanced ``weight_type``.
        start_at: IPAdapterAdvanced ``start_at`` (share of the schedule).
        end_at: IPAdapterAdvanced ``end_at``.
    """

    carries: Literal["face", "full"]
    weight_factor: float
    weight_type: Literal["linear", "weak input"]
    start_at: float
    end_at: float

    def weight(self, strength: float) -> float:
        """The IP-Adapter weight for ``strength`` (the strength itself at factor 1)."""
        return strength if self.weight_factor == 1.0 else round(strength * self.weight_factor, 4)


def _weight(character_weight: float | None) -> float:
    return CHARACTER_WEIGHT_DEFAULT if character_weight is None else character_weight


def carries_outfit(character_weight: float | None) -> bool:
    """Whether the weight carries hair and outfit (above the default): the full-image
    preset on the whole reference, and prompts that say "same outfit"."""
    return _weight(character_weight) > CHARACTER_WEIGHT_DEFAULT


def ipadapter_application(character_weight: float | None) -> IPAdapterApplication:
    """The IP-Adapter settings for ``character_weight`` (``None``: the default).

    Raises:
        ValueError: the weight is outside 0-1 (requests are checked before this).
    """
    weight = _weight(character_weight)
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"character weight {weight} is outside 0-1")
    if weight > CHARACTER_WEIGHT_DEFAULT:
        share = (weight - CHARACTER_WEIGHT_DEFAULT) / (1.0 - CHARACTER_WEIGHT_DEFAULT)
        factor = round(FULL_MIN_FACTOR + (1.0 - FULL_MIN_FACTOR) * share, 4)
        return IPAdapterApplication("full", factor, "linear", 0.0, 1.0)
    late = 1.0 - weight / CHARACTER_WEIGHT_DEFAULT
    weight_type: Literal["linear", "weak input"] = (
        "weak input" if weight < WEAK_INPUT_BELOW else "linear"
    )
    return IPAdapterApplication("face", 1.0, weight_type, round(FACE_LATE_START * late, 3), 1.0)


def preset_for(character_weight: float | None, preset: str) -> str:
    """The IP-Adapter preset a generation uses: the configured one, or the full-image
    preset when the weight carries the outfit and the configured one is a face preset."""
    known = IPADAPTER_PRESETS.get(preset)  # an unknown preset is refused with the graph
    if carries_outfit(character_weight) and known is not None and known.face_input:
        return FULL_IMAGE_PRESET
    return preset
