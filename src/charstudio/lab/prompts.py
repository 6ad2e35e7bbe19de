"""The lab's fixed prompt set: the default, or a file of one prompt per line.

A prompts file holds one ``variation: subject`` per line (``outfit: a red dress``,
``background: a beach at sunset``, ``pose: sitting on a bench``); a line without a known
variation is a plain prompt. Blank lines and ``#`` comments are skipped. Every method row
and every grid cell is generated from the same prompts and seeds, so rows compare.
"""

from __future__ import annotations

from pathlib import Path

from charstudio.errors import InvalidParameter
from charstudio.lab.types import LabPrompt

__all__ = ["DEFAULT_PROMPTS", "MAX_PROMPTS", "load_prompts"]

# One subject per variation, as the original design's three variation templates use them.
DEFAULT_PROMPTS: tuple[LabPrompt, ...] = (
    LabPrompt(variation="outfit", text="a red dress"),
    LabPrompt(variation="background", text="a beach at sunset"),
    LabPrompt(variation="pose", text="sitting on a park bench"),
)
MAX_PROMPTS = 50
_VARIATIONS = ("outfit", "background", "pose")


def load_prompts(path: Path) -> tuple[LabPrompt, ...]:
    """Read a prompts file (see the module).

    Raises:
        InvalidParameter: the file cannot be read, holds no prompt, a line has no subject,
            or it holds more than :data:`MAX_PROMPTS`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"cannot read the prompts file {path}: {exc}") from exc
    prompts = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        head, sep, tail = line.partition(":")
        if sep and head.strip().lower() in _VARIATIONS:
            variation, subject = head.strip().lower(), tail.strip()
        else:
            variation, subject = None, line
        if not subject or len(subject) > 500:
            raise InvalidParameter(
                f"{path}, line {number}: a prompt needs a subject of 1-500 characters "
                "(write 'outfit: a red dress')"
            )
        prompts.append(LabPrompt.model_validate({"variation": variation, "text": subject}))
    if not prompts:
        raise InvalidParameter(
            f"no prompts in {path}: write one per line as 'outfit: a red dress', "
            "'background: a beach at sunset' or 'pose: sitting on a bench'"
        )
    if len(prompts) > MAX_PROMPTS:
        raise InvalidParameter(f"{path} holds {len(prompts)} prompts; at most {MAX_PROMPTS}")
    return tuple(prompts)
