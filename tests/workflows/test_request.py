from __future__ import annotations

from typing import Any

import pytest

from charstudio.errors import InvalidName, InvalidParameter
from charstudio.workflows import (
    FACEID_PRESETS,
    IPADAPTER_PRESETS,
    SEED_MAX,
    PoseControl,
    WorkflowRequest,
    default_ipadapter_preset,
)

from .conftest import RequestFactory

POSE = PoseControl(image="pose.png", controlnet="control_v11p_sd15_openpose_fp16.safetensors")


def test_seed_minus_one_is_not_random(make_request: RequestFactory) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(seed=-1)
    assert str(caught.value) == (
        "seed -1 is out of range: ComfyUI takes 0 to 18446744073709551615 (2^64-1), and no "
        "value means 'random'; draw one with random_seed() and record it"
    )


def test_seed_two_to_the_64_is_out_of_range(make_request: RequestFactory) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(seed=2**64)
    assert str(caught.value) == (
        "seed 18446744073709551616 is out of range: ComfyUI takes 0 to 18446744073709551615 "
        "(2^64-1); use a seed in range"
    )


def test_seed_limits_are_accepted(make_request: RequestFactory) -> None:
    assert make_request(seed=0).seed == 0
    assert make_request(seed=SEED_MAX).seed == SEED_MAX


@pytest.mark.parametrize(
    ("size", "fix"),
    [(500, "use 496 or 504"), (65, "use 64 or 72"), (8, "use 64"), (32, "use 64"), (60, "use 64")],
)
def test_size_must_be_a_multiple_of_8(make_request: RequestFactory, size: int, fix: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(width=size)
    assert str(caught.value) == (
        f"image size {size} is not a multiple of 8 of at least 64 (the latent is 1/8 of the "
        f"image): {fix}"
    )
    with pytest.raises(InvalidParameter, match="not a multiple of 8 of at least 64"):
        make_request(height=size)


@pytest.mark.parametrize("side", ["width", "height"])
def test_size_over_the_family_maximum(make_request: RequestFactory, side: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(**{side: 1544})  # a multiple of 8, one step past SD1.5's 1536
    assert str(caught.value) == (
        "image size 1544 is over Stable Diffusion 1.5's largest side 1536: generate smaller "
        "and upscale afterwards"
    )
    with pytest.raises(InvalidParameter, match="over Stable Diffusion XL's largest side 2048"):
        make_request(family="sdxl", **{side: 2056})


def test_size_limits_are_accepted(make_request: RequestFactory) -> None:
    assert make_request(width=64, height=64).size == (64, 64)
    assert make_request(width=1536, height=1536).size == (1536, 1536)
    assert make_request(family="sdxl", width=1544, height=2048).size == (1544, 2048)


def test_size_defaults_come_from_the_family(make_request: RequestFactory) -> None:
    assert make_request().size == (512, 512)
    assert make_request(family="sdxl").size == (1024, 1024)
    assert make_request(family="sdxl", width=832, height=1216).size == (832, 1216)


def test_unknown_variation(make_request: RequestFactory) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(variation="hat")
    assert str(caught.value) == (
        "unknown variation 'hat': use outfit, background or pose (or none for the base template)"
    )


def test_unknown_method(make_request: RequestFactory) -> None:
    with pytest.raises(InvalidParameter, match="unknown method 'magic': use one of lora_ipadapter"):
        WorkflowRequest(**{**make_request("img2img").model_dump(), "method": "magic"})


@pytest.mark.parametrize(
    ("method", "changes", "message"),
    [
        (
            "lora_only",
            {"lora": None},
            "method lora_only needs a LoRA file and a lora_strength: train one "
            "(`charstudio train`) or use ipadapter_only / img2img",
        ),
        (
            "ipadapter_only",
            {"reference_image": None},
            "method ipadapter_only needs a reference image: upload one and pass its name",
        ),
        (
            "img2img",
            {"reference_image": None},
            "method img2img needs a reference image: upload one and pass its name",
        ),
        (
            "lora_ipadapter",
            {"variation": "outfit", "pose": POSE},
            "a pose image was given with variation 'outfit': use variation 'pose'",
        ),
        (
            "ipadapter_only",
            {"family": "sdxl", "ipadapter_preset": "FULL FACE - SD1.5 only (portraits stronger)"},
            "IP-Adapter preset 'FULL FACE - SD1.5 only (portraits stronger)' has no sdxl model: "
            "use 'PLUS FACE (portraits)'",
        ),
        (
            "ipadapter_only",
            {"ipadapter_preset": "PLUS FACE"},
            "unknown IP-Adapter preset 'PLUS FACE': use one of PLUS FACE (portraits), ",
        ),
        (
            "ipadapter_only",
            {"job": "../x"},
            "job id '../x' is not allowed: use 1-64 ASCII letters, digits, '-' or '_'",
        ),
        ("ipadapter_only", {"prompt": "  "}, "prompt is empty: give one"),
    ],
)
def test_request_problems_name_the_fix(
    make_request: RequestFactory, method: str, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidParameter) as caught:
        make_request(method, **changes)
    assert str(caught.value).startswith(message)


def test_character_name_and_trigger_word_follow_the_library_rules(
    make_request: RequestFactory,
) -> None:
    with pytest.raises(InvalidName, match="contains a path separator"):
        make_request(character="../yuki")
    with pytest.raises(InvalidName, match="trigger word 'yuki character' is not allowed"):
        make_request(trigger_word="yuki character")


def test_wrong_types_and_unknown_keys_are_invalid_parameters(make_request: RequestFactory) -> None:
    with pytest.raises(InvalidParameter, match=r"invalid WorkflowRequest \(seed: Input should"):
        make_request(seed="abc")
    with pytest.raises(InvalidParameter, match="colour: Extra inputs are not permitted"):
        make_request(colour="red")


def test_prompt_and_prefix(make_request: RequestFactory) -> None:
    request = make_request(variation="background", prompt="a snowy street {weird}")
    assert (
        request.positive_prompt == "yukicharacter, standing in a snowy street {weird}, same outfit"
    )
    assert request.save_prefix == "charstudio/yuki/job-1/yuki"


def test_request_round_trips_through_json(make_request: RequestFactory) -> None:
    request = make_request(variation="pose", pose=POSE, seed=SEED_MAX)
    again = type(request).model_validate_json(request.model_dump_json())
    assert again == request


def test_ipadapter_presets_as_data() -> None:
    assert default_ipadapter_preset(has_insightface=False) == "PLUS FACE (portraits)"
    assert default_ipadapter_preset(has_insightface=True) == "FACEID PLUS V2"
    assert "FACEID PLUS V2" in FACEID_PRESETS
    plus_face = IPADAPTER_PRESETS["PLUS FACE (portraits)"]
    assert plus_face.ipadapter_file("sd15") == "ip-adapter-plus-face_sd15.safetensors"
    assert plus_face.clip_vision == "CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors"
    assert IPADAPTER_PRESETS["VIT-G (medium strength)"].clip_vision.startswith("CLIP-ViT-bigG")


def test_preset_names_are_the_servers_choices(live: Any) -> None:
    unified = set(live.spec("IPAdapterUnifiedLoader").inputs["preset"].options)
    faceid = set(live.spec("IPAdapterUnifiedLoaderFaceID").inputs["preset"].options)
    for name, preset in IPADAPTER_PRESETS.items():
        assert name in (faceid if preset.faceid else unified)
