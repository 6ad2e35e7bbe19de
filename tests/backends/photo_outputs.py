"""Real photographs as generated images: what the test generators return so that the real
face models decide QC (docs/ARCHITECTURE.md, "Closing the loop"; issue 13 part 5).

A :class:`PhotoScenario` maps a seed and the graph's identity strength to one of five kinds
of image, each made from the photographs in ``tests/data/faces`` (the character is
``obama``, as in ``tests/qc/conftest.py``):

========== ================================================= ==========================
kind       image                                             QC outcome (real dlib)
========== ================================================= ==========================
own        one of the character's photos (``obama_*.jpg``)   passes every check
stranger   ``biden_2010/2013.jpg``, ``collins.jpg``,          identity fails
           ``hopper.jpg``                                    ("not the character")
pair       the character's photo and a stranger's, side by   identity fails
           side (each half cover-cropped)                    ("several people")
blank      a flat grey frame (200, 200, 200)                 ``blank`` fails
black      an all-black frame (what a NaN model decodes to)  ``black`` fails ("NaN")
========== ================================================= ==========================

**Default rule**, by the seed's last decimal digit (``seed % 10``):

- ``0`` stranger, ``1`` blank, ``2`` black, ``3`` pair;
- ``4``..``9`` the character, **if the identity strength holds it**: digit ``d`` needs a
  strength of at least ``(d - 2) / 10`` (0.2 for 4 ... 0.7 for 9); below that the
  character drifts and a stranger appears (kind ``stranger``).

So ten consecutive seeds give 1 stranger, 1 blank, 1 black, 1 pair and 6 own seeds, of
which these keep the identity (and pass QC) at each strength:

======== ===== ===== ===== ===== ===== ===== ===== =====
strength < 0.2 0.2   0.3   0.4   0.5   0.6   >= 0.7 none
passes   0     1     2     3     4     5     6      6
======== ===== ===== ===== ===== ===== ===== ===== =====

The **identity strength** is the larger of the LoRA strength (``LoraLoader.strength_model``,
``GenerationParams.lora_strength``) and the IP-Adapter weight (``IPAdapterAdvanced.weight``
/ ``IPAdapterFaceID.weight``, ``GenerationParams.ipadapter_strength``); a graph with neither
(img2img from the reference: the reference itself carries the face) counts as "none",
which holds every seed. Every method's profile default (0.7 to 0.8) holds all six.

Which photo of a kind: the ``(seed // 10)``-th, cycling (own: 2009, 2010, 2012; stranger:
biden_2010, biden_2013, collins, hopper).

**Per-test override**: ``scenario.script({seed: "stranger", ...})`` fixes the kind of those
seeds whatever the strength (a scripted ``"own"`` never drifts).

Images are the photo framed to the requested size (``render``: scaled to cover and cropped at
the sides; a frame wider than the photo is filled to its height and centred on grey),
as PNG with ComfyUI's text chunks (``png``), like ``png_for`` in fake_comfyui.py.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from PIL import Image, ImageOps, PngImagePlugin

FACES = Path(__file__).resolve().parent.parent / "data" / "faces"
Kind = Literal["own", "stranger", "pair", "blank", "black"]
KINDS: tuple[Kind, ...] = ("own", "stranger", "pair", "blank", "black")
OWN = ("obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg")
STRANGERS = ("biden_2010.jpg", "biden_2013.jpg", "collins.jpg", "hopper.jpg")
PAIR = ("obama_2009.jpg", "biden_2010.jpg")
BLANK_GREY = (200, 200, 200)
# seed % 10 -> kind; the other digits are the character (subject to HOLD).
DEFAULT_KINDS: dict[int, Kind] = {0: "stranger", 1: "blank", 2: "black", 3: "pair"}
# seed % 10 -> the least identity strength, in hundredths, that keeps the character.
HOLD_PERCENT: dict[int, int] = {digit: (digit - 2) * 10 for digit in range(4, 10)}


@dataclass(frozen=True, slots=True)
class PhotoChoice:
    """What one seed shows.

    Attributes:
        kind: The kind of image (see the module docstring).
        photos: The photographs it is made of (none for blank and black frames).
        drifted: The default rule chose the character but the strength was too low.
    """

    kind: Kind
    photos: tuple[str, ...]
    drifted: bool = False


def identity_strength(lora: float | None, ipadapter: float | None) -> float | None:
    """The larger of the strengths given; ``None`` when neither applies (img2img)."""
    given = [s for s in (lora, ipadapter) if s is not None]
    return max(given) if given else None


class PhotoScenario:
    """Seed and strength -> a real photograph (rules in the module docstring)."""

    def __init__(self) -> None:
        self.scripted: dict[int, Kind] = {}
        self.chosen: list[tuple[int, PhotoChoice]] = []  # every image made, in order

    def script(self, kinds: Mapping[int, Kind]) -> PhotoScenario:
        """Fix the kind of these seeds (added to earlier scripts); returns ``self``."""
        for seed, kind in kinds.items():
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r} for seed {seed}: use one of {KINDS}")
            self.scripted[seed] = kind
        return self

    def choose(self, seed: int, strength: float | None) -> PhotoChoice:
        """The kind and photos for ``seed`` at identity ``strength`` (``None``: img2img)."""
        turn = seed // 10
        kind = self.scripted.get(seed)
        drifted = False
        if kind is None:
            digit = seed % 10
            kind = DEFAULT_KINDS.get(digit, "own")
            if kind == "own" and strength is not None:
                drifted = round(strength * 100) < HOLD_PERCENT[digit]
                kind = "stranger" if drifted else "own"
        if kind == "own":
            return PhotoChoice("own", (OWN[turn % len(OWN)],))
        if kind == "stranger":
            return PhotoChoice("stranger", (STRANGERS[turn % len(STRANGERS)],), drifted)
        if kind == "pair":
            return PhotoChoice("pair", PAIR)
        return PhotoChoice(kind, ())

    def render(self, seed: int, strength: float | None, size: tuple[int, int]) -> Image.Image:
        """The image for ``seed``, ``size`` = (width, height); recorded in ``chosen``."""
        choice = self.choose(seed, strength)
        self.chosen.append((seed, choice))
        return _render(choice, size).copy()

    def png(
        self,
        seed: int,
        strength: float | None,
        size: tuple[int, int],
        text: Mapping[str, str] | None = None,
    ) -> bytes:
        """:meth:`render` as PNG bytes with these text chunks (ComfyUI's ``prompt``...)."""
        info = PngImagePlugin.PngInfo()
        for key, value in (text or {}).items():
            info.add_text(key, value)
        buffer = io.BytesIO()
        self.render(seed, strength, size).save(buffer, format="PNG", pnginfo=info)
        return buffer.getvalue()

    def png_for_graph(
        self,
        graph: Mapping[str, Any],
        text: Mapping[str, str],
        inputs: Mapping[str, bytes],
        default_size: int,
    ) -> bytes:
        """What a ComfyUI graph makes: seed from its ``KSampler``, strength from
        ``LoraLoader.strength_model`` / ``IPAdapterAdvanced.weight``, size from its
        ``EmptyLatentImage`` (img2img: the uploaded reference ``inputs`` names)."""
        seed = 0
        lora: float | None = None
        ipadapter: float | None = None
        size: tuple[int, int] | None = None
        loaded: tuple[int, int] | None = None
        for node in graph.values():
            kind, values = node.get("class_type"), node.get("inputs", {})
            if kind == "KSampler":
                seed = int(values["seed"])
            elif kind in ("LoraLoader", "LoraLoaderModelOnly"):
                lora = max(lora or 0.0, float(values["strength_model"]))
            elif kind in ("IPAdapterAdvanced", "IPAdapterFaceID"):
                ipadapter = max(ipadapter or 0.0, float(values["weight"]))
            elif kind == "EmptyLatentImage":
                size = (int(values["width"]), int(values["height"]))
            elif kind == "LoadImage" and loaded is None and str(values.get("image")) in inputs:
                with Image.open(io.BytesIO(inputs[str(values["image"])])) as image:
                    loaded = image.size
        final = size or loaded or (default_size, default_size)
        return self.png(seed, identity_strength(lora, ipadapter), final, text)


@lru_cache(maxsize=64)
def _render(choice: PhotoChoice, size: tuple[int, int]) -> Image.Image:
    width, height = size
    if choice.kind == "blank":
        return Image.new("RGB", size, BLANK_GREY)
    if choice.kind == "black":
        return Image.new("RGB", size, (0, 0, 0))
    if choice.kind == "pair":
        # Two portraits side by side, each cover-cropped to half the frame.
        canvas = Image.new("RGB", size, (128, 128, 128))
        half = width // 2
        canvas.paste(_cover(choice.photos[0], (half, height)), (0, 0))
        canvas.paste(_cover(choice.photos[1], (width - half, height)), (half, 0))
        return canvas
    return _cover(choice.photos[0], size)


def _cover(name: str, size: tuple[int, int]) -> Image.Image:
    """The photo framed to ``size``: scaled to cover it and centre-cropped at the sides
    when the frame is narrower than the photo; scaled to its height and centred on grey
    when it is wider (cropping top and bottom would cut the head off)."""
    with Image.open(FACES / name) as opened:
        photo = opened.convert("RGB")
    width, height = size
    if width * photo.height <= height * photo.width:
        return ImageOps.fit(photo, size, Image.Resampling.LANCZOS)
    scaled = photo.resize(
        (round(photo.width * height / photo.height), height), Image.Resampling.LANCZOS
    )
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(scaled, ((width - scaled.width) // 2, 0))
    return canvas
