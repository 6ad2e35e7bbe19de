"""Whether a prompt asks for more than one person.

An image of the character is expected to show one person; two or more faces without a
dominant one fail identity as "several people" unless the prompt asked for them. The rule
is on words (case-insensitive, whole words, underscores read as spaces so booru tags such as
``multiple_girls`` count):

* a count above one before a person noun: ``two people``, ``3 girls``, ``several men``,
  ``a group of friends`` (counts: two to ten in words or digits, ``several``, ``many``,
  ``multiple``, ``a group of``; nouns: people, persons, men, women, girls, boys, children,
  kids, friends, characters, figures);
* booru count tags: ``2girls``, ``3boys``, ``multiple girls`` ...;
* a word that means several people on its own: crowd, crowded, couple, group, duo, trio,
  family, team, friends, audience (``with a friend``, singular, does not count).

Only the positive prompt is read: the default negative prompt says "multiple people".
"""

from __future__ import annotations

import re

__all__ = ["asks_for_several_people"]

_COUNTS = (
    r"(?:two|three|four|five|six|seven|eight|nine|ten|[2-9]|10|several|many|multiple|a group of)"
)
_NOUNS = r"(?:people|persons|men|women|girls|boys|children|kids|friends|characters|figures)"
_PATTERNS = (
    re.compile(rf"\b{_COUNTS}\s+{_NOUNS}\b"),
    re.compile(r"\b\d+\s?(?:girls|boys|others)\b"),
    re.compile(r"\b(?:crowd|crowded|couple|group|duo|trio|family|team|friends|audience)\b"),
)


def asks_for_several_people(prompt: str) -> bool:
    """Whether ``prompt`` asks for more than one person (see the module's word rule)."""
    text = prompt.lower().replace("_", " ")
    return any(p.search(text) for p in _PATTERNS)
