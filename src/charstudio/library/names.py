"""Character names: safe as a folder name, a file-name prefix and a trigger word.

A name becomes part of paths (``references/<name>/``, ``<name>_v3.safetensors``) and of
prompts, so only a conservative alphabet is allowed, and two names that differ only by
case are the same character (case-insensitive file systems would merge their folders).
"""

from __future__ import annotations

import re

from charstudio.errors import InvalidName

__all__ = ["MAX_NAME_LENGTH", "default_trigger_word", "name_key", "validate_name"]

MAX_NAME_LENGTH = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_TRIGGER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_RULE = "use 1-64 ASCII letters, digits, '-' or '_', starting with a letter or digit"


def validate_name(name: str) -> str:
    """Return ``name`` if it is a valid character name.

    Raises:
        InvalidName: the message names the problem and the rule.
    """
    if not name:
        raise InvalidName(f"character name is empty; {_RULE}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(
            f"character name is {len(name)} characters long, over {MAX_NAME_LENGTH}; {_RULE}"
        )
    if any(ch in name for ch in "/\\") or ".." in name:
        raise InvalidName(f"character name {name!r} contains a path separator or '..'; {_RULE}")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidName(f"character name {name!r} contains control characters; {_RULE}")
    if not _NAME.fullmatch(name):
        raise InvalidName(f"character name {name!r} is not allowed; {_RULE}")
    return name


def name_key(name: str) -> str:
    """The case-insensitive key under which names are unique."""
    return name.lower()


def default_trigger_word(name: str) -> str:
    """``<name>character`` in lower case, as in the original design."""
    return f"{name.lower()}character"


def validate_trigger_word(word: str) -> str:
    """Return ``word`` if it can be a trigger word (one token-friendly word).

    Raises:
        InvalidName: the message names the problem and the rule.
    """
    if not _TRIGGER.fullmatch(word):
        raise InvalidName(
            f"trigger word {word!r} is not allowed; use one word of 1-128 ASCII letters, "
            "digits, '-' or '_'"
        )
    return word
