"""8-bit AdamW is refused up front, with the fix, where it cannot run."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from charstudio.training.config import load_config
from charstudio.training.optim import check_optimizer, choose_optimizer, optimizer_name
from charstudio.training.types import OptimizerUnavailable


def test_8bit_needs_a_cuda_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "bitsandbytes" else real(name, *a),
    )
    with pytest.raises(OptimizerUnavailable) as caught:
        check_optimizer(load_config(overrides=["optimization.use_8bit_adam=true"]), cpu)
    assert str(caught.value) == (
        "optimization.use_8bit_adam is true but training runs on cpu, and 8-bit AdamW needs a "
        "CUDA GPU; or set optimization.use_8bit_adam: false "
        "(--set optimization.use_8bit_adam=false)"
    )


def test_plain_adamw_is_always_available() -> None:
    config = load_config(overrides=["optimization.use_8bit_adam=false"])
    check_optimizer(config, torch.device("cpu"))
    assert optimizer_name(config) == "torch.optim.adamw.AdamW(weight_decay=0.01)"


def test_auto_is_the_default_and_falls_back_to_adamw_saying_so() -> None:
    # The default used to be the original design's `true`: every run on a machine without
    # bitsandbytes stopped at once.
    config = load_config()
    assert config.optimization.use_8bit_adam == "auto"
    assert importlib.util.find_spec("bitsandbytes") is None  # as on these machines
    settled, note = choose_optimizer(config, torch.device("cpu"))
    assert settled.optimization.use_8bit_adam is False
    assert note == (
        "optimization.use_8bit_adam is auto: training with AdamW (bitsandbytes is not installed)"
    )
    assert optimizer_name(settled) == "torch.optim.adamw.AdamW(weight_decay=0.01)"


def test_auto_takes_8bit_where_it_can_run(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "bitsandbytes" else real(name, *a),
    )
    settled, note = choose_optimizer(load_config(), torch.device("cuda"))
    assert settled.optimization.use_8bit_adam is True
    assert note == (
        "optimization.use_8bit_adam is auto: training with 8-bit AdamW (bitsandbytes, CUDA)"
    )
    settled, note = choose_optimizer(load_config(), torch.device("cpu"))
    assert settled.optimization.use_8bit_adam is False
    assert note is not None and "needs a CUDA GPU and training runs on cpu" in note


def test_an_explicit_true_is_still_refused_without_bitsandbytes() -> None:
    config = load_config(overrides=["optimization.use_8bit_adam=true"])
    with pytest.raises(OptimizerUnavailable, match="bitsandbytes is not installed"):
        choose_optimizer(config, torch.device("cpu"))
