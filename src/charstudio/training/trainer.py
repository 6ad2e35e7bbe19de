"""The training loop, as a numbered recipe (:meth:`Trainer.run`).

1. Validate: pick the device; refuse an optimizer that cannot run here or a missing set.
2. Load the base model, offline.
3. Read the training set (sizes depend on the model's down-sampling).
4. Add the LoRA layers; SDPA attention; gradient checkpointing; weight precision.
5. Cache latents and (with frozen text encoders) text embeddings.
6. Build the optimizer and the LR schedule; restore a checkpoint when resuming.
7. Train: gradient accumulation, clipping, schedule, a JSON-lines loss log, progress, and
   every ``save_every`` steps a checkpoint (with a loadable kohya LoRA of that step) plus
   sample images. Ctrl-C or running out of memory saves a checkpoint of the last finished
   step before stopping; a NaN or infinite loss stops at that step, before the optimizer
   touches the weights, keeping the last (finite) checkpoint.
8. Hand back the adapter weights and the loss curve.

Step 4 lives in ``trainable.py``, finding and restoring the checkpoint to resume (steps 1
and 6) in ``resume.py``, and the loop of step 7 here. Randomness is a function of
``(seed, micro-step)`` (see ``checkpoints.py``), which is what makes a resumed run end with
the same weights as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from charstudio.errors import storage_errors
from charstudio.training import adapters as lora_layers
from charstudio.training.checkpoints import diverged, save_checkpoint
from charstudio.training.config import TrainingConfig
from charstudio.training.data import TrainingSetInfo, epoch_batches, read_training_set
from charstudio.training.encoding import latent_cache, text_cache
from charstudio.training.loading import BaseModel, load_base_model
from charstudio.training.optim import build_optimizer, build_schedule, choose_optimizer
from charstudio.training.output import write_step_lora
from charstudio.training.resume import checkpoint_to_resume, restore
from charstudio.training.samples import write_samples
from charstudio.training.step import Batches, StepInputs, fixed_loss, micro_step
from charstudio.training.trainable import adapter_states, prepare_models, trained_encoders
from charstudio.training.types import TrainingInterrupted, TrainingOutOfMemory

__all__ = ["StepCallback", "TrainOutcome", "TrainRequest", "Trainer"]

# step (1-based), total steps, loss of that step
StepCallback = Callable[[int, int, float], None]


@dataclass(frozen=True)
class TrainRequest:
    config: TrainingConfig
    name: str
    trigger_word: str
    set_folder: Path
    run_dir: Path
    resume: bool = False
    device: str | None = None  # default: cuda when available, else cpu


@dataclass
class TrainOutcome:
    base: BaseModel
    training_set: TrainingSetInfo
    adapters: dict[str, dict[str, torch.Tensor]]
    losses: list[float]
    fixed_losses: dict[int, float]
    samples: list[Path]
    resumed_from: int | None
    device: str
    precision: str
    seconds: float
    checkpoints: list[int] = field(default_factory=list)
    # The config as run: use_8bit_adam settled to true/false for this machine.
    config: TrainingConfig | None = None
    # One line each, for the user: which optimizer "auto" chose.
    notes: list[str] = field(default_factory=list)


class Trainer:
    """One training run; build, then :meth:`run`."""

    def __init__(self, request: TrainRequest, *, progress: StepCallback | None = None) -> None:
        self.request = request
        self.config = request.config
        self.progress = progress or (lambda step, total, loss: None)
        self.log_path = request.run_dir / "loss.jsonl"

    def run(self) -> TrainOutcome:
        started = time.monotonic()
        # 1. Validate: device, optimizer, the training set (before any model loads).
        device = torch.device(request_device(self.request.device))
        cfg, optimizer_note = choose_optimizer(self.config, device)
        self.config = cfg
        read_training_set(self.request.set_folder, name=self.request.name, resolution=8, multiple=8)
        checkpoint = checkpoint_to_resume(self.request.run_dir, resume=self.request.resume)
        # 2. Base model.
        base = load_base_model(
            cfg.model.base_checkpoint,
            family=cfg.model.family,
            vae=cfg.model.vae,
            config_dir=cfg.model.config_dir,
        )
        # 3. Training set.
        data = read_training_set(
            self.request.set_folder,
            name=self.request.name,
            resolution=cfg.training.resolution,
            multiple=size_multiple(base),
        )
        # 4. LoRA layers, attention, checkpointing, precision.
        precision = prepare_models(base, cfg, device)
        # 5. Caches.
        batches = self._batches(base, data)
        # 6. Optimizer, schedule, resume.
        unet_params = lora_layers.adapter_parameters(base.unet)
        text_params = [
            p for e in trained_encoders(base, cfg) for p in lora_layers.adapter_parameters(e)
        ]
        optimizer = build_optimizer(cfg, unet_params, text_params)
        schedule = build_schedule(cfg, optimizer)
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        start = restore(
            base,
            cfg,
            checkpoint,
            run_dir=self.request.run_dir,
            log_path=self.log_path,
            optimizer=optimizer,
            schedule=schedule,
            scaler=scaler,
        )
        # 7. Train.
        loop = _Loop(self, base, batches, optimizer, schedule, scaler, device, precision)
        loop.run(start)
        # 8. Outcome.
        return TrainOutcome(
            base=base,
            training_set=data,
            adapters=adapter_states(base, cfg),
            losses=loop.losses,
            fixed_losses=loop.fixed_losses,
            samples=loop.samples,
            resumed_from=start if checkpoint else None,
            device=device.type,
            precision=precision if device.type == "cuda" else "fp32 (CPU)",
            seconds=time.monotonic() - started,
            checkpoints=loop.checkpoints,
            config=cfg,
            notes=[optimizer_note] if optimizer_note else [],
        )

    # -- steps ------------------------------------------------------------------------
    def _batches(self, base: BaseModel, data: TrainingSetInfo) -> Batches:
        cfg = self.config
        latents = None
        if cfg.training.cache_latents:
            disk = (
                self.request.run_dir / "cache" / "latents.pt"
                if cfg.training.cache_to_disk
                else None
            )
            latents = latent_cache(
                base.vae, data.examples, flip=cfg.augmentation.random_flip, disk=disk
            )
        texts = None
        if not cfg.training.train_text_encoder:
            captions = [e.caption for e in data.examples]
            texts = text_cache(base.family, base.text_encoders, base.tokenizers, captions)
        return Batches(data=data, latents=latents, texts=texts)


def request_device(asked: str | None) -> str:
    if asked:
        return asked
    return "cuda" if torch.cuda.is_available() else "cpu"


def size_multiple(base: BaseModel) -> int:
    """Pixels per latent step times the UNet's total down-sampling: sizes must divide by it."""
    vae_factor = 2 ** (len(base.vae.config.block_out_channels) - 1)
    return int(vae_factor * 2 ** (len(base.unet.config.block_out_channels) - 1))


class _Loop:
    """Step 7 of the recipe, with the state it carries between steps."""

    def __init__(
        self,
        trainer: Trainer,
        base: BaseModel,
        batches: Batches,
        optimizer: Any,
        schedule: Any,
        scaler: Any,
        device: torch.device,
        precision: str,
    ) -> None:
        self.t, self.base, self.batches = trainer, base, batches
        self.optimizer, self.schedule, self.scaler = optimizer, schedule, scaler
        self.device, self.precision = device, precision
        self.cfg = trainer.config
        self.losses: list[float] = []
        self.fixed_losses: dict[int, float] = {}
        self.samples: list[Path] = []
        self.checkpoints: list[int] = []
        self.done = 0
        self._epochs: dict[int, list[list[int]]] = {}
        self._per_epoch = len(self._epoch(0))  # every epoch has as many batches

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type != "cuda" or self.precision == "no":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.precision == "fp16" else torch.bfloat16
        return torch.autocast("cuda", dtype=dtype)

    def _epoch(self, epoch: int) -> list[list[int]]:
        if epoch not in self._epochs:
            self._epochs = {
                epoch: epoch_batches(
                    self.batches.data.examples,
                    batch_size=self.cfg.training.batch_size,
                    seed=self.cfg.training.seed,
                    epoch=epoch,
                )
            }
        return self._epochs[epoch]

    def _batch(self, micro: int) -> list[int]:
        epoch, position = divmod(micro, self._per_epoch)
        return self._epoch(epoch)[position]

    def run(self, start: int) -> None:
        self.done = start
        total = self.cfg.training.train_steps
        if start == 0:
            self._fixed_loss()
        try:
            for step in range(start, total):
                loss = self._optimizer_step(step)
                self.done = step + 1
                self._log(step + 1, loss)
                self.t.progress(step + 1, total, loss)
                if self.done % self.cfg.training.save_every == 0 or self.done == total:
                    self._checkpoint(with_samples=True)
        except KeyboardInterrupt as exc:
            where = self._checkpoint(with_samples=False)
            raise TrainingInterrupted(
                f"training stopped at step {self.done} of {total}; {where}. Continue with "
                f"`charstudio train {self.t.request.name} --resume`"
            ) from exc
        except torch.OutOfMemoryError as exc:
            where = self._checkpoint(with_samples=False)
            raise TrainingOutOfMemory(
                f"out of memory at step {self.done + 1} of {total}; {where}. Lower "
                "training.batch_size or training.resolution, keep "
                "optimization.gradient_checkpointing: true (and mixed_precision fp16/bf16), "
                f"then `charstudio train {self.t.request.name} --resume`"
            ) from exc

    def _optimizer_step(self, step: int) -> float:
        accum = self.cfg.training.gradient_accumulation_steps
        total = 0.0
        for a in range(accum):
            micro = step * accum + a
            inputs = StepInputs(
                base=self.base,
                config=self.cfg,
                batches=self.batches,
                indices=self._batch(micro),
                micro=micro,
                device=self.device,
            )
            with self._autocast():
                loss = micro_step(inputs)
            if not bool(torch.isfinite(loss.detach())):
                self.optimizer.zero_grad(set_to_none=True)
                request, steps = self.t.request, self.cfg.training.train_steps
                value = float(loss.detach())
                raise diverged(request.run_dir, request.name, step + 1, steps, value)
            scaled = loss / accum
            (self.scaler.scale(scaled) if self.scaler else scaled).backward()
            total += float(loss.detach())
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.training.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(params, self.cfg.training.max_grad_norm)
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total / accum

    def _log(self, step: int, loss: float, **extra: float) -> None:
        self.losses.append(loss)
        row = {"step": step, "loss": loss, "lr": self.schedule.get_last_lr()[0], **extra}
        with storage_errors(self.t.log_path), self.t.log_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")

    def _fixed_loss(self) -> None:
        """Measure the fixed-noise loss at ``self.done`` and log it."""
        with self._autocast():
            value = fixed_loss(self.base, self.cfg, self.batches, self.device)
        self.fixed_losses[self.done] = value
        with storage_errors(self.t.log_path), self.t.log_path.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"step": self.done, "fixed_loss": value}) + "\n")

    def _checkpoint(self, *, with_samples: bool) -> str:
        if self.done == 0:
            return "no step had finished, so there is nothing to save"
        saved = save_checkpoint(
            self.t.request.run_dir,
            step=self.done,
            adapters=adapter_states(self.base, self.cfg),
            optimizer=self.optimizer,
            schedule=self.schedule,
            scaler=self.scaler,
        )
        self.checkpoints.append(self.done)
        write_step_lora(
            saved.folder,
            name=self.t.request.name,
            step=self.done,
            family=self.base.family,
            adapters=adapter_states(self.base, self.cfg),
            config=self.cfg,
            trigger_word=self.t.request.trigger_word,
        )
        if with_samples:
            self._fixed_loss()
            self._samples()
        return f"checkpoint saved in {saved.folder}"

    def _samples(self) -> None:
        if not self.cfg.sampling.enabled or not self.cfg.sampling.prompts:
            return
        parts = dict(self.base.pipeline.components)
        parts["scheduler_config"] = parts.pop("scheduler").config
        side = self.batches.data.examples[0].size
        folder = self.t.request.run_dir / "samples" / f"step_{self.done:06d}"
        with self._autocast():
            self.samples += write_samples(
                folder=folder,
                family=self.base.family,
                parts=parts,
                sampling=self.cfg.sampling,
                trigger_word=self.t.request.trigger_word,
                size=side,
            )
