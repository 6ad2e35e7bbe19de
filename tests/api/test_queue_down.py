"""The job queue (Redis) unreachable when a job is submitted: 503 with the reason, and
nothing half-written (no job row without its message)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from charstudio.config import load_settings
from charstudio.jobs import JobQueue
from charstudio.server import create_app
from charstudio.services import Services, build_services
from tests.api.conftest import PHOTOS, TOKEN, files
from tests.backends.fake_comfyui import free_port


def test_submitting_while_redis_is_down_answers_503_and_keeps_nothing(
    api_services: Services,
) -> None:
    port = free_port()  # no Redis there
    settings = load_settings(
        home=api_services.settings.home,
        queue_url=f"redis://127.0.0.1:{port}/0",
        api_token=TOKEN,
    )
    services = build_services(settings)
    try:
        app = create_app(services, queue=JobQueue(services))
        with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            created = client.post(
                "/api/v1/characters", data={"name": "obama"}, files=files(*PHOTOS)
            )
            assert created.status_code == 201, created.text  # the library needs no queue
            answer = client.post("/api/v1/characters/obama/faces/extract")
            assert answer.status_code == 503, answer.text
            detail = answer.json()["detail"]
            assert detail.startswith(f"the job queue redis://127.0.0.1:{port}/0 cannot be reached")
            assert "refused" in detail.lower() and "Traceback" not in answer.text
            assert answer.json()["type"] == "QueueUnavailable"
            listed = client.get("/api/v1/jobs")
            assert listed.status_code == 200 and listed.json()["total"] == 0
    finally:
        services.close()
