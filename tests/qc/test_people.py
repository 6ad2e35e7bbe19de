"""The word rule for prompts that ask for more than one person."""

from __future__ import annotations

import pytest

from charstudio.qc.people import asks_for_several_people


@pytest.mark.parametrize(
    "prompt",
    [
        "two people shaking hands",
        "3 girls at the beach",
        "a group of friends at a cafe",
        "several men in suits",
        "2girls, school uniform",
        "multiple_girls",
        "standing in a crowd",
        "a couple dancing",
    ],
)
def test_asks_for_several(prompt: str) -> None:
    assert asks_for_several_people(prompt)


@pytest.mark.parametrize(
    "prompt",
    ["a red dress", "standing in a park", "sitting with a friend", "one girl", "groupie t-shirt"],
)
def test_asks_for_one(prompt: str) -> None:
    assert not asks_for_several_people(prompt)
