"""Prompt adherence: a tiny CLIP built from a config at test time (the loading code and the
softmax rule run; tiny random weights are not expected to understand images), and the
stand-in WD14 tagger of the dataset tests (whose tags follow the mean colour)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

from charstudio.errors import InvalidParameter
from charstudio.qc.clip import CAPTIONS, NEUTRAL_CAPTIONS, ClipScorer, check_clip_folder
from charstudio.qc.tags import TagScorer, expected_tags
from charstudio.qc.types import QCRequest
from charstudio.training.tokenizer_files import write_clip_tokenizer
from tests.dataset.test_tagger import write_standin
from tests.qc.conftest import photo
from tests.training.tiny_models import _text_config

RED = QCRequest(character="obama", prompt="red theme", variation="outfit", subject="red theme")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CLIPModel folder as save_pretrained writes it: tiny text and vision towers, the
    derived CLIP tokenizer files and a 32 px image processor."""
    folder = tmp_path_factory.mktemp("clip")
    text = _text_config(projection=False)
    vision = {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "image_size": 32,
        "patch_size": 8,
        "projection_dim": 32,
    }
    torch.manual_seed(0)
    config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=32)
    CLIPModel(config).save_pretrained(folder)
    write_clip_tokenizer(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(folder)
    return folder


def test_clip_scores_the_subject_against_neutral_captions(tiny_clip: Path) -> None:
    scorer = ClipScorer(tiny_clip)
    image = photo("obama_2010.jpg")
    entry = scorer.check(image, RED, threshold=None)
    caption = CAPTIONS["outfit"].format("red theme")
    assert entry.check == "adherence_clip" and entry.scorer == "clip" and entry.threshold == 0.5
    # The rule, recomputed by hand: softmax over [caption, *neutral] at the logit scale.
    model = CLIPModel.from_pretrained(tiny_clip, local_files_only=True).eval()
    inputs = scorer._processor(
        text=[caption, *NEUTRAL_CAPTIONS], images=image, return_tensors="pt", padding=True
    )
    with torch.no_grad():
        pooled = model.vision_model(pixel_values=inputs["pixel_values"]).pooler_output
        img = model.visual_projection(pooled)
        pooled = model.text_model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        ).pooler_output
        txt = model.text_projection(pooled)
        img = img / img.norm(dim=-1, keepdim=True)
        txt = txt / txt.norm(dim=-1, keepdim=True)
        probs = (model.logit_scale.exp() * img @ txt.T).softmax(dim=-1)[0]
    assert entry.score == pytest.approx(float(probs[0]), abs=1e-4)
    assert entry.status == ("pass" if entry.score is not None and entry.score >= 0.5 else "fail")
    assert scorer.check(image, RED, threshold=0.0).status == "pass"
    assert scorer.check(image, RED, threshold=1.0).status == "fail"
    empty = QCRequest(character="obama")
    assert scorer.check(image, empty, threshold=None).status == "not_checked"


@pytest.mark.parametrize(
    ("setup", "named"),
    [
        (lambda f: None, "not found"),
        (lambda f: (f.mkdir(), (f / "config.json").write_text("{}")), "preprocessor_config.json"),
        (
            lambda f: (
                f.mkdir(),
                (f / "config.json").write_text(json.dumps({"model_type": "bert"})),
                (f / "preprocessor_config.json").write_text("{}"),
            ),
            "config.json describes a 'bert' model, not a CLIP model",
        ),
    ],
)
def test_a_folder_that_is_not_clip_is_refused_naming_the_file(
    tmp_path: Path,
    setup,
    named: str,  # type: ignore[no-untyped-def]
) -> None:
    folder = tmp_path / "not-clip"
    setup(folder)
    with pytest.raises(InvalidParameter) as info:
        check_clip_folder(folder)
    assert named in str(info.value) and str(folder) in str(info.value)


def test_tags_match_the_prompt_words(tmp_path: Path) -> None:
    scorer = TagScorer(write_standin(tmp_path / "tagger"))
    assert expected_tags("a Red_Theme dress, blue theme", scorer.vocabulary) == (
        "red theme",
        "blue theme",
    )
    red = scorer.check(Image.new("RGB", (64, 64), (255, 0, 0)), RED, threshold=None)
    assert (red.status, red.score, red.scorer) == ("pass", 1.0, "wd14-tagger")
    blue = scorer.check(Image.new("RGB", (64, 64), (0, 0, 255)), RED, threshold=None)
    assert (blue.status, blue.score) == ("fail", 0.0) and "missing: red theme" in blue.reason
    plain = QCRequest(character="obama", subject="a tuxedo")
    assert scorer.check(photo("obama_2010.jpg"), plain, threshold=None).status == "not_checked"


def test_a_tagger_without_its_tag_list_is_refused_naming_the_file(tmp_path: Path) -> None:
    folder = write_standin(tmp_path / "tagger")
    (folder / "selected_tags.csv").unlink()
    with pytest.raises(InvalidParameter, match=r"selected_tags\.csv not found"):
        TagScorer(folder)
