"""The optional WD14-style tagger, on a stand-in ONNX model with a WD14 tagger's interface.

The stand-in takes ``input_1:0`` ``[N, 448, 448, 3]`` float32 BGR 0-255 and returns
``predictions_sigmoid`` ``[N, 5]``, as wd-v1-4-*-tagger-v2 does. Its scores are simple
functions of the mean colour, so a test can say which tags must fire:

* ``general`` (rating): always 0.99995 — must never appear (ratings are dropped);
* ``red_theme``: 0.9933 for pure red, under 0.01 for a mean red below 0.5 (a photo) —
  proves the input is BGR, not RGB;
* ``blue_theme``: the same for blue;
* ``hatsune_miku`` (character): always 0.99995 — must never appear;
* ``^_^`` (general): always 0.982 — a kaomoji keeps its underscore, and ranks after a
  stronger tag.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from charstudio.dataset import DatasetConfig
from charstudio.dataset.tagger import load_tagger
from charstudio.errors import BackendUnavailable, InvalidParameter
from charstudio.services import Services
from tests.dataset.test_service import make_refs

TAGS = [
    ("9999999", "general", 9),
    ("1", "red_theme", 0),
    ("2", "blue_theme", 0),
    ("3", "hatsune_miku", 4),
    ("4", "^_^", 0),
]
# Columns: one per tag; rows: the mean B, G, R in 0..1.
WEIGHTS = np.array([[0, 0, 20, 0, 0], [0, 0, 0, 0, 0], [0, 20, 0, 0, 0]], dtype=np.float32)
BIAS = np.array([10, -15, -15, 10, 4], dtype=np.float32)


def write_standin(
    folder: Path, *, size: int = 448, tags: list[tuple[str, str, int]] = TAGS
) -> Path:
    """A Hugging Face-style tagger folder: ``model.onnx`` + ``selected_tags.csv``."""
    folder.mkdir(parents=True, exist_ok=True)
    consts = {
        "axes": np.array([1, 2], np.int64),
        "scale": np.array(1 / 255, np.float32),
        "w": WEIGHTS,
        "b": BIAS,
    }
    nodes = [
        helper.make_node("Constant", [], [k], value=numpy_helper.from_array(v, k))
        for k, v in consts.items()
    ]
    nodes += [
        helper.make_node("ReduceMean", ["input_1:0", "axes"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "scale"], ["unit"]),
        helper.make_node("MatMul", ["unit", "w"], ["logits0"]),
        helper.make_node("Add", ["logits0", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["predictions_sigmoid"]),
    ]
    graph = helper.make_graph(
        nodes,
        "wd14_standin",
        [helper.make_tensor_value_info("input_1:0", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("predictions_sigmoid", TensorProto.FLOAT, ["N", 5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(folder / "model.onnx"))
    with (folder / "selected_tags.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["tag_id", "name", "category", "count"])
        writer.writerows((tag_id, name, cat, 100) for tag_id, name, cat in tags)
    return folder


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_standin(tmp_path_factory.mktemp("tagger") / "wd-v1-4-standin")


def test_tags_follow_the_image_and_drop_ratings_and_characters(tagger_dir: Path) -> None:
    tagger = load_tagger(tagger_dir)
    assert tagger.size == 448
    assert tagger.tag(Image.new("RGB", (300, 300), (255, 0, 0))) == ("red theme", "^_^")
    assert tagger.tag(Image.new("RGB", (300, 300), (0, 0, 255))) == ("blue theme", "^_^")
    assert tagger.tag(Image.new("RGB", (300, 300), (0, 0, 0))) == ("^_^",)
    assert load_tagger(tagger_dir, threshold=0.99).tag(Image.new("RGB", (8, 8), "black")) == ()


def test_images_are_padded_white_to_a_square_not_stretched(tagger_dir: Path) -> None:
    tagger = load_tagger(tagger_dir)
    batch = tagger._prepare(Image.new("RGB", (100, 400), (0, 0, 0)))
    assert batch.shape == (1, 448, 448, 3) and batch.dtype == np.float32
    assert batch[0, 224, 0].tolist() == [255.0, 255.0, 255.0]  # padding at the sides
    assert batch[0, 224, 224].tolist() == [0.0, 0.0, 0.0]  # the image in the middle
    assert batch[0, 0, 224].tolist() == [0.0, 0.0, 0.0]  # full height: no padding on top


def test_comfyui_layout_onnx_with_csv_beside_it(tmp_path: Path) -> None:
    folder = write_standin(tmp_path / "hf")
    models = tmp_path / "comfyui" / "models"
    models.mkdir(parents=True)
    (folder / "model.onnx").rename(models / "wd-v1-4-moat-tagger-v2.onnx")
    (folder / "selected_tags.csv").rename(models / "wd-v1-4-moat-tagger-v2.csv")
    tagger = load_tagger(models / "wd-v1-4-moat-tagger-v2.onnx")
    assert tagger.tag(Image.new("RGB", (64, 64), (255, 0, 0)))[0] == "red theme"


def test_bad_tagger_files_are_named(tmp_path: Path, tagger_dir: Path) -> None:
    with pytest.raises(InvalidParameter, match=r"tagger file .*model\.onnx not found"):
        load_tagger(tmp_path)
    with pytest.raises(InvalidParameter, match=r"neither a folder nor an \.onnx file"):
        load_tagger(tagger_dir / "selected_tags.csv")
    bad_csv = write_standin(tmp_path / "bad_csv")
    (bad_csv / "selected_tags.csv").write_text("id,tag\n1,x\n")
    with pytest.raises(InvalidParameter, match="no 'name' and 'category' columns"):
        load_tagger(bad_csv)
    short = write_standin(tmp_path / "short", tags=TAGS[:3])
    with pytest.raises(InvalidParameter, match="gives 5 scores but its tag list has 3"):
        load_tagger(short).tag(Image.new("RGB", (8, 8)))
    garbage = write_standin(tmp_path / "garbage")
    (garbage / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(InvalidParameter, match="cannot be loaded"):
        load_tagger(garbage)


def test_prepare_puts_the_tags_after_view_and_framing(services: Services, tmp_path: Path) -> None:
    refs = make_refs(tmp_path / "refs")
    services.library.create("obama", [refs], skip_bad=True)
    tagger = write_standin(tmp_path / "tagger")
    config = DatasetConfig.parse(
        resolution=512, max_upscale=2.0, tags=("suit",), tagger=str(tagger)
    )
    result = services.datasets.prepare("obama", config)
    for kept in result.kept:
        parts = kept.caption.split(", ")
        assert parts[:3] == ["obamacharacter", "person", "front view"]
        assert parts[4:] == ["^_^", "suit"]  # after view and framing, before the user's tags
        assert "hatsune miku" not in parts and "general" not in parts


def test_a_missing_tagger_fails_before_any_work(services: Services, tmp_path: Path) -> None:
    refs = make_refs(tmp_path / "refs")
    services.library.create("obama", [refs], skip_bad=True)
    config = DatasetConfig.parse(resolution=512, tagger=str(tmp_path / "nope"))
    with pytest.raises(InvalidParameter, match=r"tagger .*nope not found"):
        services.datasets.prepare("obama", config)
    assert not services.store.training_set_dir("obama").exists()


def test_without_onnxruntime_the_install_command_is_given(
    tagger_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    with pytest.raises(BackendUnavailable, match=r"pip install onnxruntime==1\.32\.0"):
        load_tagger(tagger_dir)
