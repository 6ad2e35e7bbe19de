"""The identity backend chosen per character through the API (``?backend=ccip``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charstudio.config import Settings, load_settings
from charstudio.jobs import JobQueue
from tests.faces.ccip_standins import build_ccip_folder, drawing, save


@pytest.fixture
def settings(home: Path, tmp_path: Path) -> Settings:
    """The API's settings with a (stand-in) CCIP model folder."""
    folder = build_ccip_folder(tmp_path / "models" / "ccip-standin")
    return load_settings(home=home, ccip_model_dir=folder, face_workers=1)


def test_extract_job_with_the_ccip_backend(
    client: TestClient, queue: JobQueue, tmp_path: Path
) -> None:
    refs = [save(drawing("akane", variant=v), tmp_path / f"akane_{v}.png") for v in range(3)]
    upload = [("files", (p.name, p.read_bytes(), "image/png")) for p in refs]
    created = client.post("/api/v1/characters", data={"name": "akane"}, files=upload)
    assert created.status_code == 201, created.text
    wrong = client.post("/api/v1/characters/akane/faces/extract", params={"backend": "clip"})
    assert wrong.status_code == 422 and "ccip" in wrong.text, wrong.text
    queued = client.post("/api/v1/characters/akane/faces/extract", params={"backend": "ccip"})
    assert queued.status_code == 202, queued.text
    done = queue.run(queued.json()["id"])
    assert done.state == "succeeded", done.error
    assert done.result is not None
    assert (done.result["backend"], done.result["subject"]) == ("ccip", "character")
    profile = client.get("/api/v1/characters/akane").json()["profile"]
    assert profile["identity_backend"] == "ccip/ccip-standin"
    # Without ?backend the character keeps the one its identity was made with.
    again = queue.run(client.post("/api/v1/characters/akane/faces/extract").json()["id"])
    assert again.result is not None and again.result["backend"] == "ccip"


class TestWithoutCcipModels:
    """No CCIP folder set: the choice is refused before anything is queued."""

    @pytest.fixture
    def settings(self, home: Path) -> Settings:
        return load_settings(home=home)

    def test_ccip_is_refused_naming_the_setting(self, obama: TestClient, queue: JobQueue) -> None:
        refused = obama.post("/api/v1/characters/obama/faces/extract", params={"backend": "ccip"})
        assert refused.status_code == 502, refused.text
        assert refused.json()["detail"].startswith(
            "the ccip backend needs its model folder: set CHARSTUDIO_CCIP_MODEL_DIR to the folder"
        )
        assert queue.store.page(character="obama", limit=10, offset=0).items == []
