"""From a :class:`GenerateRequest` and the character's profile to the values a backend
runs with: seeds, parameters, size, reference image, pose. Pure checks and choices; the
generation service calls them in order (:meth:`GenerationService.plan`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError

from charstudio.backends.service_types import GenerateRequest
from charstudio.errors import InvalidParameter, NotFound, UnsupportedImage
from charstudio.library import CharacterConsistencyProfile
from charstudio.library.profile import GenerationControls, GenerationParams, uses
from charstudio.workflows import (
    IPADAPTER_PRESETS,
    MODEL_FAMILIES,
    Catalog,
    ModelFamilyName,
    random_seed,
)

__all__ = [
    "DRAWN_CHARACTER_PRESET",
    "check_image",
    "choose_reference",
    "drawn_character_preset",
    "resolve_params",
    "resolve_size",
    "seeds_for",
]

DRAWN_CHARACTER_PRESET = "PLUS (high strength)"
"""The full-image preset a drawn character's reference goes to (see drawn_character_preset)."""


def seeds_for(request: GenerateRequest) -> tuple[tuple[int, ...], bool]:
    """One seed per image (the first and the ones after it, or random ones), and whether
    they were drawn."""
    if request.seed is None:
        return tuple(random_seed() for _ in range(request.count)), True
    return tuple(request.seed + i for i in range(request.count)), False


def resolve_params(
    profile: CharacterConsistencyProfile, request: GenerateRequest, catalog: Catalog
) -> GenerationParams:
    """The profile's parameters with the request's own values applied.

    Raises:
        InvalidParameter: a value the character's method does not use (a LoRA strength
            without a LoRA, denoise outside img2img), or a sampler/scheduler the node
            catalog does not know (the message lists the valid names).
    """
    changes: dict[str, object] = {}
    for key in GenerationControls.model_fields:
        value = getattr(request, key)
        if value is None:
            continue
        if key == "negative_prompt":
            base, own = profile.params.negative_prompt, value.strip()
            replace = request.negative_mode == "replace" or not base
            changes[key] = own if replace else f"{base}, {own}" if own else base
        elif uses(profile.method, key):
            changes[key] = value
        else:
            raise InvalidParameter(
                f"{key.replace('_', ' ')} does not apply: {profile.name} is generated with "
                f"{profile.method} ({profile.method_reason}), which does not use it; "
                "leave it out"
            )
    params = profile.params.model_copy(update=changes)
    for key, field in (("sampler", "sampler_name"), ("scheduler", "scheduler")):
        names = catalog.combo("KSampler", field)
        if names and getattr(params, key) not in names:
            raise InvalidParameter(
                f"unknown {key} {getattr(params, key)!r}: use one of {', '.join(names)}"
            )
    return params


def resolve_size(
    request: GenerateRequest, family: ModelFamilyName
) -> tuple[int | None, int | None]:
    """Width and height: as given, from the aspect ratio, or ``None`` (the family's default).

    The family's largest side is checked with the graph (``WorkflowRequest``), which the
    service builds before anything is queued.
    """
    if request.aspect is not None:
        return MODEL_FAMILIES[family].size_for(request.aspect)
    return request.width, request.height


def choose_reference(
    profile: CharacterConsistencyProfile, *, preset: str, face_crop: Path
) -> tuple[Path | None, Literal["face", "full"] | None]:
    """The image IP-Adapter (or img2img) starts from, and which it is.

    Face presets (PLUS FACE, FULL FACE, FaceID) were trained on face crops: they get the
    square crop ``faces extract`` wrote. Full-image presets and img2img get the photo.

    Raises:
        InvalidParameter: the method needs a reference and the character has none.
        NotFound / UnsupportedImage: the file is gone or unreadable.
    """
    if profile.method == "lora_only":
        return None, None
    if profile.reference_image is None:
        raise InvalidParameter(
            f"{profile.name} has no reference image for {profile.method}: import some "
            f"with `charstudio character import {profile.name} PATH`"
        )
    uses_ipadapter = profile.method in ("lora_ipadapter", "ipadapter_only")
    known = IPADAPTER_PRESETS.get(preset)  # an unknown preset is refused with the graph
    if uses_ipadapter and known is not None and known.face_input and face_crop.is_file():
        check_image(face_crop, "reference face crop")
        return face_crop, "face"
    reference = Path(profile.reference_image)
    check_image(reference, "reference image")
    return reference, "full"


def drawn_character_preset(
    profile: CharacterConsistencyProfile, preset: str
) -> tuple[str, str | None]:
    """The preset for the character, and a warning when it differs from ``preset``.

    A drawn character's identity (made by the ``ccip`` backend) has no face crop: its
    IP-Adapter reference is the full character image, so a face preset (PLUS FACE, FULL
    FACE, FaceID: trained on photographed face crops) becomes :data:`DRAWN_CHARACTER_PRESET`.
    """
    known = IPADAPTER_PRESETS.get(preset)
    drawn = (profile.identity_backend or "").startswith("ccip/")
    if not drawn or known is None or not known.face_input:
        return preset, None
    return DRAWN_CHARACTER_PRESET, (
        f"{profile.name} is a drawn character (its identity was made by ccip): IP-Adapter "
        f"gets the full character image with the {DRAWN_CHARACTER_PRESET!r} preset instead "
        f"of {preset!r}, which was trained on photographed face crops"
    )


def check_image(path: Path, what: str) -> None:
    """The file exists and its header says it is an image.

    The stored reference was decoded end to end when it was imported, and the face crop
    was written by the face engine: decoding either again on every submitted generation
    (a 4,000-pixel photo takes tens of milliseconds) is the worker's to do, not the API's.

    Raises:
        NotFound: no such file; UnsupportedImage: not an image.
    """
    if not path.is_file():
        raise NotFound(f"the {what} {path} does not exist: give an existing image file")
    try:
        with Image.open(path):
            pass
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise UnsupportedImage(
            f"the {what} {path.name} is not a readable image ({exc}): use a PNG or JPEG file"
        ) from exc
