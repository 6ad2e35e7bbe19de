"""The QC policy in the consistency profile: defaults, ranges, per-character overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from charstudio.errors import InvalidParameter
from charstudio.library.profile import METHOD_DEFAULTS, Assets, build_profile, parse_overrides
from charstudio.library.qc_policy import QCPolicy
from charstudio.services import Services

ASSETS = Assets(
    has_lora=True, has_embedding=True, reference_images_count=5, training_images_count=12
)


def test_defaults_follow_the_issue() -> None:
    profile = build_profile(
        name="yuki", trigger_word="yk", assets=ASSETS, overrides=parse_overrides({})
    )
    assert profile.qc == QCPolicy()
    assert (profile.qc.min_identity, profile.qc.min_adherence) == (None, None)
    assert (profile.qc.extra_attempts, profile.qc.candidates) == (3, 1)


def test_overrides_set_the_policy_and_leave_the_generation_parameters_alone() -> None:
    overrides = parse_overrides(
        {"qc_min_identity": 0.95, "qc_extra_attempts": 0, "qc_candidates": 4, "cfg": 6.0}
    )
    profile = build_profile(name="yuki", trigger_word="yk", assets=ASSETS, overrides=overrides)
    assert profile.qc == QCPolicy(min_identity=0.95, extra_attempts=0, candidates=4)
    assert profile.params.cfg == 6.0
    expected = METHOD_DEFAULTS["lora_ipadapter"].model_copy(update={"cfg": 6.0})
    assert profile.params == expected
    assert profile.overrides["qc_candidates"] == 4


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"qc_min_identity": 1.5}, "qc_min_identity: Input should be less than or equal to 1"),
        ({"qc_min_adherence": -0.1}, "qc_min_adherence: Input should be greater than or equal"),
        ({"qc_extra_attempts": 21}, "qc_extra_attempts: Input should be less than or equal to 20"),
        ({"qc_candidates": 0}, "qc_candidates: Input should be greater than or equal to 1"),
        ({"qc_candidates": 9}, "qc_candidates: Input should be less than or equal to 8"),
        ({"qc_min_identity": float("nan")}, "qc_min_identity"),
    ],
)
def test_out_of_range_policy_values_are_refused(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        parse_overrides(raw)
    assert problem in str(info.value)


def test_policy_is_stored_with_the_other_overrides(services: Services, refs: Path) -> None:
    services.library.create("yuki", [refs])
    profile = services.library.update(
        "yuki", overrides={"qc_min_adherence": 0.6, "qc_candidates": 3}
    )
    assert profile.qc == QCPolicy(min_adherence=0.6, candidates=3)
    assert services.library.profile("yuki").qc.candidates == 3
    profile = services.library.update("yuki", reset=["qc_candidates"])
    assert profile.qc == QCPolicy(min_adherence=0.6)
    with pytest.raises(InvalidParameter, match="qc_extra_attempts"):
        services.library.update("yuki", overrides={"qc_extra_attempts": 50})
    assert services.library.profile("yuki").qc == QCPolicy(min_adherence=0.6)
