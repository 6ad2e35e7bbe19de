"""The API in process: a real app over real services in a temporary data root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.server import create_app
from charstudio.services import Services, build_services
from tests.backends.fake_comfyui import FakeComfyUI
from tests.backends.photo_outputs import PhotoScenario
from tests.faces.conftest import DATA

TOKEN = "test-token-0123456789abcdef"
PHOTOS = [DATA / f"obama_{y}.jpg" for y in (2009, 2010, 2012)]


@pytest.fixture
def api_services(services: Services) -> Services:
    services.init()
    return services


@pytest.fixture
def queue(api_services: Services) -> JobQueue:
    return JobQueue(api_services)


@pytest.fixture
def client(api_services: Services, queue: JobQueue) -> Iterator[TestClient]:
    settings = api_services.settings.model_copy(
        update={"api_token": TOKEN, "api_max_upload_bytes": 5_000_000, "api_max_files": 20}
    )
    api_services.settings = settings
    app = create_app(api_services, queue=queue)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client


def files(*paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


@pytest.fixture
def obama(client: TestClient) -> TestClient:
    response = client.post("/api/v1/characters", data={"name": "obama"}, files=files(*PHOTOS))
    assert response.status_code == 201, response.text
    return client


@pytest.fixture
def comfy() -> Iterator[FakeComfyUI]:
    """A fake ComfyUI on a free loopback port (tests/backends/fake_comfyui.py)."""
    # Real photographs by seed (tests/backends/photo_outputs.py), so QC sees faces.
    server = FakeComfyUI(photos=PhotoScenario()).start()
    yield server
    server.stop()


@pytest.fixture
def studio(api_services: Services, comfy: FakeComfyUI) -> Iterator[tuple[TestClient, JobQueue]]:
    """The API over services of its own that generate on the fake ComfyUI, with obama
    created (no face identity yet); the client and the queue its jobs run from."""
    settings = api_services.settings.model_copy(
        update={
            "api_token": TOKEN,
            "comfyui_urls": [comfy.url],
            "comfyui_checkpoint": "rand_sd15.safetensors",
        }
    )
    services = build_services(settings)
    queue = JobQueue(services)
    app = create_app(services, queue=queue)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        made = client.post("/api/v1/characters", data={"name": "obama"}, files=files(*PHOTOS))
        assert made.status_code == 201, made.text
        yield client, queue
    services.close()
