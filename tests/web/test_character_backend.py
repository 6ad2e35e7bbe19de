"""The identity backend picker on the character page: dlib for photographs by default,
InsightFace, CCIP for drawn characters; a backend whose models are not set up is shown but
refused with the CLI's message; the page says which backend made the identity."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charstudio.config import Settings, load_settings
from charstudio.jobs import JobQueue
from tests.conftest import CliRunner
from tests.faces.ccip_standins import drawing, save
from tests.web.conftest import TOKEN, job_in

DLIB_IDENTITY = "dlib/dlib_face_recognition_resnet_model_v1"


def options(page: str) -> dict[str, tuple[str, bool]]:
    """The picker's options: value -> (label, selected)."""
    select = re.search(r'<select id="face-backend" name="backend"[^>]*>(.*?)</select>', page, re.S)
    assert select, page
    found = re.findall(r'<option value="(\w+)" (selected)?>([^<]*)</option>', select.group(1))
    return {value: (html.unescape(label), bool(chosen)) for value, chosen, label in found}


def field_error(page: str) -> str:
    found = re.search(r'<small class="error" id="face-backend-error">(.*?)</small>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def test_photographs_default_to_dlib_and_an_unset_ccip_is_shown_not_set_up(
    obama: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no InsightFace pack in ~/.insightface
    page = obama.get("/studio/characters/obama").text
    assert options(page) == {
        "dlib": ("dlib: photographs", True),
        "insightface": ("InsightFace: photographs (non-commercial weights) (not set up)", False),
        "ccip": ("CCIP: drawn characters (anime, illustration) (not set up)", False),
    }
    assert "No identity yet: analyse the references with the backend that fits" in page
    refused = obama.post("/studio/characters/obama/faces", data={"backend": "insightface"})
    assert refused.status_code == 422
    shown = field_error(refused.text)
    assert shown.startswith("no InsightFace model pack found: looked for one of det_10g.onnx")
    assert f"{tmp_path}/.insightface/models/buffalo_l" in shown
    assert "set CHARSTUDIO_INSIGHTFACE_ROOT to the folder that holds your pack" in shown
    api = obama.post(
        "/api/v1/characters/obama/faces/extract",
        params={"backend": "insightface"},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert (api.status_code, api.json()["detail"]) == (503, shown)


def test_the_identity_says_which_backend_made_it(analysed: TestClient) -> None:
    page = analysed.get("/studio/characters/obama").text
    assert f"Identity made by <code>{DLIB_IDENTITY}</code>." in page
    assert options(page)["dlib"] == ("dlib: photographs", True)


def test_a_backend_without_models_is_refused_with_the_clis_message(
    obama: TestClient, queue: JobQueue, cli: CliRunner
) -> None:
    response = obama.post("/studio/characters/obama/faces", data={"backend": "ccip"})
    assert response.status_code == 422
    shown = field_error(response.text)
    assert shown.startswith("the ccip backend needs its model folder: set CHARSTUDIO_CCIP")
    assert 'aria-invalid="true"' in response.text
    assert options(response.text)["ccip"][1]  # the choice is kept on the form
    assert queue.store.page(character="obama", limit=10, offset=0).items == []  # nothing queued
    # The CLI refuses the same choice with the same message (one check: extract_spec).
    told = cli("faces", "extract", "obama", "--backend", "ccip")
    assert told.code == 1
    assert " ".join(shown.split()) in " ".join(told.err.split())


def test_an_unknown_backend_is_a_field_error(obama: TestClient, queue: JobQueue) -> None:
    response = obama.post("/studio/characters/obama/faces", data={"backend": "clip"})
    assert response.status_code == 422
    assert field_error(response.text) == (
        "'clip' is not an identity backend; choose dlib, insightface, ccip"
    )
    assert queue.store.page(character="obama", limit=10, offset=0).items == []


class TestWithCcipModels:
    """A studio whose CCIP model folder is set (the stand-in models of tests/faces)."""

    @pytest.fixture
    def settings(self, home: Path, ccip_folder: Path) -> Settings:
        # One face worker: a spawned ONNX Runtime pool is tested in tests/faces.
        return load_settings(home=home, ccip_model_dir=ccip_folder, face_workers=1)

    def test_a_drawn_character_gets_its_identity_from_ccip(
        self, browser: TestClient, queue: JobQueue, tmp_path: Path
    ) -> None:
        refs = [save(drawing("akane", variant=v), tmp_path / f"akane_{v}.png") for v in range(3)]
        upload = [("files", (p.name, p.read_bytes(), "image/png")) for p in refs]
        created = browser.post("/studio/characters", data={"name": "akane"}, files=upload)
        assert created.status_code == 303, created.text
        page = browser.get("/studio/characters/akane").text
        assert "(not set up)" not in options(page)["ccip"][0]
        response = browser.post("/studio/characters/akane/faces", data={"backend": "ccip"})
        assert response.status_code == 303, response.text
        job = queue.run(job_in(response.headers["location"]))
        assert job.state == "succeeded", job.error
        assert job.params == {"backend": "ccip"}
        page = browser.get("/studio/characters/akane").text
        assert "Identity made by <code>ccip/ccip-standin</code>." in page
        assert options(page)["ccip"][1] and not options(page)["dlib"][1]
        # A blank choice keeps the character's own backend, as the API and CLI do.
        again = browser.post("/studio/characters/akane/faces", data={"backend": ""})
        redone = queue.run(job_in(again.headers["location"]))
        assert redone.result is not None and redone.result["backend"] == "ccip"


class TestWithAnInsightFaceRoot:
    """dlib stays the default; InsightFace's own folder setting makes it usable per
    character (the shared face_model_root reached only the default backend)."""

    @pytest.fixture
    def settings(self, home: Path, insightface_root: Path) -> Settings:
        return load_settings(home=home, insightface_root=insightface_root)

    def test_insightface_is_set_up_beside_the_dlib_default(self, obama: TestClient) -> None:
        page = obama.get("/studio/characters/obama").text
        assert options(page)["insightface"] == (
            "InsightFace: photographs (non-commercial weights)",
            False,
        )
        assert options(page)["dlib"] == ("dlib: photographs", True)


class TestWithAMissingCharacterDetector:
    """CCIP's folder is set but CHARSTUDIO_CCIP_DETECTOR names no file: ccip is refused
    before anything is queued, with one message on all three surfaces."""

    @pytest.fixture
    def detector(self, tmp_path: Path) -> Path:
        return tmp_path / "models" / "character_detect.onnx"

    @pytest.fixture
    def settings(self, home: Path, ccip_folder: Path, detector: Path) -> Settings:
        return load_settings(home=home, ccip_model_dir=ccip_folder, ccip_detector=detector)

    def test_ccip_is_refused_naming_the_file_and_the_setting(
        self,
        obama: TestClient,
        queue: JobQueue,
        cli: CliRunner,
        detector: Path,
        ccip_folder: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        message = (
            f"the character detector {detector} does not exist; set CHARSTUDIO_CCIP_DETECTOR "
            "to a YOLO .onnx file, or unset it to treat each image as one character"
        )
        page = obama.get("/studio/characters/obama").text
        assert options(page)["ccip"][0].endswith("(not set up)")
        studio = obama.post("/studio/characters/obama/faces", data={"backend": "ccip"})
        assert studio.status_code == 422
        assert field_error(studio.text) == message
        api = obama.post(
            "/api/v1/characters/obama/faces/extract",
            params={"backend": "ccip"},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert (api.status_code, api.json()["detail"]) == (502, message)
        assert queue.store.page(character="obama", limit=10, offset=0).items == []
        monkeypatch.setenv("CHARSTUDIO_CCIP_MODEL_DIR", str(ccip_folder))
        monkeypatch.setenv("CHARSTUDIO_CCIP_DETECTOR", str(detector))
        told = cli("faces", "extract", "obama", "--backend", "ccip")
        assert told.code == 1
        assert message in " ".join(told.err.split())
        assert queue.store.page(character="obama", limit=10, offset=0).items == []
