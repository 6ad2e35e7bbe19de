"""The LoRA file: kohya names every loader maps, and diffusers reproduces the trained effect."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from charstudio.training.config import load_config
from charstudio.training.kohya_format import (
    addnet_hashes,
    kohya_state_dict,
    text_model_path,
    write_safetensors,
)
from charstudio.training.loading import load_base_model
from charstudio.training.trainer import Trainer, TrainOutcome, TrainRequest
from tests.training.conftest import TRIGGER, TinyModel, tiny_overrides, write_training_set

# ComfyUI's text-encoder map (comfy/lora.py, model_lora_keys_clip): per layer, these six.
CLIP_MODULES = (
    "mlp.fc1",
    "mlp.fc2",
    "self_attn.k_proj",
    "self_attn.q_proj",
    "self_attn.v_proj",
    "self_attn.out_proj",
)


def _train(model: TinyModel, root: Path) -> tuple[TrainOutcome, Path]:
    config = load_config(
        overrides=tiny_overrides(
            model,
            "training.train_text_encoder=true",
            "training.learning_rate=2e-2",
            "training.text_encoder_lr=2e-2",
        )
    )
    request = TrainRequest(
        config=config,
        name="yuki",
        trigger_word=TRIGGER,
        set_folder=write_training_set(root / "set"),
        run_dir=root / "run",
    )
    outcome = Trainer(request).run()
    tensors = kohya_state_dict(
        family=outcome.base.family,
        unet=outcome.adapters["unet"],
        text_encoders=[outcome.adapters[n] for n in outcome.base.family.text_encoders],
        alpha=config.lora.alpha,
        precision="fp32",
    )
    file = root / "yuki_v1.safetensors"
    write_safetensors(file, tensors, {"ss_network_dim": "4"})
    return outcome, file


@pytest.fixture(scope="module")
def trained_sd15(
    tiny_sd15: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainOutcome, Path]:
    return _train(tiny_sd15, tmp_path_factory.mktemp("kohya_sd15"))


@pytest.fixture(scope="module")
def trained_sdxl(
    tiny_sdxl: TinyModel, tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainOutcome, Path]:
    return _train(tiny_sdxl, tmp_path_factory.mktemp("kohya_sdxl"))


def comfyui_names(base: Any) -> set[str]:
    """The LoRA module names ComfyUI maps for this model (docs/reference/lora-trainers.md,
    section 2.4)."""
    names = {
        "lora_unet_" + name.replace(".", "_")
        for name, module in base.unet.named_modules()
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)) and "lora_" not in name
    }
    names = {n.removesuffix("_base_layer") for n in names}
    for prefix, encoder in zip(base.family.kohya_te_prefixes, base.text_encoders, strict=True):
        layers = encoder.config.num_hidden_layers
        names |= {
            f"{prefix}_text_model_encoder_layers_{i}_{m.replace('.', '_')}"
            for i in range(layers)
            for m in CLIP_MODULES
        }
    return names


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_every_key_maps_to_a_module(family: str, request: pytest.FixtureRequest) -> None:
    outcome, file = request.getfixturevalue(f"trained_{family}")
    tensors = load_file(str(file))
    accepted = comfyui_names(outcome.base)
    modules: dict[str, set[str]] = {}
    for key in tensors:
        match = re.fullmatch(r"(.+)\.(lora_down\.weight|lora_up\.weight|alpha)", key)
        assert match, f"{key} has no kohya suffix"
        modules.setdefault(match[1], set()).add(match[2])
    unmapped = sorted(m for m in modules if m not in accepted)
    assert unmapped == []
    assert all(
        parts == {"lora_down.weight", "lora_up.weight", "alpha"} for parts in modules.values()
    )
    te_prefixes = outcome.base.family.kohya_te_prefixes
    for prefix in te_prefixes:  # attention of every text-encoder layer
        assert sum(m.startswith(prefix + "_") for m in modules) == 2 * 4
    assert not any(re.match(r"lora_te\d?_encoder_", m) for m in modules)  # ComfyUI ignores these
    # Exactly the UNet's attention projections, with shapes that fit them.
    targets = (".to_q", ".to_k", ".to_v", ".to_out.0")
    linears = {
        "lora_unet_" + name.replace(".", "_"): module
        for name, module in outcome.base.unet.named_modules()
        if name.endswith(targets) and hasattr(module, "base_layer")
    }
    assert {m for m in modules if m.startswith("lora_unet_")} == set(linears)
    for name, module in linears.items():
        layer = module.base_layer
        assert tensors[f"{name}.lora_down.weight"].shape == (4, layer.in_features)
        assert tensors[f"{name}.lora_up.weight"].shape == (layer.out_features, 4)
        assert tensors[f"{name}.alpha"].ndim == 0 and float(tensors[f"{name}.alpha"]) == 4.0


def _outputs(pipe: Any, family: str) -> tuple[torch.Tensor, torch.Tensor]:
    """UNet noise prediction and text-encoder output on fixed inputs (eval mode)."""
    gen = torch.Generator().manual_seed(0)
    ids = pipe.tokenizer(
        [f"{TRIGGER}, portrait"], padding="max_length", max_length=77, return_tensors="pt"
    ).input_ids
    pipe.unet.eval()
    pipe.text_encoder.eval()
    with torch.no_grad():
        text = pipe.text_encoder(ids, output_hidden_states=True)
        hidden = text.hidden_states[-1] if family == "sd15" else text.hidden_states[-2]
        context = torch.randn((1, 77, pipe.unet.config.cross_attention_dim), generator=gen)
        latents = torch.randn((1, 4, 8, 8), generator=gen)
        kwargs: dict[str, Any] = {}
        if family == "sdxl":
            kwargs["added_cond_kwargs"] = {
                "text_embeds": torch.randn(
                    (1, pipe.text_encoder_2.config.projection_dim), generator=gen
                ),
                "time_ids": torch.tensor([[16.0, 16.0, 0.0, 0.0, 16.0, 16.0]]),
            }
        noise = pipe.unet(
            latents, torch.tensor([500]), encoder_hidden_states=context, **kwargs
        ).sample
    return noise, hidden


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_diffusers_load_lora_weights_reproduces_the_trained_adapter(
    family: str, request: pytest.FixtureRequest
) -> None:
    outcome, file = request.getfixturevalue(f"trained_{family}")
    model: TinyModel = request.getfixturevalue(f"tiny_{family}")
    trained_noise, trained_text = _outputs(outcome.base.pipeline, family)
    fresh = load_base_model(model.folder, family=family)  # type: ignore[arg-type]
    base_noise, base_text = _outputs(fresh.pipeline, family)
    assert not torch.allclose(trained_noise, base_noise, atol=1e-4)  # the LoRA does something
    assert not torch.allclose(trained_text, base_text, atol=1e-4)
    fresh.pipeline.load_lora_weights(str(file))
    loaded_noise, loaded_text = _outputs(fresh.pipeline, family)
    torch.testing.assert_close(loaded_noise, trained_noise, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(loaded_text, trained_text, atol=1e-5, rtol=1e-4)


def test_hashes_cover_tensors_and_ss_metadata_only() -> None:
    big = {"lora_unet_x.lora_down.weight": torch.arange(600_000, dtype=torch.float32)}
    first = addnet_hashes(big, {"ss_network_dim": "4", "modelspec.title": "a"})
    assert first == addnet_hashes(big, {"ss_network_dim": "4", "modelspec.title": "b"})
    # The legacy hash reads 64 KiB at 1 MiB, so the (ss_*) header length moves it.
    assert first[1] != addnet_hashes(big, {"ss_network_dim": "4", "ss_seed": "1" * 50})[1]
    changed = {"lora_unet_x.lora_down.weight": torch.arange(600_000, dtype=torch.float32) + 1}
    assert addnet_hashes(changed, {"ss_network_dim": "4"})[0] != first[0]
    assert len(first[0]) == 64 and len(first[1]) == 8


def test_text_model_path() -> None:
    assert (
        text_model_path("encoder.layers.0.self_attn.q_proj")
        == "text_model.encoder.layers.0.self_attn.q_proj"
    )
    assert (
        text_model_path("text_model.encoder.layers.0.mlp.fc1")
        == "text_model.encoder.layers.0.mlp.fc1"
    )


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        ("ENOSPC", "DiskFull", r"^could not save x.safetensors: the disk is full; nothing partial"),
        ("EDQUOT", "DiskFull", r"^could not save x.safetensors: the quota is used up"),
        ("EACCES", "DataDirNotWritable", r"^cannot write .*x.safetensors \(Permission denied"),
        ("EIO", "StorageError", r"^storage failed writing .*x.safetensors \(Input/output"),
    ],
)
def test_a_failed_write_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str, error: str, message: str
) -> None:
    """A full disk is DiskFull with the resume advice; other storage errors keep their
    class (a permission is not a full disk); nothing partial is left either way."""
    import errno
    import os

    import charstudio.errors
    import charstudio.training.kohya_format as kohya

    def broken(fd: int, data: Any) -> int:
        number = getattr(errno, code)
        raise OSError(number, os.strerror(number))

    monkeypatch.setattr(kohya.os, "write", broken)
    with pytest.raises(getattr(charstudio.errors, error), match=message) as caught:
        write_safetensors(tmp_path / "x.safetensors", {"a": torch.ones(2)}, {})
    assert type(caught.value).__name__ == error
    assert list(tmp_path.iterdir()) == []
