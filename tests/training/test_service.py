"""``charstudio train`` end to end on tiny models: versions, resume, failures that keep no junk."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file

from charstudio.errors import InvalidParameter
from charstudio.library.models import LoraVersion
from charstudio.services import Services
from charstudio.training import (
    DiskFull,
    NothingToResume,
    NoTrainingSet,
    OptimizerUnavailable,
    TrainingDiverged,
    TrainingInterrupted,
    TrainingOutOfMemory,
    TrainingService,
    load_config,
)
from charstudio.training.kohya_format import addnet_hashes
from tests.training.conftest import TRIGGER, TinyModel, add_training_set, tiny_overrides


@pytest.fixture
def character(services: Services, refs: Path) -> str:
    services.library.create("Yuki", [refs], trigger_word=TRIGGER)
    return "Yuki"


def rows(services: Services) -> list[LoraVersion]:
    with services.db.sessions() as session:
        return list(session.query(LoraVersion).order_by(LoraVersion.version))


def run(service: TrainingService, model: TinyModel, *extra: str, **kwargs: Any) -> Any:
    return service.train(
        "yuki", config=load_config(overrides=tiny_overrides(model, *extra)), **kwargs
    )


def test_a_run_makes_a_ready_version_with_its_records(
    services: Services, character: str, tiny_sd15: TinyModel
) -> None:
    add_training_set(services)
    steps: list[tuple[int, int]] = []
    result = run(
        services.training,
        tiny_sd15,
        "sampling.enabled=true",
        progress=lambda s, t, loss: steps.append((s, t)),
    )
    assert steps == [(i, 6) for i in range(1, 7)]
    assert result.version == 1 and result.steps == 6 and result.parent_version is None
    file = Path(result.path)
    assert file == services.store.lora_dir / "Yuki_v1.safetensors" and file.is_file()
    assert [p.name for p in file.parent.iterdir()] == ["Yuki_v1.safetensors"]  # no temp left
    # Samples at both checkpoints, at the training size; a loss line per step.
    assert [Path(p).relative_to(result.run_dir).as_posix() for p in result.samples] == [
        "samples/step_000003/p0_s1234.png",
        "samples/step_000006/p0_s1234.png",
    ]
    # Each checkpoint holds a loadable LoRA of its step, to try before promoting.
    step_lora = Path(result.run_dir) / "checkpoints/step_000003/Yuki_step000003.safetensors"
    with safe_open(str(step_lora), framework="pt") as handle:
        assert handle.metadata()["ss_steps"] == "3"
        assert set(handle.keys()) == set(load_file(result.path).keys())
    log = [json.loads(line) for line in Path(result.loss_log).read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4, 5, 6]
    (row,) = rows(services)
    assert row.status == "ready" and row.sha256 and row.base_model == "diffusers"
    assert row.base_model_sha256 == result.base_model_sha256 and len(row.base_model_sha256) == 64
    assert row.config["lora"]["rank"] == 4
    assert [p[0] for p in row.metrics["loss_curve"]] == [1, 2, 3, 4, 5, 6]
    assert row.metrics["training_set_version"] == 1 and len(row.metrics["samples"]) == 2
    with Image.open(result.samples[0]) as sample:
        assert sample.size == (32, 32)
    # The profile now has a LoRA.
    assert services.library.profile("yuki").has_lora is True


def test_a_short_run_lowers_the_fixed_noise_loss(
    services: Services, character: str, tiny_sd15: TinyModel
) -> None:
    add_training_set(services)
    run(
        services.training,
        tiny_sd15,
        "training.train_steps=12",
        "training.save_every=12",
        "training.learning_rate=1e-2",
    )
    fixed = rows(services)[0].metrics["fixed_loss"]
    assert set(fixed) == {"0", "12"}
    assert fixed["12"] < fixed["0"] * 0.98


def test_metadata_is_kohyas(services: Services, character: str, tiny_sd15: TinyModel) -> None:
    add_training_set(services)
    result = run(services.training, tiny_sd15)
    with safe_open(result.path, framework="pt") as handle:
        meta = handle.metadata()
    assert meta["ss_network_module"] == "networks.lora"
    assert (meta["ss_network_dim"], meta["ss_network_alpha"]) == ("4", "4.0")
    assert meta["ss_base_model_version"] == "sd_v1" and meta["ss_v2"] == "False"
    assert meta["ss_output_name"] == "Yuki_v1" and meta["ss_steps"] == "6"
    assert meta["ss_new_sd_model_hash"] == result.base_model_sha256
    assert json.loads(meta["ss_tag_frequency"]) == {
        "1_Yuki": {
            TRIGGER: 4,
            "person": 4,
            "colour 0": 1,
            "colour 1": 1,
            "colour 2": 1,
            "colour 3": 1,
        }
    }
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert meta["modelspec.trigger_phrase"] == meta["charstudio.trigger_word"] == TRIGGER
    assert meta["charstudio.training_set_version"] == "1"
    tensors = load_file(result.path)
    assert (meta["sshs_model_hash"], meta["sshs_legacy_hash"]) == addnet_hashes(tensors, meta)


def test_versions_chain_list_and_promote(
    services: Services, character: str, tiny_sd15: TinyModel
) -> None:
    add_training_set(services)
    service = services.training
    run(service, tiny_sd15, "training.train_steps=2", "training.save_every=2")
    service.promote("yuki", "v1")
    second = run(service, tiny_sd15, "training.train_steps=2", "training.save_every=2")
    assert second.version == 2 and second.parent_version == 1
    listed = service.list_versions("YUKI")
    assert [(v.version, v.promoted, v.parent_version, v.status) for v in listed] == [
        (1, True, None, "ready"),
        (2, False, 1, "ready"),
    ]
    assert service.promote("yuki", "2").promoted is True
    assert [v.promoted for v in service.list_versions("yuki")] == [False, True]
    with pytest.raises(InvalidParameter, match=r"^version 'latest' is not like v3"):
        service.promote("yuki", "latest")
    from charstudio.errors import NotFound

    with pytest.raises(NotFound, match=r"^Yuki has no LoRA v9; see `charstudio lora list Yuki`"):
        service.promote("yuki", "v9")
    Path(listed[0].path).unlink()
    with pytest.raises(InvalidParameter, match=r"the file of Yuki v1 is missing"):
        service.promote("yuki", "v1")


def _weights(path: str) -> dict[str, torch.Tensor]:
    return load_file(path)


def test_resume_ends_with_the_weights_of_an_uninterrupted_run(
    services: Services, character: str, tiny_sd15: TinyModel
) -> None:
    add_training_set(services)
    service = services.training
    uninterrupted = run(service, tiny_sd15, "training.train_text_encoder=true")

    def stop_at_4(step: int, total: int, loss: float) -> None:
        if step == 4:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as caught:
        run(service, tiny_sd15, "training.train_text_encoder=true", progress=stop_at_4)
    assert "training stopped at step 4 of 6; checkpoint saved in" in str(caught.value)
    assert str(caught.value).endswith("Continue with `charstudio train Yuki --resume`")
    assert caught.value.exit_code == 130
    assert rows(services)[1].status == "training"
    assert services.library.profile("yuki").lora_version == 1  # v2 is not usable yet
    resumed = service.train("yuki", config=None, resume=True)
    assert resumed.version == 2 and resumed.resumed_from_step == 4 and resumed.steps == 6
    a, b = _weights(uninterrupted.path), _weights(resumed.path)
    assert a.keys() == b.keys() and any(k.startswith("lora_te_") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = Path(uninterrupted.loss_log).read_text()
    assert Path(resumed.loss_log).read_text() == log_a
    with pytest.raises(NothingToResume, match=r"^Yuki has no interrupted training run to resume"):
        service.train("yuki", config=None, resume=True)
    with pytest.raises(InvalidParameter, match=r"^--resume continues with the run's saved"):
        service.train("yuki", config=load_config(), resume=True)


def test_out_of_memory_saves_and_advises(
    services: Services, character: str, tiny_sd15: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_training_set(services)
    import charstudio.training.trainer as trainer_module

    real = trainer_module.micro_step
    calls = {"n": 0}

    def flaky(inputs: Any) -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] == 6:  # the 2nd micro-batch of step 3
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(inputs)

    monkeypatch.setattr(trainer_module, "micro_step", flaky)
    with pytest.raises(TrainingOutOfMemory) as caught:
        run(services.training, tiny_sd15)
    message = str(caught.value)
    assert message.startswith("out of memory at step 3 of 6; checkpoint saved in ")
    assert "Lower training.batch_size or training.resolution" in message
    assert "optimization.gradient_checkpointing: true" in message
    # The interrupted version stays "training" (resumable) with the step-2 checkpoint on disk.
    (row,) = rows(services)
    saved = services.training.run_dir("Yuki", 1) / "checkpoints" / "step_000002"
    assert row.status == "training" and (saved / "state.pt").is_file()
    assert f"checkpoint saved in {saved}" in message
    monkeypatch.setattr(trainer_module, "micro_step", real)
    assert services.training.train("yuki", config=None, resume=True).resumed_from_step == 2


def test_a_full_disk_leaves_no_file_and_no_ready_version(
    services: Services, character: str, tiny_sd15: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_training_set(services)
    import charstudio.training.kohya_format as kohya

    real_write = os.write

    def full(fd: int, data: Any) -> int:
        """The disk holding lora_models/ is full (checkpoints elsewhere still fit)."""
        if Path(f"/proc/self/fd/{fd}").readlink().parent != services.store.lora_dir:
            return real_write(fd, data)
        real_write(fd, bytes(data[:100]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(kohya.os, "write", full)
    with pytest.raises(DiskFull) as caught:
        run(services.training, tiny_sd15)
    assert str(caught.value).startswith("could not save Yuki_v1.safetensors: the disk is full; ")
    assert "run the command again (training resumes from its checkpoint with --resume)" in str(
        caught.value
    )
    assert list(services.store.lora_dir.iterdir()) == []
    assert rows(services)[0].status == "training"
    assert services.library.profile("yuki").has_lora is False
    monkeypatch.setattr(kohya.os, "write", real_write)
    finished = services.training.train("yuki", config=None, resume=True)
    assert finished.version == 1 and Path(finished.path).is_file()
    assert services.library.profile("yuki").has_lora is True


def test_failures_before_a_checkpoint_leave_nothing(
    services: Services, character: str, tiny_sd15: TinyModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_training_set(services)
    import charstudio.training.trainer as trainer_module

    def interrupted(inputs: Any) -> torch.Tensor:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer_module, "micro_step", interrupted)
    with pytest.raises(TrainingInterrupted) as caught:
        run(services.training, tiny_sd15)
    assert str(caught.value).startswith(
        "training stopped at step 0 of 6; no step had finished, so there is nothing to save."
    )
    runs = services.store.character_data / "training_runs" / "Yuki"
    assert rows(services) == [] and list(runs.iterdir()) == []
    with pytest.raises(OptimizerUnavailable) as unavailable:
        run(services.training, tiny_sd15, "optimization.use_8bit_adam=true")
    assert str(unavailable.value) == (
        "optimization.use_8bit_adam is true but bitsandbytes is not installed; install it with "
        "`pip install bitsandbytes` on a CUDA machine, or set optimization.use_8bit_adam: false "
        "(--set optimization.use_8bit_adam=false)"
    )
    assert rows(services) == [] and list(runs.iterdir()) == []


def test_no_training_set(services: Services, character: str, tiny_sd15: TinyModel) -> None:
    with pytest.raises(NoTrainingSet) as caught:
        run(services.training, tiny_sd15)
    assert str(caught.value) == (
        "'Yuki' has no prepared training set; run `charstudio dataset prepare Yuki` first"
    )
    assert rows(services) == []


def test_copied_into_comfyui_loras(
    services: Services, character: str, tiny_sd15: TinyModel, tmp_path: Path
) -> None:
    add_training_set(services)
    loras = tmp_path / "ComfyUI" / "models" / "loras"
    loras.mkdir(parents=True)
    service = TrainingService(
        library=services.library, store=services.store, comfyui_loras_dir=loras
    )
    result = run(service, tiny_sd15, "training.train_steps=2", "training.save_every=2")
    assert result.copied_to == str(loras / "Yuki_v1.safetensors")
    assert (loras / "Yuki_v1.safetensors").read_bytes() == Path(result.path).read_bytes()
    assert [p.name for p in loras.iterdir()] == ["Yuki_v1.safetensors"]
    missing = TrainingService(
        library=services.library, store=services.store, comfyui_loras_dir=tmp_path / "nope"
    )
    second = run(missing, tiny_sd15, "training.train_steps=2", "training.save_every=2")
    assert second.copied_to is None
    assert second.warnings == [
        f"ComfyUI LoRA folder {tmp_path / 'nope'} does not exist; the LoRA was not copied "
        "there (fix CHARSTUDIO_COMFYUI_LORAS_DIR)"
    ]


def test_a_training_set_folder_that_went_missing(
    services: Services, character: str, tiny_sd15: TinyModel
) -> None:
    import shutil

    folder = add_training_set(services)
    shutil.rmtree(folder / "images")
    with pytest.raises(NoTrainingSet) as caught:
        run(services.training, tiny_sd15)
    assert str(caught.value) == (
        f"the training set of 'Yuki' at {folder} has no images; "
        "run `charstudio dataset prepare Yuki` first"
    )
    assert rows(services) == []


def test_promote_refuses_an_unfinished_version_and_export_needs_a_base(
    services: Services, character: str, tiny_sd15: TinyModel
) -> None:
    add_training_set(services)

    def stop_at_2(step: int, total: int, loss: float) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        run(services.training, tiny_sd15, progress=stop_at_2)
    with pytest.raises(InvalidParameter) as caught:
        services.training.promote("yuki", "v1")
    assert str(caught.value) == (
        "Yuki v1 is 'training', not ready; only a finished version can be promoted "
        "(finish it with `charstudio train Yuki --resume`)"
    )
    with pytest.raises(InvalidParameter, match=r"^model.base_checkpoint is not set; the kohya"):
        services.training.export_kohya("yuki", config=load_config())


def test_the_trainer_refuses_to_resume_without_a_checkpoint(
    tiny_sd15: TinyModel, training_set: Path, tmp_path: Path
) -> None:
    from charstudio.training.trainer import Trainer, TrainRequest

    request = TrainRequest(
        config=load_config(overrides=tiny_overrides(tiny_sd15)),
        name="yuki",
        trigger_word=TRIGGER,
        set_folder=training_set,
        run_dir=tmp_path / "run",
        resume=True,
    )
    with pytest.raises(NothingToResume) as caught:
        Trainer(request).run()
    assert str(caught.value) == (
        f"no checkpoint to resume in {tmp_path / 'run'}; start a new run without --resume"
    )


def test_no_base_checkpoint_is_refused_before_anything_is_reserved(
    services: Services, character: str
) -> None:
    add_training_set(services)
    with pytest.raises(InvalidParameter) as caught:
        services.training.train("yuki", config=load_config())
    assert str(caught.value) == (
        "model.base_checkpoint is not set; set it in the config or with "
        "--set model.base_checkpoint=/path/to/realisticVision_v51.safetensors"
    )
    assert rows(services) == []
    assert not (services.store.character_data / "training_runs").exists()


def test_a_nan_loss_stops_registers_nothing_and_keeps_the_finite_checkpoint(
    services: Services,
    character: str,
    tiny_sd15: TinyModel,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # A run whose loss became NaN used to end with exit 0, register the version and copy the
    # LoRA into ComfyUI's folder: every image made with it was black.
    add_training_set(services)
    import charstudio.training.trainer as trainer_module

    real = trainer_module.micro_step
    calls = {"n": 0}

    def poisoned(inputs: Any) -> torch.Tensor:
        calls["n"] += 1
        loss = real(inputs)
        return loss * float("nan") if calls["n"] >= 9 else loss  # from step 5 (2 per step)

    monkeypatch.setattr(trainer_module, "micro_step", poisoned)
    loras = tmp_path / "loras"
    loras.mkdir()
    service = TrainingService(
        library=services.library, store=services.store, comfyui_loras_dir=loras
    )
    with pytest.raises(TrainingDiverged) as caught:
        run(service, tiny_sd15)
    run_dir = service.run_dir("Yuki", 1)
    kept = run_dir / "checkpoints" / "step_000003"
    assert str(caught.value).startswith(
        "the loss became nan at step 5 of 6; training stopped, no LoRA version was registered "
        f"and nothing was copied; the last finite checkpoint (step 3, {kept}) is kept for "
        "`charstudio train Yuki --resume`."
    )
    assert caught.value.exit_code == 1
    (row,) = rows(services)
    assert row.status == "training"  # not ready: the profile never uses it
    assert list(services.store.lora_dir.glob("*.safetensors")) == []
    assert list(loras.iterdir()) == []
    log = [json.loads(line) for line in (run_dir / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2, 3, 4]
    state = torch.load(kept / "state.pt", weights_only=False)
    assert state["step"] == 3
    # The kept checkpoint's weights are finite, and --resume finishes the run from it.
    monkeypatch.setattr(trainer_module, "micro_step", real)
    resumed = service.train("yuki", config=None, resume=True)
    assert resumed.resumed_from_step == 3 and resumed.copied_to is not None
    assert all(bool(torch.isfinite(t).all()) for t in load_file(resumed.path).values())


def test_auto_optimizer_trains_with_adamw_here_and_says_so_once(
    services: Services, character: str, tiny_sd15: TinyModel
) -> None:
    add_training_set(services)
    result = run(
        services.training,
        tiny_sd15,
        "optimization.use_8bit_adam=auto",
        "training.train_steps=1",
        "training.save_every=1",
    )
    assert result.warnings == [
        "optimization.use_8bit_adam is auto: training with AdamW (bitsandbytes is not installed)"
    ]
    assert load_file(result.path)  # a usable file
