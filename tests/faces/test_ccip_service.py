"""A drawn character beside a photographed one in one library: the ccip backend chosen per
character, through extract, reference, scores, dataset curation, QC and generation planning."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from charstudio.backends.planning import (
    DRAWN_CHARACTER_PRESET,
    choose_reference,
    drawn_character_preset,
)
from charstudio.config import load_settings
from charstudio.dataset import DatasetConfig
from charstudio.faces.ccip_backend import NO_DETECTOR_NOTE
from charstudio.faces.types import IncompatibleEmbeddings
from charstudio.qc.types import QCRequest
from charstudio.services import Services, build_services
from tests.conftest import CliRunner
from tests.faces.ccip_standins import drawing, save
from tests.faces.conftest import DATA

OBAMA = [DATA / f for f in ("obama_2009.jpg", "obama_2010.jpg", "obama_2012.jpg")]


def drawn_refs(folder: Path) -> list[Path]:
    """Four drawings of akane and one of another character (midori)."""
    paths = [save(drawing("akane", variant=v), folder / f"akane_{v}.png") for v in range(4)]
    return [*paths, save(drawing("midori", variant=1), folder / "midori.png")]


@pytest.fixture
def studio(home: Path, tmp_path: Path, ccip_folder: Path) -> Iterator[Services]:
    """A library with the default (dlib) backend and a CCIP folder set; one worker (the
    CLI test runs the two spawned workers ONNX Runtime needs)."""
    settings = load_settings(home=home, ccip_model_dir=ccip_folder, face_workers=1)
    services = build_services(settings)
    services.library.create("akane", drawn_refs(tmp_path / "refs"))
    yield services
    services.close()


def test_drawn_and_photographed_characters_in_one_library(studio: Services) -> None:
    report = studio.faces.extract("akane", backend="ccip")
    assert (report.backend, report.model, report.dim) == ("ccip", "ccip-standin", 768)
    assert report.subject == "character" and report.note == NO_DETECTOR_NOTE
    assert report.threshold == pytest.approx(1 - 0.178)
    assert (report.inliers, report.outliers) == (4, 1)
    statuses = {img.original_name: img.status for img in report.images}
    assert statuses == {**{f"akane_{v}.png": "ok" for v in range(4)}, "midori.png": "outlier"}
    meta = json.loads(Path(report.files[2]).read_text())
    assert (meta["backend"], meta["model"]) == ("ccip", "ccip-standin")
    studio.library.create("obama", OBAMA)
    assert studio.faces.extract("obama").backend == "dlib"  # the default stays dlib
    assert studio.library.profile("akane").identity_backend == "ccip/ccip-standin"
    assert studio.library.profile("obama").identity_backend == (
        "dlib/dlib_face_recognition_resnet_model_v1"
    )
    # A re-extract keeps the character's backend.
    assert studio.faces.extract("akane").backend == "ccip"


def test_a_drawn_characters_reference_is_the_full_character_image(studio: Services) -> None:
    reference = studio.faces.extract("akane", backend="ccip").reference
    assert reference is not None and reference.original_name.startswith("akane_")
    assert reference.face_crop is None and reference.full_image is not None
    full = np.asarray(Image.open(reference.full_image))
    assert np.array_equal(full, np.asarray(Image.open(reference.path).convert("RGB")))
    assert not (studio.store.embeddings_dir / "akane_reference_face.png").exists()
    chosen = studio.faces.choose_reference("akane", "akane_2.png")
    assert chosen.chosen_by == "user" and chosen.face_crop is None
    # Generation follows: a face preset becomes the full-image preset, with a warning.
    profile = studio.library.profile("akane")
    preset, warning = drawn_character_preset(profile, "PLUS FACE (portraits)")
    assert preset == DRAWN_CHARACTER_PRESET and warning is not None
    assert "drawn character (its identity was made by ccip)" in warning
    path, kind = choose_reference(
        profile, preset=preset, face_crop=studio.store.embeddings_dir / "akane_reference_face.png"
    )
    assert (path, kind) == (Path(studio.faces.reference("akane").path), "full")
    assert drawn_character_preset(profile, "STANDARD (medium strength)")[1] is None


def test_scores_use_the_characters_backend(studio: Services, tmp_path: Path) -> None:
    studio.faces.extract("akane", backend="ccip")
    same = save(drawing("akane", variant=6), tmp_path / "gen" / "same.png")
    other = save(drawing("midori", variant=3), tmp_path / "gen" / "other.png")
    report = studio.faces.score("akane", [same, other], sheet=tmp_path / "sheet.png")
    assert report.backend == "ccip" and [i.passed for i in report.images] == [True, False]
    assert report.face_consistency == 0.5 and (tmp_path / "sheet.png").is_file()


def test_dataset_curation_flags_the_off_model_reference(studio: Services) -> None:
    studio.faces.extract("akane", backend="ccip")
    config = DatasetConfig.parse(resolution=256, min_images=3, class_word="character")
    result = studio.datasets.prepare("akane", config)
    rejected = {r.source_name: r.reason for r in result.rejected}
    assert rejected.get("midori.png") == "identity_outlier"
    assert all(k.source_name.startswith("akane_") for k in result.kept)
    assert all(k.view is None and k.framing is None for k in result.kept)


def test_qc_checks_a_drawn_character_with_ccip(studio: Services, tmp_path: Path) -> None:
    studio.faces.extract("akane", backend="ccip")
    checker = studio.qc.checker("akane", soundness=False)
    assert checker.backend.name == "ccip"
    request = QCRequest(character="akane", prompt="akane waving")
    good = checker.check(drawing("akane", variant=7), request)
    bad = checker.check(drawing("midori", variant=2), request)
    assert good.identity is not None and bad.identity is not None
    identity = {r.check: r for r in good.checks}["identity"]
    assert identity.status == "pass" and identity.scorer == "ccip"
    assert identity.reason.startswith("the character: ccip score")
    failed = {r.check: r for r in bad.checks}["identity"]
    assert failed.status == "fail" and failed.reason.startswith("not the character: ccip score")
    # `qc score` over a folder: the report names the backend, the rates count both images.
    folder = tmp_path / "generated"
    save(drawing("akane", variant=7), folder / "a.png")
    save(drawing("midori", variant=2), folder / "b.png")
    report = studio.qc.score("akane", [folder], sheet=tmp_path / "qc.png")
    assert report.face_backend == "ccip" and report.face_consistency == 0.5
    assert report.thresholds["identity"] == pytest.approx(1 - 0.178)


def test_qc_refuses_an_identity_of_another_ccip_model(studio: Services, tmp_path: Path) -> None:
    studio.faces.extract("akane", backend="ccip")
    meta_file = studio.store.embeddings_dir / "akane_face.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({**meta, "model": "ccip-caformer_b36-24"}))
    with pytest.raises(IncompatibleEmbeddings) as info:
        studio.qc.checker("akane")
    message = str(info.value)
    assert "made by ccip/ccip-caformer_b36-24 (768-D)" in message
    assert "now is ccip/ccip-standin" in message


def test_cli_extract_backend_and_show(
    cli: CliRunner, tmp_path: Path, ccip_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHARSTUDIO_CCIP_MODEL_DIR", str(ccip_folder))
    refs = [str(p) for p in drawn_refs(tmp_path / "refs")]
    assert cli("character", "add", "akane", "--images", *refs).code == 0
    result = cli("faces", "extract", "akane", "--backend", "ccip")
    assert result.code == 0, result.err
    assert "identity from 4 image(s); 1 outlier(s) and 0 without one usable character" in (
        result.out
    )
    assert "same character at score >= 0.822, i.e. CCIP difference <= 0.178" in result.out
    assert "no character detector set" in result.out + result.err
    shown = cli("character", "show", "akane")
    assert "(made by ccip/ccip-standin)" in shown.out
    profile = json.loads(cli("character", "show", "akane", "--json").out)["profile"]
    assert profile["identity_backend"] == "ccip/ccip-standin"
    wrong = cli("faces", "extract", "akane", "--backend", "clip")
    assert wrong.code == 2 and "clip" in wrong.err


def test_a_ccip_default_still_serves_a_photographed_character(
    home: Path, ccip_folder: Path
) -> None:
    settings = load_settings(
        home=home, face_backend="ccip", ccip_model_dir=ccip_folder, face_workers=1
    )
    services = build_services(settings)
    try:
        services.library.create("obama", OBAMA)
        assert services.faces.extract("obama", backend="dlib").backend == "dlib"
        assert services.faces.character_spec("obama").name == "dlib"
        assert services.qc.checker("obama", soundness=False).backend.name == "dlib"
    finally:
        services.close()
