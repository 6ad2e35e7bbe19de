"""``charstudio train NAME --export-kohya``: the same run as a kohya sd-scripts command.

Writes, into ``<out>/``: ``img/1_<trigger>/`` (images with their ``.txt`` captions side by
side, as sd-scripts wants them), ``dataset.toml`` (``--dataset_config``),
``sample_prompts.txt`` (``--sample_prompts``, with kohya's ``--d`` seed and ``--l`` CFG) and
``train.sh`` holding the ``accelerate launch train_network.py ...`` command (``sdxl_...``
for SDXL). Flags are sd-scripts' (docs/reference/lora-trainers.md, section 1). One
difference cannot be expressed: sd-scripts' ``networks.lora`` trains every linear layer of
the transformer blocks, not only ``lora.target_modules``; the script says so in a comment.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from charstudio.training.config import TrainingConfig
from charstudio.training.types import KohyaExport

__all__ = ["export_kohya", "kohya_command"]


def _flag(name: str, value: object = None) -> str:
    return f"--{name}" if value is None else f"--{name}={shlex.quote(str(value))}"


def kohya_command(
    config: TrainingConfig, *, dataset_toml: Path, prompts: Path, output_dir: Path, output_name: str
) -> list[str]:
    """The ``accelerate launch`` argument list equivalent to ``config``."""
    t, o, lora = config.training, config.optimization, config.lora
    script = "sdxl_train_network.py" if config.model.family == "sdxl" else "train_network.py"
    args = [
        "accelerate launch --num_cpu_threads_per_process 1",
        script,
        _flag("pretrained_model_name_or_path", config.model.base_checkpoint),
        _flag("dataset_config", dataset_toml),
        _flag("output_dir", output_dir),
        _flag("output_name", output_name),
        _flag("save_model_as", "safetensors"),
        _flag("network_module", "networks.lora"),
        _flag("network_dim", lora.rank),
        _flag("network_alpha", lora.alpha),
        _flag("network_dropout", lora.dropout),
        _flag("learning_rate", t.learning_rate),
        _flag("unet_lr", t.learning_rate),
        _flag("lr_scheduler", t.lr_scheduler),
        _flag("lr_warmup_steps", t.lr_warmup_steps),
        _flag("max_train_steps", t.train_steps),
        _flag("save_every_n_steps", t.save_every),
        _flag("gradient_accumulation_steps", t.gradient_accumulation_steps),
        # sd-scripts runs on a CUDA box with bitsandbytes installed: "auto" is 8-bit there.
        _flag("optimizer_type", "AdamW" if o.use_8bit_adam is False else "AdamW8bit"),
        _flag("mixed_precision", o.mixed_precision),
        _flag("save_precision", "float" if lora.save_precision == "fp32" else lora.save_precision),
        _flag("seed", t.seed),
        _flag("max_grad_norm", t.max_grad_norm or 0.0),
        _flag("sdpa"),
        _flag("caption_extension", ".txt"),
        _flag("sample_prompts", prompts),
        _flag("sample_every_n_steps", t.save_every),
        _flag("sample_sampler", "ddim"),
    ]
    if t.train_text_encoder:
        args.append(_flag("text_encoder_lr", t.text_encoder_lr))
    else:
        args.append(_flag("network_train_unet_only"))
    if o.gradient_checkpointing:
        args.append(_flag("gradient_checkpointing"))
    if t.cache_latents:
        args.append(_flag("cache_latents"))
    if t.cache_to_disk:
        args.append(_flag("cache_latents_to_disk"))
    if t.min_snr_gamma is not None:
        args.append(_flag("min_snr_gamma", t.min_snr_gamma))
    if t.noise_offset:
        args.append(_flag("noise_offset", t.noise_offset))
    if config.model.vae is not None:
        args.append(_flag("vae", config.model.vae))
    return args


def _dataset_toml(config: TrainingConfig, image_dir: Path) -> str:
    a = config.augmentation
    lines = [
        "# kohya sd-scripts dataset config, written by charstudio train --export-kohya",
        "[general]",
        'caption_extension = ".txt"',
        "shuffle_caption = false",
        "keep_tokens = 1",
        "",
        "[[datasets]]",
        f"resolution = {config.training.resolution}",
        f"batch_size = {config.training.batch_size}",
        "enable_bucket = true",
        "bucket_no_upscale = true",
        "",
        "  [[datasets.subsets]]",
        f"  image_dir = {str(image_dir)!r}",
        "  num_repeats = 1",
        f"  flip_aug = {str(a.random_flip).lower()}",
        f"  color_aug = {str(a.color_jitter).lower()}",
        f"  random_crop = {str(a.random_crop).lower()}",
        "",
    ]
    return "\n".join(lines).replace("'", '"')


def export_kohya(
    config: TrainingConfig,
    *,
    set_folder: Path,
    trigger_word: str,
    out: Path,
    output_name: str,
    lora_dir: Path,
) -> KohyaExport:
    """Lay out the set for sd-scripts and write the dataset TOML, prompts and command."""
    image_dir = out / "img" / f"1_{trigger_word}"
    shutil.rmtree(out / "img", ignore_errors=True)
    image_dir.mkdir(parents=True)
    for image in sorted((set_folder / "images").glob("*.png")):
        shutil.copyfile(image, image_dir / image.name)
        caption = set_folder / "captions" / f"{image.stem}.txt"
        if caption.is_file():
            shutil.copyfile(caption, image_dir / caption.name)
    toml = out / "dataset.toml"
    toml.write_text(_dataset_toml(config, image_dir), encoding="utf-8")
    s = config.sampling
    side = config.training.resolution
    prompts = out / "sample_prompts.txt"
    prompts.write_text(
        "".join(
            f"{p.replace('{trigger}', trigger_word)} --n {s.negative_prompt} --w {side} "
            f"--h {side} --d {seed} --l {s.cfg} --s {s.steps}\n"
            for p in s.prompts
            for seed in s.seeds
        ),
        encoding="utf-8",
    )
    args = kohya_command(
        config, dataset_toml=toml, prompts=prompts, output_dir=lora_dir, output_name=output_name
    )
    command = " \\\n  ".join(args)
    script = out / "train.sh"
    script.write_text(
        "#!/bin/sh\n"
        "# Run from a kohya-ss/sd-scripts checkout. sd-scripts' networks.lora trains every\n"
        "# linear layer of the transformer blocks; charstudio trains lora.target_modules only.\n"
        f"{command}\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return KohyaExport(command=command, script=str(script), dataset_toml=str(toml))
