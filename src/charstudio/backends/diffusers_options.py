"""Settings of the in-process diffusers backend (a light module: no torch import)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DiffusersOptions"]


@dataclass(frozen=True, slots=True)
class DiffusersOptions:
    """Where the in-process backend finds its models (from the settings).

    Attributes:
        base_model: Base model file or diffusers folder; ``None``: the request's checkpoint
            in ``models_dir/checkpoints``.
        config_dir: Component configs for a single-file base model whose shapes differ
            from the family's published ones; ``None``: the shipped configs.
        models_dir: ComfyUI's ``models`` folder (``ipadapter/``, ``clip_vision/``,
            ``controlnet/``, ``checkpoints/``).
        device: ``cuda``, ``cuda:1``, ``cpu``; ``None``: CUDA when available.
    """

    base_model: Path | None = None
    config_dir: Path | None = None
    models_dir: Path | None = None
    device: str | None = None
