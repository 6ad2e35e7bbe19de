"""Opening a local ONNX model file with ONNX Runtime, with errors that name the file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from charstudio.errors import BackendError, BackendUnavailable

__all__ = ["ONNXRUNTIME_INSTALL", "open_session"]

ONNXRUNTIME_INSTALL = "pip install onnxruntime==1.32.0"


def open_session(path: Path, providers: Sequence[str]) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``path``.

    Raises:
        BackendUnavailable: onnxruntime is not installed (the message has the pip command).
        BackendError: the file is not a model ONNX Runtime can load.
    """
    try:
        import onnxruntime  # type: ignore[import-untyped]
    except ImportError as exc:
        raise BackendUnavailable(
            f"onnxruntime is not installed; install it with: {ONNXRUNTIME_INSTALL}"
        ) from exc
    try:
        return onnxruntime.InferenceSession(str(path), providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own untyped exceptions
        raise BackendError(f"cannot load the ONNX model {path}: {exc}") from exc
