"""``charstudio train`` and ``charstudio lora ...`` end to end, on a tiny SD1.5 model."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from charstudio.services import Services
from tests.conftest import CliRunner
from tests.faces.conftest import DATA
from tests.training import conftest as training_fixtures
from tests.training.conftest import TinyModel, add_training_set, tiny_overrides

tiny_sd15 = training_fixtures.tiny_sd15  # the session's tiny SD1.5 model, shared
one_torch_thread = training_fixtures.one_torch_thread  # autouse here too

PHOTOS = [str(DATA / f"obama_{y}.jpg") for y in (2009, 2010, 2012)]


def _sets(model: TinyModel, *extra: str) -> list[str]:
    return [arg for o in tiny_overrides(model, *extra) for arg in ("--set", o)]


def test_from_references_to_a_promoted_lora(
    cli: CliRunner, tiny_sd15: TinyModel, home: Path
) -> None:
    assert cli("character", "add", "obama", "--images", *PHOTOS).code == 0
    assert cli("dataset", "prepare", "obama", "--resolution", "256", "--max-upscale", "4").code == 0
    result = cli("train", "obama", *_sets(tiny_sd15, "sampling.enabled=true"), "--json")
    assert result.code == 0, result.err
    trained = json.loads(result.out)
    assert trained["version"] == 1 and trained["steps"] == 6
    assert [Path(p).parent.name for p in trained["samples"]] == ["step_000003", "step_000006"]
    assert trained["final_loss"] > 0 and Path(trained["loss_log"]).is_file()
    assert trained["training_set_version"] == 1
    with safe_open(trained["path"], framework="pt") as handle:
        assert handle.metadata()["charstudio.trigger_word"] == "obamacharacter"
    listed = cli("lora", "list", "obama")
    assert listed.code == 0, listed.err
    assert "v1" in listed.out and "ready" in listed.out and "diffusers" in listed.out
    promoted = cli("lora", "promote", "obama", "v1")
    assert promoted.code == 0, promoted.err
    assert promoted.out.startswith("obama: LoRA v1 promoted; generation now uses ")
    shown = json.loads(cli("lora", "list", "obama", "--json").out)
    assert [(v["version"], v["promoted"], v["status"]) for v in shown] == [(1, True, "ready")]
    profile = json.loads(cli("character", "show", "obama", "--json").out)
    assert profile["profile"]["has_lora"] is True


def test_human_output_and_errors(cli: CliRunner, tiny_sd15: TinyModel, refs: Path) -> None:
    assert cli("character", "add", "yuki", "--images", str(refs)).code == 0
    missing = cli("train", "yuki", *_sets(tiny_sd15))
    assert missing.code == 1
    assert missing.err.strip() == (
        "error: 'yuki' has no prepared training set; run `charstudio dataset prepare yuki` first"
    )
    bad = cli("train", "yuki", "--set", "lora.rank=0")
    assert bad.code == 2
    assert "lora.rank: Input should be greater than or equal to 1" in bad.err
    both = cli("train", "yuki", "--resume", "--set", "lora.rank=8")
    assert both.code == 2
    assert "--resume continues with the run's saved config.yaml; drop --config/--set" in both.err
    export_resume = cli("train", "yuki", "--resume", "--export-kohya")
    assert export_resume.code == 2
    assert "--export-kohya writes a new run's command; drop --resume" in export_resume.err
    nothing = cli("train", "yuki", "--resume")
    assert nothing.code == 1
    assert "'yuki' has no prepared training set" in nothing.err
    empty = cli("lora", "list", "yuki")
    assert empty.code == 0
    assert empty.out.strip() == "no LoRA versions yet; train one with `charstudio train yuki`"
    wrong = cli("lora", "promote", "yuki", "v2")
    assert wrong.code == 1
    assert "yuki has no LoRA v2; see `charstudio lora list yuki`" in wrong.err


def test_export_kohya(
    cli: CliRunner, tiny_sd15: TinyModel, services: Services, refs: Path, home: Path
) -> None:
    assert cli("character", "add", "yuki", "--images", str(refs)).code == 0
    add_training_set(services, "yuki")
    result = cli(
        "train", "yuki", "--export-kohya", *_sets(tiny_sd15, "training.train_text_encoder=true")
    )
    assert result.code == 0, result.err
    assert "kohya sd-scripts run written:" in result.out
    script = home / "character_data/training_runs/yuki/kohya_export/train.sh"
    text = script.read_text()
    assert "train_network.py" in text and "--network_module=networks.lora" in text
    assert "--network_dim=4" in text and "--max_train_steps=6" in text
    assert "--text_encoder_lr=5e-05" in text and "--optimizer_type=AdamW" in text
    assert f"--pretrained_model_name_or_path={tiny_sd15.folder}" in text
    toml = (script.parent / "dataset.toml").read_text()
    assert "resolution = 32" in toml and "batch_size = 2" in toml
    concept = script.parent / "img" / "1_yukicharacter"
    assert sorted(p.name for p in concept.iterdir())[:2] == ["yuki_001.png", "yuki_001.txt"]
    prompts = (script.parent / "sample_prompts.txt").read_text()
    assert prompts.startswith("yukicharacter, portrait --n lowres, blurry, deformed --w 32")


def test_train_prints_the_version_and_where_things_are(
    cli: CliRunner, tiny_sd15: TinyModel, services: Services, refs: Path, home: Path
) -> None:
    assert cli("character", "add", "yuki", "--images", str(refs)).code == 0
    add_training_set(services, "yuki")
    result = cli("train", "yuki", *_sets(tiny_sd15))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].startswith("yuki: LoRA v1 trained, 6 steps, loss ")
    assert lines[0].endswith(" s on cpu (fp32 (CPU))")
    assert lines[1] == f"file: {home / 'character_data/lora_models/yuki_v1.safetensors'}"
    assert lines[2] == f"samples: 0 in {home / 'character_data/training_runs/yuki/v1'}/samples"
    assert lines[-1] == "promote it with `charstudio lora promote yuki v1`"
