from __future__ import annotations

import pytest

from charstudio.errors import InvalidName, UsageError
from charstudio.library.names import (
    default_trigger_word,
    name_key,
    validate_name,
    validate_trigger_word,
)


@pytest.mark.parametrize("name", ["yuki", "Yuki_2", "a", "hero-01", "x" * 64])
def test_valid_names_pass(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "character name is empty"),
        ("../x", "contains a path separator or '..'"),
        ("a/b", "contains a path separator or '..'"),
        ("a\\b", "contains a path separator or '..'"),
        ("yu\x00ki", "contains control characters"),
        ("yu\nki", "contains control characters"),
        ("x" * 200, "is 200 characters long, over 64"),
        ("-yuki", "is not allowed"),
        ("yuki chan", "is not allowed"),
        (".hidden", "is not allowed"),
        ("ユキ", "is not allowed"),
    ],
)
def test_invalid_names_are_refused_with_the_rule(name: str, problem: str) -> None:
    with pytest.raises(InvalidName) as info:
        validate_name(name)
    assert problem in str(info.value)
    assert "use 1-64 ASCII letters, digits, '-' or '_'" in str(info.value)
    assert isinstance(info.value, UsageError) and info.value.exit_code == 2


def test_names_differing_by_case_share_a_key() -> None:
    assert name_key("Yuki") == name_key("yuki") == "yuki"


def test_default_trigger_word_is_lower_case_name_plus_character() -> None:
    assert default_trigger_word("Yuki") == "yukicharacter"


def test_trigger_word_must_be_one_word() -> None:
    with pytest.raises(InvalidName, match="trigger word 'two words' is not allowed"):
        validate_trigger_word("two words")
