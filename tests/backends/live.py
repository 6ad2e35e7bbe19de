"""Which real ComfyUI the live suite (``test_live_comfyui.py``) runs against."""

from __future__ import annotations

from collections.abc import Mapping

from charstudio.config import EnvVars


def live_url(environ: Mapping[str, str]) -> str:
    """The first server of ``CHARSTUDIO_COMFYUI_URLS`` (what charstudio itself reads), or ``""``."""
    first = environ.get(EnvVars.COMFYUI_URLS, "").split(",")[0]
    return first.strip().rstrip("/")
