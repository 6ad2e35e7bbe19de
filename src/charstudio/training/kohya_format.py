"""The kohya LoRA file: key names, ``ss_*`` metadata, ``sshs_*`` hashes, a safe write.

Key names follow sd-scripts' ``networks/lora.py`` (docs/reference/lora-trainers.md, section
2.1): the module path with every ``.`` replaced by ``_``, after a prefix — ``lora_unet`` for
the UNet (SD1.5 keeps diffusers paths, which ComfyUI maps too), ``lora_te`` for SD1.5's text
encoder, ``lora_te1``/``lora_te2`` for SDXL's — and three tensors per module:
``.lora_down.weight``, ``.lora_up.weight`` and a 0-dim ``.alpha``. Text-encoder paths always
start with ``text_model``: ComfyUI silently ignores ``lora_te1_encoder_layers_...``
(docs/ARCHITECTURE.md, "Facts checked"), and transformers >= 5.6 dropped ``text_model.``
from ``CLIPTextModel``'s own names.

Hashes are sd-webui-additional-networks' (what kohya's ``precalculate_safetensors_hashes``
writes): ``sshs_model_hash`` = SHA-256 of the tensor bytes of the file serialised with only
the ``ss_*`` metadata; ``sshs_legacy_hash`` = first 8 hex of SHA-256 over 64 KiB at 1 MiB.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save as serialise

from charstudio.errors import FULL_DISK_ERRNOS, storage_error_from, storage_errors
from charstudio.training.families import Family
from charstudio.training.types import DiskFull

__all__ = [
    "addnet_hashes",
    "kohya_module_name",
    "kohya_state_dict",
    "text_model_path",
    "write_safetensors",
]

_SAVE_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def text_model_path(path: str) -> str:
    """A CLIP module path as kohya and ComfyUI name it: always under ``text_model.``."""
    return "text_model." + path.removeprefix("text_model.")


def kohya_module_name(prefix: str, path: str) -> str:
    """``lora_unet`` + ``down_blocks.0.attentions.0...to_q`` -> ``lora_unet_down_blocks_0_...``."""
    return f"{prefix}_{path.replace('.', '_')}"


def _convert(
    state: dict[str, torch.Tensor], prefix: str, alpha: float, *, text: bool, dtype: torch.dtype
) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for peft_part, kohya_part in (("lora_A", "lora_down"), ("lora_B", "lora_up")):
            marker = f".{peft_part}.weight"
            if key.endswith(marker):
                path = key[: -len(marker)]
                name = kohya_module_name(prefix, text_model_path(path) if text else path)
                out[f"{name}.{kohya_part}.weight"] = value.detach().to("cpu", dtype).contiguous()
                out[f"{name}.alpha"] = torch.tensor(float(alpha), dtype=dtype)
                break
        else:
            raise ValueError(f"unexpected adapter key {key!r} (not lora_A/lora_B)")
    return out


def kohya_state_dict(
    *,
    family: Family,
    unet: dict[str, torch.Tensor],
    text_encoders: list[dict[str, torch.Tensor]],
    alpha: float,
    precision: str = "fp16",
) -> dict[str, torch.Tensor]:
    """Convert peft adapter states (``...to_q.lora_A.weight``) to kohya keys."""
    dtype = _SAVE_DTYPES[precision]
    tensors = _convert(unet, "lora_unet", alpha, text=False, dtype=dtype)
    for prefix, state in zip(family.kohya_te_prefixes, text_encoders, strict=False):
        tensors |= _convert(state, prefix, alpha, text=True, dtype=dtype)
    return tensors


def addnet_hashes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> tuple[str, str]:
    """(``sshs_model_hash``, ``sshs_legacy_hash``) as sd-webui-additional-networks computes them."""
    blob = serialise(tensors, {k: v for k, v in metadata.items() if k.startswith("ss_")})
    header = int.from_bytes(blob[:8], "little")
    model_hash = hashlib.sha256(blob[8 + header :]).hexdigest()
    legacy_hash = hashlib.sha256(blob[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8]
    return model_hash, legacy_hash


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view[: 1 << 24])
        view = view[written:]


def write_safetensors(
    path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]
) -> str:
    """Write a ``.safetensors`` file through a temporary name, fsync, rename; return SHA-256.

    A full disk (or any write error) leaves no file at ``path`` and no temporary behind.

    Raises:
        DiskFull: the disk filled up (or the write failed) while saving.
    """
    blob = serialise(tensors, metadata)
    with storage_errors(path):  # a folder it cannot make or write: DataDirNotWritable ...
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        try:
            _write_all(fd, blob)
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno not in FULL_DISK_ERRNOS:
            raise storage_error_from(exc, path) from exc
        reason = "the disk is full" if exc.errno == errno.ENOSPC else "the quota is used up"
        raise DiskFull(
            f"could not save {path.name}: {reason}; nothing partial was kept. Free space in "
            f"{path.parent} and run the command again (training resumes from its checkpoint "
            "with --resume)"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return hashlib.sha256(blob).hexdigest()
