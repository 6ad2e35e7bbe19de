"""The live suite reads the same variable as the application (it used to read
CHARSTUDIO_COMFYUI_URL, which charstudio never reads: one setting, two names)."""

from __future__ import annotations

import pytest

from charstudio.config import load_settings
from tests.backends.live import live_url


def test_the_live_suite_uses_the_applications_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    urls = "http://127.0.0.1:8188/, http://gpu2:8188"
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", urls)
    assert live_url({"CHARSTUDIO_COMFYUI_URLS": urls}) == "http://127.0.0.1:8188"
    assert load_settings().comfyui_urls[0] == live_url({"CHARSTUDIO_COMFYUI_URLS": urls})
    assert live_url({"CHARSTUDIO_COMFYUI_URL": "http://127.0.0.1:8188"}) == ""
