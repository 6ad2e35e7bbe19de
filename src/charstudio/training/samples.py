"""Sample images at each checkpoint: fixed prompts and seeds, so steps can be compared.

The pipeline is built from the training components themselves (the UNet with its LoRA
active), with a DDIM scheduler made from the base model's scheduler config, at the
training resolution. ``{trigger}`` in a prompt becomes the character's trigger word. The
models are switched to eval mode (no LoRA dropout) for sampling and back afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from charstudio.errors import storage_errors
from charstudio.training.config import SamplingSection
from charstudio.training.families import Family

__all__ = ["sample_prompts", "write_samples"]


def sample_prompts(sampling: SamplingSection, trigger_word: str) -> list[str]:
    return [p.replace("{trigger}", trigger_word) for p in sampling.prompts]


def _pipeline(family: Family, parts: dict[str, Any]) -> Any:
    import diffusers

    cls = getattr(diffusers, family.pipeline_class)
    ddim: Any = diffusers.DDIMScheduler
    scheduler = ddim.from_config(parts.pop("scheduler_config"))
    if family.name == "sd15":
        parts |= {"safety_checker": None, "feature_extractor": None}
        parts["requires_safety_checker"] = False
    pipe = cls(scheduler=scheduler, **parts)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@torch.no_grad()
def write_samples(
    *,
    folder: Path,
    family: Family,
    parts: dict[str, Any],
    sampling: SamplingSection,
    trigger_word: str,
    size: tuple[int, int],
) -> list[Path]:
    """Generate one image per (prompt, seed) into ``folder``; return their paths."""
    pipe = _pipeline(family, dict(parts))
    trained = [m for m in (pipe.unet, pipe.text_encoder) if m.training]
    for module in trained:
        module.eval()
    with storage_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for p, prompt in enumerate(sample_prompts(sampling, trigger_word)):
            for seed in sampling.seeds:
                generator = torch.Generator("cpu").manual_seed(seed)
                image = pipe(
                    prompt=prompt,
                    negative_prompt=sampling.negative_prompt,
                    num_inference_steps=sampling.steps,
                    guidance_scale=sampling.cfg,
                    width=size[0],
                    height=size[1],
                    generator=generator,
                ).images[0]
                path = folder / f"p{p}_s{seed}.png"
                with storage_errors(path):
                    image.save(path)
                written.append(path)
    finally:
        for module in trained:
            module.train()
    return written
