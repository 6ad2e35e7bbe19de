"""The kohya sd-scripts command equivalent to a charstudio config."""

from __future__ import annotations

from pathlib import Path

from charstudio.training.config import load_config
from charstudio.training.kohya_export import kohya_command


def _args(*overrides: str) -> list[str]:
    config = load_config(overrides=["model.base_checkpoint=/m/x.safetensors", *overrides])
    return kohya_command(
        config,
        dataset_toml=Path("/d/dataset.toml"),
        prompts=Path("/d/p.txt"),
        output_dir=Path("/out"),
        output_name="yuki_v2",
    )


def test_defaults_translate_to_sd_scripts_flags() -> None:
    args = _args()
    assert args[1] == "train_network.py"
    for flag in (
        "--network_dim=32",
        "--network_alpha=32.0",
        "--learning_rate=0.0001",
        "--lr_scheduler=cosine",
        "--max_train_steps=1500",
        "--optimizer_type=AdamW8bit",
        "--mixed_precision=fp16",
        "--network_train_unet_only",
        "--gradient_checkpointing",
        "--cache_latents",
        "--min_snr_gamma=5.0",
        "--output_name=yuki_v2",
        "--caption_extension=.txt",
    ):
        assert flag in args, flag
    assert not any(a.startswith("--noise_offset") for a in args)


def test_sdxl_text_encoder_and_noise_offset() -> None:
    args = _args(
        "model.family=sdxl",
        "training.train_text_encoder=true",
        "training.noise_offset=0.05",
        "optimization.use_8bit_adam=false",
        "training.min_snr_gamma=null",
    )
    assert args[1] == "sdxl_train_network.py"
    assert "--text_encoder_lr=5e-05" in args and "--network_train_unet_only" not in args
    assert "--noise_offset=0.05" in args and "--optimizer_type=AdamW" in args
    assert not any(a.startswith("--min_snr_gamma") for a in args)
