"""Loading a base model offline: single-file ``.safetensors``/``.ckpt`` or a diffusers folder.

The recipe (:func:`load_base_model`):

1. Check the path exists and what it is (file or diffusers folder).
2. Read only the key names (single file) or ``model_index.json`` (folder), and work out the
   family; refuse a LoRA, a VAE, a corrupt file, or an SDXL model given as SD1.5 (and the
   reverse) before any weights are read.
3. Write the family's component configs and CLIP tokenizer files to a temporary folder
   (:func:`~charstudio.training.families.write_config_folder`), unless ``config_dir`` names one.
4. Load with diffusers, ``local_files_only=True``: nothing is ever downloaded.
5. Replace the VAE when ``vae`` is given.
6. Refuse weights that hold NaN or infinity, naming the component: such a model trains to a
   NaN loss and generates black images (a checkpoint ComfyUI saved after loading a text
   encoder whose keys it could not map holds uninitialised, partly NaN, text weights).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from charstudio.errors import InvalidParameter, NotFound
from charstudio.training.families import FAMILIES, Family, FamilyName, family_of_keys
from charstudio.training.families import write_config_folder as _write_config_folder
from charstudio.training.types import BaseModelInvalid

__all__ = [
    "BaseModel",
    "check_finite_weights",
    "checkpoint_keys",
    "file_hashes",
    "load_base_model",
]

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth")


@dataclass
class BaseModel:
    """A loaded base model: the pipeline (for samples) and the facts recorded with a LoRA."""

    family: Family
    pipeline: Any  # StableDiffusionPipeline | StableDiffusionXLPipeline
    path: Path
    sha256: str  # of the file (single file) or of the weight files (folder)
    legacy_hash: str  # A1111's old 8-hex "model hash" (kohya's ss_sd_model_hash)
    noise_scheduler: Any  # DDPMScheduler from the model's scheduler config (training)

    @property
    def unet(self) -> Any:
        return self.pipeline.unet

    @property
    def vae(self) -> Any:
        return self.pipeline.vae

    @property
    def text_encoders(self) -> list[Any]:
        return [getattr(self.pipeline, name) for name in self.family.text_encoders]

    @property
    def tokenizers(self) -> list[Any]:
        names = ["tokenizer", "tokenizer_2"][: len(self.family.text_encoders)]
        return [getattr(self.pipeline, name) for name in names]


def checkpoint_keys(path: Path) -> list[str]:
    """The tensor names in a single-file checkpoint, without reading the tensors.

    Raises:
        BaseModelInvalid: the file is truncated, corrupt or not a checkpoint.
    """
    try:
        if path.suffix == ".safetensors":
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as handle:
                return list(handle.keys())
        loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:
        raise BaseModelInvalid(
            f"base checkpoint {path} cannot be read ({exc.__class__.__name__}: {exc}); "
            "it is truncated or corrupt: download or copy it again"
        ) from exc
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict):
        raise BaseModelInvalid(
            f"base checkpoint {path} holds no state dict; give a Stable Diffusion checkpoint"
        )
    return [str(k) for k in loaded]


def file_hashes(paths: list[Path]) -> tuple[str, str]:
    """SHA-256 over the files' bytes, and A1111's legacy hash of the first one.

    The legacy hash is the first 8 hex digits of SHA-256 over 64 KiB at offset 1 MiB
    (sd-webui's ``model_hash``), which kohya records as ``ss_sd_model_hash``.
    """
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    with paths[0].open("rb") as handle:
        handle.seek(0x100000)
        legacy = hashlib.sha256(handle.read(0x10000)).hexdigest()[:8]
    return digest.hexdigest(), legacy


def _wrong_family(path: Path, found: FamilyName, asked: FamilyName) -> BaseModelInvalid:
    return BaseModelInvalid(
        f"base checkpoint {path.name} is a {FAMILIES[found].title} ({found}) model but "
        f"model.family is {asked}; set model.family: {found} (or --set model.family={found}), "
        f"or give a {FAMILIES[asked].title} checkpoint"
    )


def _family_of_file(path: Path, asked: FamilyName) -> None:
    keys = checkpoint_keys(path)
    if any(k.startswith(("lora_unet_", "lora_te")) for k in keys):
        raise BaseModelInvalid(
            f"{path.name} is a LoRA, not a base model; set model.base_checkpoint to the "
            "Stable Diffusion checkpoint the LoRA is trained on"
        )
    found = family_of_keys(keys)
    if found is None:
        raise BaseModelInvalid(
            f"{path.name} has no Stable Diffusion UNet and text-encoder keys (is it a VAE or "
            "an embedding?); set model.base_checkpoint to a full SD1.5 or SDXL checkpoint"
        )
    if found != asked:
        raise _wrong_family(path, found, asked)


def _family_of_folder(path: Path, asked: FamilyName) -> None:
    index = path / "model_index.json"
    if not index.is_file():
        raise BaseModelInvalid(
            f"{path} is a folder without model_index.json; give a diffusers pipeline folder "
            "or a single-file .safetensors/.ckpt checkpoint"
        )
    try:
        class_name = json.loads(index.read_text(encoding="utf-8"))["_class_name"]
    except (ValueError, KeyError) as exc:
        raise BaseModelInvalid(f"{index} is not a diffusers model index") from exc
    found: FamilyName = "sdxl" if "XL" in str(class_name) else "sd15"
    if found != asked:
        raise _wrong_family(path, found, asked)


def _weight_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.suffix in (".safetensors", ".bin"))


def _pipeline_class(family: Family) -> Any:
    import diffusers

    return getattr(diffusers, family.pipeline_class)


def _load(path: Path, family: Family, config_dir: Path | None) -> Any:
    cls = _pipeline_class(family)
    common: dict[str, Any] = {"local_files_only": True, "dtype": torch.float32}
    if path.is_dir():
        return cls.from_pretrained(str(path), **common)
    if config_dir is not None:
        return cls.from_single_file(str(path), config=str(config_dir), **common)
    with tempfile.TemporaryDirectory(prefix="charstudio-config-") as tmp:
        folder = _write_config_folder(family, Path(tmp))
        return cls.from_single_file(str(path), config=str(folder), **common)


def _load_vae(path: Path, family: Family, config_dir: Path | None) -> Any:
    from diffusers import AutoencoderKL as _AutoencoderKL

    autoencoder: Any = _AutoencoderKL

    if not path.exists():
        raise NotFound(f"VAE {path} does not exist; fix model.vae or remove it")
    common: dict[str, Any] = {"local_files_only": True, "dtype": torch.float32}
    if path.is_dir():
        return autoencoder.from_pretrained(str(path), **common)
    with tempfile.TemporaryDirectory(prefix="charstudio-config-") as tmp:
        folder = config_dir or _write_config_folder(family, Path(tmp))
        return autoencoder.from_single_file(
            str(path), config=str(folder), subfolder="vae", **common
        )


def check_finite_weights(pipeline: Any, family: Family, path: Path) -> None:
    """Refuse a loaded model any of whose weights is NaN or infinite.

    Raises:
        BaseModelInvalid: naming the component (``unet``, ``vae``, ``text_encoder``, ...) and
            the first tensor found.
    """
    for component in ("unet", "vae", *family.text_encoders):
        module = getattr(pipeline, component)
        for key, tensor in module.state_dict().items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                raise BaseModelInvalid(
                    f"base checkpoint {path.name}: the {component} weights hold NaN or "
                    f"infinite values (first in {key}); training on it gives a NaN loss and "
                    "black images. Use another copy of the model (a checkpoint saved by "
                    "ComfyUI after 'clip missing' warnings has uninitialised text weights)"
                )


def load_base_model(
    path: Path | None,
    *,
    family: FamilyName,
    vae: Path | None = None,
    config_dir: Path | None = None,
) -> BaseModel:
    """Load a base model for training, offline. See the module docstring for the recipe.

    Raises:
        InvalidParameter: no path was configured.
        NotFound: the path (or ``vae``/``config_dir``) does not exist.
        BaseModelInvalid: corrupt, not a base model, or the wrong family.
    """
    # 1. What is it?
    if path is None:
        raise InvalidParameter(
            "model.base_checkpoint is not set; set it in the config or with "
            "--set model.base_checkpoint=/path/to/realisticVision_v51.safetensors"
        )
    if not path.exists():
        raise NotFound(
            f"base checkpoint {path} does not exist; fix model.base_checkpoint "
            "(a .safetensors/.ckpt file or a diffusers folder)"
        )
    if config_dir is not None and not (config_dir / "model_index.json").is_file():
        raise NotFound(
            f"model.config_dir {config_dir} has no model_index.json; give a diffusers-style "
            "folder of component configs, or remove model.config_dir"
        )
    if path.is_file() and path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise BaseModelInvalid(
            f"{path.name} is not a checkpoint (expected {', '.join(SINGLE_FILE_SUFFIXES)}) "
            "or a diffusers folder; fix model.base_checkpoint"
        )
    # 2. Which family?
    if path.is_dir():
        _family_of_folder(path, family)
    else:
        _family_of_file(path, family)
    spec = FAMILIES[family]
    # 3-4. Configs and tokenizers written locally, then load with no hub access.
    try:
        pipeline = _load(path, spec, config_dir)
        # 5. Another VAE?
        if vae is not None:
            pipeline.vae = _load_vae(vae, spec, config_dir)
    except (NotFound, BaseModelInvalid):
        raise
    except Exception as exc:
        raise BaseModelInvalid(
            f"base checkpoint {path.name} could not be loaded as {spec.title} "
            f"({exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "check it is a complete checkpoint of that family, or set model.config_dir to "
            "configs that match its shapes"
        ) from exc
    # 6. Every weight finite?
    check_finite_weights(pipeline, spec, path)
    sha256, legacy = file_hashes(_weight_files(path))
    from diffusers import DDPMScheduler as _DDPMScheduler

    ddpm: Any = _DDPMScheduler

    return BaseModel(
        family=spec,
        pipeline=pipeline,
        path=path,
        sha256=sha256,
        legacy_hash=legacy,
        noise_scheduler=ddpm.from_config(pipeline.scheduler.config),
    )
