"""The LoRA file of a finished run, and its copy into ComfyUI's ``models/loras``.

Kohya tensors (:mod:`~charstudio.training.kohya_format`), kohya metadata
(:mod:`~charstudio.training.metadata`) and the ``sshs_*`` hashes, written through a
temporary file and a rename.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from charstudio.training.config import TrainingConfig
from charstudio.training.families import Family
from charstudio.training.kohya_format import addnet_hashes, kohya_state_dict, write_safetensors
from charstudio.training.metadata import LoraFacts, lora_metadata

if TYPE_CHECKING:
    from charstudio.training.trainer import TrainOutcome

__all__ = ["copy_into_comfyui", "write_lora_file", "write_step_lora"]


def write_lora_file(
    file: Path,
    *,
    name: str,
    version: int,
    config: TrainingConfig,
    outcome: TrainOutcome,
    steps: int,
    set_version: int,
    set_hash: str,
) -> str:
    """Write ``<name>_v<N>.safetensors``: kohya keys, metadata, hashes; return its SHA-256.

    Raises:
        DiskFull: the disk filled while saving (no file is left).
    """

    base, data = outcome.base, outcome.training_set
    encoders = [outcome.adapters[n] for n in base.family.text_encoders if n in outcome.adapters]
    tensors = kohya_state_dict(
        family=base.family,
        unet=outcome.adapters["unet"],
        text_encoders=encoders,
        alpha=config.lora.alpha,
        precision=config.lora.save_precision,
    )
    now = time.time()
    facts = LoraFacts(
        output_name=f"{name}_v{version}",
        family=base.family,
        config=config,
        steps=steps,
        num_images=len(data.examples),
        captions=[e.caption for e in data.examples],
        base_model_name=base.path.name,
        base_model_sha256=base.sha256,
        base_model_legacy_hash=base.legacy_hash,
        trigger_word=data.trigger_word,
        training_set_version=set_version,
        training_set_hash=set_hash,
        session_id=random.randrange(2**31),
        started_at=now - outcome.seconds,
        finished_at=now,
        resolution=data.examples[0].size,
        train_text_encoder=bool(encoders),
    )
    metadata = lora_metadata(facts)
    model_hash, legacy_hash = addnet_hashes(tensors, metadata)
    metadata |= {"sshs_model_hash": model_hash, "sshs_legacy_hash": legacy_hash}
    return write_safetensors(file, tensors, metadata)


def write_step_lora(
    folder: Path,
    *,
    name: str,
    step: int,
    family: Family,
    adapters: dict[str, dict[str, torch.Tensor]],
    config: TrainingConfig,
    trigger_word: str,
) -> Path:
    """A checkpoint's LoRA as a loadable kohya file, to try the step before promoting a run.

    Only the minimum metadata kohya keeps without ``--no_metadata``'s extras, plus the step.
    """
    tensors = kohya_state_dict(
        family=family,
        unet=adapters["unet"],
        text_encoders=[adapters[n] for n in family.text_encoders if n in adapters],
        alpha=config.lora.alpha,
        precision=config.lora.save_precision,
    )
    output_name = f"{name}_step{step:06d}"
    metadata = {
        "ss_output_name": output_name,
        "ss_v2": "False",
        "ss_base_model_version": family.ss_base_model_version,
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(config.lora.rank),
        "ss_network_alpha": str(config.lora.alpha),
        "ss_network_args": "{}",
        "ss_steps": str(step),
        "modelspec.trigger_phrase": trigger_word,
    }
    path = folder / f"{output_name}.safetensors"
    write_safetensors(path, tensors, metadata)
    return path


def copy_into_comfyui(folder: Path | None, file: Path) -> tuple[Path | None, list[str]]:
    """Copy the LoRA into ComfyUI's ``models/loras`` (temporary name, then rename)."""
    if folder is None:
        return None, []
    if not folder.is_dir():
        return None, [
            f"ComfyUI LoRA folder {folder} does not exist; the LoRA was not copied there "
            "(fix CHARSTUDIO_COMFYUI_LORAS_DIR)"
        ]
    target = folder / file.name
    with _temporary_in(folder) as tmp:
        shutil.copyfile(file, tmp)
        tmp.replace(target)
    return target, []


@contextlib.contextmanager
def _temporary_in(folder: Path) -> Iterator[Path]:
    """A temporary file in ``folder``, removed unless it was renamed away."""
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=folder)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
