"""The training config: the original design's keys and defaults, overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from charstudio.errors import InvalidParameter
from charstudio.training.config import TrainingConfig, load_config


def test_defaults_are_the_original_designs() -> None:
    config = load_config()
    assert config.model.base_checkpoint is None
    assert config.model.vae is None
    t = config.training
    assert (t.resolution, t.batch_size, t.gradient_accumulation_steps) == (768, 1, 4)
    assert (t.learning_rate, t.lr_scheduler, t.lr_warmup_steps) == (1e-4, "cosine", 100)
    assert (t.train_steps, t.save_every) == (1500, 500)
    assert (config.lora.rank, config.lora.alpha, config.lora.dropout) == (32, 32.0, 0.1)
    assert config.lora.target_modules == ("to_q", "to_k", "to_v", "to_out")
    o = config.optimization
    assert (o.use_8bit_adam, o.mixed_precision, o.gradient_checkpointing) == ("auto", "fp16", True)
    a = config.augmentation
    assert (a.random_flip, a.color_jitter, a.random_crop) == (True, False, False)
    assert (t.seed, t.train_text_encoder, t.min_snr_gamma, t.noise_offset) == (42, False, 5.0, 0.0)
    assert t.cache_latents is True


def test_yaml_file_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("lora:\n  rank: 8\ntraining:\n  train_steps: 200\n  save_every: 50\n")
    config = load_config(path, ["lora.rank=16", "lora.target_modules=[to_q, to_v]"])
    assert config.lora.rank == 16
    assert config.lora.target_modules == ("to_q", "to_v")
    assert config.training.train_steps == 200


def test_config_round_trips_through_yaml() -> None:
    config = load_config(overrides=["lora.rank=8", "training.noise_offset=0.05"])
    again = TrainingConfig.model_validate(yaml.safe_load(config.to_yaml()))
    assert again == config


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["lora.rank=0"], "lora.rank: Input should be greater than or equal to 1"),
        (["lora.rnak=3"], "lora.rnak: unknown key; check the spelling"),
        (["training.lr_scheduler=wavy"], "training.lr_scheduler: Input should be 'constant'"),
        (["lora.target_modules=[to_z]"], "lora.target_modules.0: Input should be 'to_q'"),
        (["lora.target_modules=[]"], "lora.target_modules is empty; name at least one"),
        (["optimization.mixed_precision=fp8"], "optimization.mixed_precision: Input should be"),
        (
            ["augmentation.color_jitter=true"],
            "so its latents cannot be cached; set training.cache_latents: false",
        ),
        (
            ["training.cache_latents=false", "training.cache_to_disk=true"],
            "training.cache_to_disk needs training.cache_latents: true",
        ),
        (
            ["training.train_steps=10", "training.save_every=20"],
            "set training.save_every to at most 10",
        ),
    ],
)
def test_bad_values_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        load_config(overrides=overrides)
    assert message in str(caught.value)
    assert str(caught.value).startswith("invalid training config (defaults with --set): ")


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("rank=3", "--set 'rank=3' is not section.key=value; write e.g. --set lora.rank=16"),
        ("lora.rank", "--set 'lora.rank' is not section.key=value"),
        ("lora.rank=[1", "--set 'lora.rank=[1': the value is not valid YAML"),
    ],
)
def test_malformed_overrides(item: str, message: str) -> None:
    with pytest.raises(InvalidParameter, match=r"^" + message.replace("[", r"\[")):
        load_config(overrides=[item])


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match=r"does not exist; give an existing YAML file"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lora: [rank\n")
    with pytest.raises(InvalidParameter, match=r"is not valid YAML"):
        load_config(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(InvalidParameter, match=r"must be a mapping of sections"):
        load_config(listing)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("lora:\n  rank: -2\n")
    with pytest.raises(InvalidParameter, match=r"\(.*wrong.yaml\): lora.rank"):
        load_config(wrong)


def test_an_override_into_a_value_that_is_not_a_section(tmp_path: Path) -> None:
    path = tmp_path / "flat.yaml"
    path.write_text("lora: 3\n")
    with pytest.raises(InvalidParameter, match=r"^--set 'lora.rank=4': lora is not a section$"):
        load_config(path, ["lora.rank=4"])


@pytest.mark.parametrize("raw", ["no", "false", "'no'"])
def test_mixed_precision_no_as_yaml_reads_it(raw: str) -> None:
    # YAML reads a bare `no` as false; it used to be refused ("Input should be 'no', ...").
    config = load_config(overrides=[f"optimization.mixed_precision={raw}"])
    assert config.optimization.mixed_precision == "no"


def test_use_8bit_adam_takes_auto_true_or_false() -> None:
    for raw, expected in (("auto", "auto"), ("true", True), ("false", False)):
        config = load_config(overrides=[f"optimization.use_8bit_adam={raw}"])
        assert config.optimization.use_8bit_adam == expected
    with pytest.raises(InvalidParameter, match=r"optimization\.use_8bit_adam"):
        load_config(overrides=["optimization.use_8bit_adam=sometimes"])
