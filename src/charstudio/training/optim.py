"""Optimizer and learning-rate schedule.

AdamW (``torch.optim.AdamW``, weight decay 1e-2 as in the diffusers examples) or
bitsandbytes' ``AdamW8bit``, which needs the package and a CUDA GPU.
``optimization.use_8bit_adam``: ``auto`` (the default) takes 8-bit AdamW where it can run and
AdamW otherwise, and says which; ``true`` without bitsandbytes or CUDA stops the run before
loading anything, saying how to fix it; ``false`` is AdamW.
The UNet's and the text encoders' LoRA parameters are separate groups so the text encoder
has its own learning rate. The schedule is diffusers' ``get_scheduler`` (constant, cosine,
... with linear warmup), stepped once per optimizer step.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch

from charstudio.training.config import TrainingConfig
from charstudio.training.types import OptimizerUnavailable

__all__ = [
    "build_optimizer",
    "build_schedule",
    "check_optimizer",
    "choose_optimizer",
    "optimizer_name",
]

WEIGHT_DECAY = 1e-2


def choose_optimizer(
    config: TrainingConfig, device: torch.device
) -> tuple[TrainingConfig, str | None]:
    """Settle ``use_8bit_adam`` for this machine: the config with true/false, and for
    ``auto`` one line saying which optimizer it chose.

    Raises:
        OptimizerUnavailable: ``true`` where bitsandbytes is missing or there is no CUDA GPU.
    """
    wanted = config.optimization.use_8bit_adam
    note: str | None
    if wanted == "auto":
        missing = _missing_for_8bit(device)
        use = missing is None
        note = (
            "optimization.use_8bit_adam is auto: training with 8-bit AdamW (bitsandbytes, CUDA)"
            if use
            else f"optimization.use_8bit_adam is auto: training with AdamW ({missing})"
        )
    else:
        check_optimizer(config, device)
        use, note = bool(wanted), None
    optimization = config.optimization.model_copy(update={"use_8bit_adam": use})
    return config.model_copy(update={"optimization": optimization}), note


def _missing_for_8bit(device: torch.device) -> str | None:
    if importlib.util.find_spec("bitsandbytes") is None:
        return "bitsandbytes is not installed"
    if device.type != "cuda":
        return f"8-bit AdamW needs a CUDA GPU and training runs on {device.type}"
    return None


def check_optimizer(config: TrainingConfig, device: torch.device) -> None:
    """Refuse an explicit ``use_8bit_adam: true`` up front when it cannot run here.

    Raises:
        OptimizerUnavailable: bitsandbytes is missing, or there is no CUDA GPU.
    """
    if config.optimization.use_8bit_adam is not True:
        return
    fix = "or set optimization.use_8bit_adam: false (--set optimization.use_8bit_adam=false)"
    if importlib.util.find_spec("bitsandbytes") is None:
        raise OptimizerUnavailable(
            "optimization.use_8bit_adam is true but bitsandbytes is not installed; "
            f"install it with `pip install bitsandbytes` on a CUDA machine, {fix}"
        )
    if device.type != "cuda":
        raise OptimizerUnavailable(
            f"optimization.use_8bit_adam is true but training runs on {device.type}, and "
            f"8-bit AdamW needs a CUDA GPU; {fix}"
        )


def optimizer_name(config: TrainingConfig) -> str:
    """How kohya's ``ss_optimizer`` spells the optimizer."""
    if config.optimization.use_8bit_adam is True:
        return f"bitsandbytes.optim.adamw.AdamW8bit(weight_decay={WEIGHT_DECAY})"
    return f"torch.optim.adamw.AdamW(weight_decay={WEIGHT_DECAY})"


def build_optimizer(
    config: TrainingConfig,
    unet_params: list[torch.nn.Parameter],
    text_params: list[torch.nn.Parameter],
) -> torch.optim.Optimizer:
    groups: list[dict[str, Any]] = [{"params": unet_params, "lr": config.training.learning_rate}]
    if text_params:
        groups.append({"params": text_params, "lr": config.training.text_encoder_lr})
    if config.optimization.use_8bit_adam is True:
        import bitsandbytes  # type: ignore[import-not-found]

        optimizer: torch.optim.Optimizer = bitsandbytes.optim.AdamW8bit(
            groups, weight_decay=WEIGHT_DECAY
        )
        return optimizer
    return torch.optim.AdamW(groups, weight_decay=WEIGHT_DECAY)


def build_schedule(config: TrainingConfig, optimizer: torch.optim.Optimizer) -> Any:
    from diffusers.optimization import get_scheduler

    return get_scheduler(
        config.training.lr_scheduler,
        optimizer=optimizer,
        num_warmup_steps=config.training.lr_warmup_steps,
        num_training_steps=config.training.train_steps,
    )
