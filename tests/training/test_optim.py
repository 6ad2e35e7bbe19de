"""8-bit AdamW is refused up front, with the fix, where it cannot run."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from charstudio.training.config import load_config
from charstudio.training.optim import check_optimizer, optimizer_name
from charstudio.training.types import OptimizerUnavailable


def test_8bit_needs_a_cuda_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "bitsandbytes" else real(name, *a),
    )
    with pytest.raises(OptimizerUnavailable) as caught:
        check_optimizer(load_config(), torch.device("cpu"))
    assert str(caught.value) == (
        "optimization.use_8bit_adam is true but training runs on cpu, and 8-bit AdamW needs a "
        "CUDA GPU; or set optimization.use_8bit_adam: false "
        "(--set optimization.use_8bit_adam=false)"
    )


def test_plain_adamw_is_always_available() -> None:
    config = load_config(overrides=["optimization.use_8bit_adam=false"])
    check_optimizer(config, torch.device("cpu"))
    assert optimizer_name(config) == "torch.optim.adamw.AdamW(weight_decay=0.01)"
