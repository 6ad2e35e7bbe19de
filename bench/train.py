"""LoRA training speed: charstudio's trainer against a diffusers-example loop, same model.

    .venv/bin/python bench/train.py [--size tiny|small|sd15] [--resolution 256] [--rank 32]
                                    [--steps 12] [--warmup 3] [--images 8]

Both runs train the same random-initialised model (built from configs and saved as a
diffusers folder; speed does not depend on the weights' values) on the same images, batch 1,
no gradient accumulation, AdamW, constant LR, gradient checkpointing on, fp16 autocast on a
GPU and fp32 on a CPU:

- **charstudio**: ``Trainer`` as ``charstudio train`` runs it — latents and text embeddings
  cached once, SDPA attention, LoRA on to_q/to_k/to_v/to_out (dropout 0, as the example),
  min-SNR weighting; no samples or checkpoints inside the timed steps.
- **diffusers example**: the loop of diffusers'
  ``examples/text_to_image/train_text_to_image_lora.py`` written out here —
  ``unet.add_adapter(LoraConfig(r, lora_alpha=r, init_lora_weights="gaussian",
  target_modules=[to_k, to_q, to_v, to_out.0]))``, and every step the VAE encodes the
  image (``latent_dist.sample()``) and the text encoder encodes the caption.

Each run is a separate process, so its peak memory (GPU: ``max_memory_allocated``; CPU: peak
RSS) is its own. Seconds per step are the median after ``--warmup`` steps. On a CPU shared
with other work, run it with ``OMP_NUM_THREADS=1``: with two threads, small ops wait on
thread hand-offs and the figures swing with the other processes' load. ``--size small``
is an SD1.5-shaped UNet at a quarter of the width (for CPUs); ``--size sd15`` is full size;
``--size tiny`` is the test suite's model (a check that both loops still run, in seconds).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _small_family() -> Any:
    """SD1.5's layout (4 levels, 2 layers, cross-attention 768) at a fifth of its width."""
    import dataclasses

    from charstudio.training.families import FAMILIES

    sd15 = FAMILIES["sd15"]
    unet = dict(sd15.components["unet"], block_out_channels=[64, 128, 256, 256])
    text = dict(sd15.components["text_encoder"], num_hidden_layers=4)
    vae = dict(sd15.components["vae"], block_out_channels=[32, 64, 128, 128])
    return dataclasses.replace(
        sd15, components=dict(sd15.components, unet=unet, vae=vae, text_encoder=text)
    )


def build_model(size: str, folder: Path) -> Path:
    """Random weights from the family configs, saved as a diffusers folder."""
    from diffusers import (
        AutoencoderKL,
        DDPMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from charstudio.training.families import FAMILIES, write_config_folder

    if size == "tiny":
        sys.path.insert(0, str(ROOT))
        from tests.training.tiny_models import tiny_family

        family = tiny_family("sd15")
    else:
        family = FAMILIES["sd15"] if size == "sd15" else _small_family()
    configs = write_config_folder(family, folder / "configs")
    torch.manual_seed(0)
    pipe = StableDiffusionPipeline(
        unet=UNet2DConditionModel.from_config(family.components["unet"]),
        vae=AutoencoderKL.from_config(family.components["vae"]),
        text_encoder=CLIPTextModel(CLIPTextConfig(**family.components["text_encoder"])),
        tokenizer=CLIPTokenizer.from_pretrained(configs / "tokenizer"),
        scheduler=DDPMScheduler.from_config(family.components["scheduler"]),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder / "model")
    return folder / "model"


def build_set(folder: Path, count: int, resolution: int) -> Path:
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "captions").mkdir()
    for i in range(count):
        small = rng.integers(0, 255, (resolution // 16, resolution // 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((resolution, resolution)).save(
            folder / "images" / f"bench_{i + 1:03d}.png"
        )
        (folder / "captions" / f"bench_{i + 1:03d}.txt").write_text(
            f"benchcharacter, person, photo {i}"
        )
    (folder / "config.json").write_text(json.dumps({"trigger_word": "benchcharacter"}))
    return folder


def _peak_memory_mb(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_ours(args: argparse.Namespace, model: Path, data: Path, work: Path) -> dict[str, float]:
    from charstudio.training.config import load_config
    from charstudio.training.trainer import Trainer, TrainRequest

    config = load_config(
        overrides=[
            f"model.base_checkpoint={model}",
            f"training.resolution={args.resolution}",
            f"training.train_steps={args.steps}",
            f"training.save_every={args.steps}",
            "training.gradient_accumulation_steps=1",
            "training.lr_scheduler=constant",
            "training.lr_warmup_steps=0",
            f"lora.rank={args.rank}",
            f"lora.alpha={args.rank}",
            "lora.dropout=0",  # the diffusers example has no LoRA dropout
            "augmentation.random_flip=false",
            "optimization.use_8bit_adam=false",
            "sampling.enabled=false",
        ]
    )
    stamps: list[float] = []
    request = TrainRequest(
        config=config, name="bench", trigger_word="benchcharacter", set_folder=data, run_dir=work
    )
    Trainer(request, progress=lambda step, total, loss: stamps.append(time.perf_counter())).run()
    return {"s_per_step": statistics.median(np.diff(stamps[args.warmup - 1 :]).tolist())}


def run_baseline(args: argparse.Namespace, model: Path, data: Path) -> dict[str, float]:
    """The diffusers text-to-image LoRA example's loop, on the same model and images."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from peft import LoraConfig
    from transformers import CLIPTextModel, CLIPTokenizer

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    weight_dtype = torch.float16 if device.type == "cuda" else torch.float32
    noise_scheduler = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
    tokenizer = CLIPTokenizer.from_pretrained(model, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(model, subfolder="text_encoder").to(
        device, weight_dtype
    )
    vae = AutoencoderKL.from_pretrained(model, subfolder="vae").to(device, weight_dtype)
    unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet")
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
    unet.to(device, weight_dtype)
    targets = ["to_k", "to_q", "to_v", "to_out.0"]
    config = LoraConfig(
        r=args.rank, lora_alpha=args.rank, init_lora_weights="gaussian", target_modules=targets
    )
    unet.add_adapter(config)
    params = [p for p in unet.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.float()
    unet.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    images = sorted((data / "images").glob("*.png"))
    stamps = []
    for step in range(args.steps):
        path = images[step % len(images)]
        pixels = torch.from_numpy(
            np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 127.5 - 1
        )
        pixels = pixels.permute(2, 0, 1)[None].to(device, weight_dtype)
        caption = (data / "captions" / f"{path.stem}.txt").read_text()
        ids = tokenizer(
            caption, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
        ).input_ids
        with torch.autocast(device.type, dtype=weight_dtype, enabled=device.type == "cuda"):
            latents = vae.encode(pixels).latent_dist.sample() * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            timesteps = torch.randint(
                0, noise_scheduler.config.num_train_timesteps, (1,), device=device
            )
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            hidden = text_encoder(ids.to(device), return_dict=False)[0]
            pred = unet(noisy, timesteps, hidden, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(pred.float(), noise.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
    return {"s_per_step": statistics.median(np.diff(stamps[args.warmup - 1 :]).tolist())}


def child(args: argparse.Namespace) -> None:
    work = Path(args.work)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.only == "ours":
        result = run_ours(args, work / "model", work / "set", work / f"run-{time.time_ns()}")
    else:
        result = run_baseline(args, work / "model", work / "set")
    result["peak_memory_mb"] = _peak_memory_mb(device)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=["tiny", "small", "sd15"], default="small")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--only", choices=["ours", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        child(args)
        return
    if not 1 <= args.warmup < args.steps or args.images < 1:
        parser.error("needs 1 <= --warmup < --steps (a timed step at least) and --images >= 1")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with tempfile.TemporaryDirectory(prefix="charstudio-bench-") as tmp:
        work = Path(tmp)
        build_model(args.size, work)
        build_set(work / "set", args.images, args.resolution)
        rows = {}
        for which in ("ours", "baseline"):
            command = [
                sys.executable,
                __file__,
                *sys.argv[1:],
                "--only",
                which,
                "--work",
                str(work),
            ]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:  # the loop's own error, not a bare CalledProcessError
                sys.exit(f"the {which} loop failed ({done.returncode}):\n{done.stderr[-4000:]}")
            rows[which] = json.loads(done.stdout.strip().splitlines()[-1])
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU x{torch.get_num_threads()}"
    print(
        f"model {args.size}, {args.resolution}px, rank {args.rank}, batch 1, {args.steps} steps "
        f"({args.warmup} warm-up), {device}: {name}"
    )
    print(f"{'loop':<20}{'s/step':>10}{'it/s':>10}{'peak MB':>12}")
    for label, key in (("charstudio", "ours"), ("diffusers example", "baseline")):
        r = rows[key]
        speed, peak = r["s_per_step"], r["peak_memory_mb"]
        print(f"{label:<20}{speed:>10.3f}{1 / speed:>10.2f}{peak:>12.0f}")
    ratio = rows["baseline"]["s_per_step"] / rows["ours"]["s_per_step"]
    print(f"charstudio is {ratio:.2f}x the example's speed")


if __name__ == "__main__":
    main()
