"""Pipelines kept in memory between requests, with LoRA and IP-Adapter weights swapped on them.

Loading a base model is the slow part of an in-process generation (seconds on a GPU box,
more on CPU), so :class:`PipelineCache` keeps the last one loaded, through the trainer's
own loader (:func:`charstudio.training.loading.load_base_model`: single file or diffusers
folder, offline). On that one :class:`LoadedModel`:

* each character LoRA is read from disk once (``load_lora_weights`` under its own adapter
  name) and afterwards only switched on at a strength (``set_adapters``) or off;
* each IP-Adapter's tensors are read once and kept; attaching one is ``load_ip_adapter``
  from that in-memory state dict with the cached CLIP vision encoder, detaching it is
  ``unload_ip_adapter`` (methods without IP-Adapter must not see its attention layers);
* img2img and ControlNet pipelines are made with ``from_pipe``: they share the base
  model's modules, so nothing is copied;
* ControlNet models are loaded once per file.

Every method assumes the caller holds :attr:`LoadedModel.lock` (one generation at a time
per model: adapters are global state on the shared UNet).
"""

from __future__ import annotations

import inspect
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from charstudio.backends.ipadapter_files import (
    AdapterFiles,
    ClipVision,
    load_clip_vision,
    read_adapter,
)
from charstudio.errors import ModelFileMissing, ModelMismatch
from charstudio.library.profile import GenerationParams
from charstudio.training.families import FamilyName
from charstudio.training.loading import BaseModel, load_base_model
from charstudio.workflows import ipadapter_application
from charstudio.workflows.character_weight import WEAK_INPUT_FACTOR

__all__ = [
    "IPAdapterScale",
    "LoadedModel",
    "ModelKey",
    "PipelineCache",
    "best_device",
    "ipadapter_scale",
]

# diffusers' ``set_ip_adapter_scale`` value: one scale, or one per UNet part.
IPAdapterScale = float | dict[str, float]

# LoRAs kept loaded on one model; the least recently used is dropped past this.
MAX_LORAS = 8
# diffusers' pipeline classes for the derived pipelines, by family.
_IMG2IMG = {"sd15": "StableDiffusionImg2ImgPipeline", "sdxl": "StableDiffusionXLImg2ImgPipeline"}
_CONTROLNET = {
    "sd15": "StableDiffusionControlNetPipeline",
    "sdxl": "StableDiffusionXLControlNetPipeline",
}
_DEFAULT_HINT_CHANNELS = [16, 32, 96, 256]  # ControlNetModel's default hint encoder


def best_device(asked: str | None) -> str:
    """``asked``, or ``cuda`` when a GPU is visible, else ``cpu``."""
    if asked:
        return asked
    return "cuda" if torch.cuda.is_available() else "cpu"


def ipadapter_scale(params: GenerationParams) -> IPAdapterScale:
    """The IP-Adapter scale for ``params``' strength at its character weight.

    ComfyUI's ``weight`` and ``weight_type`` map exactly: ``linear`` is one scale, ``weak
    input`` (IPAdapterPlus.py: 0.2 x the weight in the input blocks) is diffusers' per-part
    dict with the down blocks at 0.2 x. ``start_at`` / ``end_at`` do not map: diffusers
    applies an IP-Adapter at every step, so the low end's late start is ComfyUI's alone.
    """
    application = ipadapter_application(params.character_weight)
    weight = application.weight(params.ipadapter_strength or 0.0)
    if application.weight_type == "weak input":
        return {"down": round(weight * WEAK_INPUT_FACTOR, 4), "mid": weight, "up": weight}
    return weight


@dataclass(frozen=True, slots=True)
class ModelKey:
    """What identifies a loaded base model: the same key means the same weights in memory."""

    path: Path
    family: FamilyName
    config_dir: Path | None
    device: str
    mtime_ns: int


@dataclass
class LoadedModel:
    """One base model in memory, the adapters on it, and the pipelines made from it.

    Attributes:
        base: The loaded base model (the text-to-image pipeline is ``base.pipeline``).
        device: Where it runs.
        dtype: float16 on CUDA, float32 elsewhere.
        load_seconds: How long loading it took.
        scheduler_config: The base model's scheduler config; every request's scheduler is
            built from it, never from the previous request's.
    """

    base: BaseModel
    device: str
    dtype: torch.dtype
    load_seconds: float
    scheduler_config: Any  # the model's own, before any request replaced its scheduler
    lock: threading.Lock = field(default_factory=threading.Lock)
    _loras: dict[tuple[Path, int], str] = field(default_factory=dict)
    _adapters: dict[Path, dict[str, dict[str, torch.Tensor]]] = field(default_factory=dict)
    _encoders: dict[Path, ClipVision] = field(default_factory=dict)
    _controlnets: dict[Path, Any] = field(default_factory=dict)
    _attached: Path | None = None

    @property
    def pipeline(self) -> Any:
        """The text-to-image pipeline."""
        return self.base.pipeline

    def use_lora(self, path: Path | None, strength: float) -> None:
        """Switch the LoRA at ``path`` on at ``strength`` (read from disk the first time),
        or every LoRA off when ``path`` is ``None``."""
        pipe = self.pipeline
        if path is None:
            if self._loras:
                pipe.disable_lora()
            return
        key = (path.resolve(), path.stat().st_mtime_ns)
        name = self._loras.pop(key, None)
        if name is None:
            name = f"lora_{len(self._loras)}_{time.monotonic_ns()}"
            try:
                pipe.load_lora_weights(str(path), adapter_name=name)
            except Exception as exc:
                raise ModelMismatch(
                    f"LoRA {path.name} in {path.parent} does not fit the base model "
                    f"{self.base.path.name} ({exc.__class__.__name__}: "
                    f"{_first_line(exc)}); train it on this base model"
                ) from exc
            if len(self._loras) >= MAX_LORAS:
                oldest = next(iter(self._loras))
                pipe.delete_adapters(self._loras.pop(oldest))
        self._loras[key] = name  # most recently used last
        pipe.enable_lora()
        pipe.set_adapters([name], adapter_weights=[strength])

    def use_ipadapter(self, files: AdapterFiles | None, scale: IPAdapterScale) -> None:
        """Attach the IP-Adapter in ``files`` at ``scale`` (see :func:`ipadapter_scale`),
        or detach it (``None``)."""
        pipe = self.pipeline
        swapping = files is None or self._attached != files.ipadapter
        if swapping and self._attached is not None:
            pipe.unload_ip_adapter()
            self._attached = None
        if files is None:
            return
        if self._attached is None:
            encoder = self._encoder(files.clip_vision)
            pipe.image_encoder = encoder.encoder
            pipe.feature_extractor = encoder.processor
            state = self._adapters.get(files.ipadapter)
            if state is None:
                state = self._adapters[files.ipadapter] = read_adapter(files.ipadapter)
            pipe.load_ip_adapter(
                state, subfolder="", weight_name=files.ipadapter.name, image_encoder_folder=None
            )
            pipe.unet.to(self.device, self.dtype)
            self._attached = files.ipadapter
        pipe.set_ip_adapter_scale(scale)

    def _encoder(self, path: Path) -> ClipVision:
        encoder = self._encoders.get(path)
        if encoder is None:
            encoder = load_clip_vision(path)
            encoder.encoder.to(self.device, self.dtype)
            self._encoders[path] = encoder
        return encoder

    def img2img(self) -> Any:
        """An image-to-image pipeline sharing the base model's modules."""
        return self._derived(_IMG2IMG[self.base.family.name])

    def controlnet(self, path: Path) -> Any:
        """A ControlNet pipeline over the ControlNet file at ``path``."""
        model = self._controlnets.get(path)
        if model is None:
            model = self._controlnets[path] = self._load_controlnet(path)
        return self._derived(_CONTROLNET[self.base.family.name], controlnet=model)

    def _derived(self, class_name: str, **extra: Any) -> Any:
        import diffusers

        cls: Any = getattr(diffusers, class_name)
        pipe = cls.from_pipe(self.pipeline, **extra)
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _load_controlnet(self, path: Path) -> Any:
        """Load a ControlNet file (diffusers or original key names) shaped like our UNet."""
        from diffusers import ControlNetModel
        from safetensors import safe_open

        accepted = set(inspect.signature(ControlNetModel.__init__).parameters)
        config = {k: v for k, v in self.pipeline.unet.config.items() if k in accepted}
        with safe_open(str(path), framework="pt") as handle:
            channels = _hint_channels(handle)
        config |= {
            "_class_name": "ControlNetModel",
            "conditioning_embedding_out_channels": channels,
        }
        try:
            with tempfile.TemporaryDirectory(prefix="charstudio-controlnet-") as tmp:
                (Path(tmp) / "config.json").write_text(json.dumps(config), encoding="utf-8")
                model = ControlNetModel.from_single_file(
                    str(path), config=tmp, local_files_only=True, torch_dtype=torch.float32
                )
        except Exception as exc:
            raise ModelFileMissing(
                f"ControlNet {path.name} in {path.parent} could not be loaded for this "
                f"{self.base.family.title} base model ({exc.__class__.__name__}: "
                f"{_first_line(exc)}); use an OpenPose ControlNet "
                "of the base model's family"
            ) from exc
        return model.to(self.device, self.dtype)


def _hint_key(layout: str, block: int) -> str:
    """The weight of hint-encoder convolution ``block`` (diffusers' ``blocks.N``; -1: conv_in).

    The original layout numbers them ``input_hint_block.0, 2, 4 ...`` (every other entry is
    an activation), with or without the ``control_model.`` prefix.
    """
    if layout == "diffusers":
        name = "conv_in" if block < 0 else f"blocks.{block}"
        return f"controlnet_cond_embedding.{name}.weight"
    return f"{layout}input_hint_block.{2 * (block + 1)}.weight"


def _hint_channels(handle: Any) -> list[int]:
    """The hint encoder's ``conditioning_embedding_out_channels``, read from its shapes:
    ``conv_in`` gives the first, each widening ``blocks.(2i+1)`` the next."""
    keys = set(handle.keys())
    for layout in ("diffusers", "control_model.", ""):
        if _hint_key(layout, -1) not in keys:
            continue
        channels = [handle.get_slice(_hint_key(layout, -1)).get_shape()[0]]
        block = 1
        while _hint_key(layout, block) in keys:
            channels.append(handle.get_slice(_hint_key(layout, block)).get_shape()[0])
            block += 2
        return list(channels)
    return _DEFAULT_HINT_CHANNELS


def _first_line(exc: Exception) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else ""


class PipelineCache:
    """The base model loaded last, kept for the next request (one at a time in memory).

    Thread-safe: a second thread asking for the same model waits for the first load.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: ModelKey | None = None
        self._model: LoadedModel | None = None

    def get(
        self,
        path: Path,
        *,
        family: FamilyName,
        config_dir: Path | None,
        device: str,
    ) -> tuple[LoadedModel, bool]:
        """The loaded model for ``path``, loading it (and dropping any other) if needed.

        Returns:
            The model, and whether this call loaded it.

        Raises:
            NotFound, BaseModelInvalid: from the trainer's loader.
        """
        key = ModelKey(path.resolve(), family, config_dir, device, path.stat().st_mtime_ns)
        with self._lock:
            if self._key == key and self._model is not None:
                return self._model, False
            self._key, self._model = None, None  # free the old one before loading
            started = time.perf_counter()
            base = load_base_model(path, family=family, config_dir=config_dir)
            dtype = torch.float16 if device.startswith("cuda") else torch.float32
            base.pipeline.to(device, dtype)
            base.pipeline.set_progress_bar_config(disable=True)
            seconds = time.perf_counter() - started
            model = LoadedModel(base, device, dtype, seconds, base.pipeline.scheduler.config)
            self._key, self._model = key, model
            return model, True
