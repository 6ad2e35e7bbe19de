"""Options every command shares, written once: boolean flags show no value in ``--help``
(typer would print ``<bool>`` as if they took one), and ``--json``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["JsonOption", "flag"]


def flag(*names: str, help: str, **options: Any) -> Any:
    """A boolean option that takes no value (``--json``, ``--yes``); ``options`` go to
    ``typer.Option`` as they are."""
    return typer.Option(*names, help=help, metavar="", **options)


JsonOption = Annotated[bool, flag("--json", help="Print the result as JSON.")]
