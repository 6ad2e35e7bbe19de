"""The studio in process: the real app over real services, a logged-in TestClient."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charstudio.config import load_settings
from charstudio.jobs import JobQueue
from charstudio.server import create_app
from charstudio.services import Services, build_services
from tests.api.conftest import PHOTOS, TOKEN, files
from tests.backends.fake_comfyui import FakeComfyUI
from tests.backends.photo_outputs import PhotoScenario
from tests.conftest import write_image
from tests.faces.conftest import ccip_folder, insightface_root

# ccip_folder, insightface_root: the stand-in CCIP model folder and InsightFace pack root of
# tests/faces, shared (built once a session).
__all__ = ["PHOTOS", "TOKEN", "ccip_folder", "files", "insightface_root"]


@pytest.fixture(scope="session")
def comfy() -> Iterator[FakeComfyUI]:
    # Real photographs by seed (tests/backends/photo_outputs.py), so QC sees faces.
    server = FakeComfyUI(photos=PhotoScenario()).start()
    yield server
    server.stop()


def set_up_for_the_studio(services: Services, comfy: FakeComfyUI) -> Services:
    services.settings = services.settings.model_copy(
        update={
            "api_token": TOKEN,
            "api_max_upload_bytes": 5_000_000,
            "comfyui_urls": [comfy.url],
            "comfyui_checkpoint": "rand_sd15.safetensors",
        }
    )
    services.init()  # after the settings: init builds the generation service
    return services


@pytest.fixture
def home(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The test's data root; for a test that uses ``analysed``, a copy of
    ``analysed_root`` (copied before anything opens it)."""
    home = tmp_path / "data"
    if "analysed" in request.fixturenames:
        shutil.copytree(request.getfixturevalue("analysed_root"), home)
    return home


@pytest.fixture
def web_services(services: Services, comfy: FakeComfyUI) -> Services:
    return set_up_for_the_studio(services, comfy)


@pytest.fixture
def queue(web_services: Services) -> JobQueue:
    return JobQueue(web_services)


@pytest.fixture
def anonymous(web_services: Services, queue: JobQueue) -> Iterator[TestClient]:
    """No session. https: the session cookie is Secure, so httpx sends it over https only."""
    app = create_app(web_services, queue=queue)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def browser(anonymous: TestClient) -> TestClient:
    """Logged in through the form; every request then carries the session's CSRF token as
    the X-CSRF-Token header, read from the page's meta tag as studio.js does
    (tests/web/test_csrf.py posts the forms' hidden field and refuses forgeries)."""
    return log_in(anonymous)


def log_in(client: TestClient) -> TestClient:
    response = client.post("/studio/login", data={"password": TOKEN, "next": "/studio"})
    assert response.status_code == 303, response.text
    client.headers["X-CSRF-Token"] = csrf_of(client.get("/studio").text)
    return client


def csrf_of(page: str) -> str:
    """The CSRF token a studio page was rendered with (its csrf-token meta tag)."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert match, "no csrf-token meta tag on the page"
    return match.group(1)


@pytest.fixture
def obama(browser: TestClient) -> TestClient:
    return add_obama(browser)


def add_obama(client: TestClient) -> TestClient:
    response = client.post("/studio/characters", data={"name": "obama"}, files=files(*PHOTOS))
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/studio/characters/obama"
    return client


def job_in(location: str) -> str:
    """The job id a redirect hands to the page (``...?job=<id>#...``)."""
    assert "job=" in location, location
    return location.split("job=")[1].split("#")[0].split("&")[0]


def analyse_obama(client: TestClient, queue: JobQueue) -> TestClient:
    response = client.post("/studio/characters/obama/faces")
    assert queue.run(job_in(response.headers["location"])).state == "succeeded"
    return client


@pytest.fixture(scope="session")
def analysed_root(tmp_path_factory: pytest.TempPathFactory, comfy: FakeComfyUI) -> Path:
    """A data root where obama was added and his faces extracted through the studio, made
    once a session: ``home`` copies it for each test that uses ``analysed`` (the real dlib
    analysis of three photographs takes seconds; copying the folder, milliseconds)."""
    home = tmp_path_factory.mktemp("analysed") / "data"
    services = set_up_for_the_studio(build_services(load_settings(home=home)), comfy)
    queue = JobQueue(services)
    app = create_app(services, queue=queue)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        analyse_obama(add_obama(log_in(client)), queue)
    services.close()
    return home


@pytest.fixture
def analysed(browser: TestClient, queue: JobQueue) -> TestClient:
    """obama with faces extracted (identity, boxes, the IP-Adapter reference): this test's
    data root is a copy of ``analysed_root``, where the studio did both."""
    faces = queue.store.page(state=None, character="obama", limit=5, offset=0).items
    assert [(job.kind, job.state) for job in faces] == [("faces_extract", "succeeded")], faces
    return browser


def recorded_lora(services: Services, version: int, *, promoted: bool) -> None:
    """A trained version as the training service records it (training itself is tested in
    tests/training; here only what the page shows of it matters)."""
    from sqlalchemy import select

    from charstudio.library.models import Character, LoraVersion

    lora = services.store.lora_dir / f"obama_v{version}.safetensors"
    lora.parent.mkdir(parents=True, exist_ok=True)
    lora.write_bytes(b"weights")
    sample = f"character_data/lora_runs/obama_v{version}/samples/step_200/0.png"
    write_image(services.settings.home / sample, size=(64, 64), color=(90, 120, 200))
    with services.db.sessions.begin() as session:
        character = session.scalar(select(Character).where(Character.name == "obama"))
        assert character is not None
        session.add(
            LoraVersion(
                character_id=character.id,
                version=version,
                path=str(lora),
                base_model="rand_sd15.safetensors",
                status="ready",
                promoted=promoted,
                metrics={
                    "steps": 200,
                    "final_loss": 0.0812,
                    "loss_curve": [[1, 0.25], [100, 0.12], [200, 0.0812]],
                    "samples": [
                        f"character_data/lora_runs/obama_v{version}/samples/step_200/0.png"
                    ],
                },
            )
        )
