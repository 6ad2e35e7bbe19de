"""Training examples: sizes without stretching, batches that never mix sizes, fixed order."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from charstudio.training.data import epoch_batches, read_training_set, target_size
from charstudio.training.types import NoTrainingSet
from tests.training.conftest import write_training_set


def test_target_size_keeps_the_aspect_ratio() -> None:
    assert target_size(768, 768, 512, 64) == (512, 512)
    assert target_size(640, 896, 768, 64) == (512, 768)  # 0.714 -> 0.667, one step of 64
    assert target_size(1000, 10, 256, 8) == (256, 8)  # never below one step


def test_batches_group_sizes_and_depend_only_on_seed_and_epoch(tmp_path: Path) -> None:
    folder = write_training_set(tmp_path / "set", count=5)
    Image.new("RGB", (32, 64)).save(folder / "images" / "yuki_005.png")  # a portrait bucket
    data = read_training_set(folder, name="yuki", resolution=32, multiple=8)
    assert [e.size for e in data.examples] == [(32, 32)] * 4 + [(16, 32)]
    batches = epoch_batches(data.examples, batch_size=2, seed=7, epoch=0)
    assert sorted(len(b) for b in batches) == [1, 2, 2]
    for batch in batches:
        assert len({data.examples[i].size for i in batch}) == 1
    assert batches == epoch_batches(data.examples, batch_size=2, seed=7, epoch=0)
    others = [epoch_batches(data.examples, batch_size=2, seed=7, epoch=e) for e in range(1, 6)]
    assert any(o != batches for o in others)


def test_missing_captions_and_sets(tmp_path: Path) -> None:
    with pytest.raises(NoTrainingSet, match=r"^'yuki' has no prepared training set at "):
        read_training_set(tmp_path / "none", name="yuki", resolution=32, multiple=8)
    folder = write_training_set(tmp_path / "set")
    (folder / "captions" / "yuki_002.txt").unlink()
    with pytest.raises(NoTrainingSet, match=r"^yuki_002.png in .* has no caption file"):
        read_training_set(folder, name="yuki", resolution=32, multiple=8)
