"""``dataset prepare`` on real photographs: curation, crops, captions, versions, layouts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter, ImageOps
from sqlalchemy import select

from charstudio.dataset import DatasetConfig, NotEnoughImages
from charstudio.errors import InvalidParameter, NotFound
from charstudio.library.models import TrainingSet
from charstudio.services import Services
from tests.faces.conftest import DATA

CONFIG = DatasetConfig.parse(resolution=512, max_upscale=2.0, tags=("suit",))


def make_refs(folder: Path) -> Path:
    """Three usable portraits plus one image for each rejection rule."""
    folder.mkdir()
    for name in ("obama_2009", "obama_2010", "obama_2012", "biden_2010", "coffee"):
        shutil.copyfile(DATA / f"{name}.jpg", folder / f"{name}.jpg")
    portrait = Image.open(DATA / "obama_2012.jpg")
    portrait.filter(ImageFilter.GaussianBlur(3)).save(folder / "blurred.jpg", quality=95)
    Image.open(DATA / "obama_2010.jpg").resize((600, 488)).save(folder / "dup.jpg", quality=70)
    (folder / "broken.jpg").write_bytes((DATA / "obama_2009.jpg").read_bytes()[:3000])
    return folder


@pytest.fixture
def obama(services: Services, tmp_path: Path) -> Services:
    refs = make_refs(tmp_path / "refs")
    services.library.create("obama", [refs], skip_bad=True)  # broken.jpg is refused at import
    return services


def test_prepare_keeps_the_good_and_says_why_for_the_rest(obama: Services) -> None:
    result = obama.datasets.prepare("obama", CONFIG)
    assert [k.source_name for k in result.kept] == [
        "obama_2009.jpg",
        "obama_2010.jpg",
        "obama_2012.jpg",
    ]
    reasons = {r.source_name: r.reason for r in result.rejected}
    assert reasons == {
        "biden_2010.jpg": "identity_outlier",
        "blurred.jpg": "blurred",
        "coffee.jpg": "no_face",
        "dup.jpg": "near_duplicate",
    }
    assert "near-duplicate of obama_2010.jpg" in next(
        r.detail for r in result.rejected if r.reason == "near_duplicate"
    )
    assert result.warnings == [
        "3 usable images: below the usual 10-20 for a character LoRA; expect it to copy "
        "poses and backgrounds"
    ]


def test_layout_captions_and_config(obama: Services) -> None:
    result = obama.datasets.prepare("obama", CONFIG)
    folder = Path(result.path)
    assert sorted(p.name for p in (folder / "images").iterdir()) == [
        "obama_001.png",
        "obama_002.png",
        "obama_003.png",
    ]
    for kept in result.kept:
        with Image.open(folder / "images" / kept.file_name) as img:
            assert img.size == (512, 512) and img.mode == "RGB"
        caption = (folder / "captions" / kept.file_name.replace(".png", ".txt")).read_text()
        assert caption == kept.caption + "\n"
        assert caption.startswith("obamacharacter, person, front view, ")
        assert caption.rstrip().endswith(", suit")
        # Never stretched: the crop has the output's aspect ratio.
        assert kept.crop.width == kept.crop.height
    config = json.loads((folder / "config.json").read_text())
    assert config["character_name"] == "obama" and config["num_images"] == 3
    assert (config["resolution"], config["trigger_word"]) == (512, "obamacharacter")
    assert (
        config["caption_style"] == "descriptive" and config["content_hash"] == result.content_hash
    )
    assert Path(result.contact_sheet).is_file() and Path(result.rejected_sheet or "").is_file()


def off_centre_refs(folder: Path, *, bars: bool) -> Path:
    """obama_2009 and obama_2010, plus obama_2012 placed off-centre in a wide frame: on the
    left of a noisy (not uniform) background, or between black pillarbox bars."""
    folder.mkdir()
    for name in ("obama_2009", "obama_2010"):
        shutil.copyfile(DATA / f"{name}.jpg", folder / f"{name}.jpg")
    portrait = Image.open(DATA / "obama_2012.jpg").convert("RGB")
    if bars:  # a 1920x1080 video frame: the picture in the middle, black on both sides
        picture = portrait.resize((864, 1080))
        frame = Image.new("RGB", (1920, 1080), (0, 0, 0))
        frame.paste(picture, (528, 0))
    else:
        rng = np.random.default_rng(7)
        noise = rng.integers(0, 256, (portrait.height, portrait.width * 3, 3), dtype=np.uint8)
        frame = Image.fromarray(noise)
        frame.paste(portrait, (0, 0))
    frame.save(folder / "frame.jpg", quality=92)
    return folder


def test_face_is_inside_every_crop(services: Services, tmp_path: Path) -> None:
    # Catches a crop that ignores the face (e.g. centred on the image): in the wide frame the
    # face is at the left edge, outside a centred square. (The old test only checked that
    # the crop lay inside the image, which any crop does.)
    services.library.create("obama", [off_centre_refs(tmp_path / "refs", bars=False)])
    result = services.datasets.prepare("obama", CONFIG)
    services.faces.extract("obama")
    boxes = {
        r.original_name: r.face_details["box"] for r in services.library.show("obama").references
    }
    assert sorted(k.source_name for k in result.kept) == [
        "frame.jpg",
        "obama_2009.jpg",
        "obama_2010.jpg",
    ]
    for kept in result.kept:
        x0, y0, x1, y1 = boxes[kept.source_name]
        crop = kept.crop
        assert crop.left <= x0 and x1 <= crop.right, kept.source_name
        assert crop.top <= y0 and y1 <= crop.bottom, kept.source_name
    frame = next(k.crop for k in result.kept if k.source_name == "frame.jpg")
    assert frame.left == 0  # the face is at the left edge; a centred crop would start at 512


def test_pillarbox_bars_are_cropped_away(services: Services, tmp_path: Path) -> None:
    # From a 1920x1080 frame with black side bars, a crop used to keep black columns.
    services.library.create("obama", [off_centre_refs(tmp_path / "refs", bars=True)])
    result = services.datasets.prepare("obama", CONFIG)
    frame = next(k for k in result.kept if k.source_name == "frame.jpg")
    assert frame.crop.left >= 528 and frame.crop.right <= 528 + 864
    # The largest square of the picture (the box is rounded inwards by at most a pixel).
    assert frame.crop.width == frame.crop.height and 862 <= frame.crop.width <= 864
    with Image.open(Path(result.path) / "images" / frame.file_name) as img:
        pixels = np.asarray(img.convert("RGB")).astype(int)
    black_columns = int((pixels.max(axis=(0, 2)) < 16).sum())
    assert black_columns == 0


def test_versions_hash_and_unchanged_reruns(obama: Services) -> None:
    first = obama.datasets.prepare("obama", CONFIG)
    again = obama.datasets.prepare("obama", CONFIG)
    assert (first.version, again.version, again.unchanged) == (1, 1, True)
    assert again.content_hash == first.content_hash
    other = obama.datasets.prepare("obama", CONFIG.model_copy(update={"resolution": 448}))
    assert (other.version, other.unchanged) == (2, False)
    with obama.db.sessions() as session:
        rows = session.scalars(select(TrainingSet).order_by(TrainingSet.version)).all()
    assert [(r.version, r.num_images, r.resolution) for r in rows] == [(1, 3, 512), (2, 3, 448)]
    assert obama.library.profile("obama").training_images_count == 3


def test_caption_edits_survive_regeneration(obama: Services) -> None:
    obama.datasets.prepare("obama", CONFIG)
    obama.datasets.edit_caption("obama", "obama_002.png", "obamacharacter, man, purple tie")
    result = obama.datasets.prepare("obama", CONFIG)
    edited = next(k for k in result.kept if k.file_name == "obama_002.png")
    assert edited.caption == "obamacharacter, man, purple tie" and edited.caption_edited
    assert result.version == 2
    assert obama.datasets.last_config("obama") == CONFIG
    obama.datasets.edit_caption("obama", "obama_2010.jpg", None)
    assert not any(k.caption_edited for k in obama.datasets.prepare("obama", CONFIG).kept)


def test_bad_captions_are_refused(obama: Services) -> None:
    obama.datasets.prepare("obama", CONFIG)
    with pytest.raises(InvalidParameter, match="line break"):
        obama.datasets.edit_caption("obama", "obama_001.png", "obamacharacter, a\nb")
    with pytest.raises(InvalidParameter, match="only the trigger word"):
        obama.datasets.edit_caption("obama", "obama_001.png", "obamacharacter")
    with pytest.raises(NotFound, match=r"no single image of 'obama' matches 'nope\.png'"):
        obama.datasets.edit_caption("obama", "nope.png", "obamacharacter, x")


def test_kohya_layout_names_txt_captions(obama: Services) -> None:
    result = obama.datasets.prepare("obama", CONFIG.model_copy(update={"kohya": True}))
    root = Path(result.kohya_path or "")
    concept = root / "10_obamacharacter person"
    assert sorted(p.name for p in concept.iterdir()) == [
        "obama_001.png",
        "obama_001.txt",
        "obama_002.png",
        "obama_002.txt",
        "obama_003.png",
        "obama_003.txt",
    ]
    toml = (root / "dataset.toml").read_text()
    assert 'caption_extension = ".txt"' in toml
    assert f'image_dir = "{concept}"' in toml and "num_repeats = 10" in toml
    import tomllib

    parsed = tomllib.loads(toml)
    assert parsed["datasets"][0]["subsets"][0]["num_repeats"] == 10
    assert parsed["general"]["resolution"] == 512
    assert parsed["general"]["enable_bucket"] is False
    bucketed = obama.datasets.prepare(
        "obama", CONFIG.model_copy(update={"kohya": True, "bucket": True})
    )
    general = tomllib.loads((Path(bucketed.kohya_path or "") / "dataset.toml").read_text())[
        "general"
    ]
    assert general["enable_bucket"] is True and general["bucket_no_upscale"] is True
    assert (general["bucket_reso_steps"], general["max_bucket_reso"]) == (64, 1024)


def test_buckets_keep_portraits_tall(obama: Services) -> None:
    result = obama.datasets.prepare("obama", CONFIG.model_copy(update={"bucket": True}))
    sizes = {k.source_name: (k.crop.out_width, k.crop.out_height) for k in result.kept}
    assert sizes["obama_2009.jpg"][1] > sizes["obama_2009.jpg"][0]  # 334x640 portrait
    for w, h in sizes.values():
        assert w % 64 == 0 and h % 64 == 0


def test_too_few_images_refused_and_nothing_written(services: Services, tmp_path: Path) -> None:
    services.library.create("pair", [DATA / "obama_2009.jpg", DATA / "obama_2010.jpg"])
    with pytest.raises(NotEnoughImages, match="only 2 of 2 references of 'pair' are usable"):
        services.datasets.prepare("pair", CONFIG)
    folder = services.store.training_set_dir("pair")
    assert not folder.exists()
    assert not folder.parent.exists() or list(folder.parent.iterdir()) == []


def test_all_rejected(services: Services) -> None:
    services.library.create("cup", [DATA / "coffee.jpg"])
    with pytest.raises(NotEnoughImages, match="every image was rejected"):
        services.datasets.prepare("cup", CONFIG)


def test_too_small_for_the_resolution(obama: Services) -> None:
    config = DatasetConfig.parse(resolution=640, max_upscale=1.25, min_images=1)
    result = obama.datasets.prepare("obama", config)
    too_small = {r.source_name: r.detail for r in result.rejected if r.reason == "too_small"}
    assert sorted(too_small) == ["dup.jpg", "obama_2009.jpg"]  # dup.jpg is 600x488
    assert (
        "334x640 would need 1.92x upscaling to reach 640x640 (limit 1.25x)"
        in (too_small["obama_2009.jpg"])
    )
    assert [k.source_name for k in result.kept] == ["obama_2010.jpg", "obama_2012.jpg"]


def test_resolution_not_multiple_of_64() -> None:
    with pytest.raises(InvalidParameter, match="resolution 700 is not a multiple of 64"):
        DatasetConfig.parse(resolution=700)


def test_no_references(services: Services, tmp_path: Path) -> None:
    services.library.create("empty", [DATA / "coffee.jpg"])
    services.library.remove("empty")
    with pytest.raises(NotFound):
        services.datasets.prepare("empty", CONFIG)


def test_an_interrupted_prepare_keeps_the_previous_set(
    obama: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = obama.datasets.prepare("obama", CONFIG)
    folder = Path(first.path)
    before = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    import charstudio.dataset.service as service

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(service, "swap_in", killed)
    with pytest.raises(KeyboardInterrupt):
        obama.datasets.prepare("obama", CONFIG.model_copy(update={"resolution": 448}))
    monkeypatch.undo()
    after = {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in folder.parent.iterdir()] == ["obama"]
    with obama.db.sessions() as session:
        assert len(session.scalars(select(TrainingSet)).all()) == 1


def test_several_faces_and_a_file_corrupted_on_disk_are_left_out(
    obama: Services, tmp_path: Path
) -> None:
    # Two faces of the same size: neither dominates, so no face stands for the image.
    face = Image.open(DATA / "obama_2012.jpg").convert("RGB")
    pair = Image.new("RGB", (2 * face.width + 60, face.height), "white")
    pair.paste(face, (0, 0))
    pair.paste(ImageOps.mirror(face), (face.width + 60, 0))
    pair.save(tmp_path / "pair.jpg", quality=95)
    obama.library.import_images("obama", [tmp_path / "pair.jpg"])
    # A stored reference damaged after import (disk trouble): reported, not deleted.
    ref = next(r for r in obama.library.show("obama").references if r.original_name == "coffee.jpg")
    stored = Path(ref.stored_path)
    stored = stored if stored.is_absolute() else obama.store.home / stored
    stored.write_bytes(stored.read_bytes()[:2000])
    result = obama.datasets.prepare("obama", CONFIG)
    reasons = {r.source_name: r for r in result.rejected}
    assert reasons["pair.jpg"].reason == "several_faces"
    assert "2 faces" in reasons["pair.jpg"].detail
    assert reasons["coffee.jpg"].reason == "corrupt"
    assert stored.is_file()
    assert len(obama.library.show("obama").references) == 8
    assert len(result.kept) == 3


def test_the_dataset_stage_asks_the_face_stage(
    obama: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # It used to repeat the face stage's analyse -> identity steps itself; one place now
    # decides both (a change to the face stage reaches the training set).
    from charstudio.faces.service import FaceService

    real = FaceService.identify
    asked: list[int] = []

    def spy(self: FaceService, paths: list[Path], **kwargs: Any) -> Any:
        asked.append(len(paths))
        return real(self, paths, **kwargs)

    monkeypatch.setattr(FaceService, "identify", spy)
    result = obama.datasets.prepare("obama", CONFIG)
    assert asked == [len(obama.library.show("obama").references)]
    assert len(result.kept) == 3
