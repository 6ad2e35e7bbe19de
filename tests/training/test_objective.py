"""The objective: min-SNR-gamma weights, noise offset, the v-prediction target."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from charstudio.training.objective import denoising_loss, noise_batch

SCHEDULER = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
}


def _batch(prediction_type: str = "epsilon") -> tuple[DDPMScheduler, torch.Tensor]:
    scheduler = DDPMScheduler(**SCHEDULER, prediction_type=prediction_type)  # type: ignore[no-untyped-call]
    return scheduler, torch.randn((4, 4, 8, 8), generator=torch.Generator().manual_seed(0))


def test_noise_is_reproducible_and_offset_shifts_channel_means() -> None:
    scheduler, latents = _batch()
    a = noise_batch(latents, scheduler, offset=0.0, generator=torch.Generator().manual_seed(1))
    b = noise_batch(latents, scheduler, offset=0.0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a.noise, b.noise) and torch.equal(a.timesteps, b.timesteps)
    shifted = noise_batch(
        latents, scheduler, offset=1.0, generator=torch.Generator().manual_seed(1)
    )
    spread = shifted.noise.mean(dim=(2, 3)).std()
    assert spread > 3 * a.noise.mean(dim=(2, 3)).std()  # per-channel constant shifts


def test_min_snr_weights_follow_the_paper() -> None:
    scheduler, latents = _batch()
    batch = noise_batch(latents, scheduler, offset=0.0, generator=torch.Generator().manual_seed(2))
    batch.timesteps = torch.tensor([10, 200, 600, 990])
    prediction = batch.noise + 0.5  # every squared error is 0.25
    plain = denoising_loss(prediction, latents, batch, scheduler, min_snr_gamma=None)
    assert torch.isclose(plain, torch.tensor(0.25))
    weighted = denoising_loss(prediction, latents, batch, scheduler, min_snr_gamma=5.0)
    alpha_bar = scheduler.alphas_cumprod[batch.timesteps]
    snr = alpha_bar / (1 - alpha_bar)
    expected = (0.25 * torch.clamp(snr, max=5.0) / snr).mean()
    assert torch.isclose(weighted, expected)
    assert weighted < plain  # low-noise steps (SNR > 5) are weighted down


def test_v_prediction_target() -> None:
    scheduler, latents = _batch("v_prediction")
    batch = noise_batch(latents, scheduler, offset=0.0, generator=torch.Generator().manual_seed(3))
    velocity = scheduler.get_velocity(latents, batch.noise, batch.timesteps)
    assert denoising_loss(velocity, latents, batch, scheduler, min_snr_gamma=None) == 0
    assert denoising_loss(batch.noise, latents, batch, scheduler, min_snr_gamma=None) > 0
