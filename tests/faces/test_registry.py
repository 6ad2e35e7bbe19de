"""Choosing backends by name, and what happens when one is not installed."""

from __future__ import annotations

import sys

import pytest

from charstudio.errors import BackendUnavailable, InvalidParameter
from charstudio.faces.registry import BackendSpec, backend_from_spec, load_backend


def test_dlib_is_cached_per_process() -> None:
    assert load_backend("dlib") is load_backend("dlib")


def test_unknown_backend_name() -> None:
    with pytest.raises(
        InvalidParameter, match="unknown face backend 'arcface'; choose one of dlib, insightface"
    ):
        backend_from_spec(BackendSpec(name="arcface"))  # type: ignore[arg-type]


def test_dlib_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(BackendUnavailable) as info:
        backend_from_spec(BackendSpec(name="dlib", detect_long_side=999))
    assert str(info.value) == (
        "the dlib face backend needs dlib; install it with: "
        "pip install dlib-bin==20.0.1.post1 face-recognition-models==0.3.0"
    )


def test_insightface_not_installed(
    monkeypatch: pytest.MonkeyPatch, insightface_root: object
) -> None:
    monkeypatch.setitem(sys.modules, "insightface.model_zoo.model_zoo", None)
    with pytest.raises(BackendUnavailable) as info:
        backend_from_spec(
            BackendSpec(name="insightface", model_root=insightface_root, det_size=320)
        )  # type: ignore[arg-type]
    assert str(info.value) == (
        "the insightface face backend is not installed; install it with: "
        "pip install insightface==2.1 onnxruntime==1.32.0"
    )
