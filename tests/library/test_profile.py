from __future__ import annotations

import pytest

from charstudio.errors import InvalidParameter
from charstudio.library.profile import (
    METHOD_DEFAULTS,
    Assets,
    GenerationParams,
    Overrides,
    build_profile,
    parse_overrides,
)


def assets(*, lora: bool, embedding: bool) -> Assets:
    return Assets(
        has_lora=lora,
        has_embedding=embedding,
        reference_images_count=5,
        training_images_count=12 if lora else 0,
        lora_version=3 if lora else None,
        lora_path="/x/yuki_v3.safetensors" if lora else None,
        embedding_path="/x/yuki_face.pt" if embedding else None,
    )


def profile(a: Assets, **overrides: object):  # type: ignore[no-untyped-def]
    return build_profile(
        name="yuki", trigger_word="yukicharacter", assets=a, overrides=parse_overrides(overrides)
    )


@pytest.mark.parametrize(
    ("lora", "embedding", "method", "params"),
    [
        (
            True,
            True,
            "lora_ipadapter",
            GenerationParams(
                lora_strength=0.7,
                ipadapter_strength=0.6,
                cfg=7.0,
                steps=25,
                denoise=1.0,
                character_weight=0.5,
            ),
        ),
        (
            True,
            False,
            "lora_only",
            GenerationParams(
                lora_strength=0.8, ipadapter_strength=None, cfg=7.5, steps=30, denoise=1.0
            ),
        ),
        (
            False,
            True,
            "ipadapter_only",
            GenerationParams(
                lora_strength=None,
                ipadapter_strength=0.8,
                cfg=8.0,
                steps=30,
                denoise=1.0,
                character_weight=0.5,
            ),
        ),
        (
            False,
            False,
            "img2img",
            GenerationParams(
                lora_strength=None, ipadapter_strength=None, cfg=7.5, steps=30, denoise=0.4
            ),
        ),
    ],
)
def test_method_and_defaults_follow_the_assets(
    lora: bool, embedding: bool, method: str, params: GenerationParams
) -> None:
    result = profile(assets(lora=lora, embedding=embedding))
    assert result.method == method
    assert result.params == params == METHOD_DEFAULTS[result.method]
    assert result.has_lora is lora and result.has_embedding is embedding
    assert result.available_methods[0] == method


@pytest.mark.parametrize(
    ("lora", "embedding", "expected"),
    [
        (
            True,
            True,
            GenerationParams(
                lora_strength=0.65,
                ipadapter_strength=0.55,
                cfg=6.0,
                steps=40,
                denoise=1.0,
                character_weight=0.8,
            ),
        ),
        (
            True,
            False,
            GenerationParams(
                lora_strength=0.65, ipadapter_strength=None, cfg=6.0, steps=40, denoise=1.0
            ),
        ),
        (
            False,
            True,
            GenerationParams(
                lora_strength=None,
                ipadapter_strength=0.55,
                cfg=6.0,
                steps=40,
                denoise=1.0,
                character_weight=0.8,
            ),
        ),
        (
            False,
            False,
            GenerationParams(
                lora_strength=None, ipadapter_strength=None, cfg=6.0, steps=40, denoise=0.3
            ),
        ),
    ],
)
def test_overrides_apply_where_the_method_uses_them(
    lora: bool, embedding: bool, expected: GenerationParams
) -> None:
    result = profile(
        assets(lora=lora, embedding=embedding),
        lora_strength=0.65,
        ipadapter_strength=0.55,
        cfg=6.0,
        steps=40,
        denoise=0.3,
        character_weight=0.8,
    )
    assert result.params == expected
    assert result.overrides == {
        "lora_strength": 0.65,
        "ipadapter_strength": 0.55,
        "cfg": 6.0,
        "steps": 40,
        "denoise": 0.3,
        "character_weight": 0.8,
    }
    assert result.warnings == []


def test_a_pinned_feasible_method_wins() -> None:
    result = profile(assets(lora=True, embedding=True), method="lora_only")
    assert result.method == "lora_only"
    assert result.method_reason == "pinned by the character's overrides"
    assert result.params.lora_strength == 0.8


def test_a_pinned_method_that_became_impossible_falls_back_with_a_warning() -> None:
    result = profile(assets(lora=False, embedding=True), method="lora_ipadapter")
    assert result.method == "ipadapter_only"
    assert result.warnings == [
        "pinned method 'lora_ipadapter' is not possible now (no LoRA); using 'ipadapter_only'"
    ]


def test_strengths_outside_the_recommended_range_warn() -> None:
    result = profile(assets(lora=True, embedding=True), lora_strength=1.2)
    assert result.params.lora_strength == 1.2
    assert result.warnings == ["lora_strength 1.2 is outside the recommended range 0.6-0.8"]


def test_no_references_warns() -> None:
    bare = assets(lora=False, embedding=False).model_copy(update={"reference_images_count": 0})
    result = profile(bare)
    assert result.method == "img2img"
    assert "no reference images" in result.warnings[0]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"lora_strength": 2.5}, "lora_strength: Input should be less than or equal to 2"),
        ({"cfg": 0}, "cfg: Input should be greater than or equal to 1"),
        ({"steps": 0}, "steps: Input should be greater than or equal to 1"),
        ({"denoise": 0}, "denoise: Input should be greater than 0"),
        ({"method": "magic"}, "method: Input should be 'lora_ipadapter'"),
        ({"clip_skip": 2}, "clip_skip: unknown key; check the spelling"),
    ],
)
def test_bad_overrides_name_the_key(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_overrides(raw)
    assert problem in str(info.value)


def test_overrides_model_is_frozen() -> None:
    assert Overrides().model_config.get("frozen") is True
