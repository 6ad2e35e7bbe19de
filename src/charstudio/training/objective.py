"""The denoising objective: noise (with offset), timesteps, the target, min-SNR weighting.

- Noise offset (Guttenberg, "Diffusion with Offset Noise", 2023; kohya ``--noise_offset``):
  ``noise += offset * N(0, 1)`` per sample and channel, constant over the image, so the
  model learns to change an image's overall brightness.
- Min-SNR-gamma weighting (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting
  Strategy", 2023, eq. 5): with ``snr = alpha_bar / (1 - alpha_bar)``, the per-sample MSE is
  weighted by ``min(snr, gamma) / snr`` for epsilon prediction and
  ``min(snr, gamma) / (snr + 1)`` for v-prediction.
- The target is the noise (epsilon) or ``alpha_t * noise - sigma_t * x0`` (v-prediction),
  whichever the scheduler's ``prediction_type`` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.nn import functional

__all__ = ["NoisedBatch", "denoising_loss", "noise_batch"]


@dataclass
class NoisedBatch:
    noisy: torch.Tensor
    noise: torch.Tensor
    timesteps: torch.Tensor


def noise_batch(
    latents: torch.Tensor, scheduler: Any, *, offset: float, generator: torch.Generator
) -> NoisedBatch:
    """Draw noise and timesteps (from ``generator``, on the CPU) and noise the latents."""
    b, c = latents.shape[:2]
    noise = torch.randn(latents.shape, generator=generator)
    if offset:
        noise = noise + offset * torch.randn((b, c, 1, 1), generator=generator)
    steps = scheduler.config.num_train_timesteps
    timesteps = torch.randint(0, steps, (b,), generator=generator)
    noise = noise.to(latents.device, latents.dtype)
    timesteps = timesteps.to(latents.device)
    return NoisedBatch(
        noisy=scheduler.add_noise(latents, noise, timesteps), noise=noise, timesteps=timesteps
    )


def _snr(scheduler: Any, timesteps: torch.Tensor) -> torch.Tensor:
    alpha_bar: torch.Tensor = scheduler.alphas_cumprod.to(timesteps.device)[timesteps].float()
    return alpha_bar / (1.0 - alpha_bar)


def denoising_loss(
    prediction: torch.Tensor,
    latents: torch.Tensor,
    batch: NoisedBatch,
    scheduler: Any,
    *,
    min_snr_gamma: float | None,
) -> torch.Tensor:
    """Mean (optionally min-SNR-weighted) MSE between the prediction and the target."""
    v_prediction = scheduler.config.prediction_type == "v_prediction"
    target = (
        scheduler.get_velocity(latents, batch.noise, batch.timesteps)
        if v_prediction
        else batch.noise
    )
    per_sample = functional.mse_loss(prediction.float(), target.float(), reduction="none")
    per_sample = per_sample.mean(dim=list(range(1, per_sample.ndim)))
    if min_snr_gamma is not None:
        snr = _snr(scheduler, batch.timesteps)
        clipped = torch.clamp(snr, max=min_snr_gamma)
        weight = clipped / (snr + 1.0) if v_prediction else clipped / snr
        per_sample = per_sample * weight
    return per_sample.mean()
