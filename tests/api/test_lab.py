"""The consistency lab over the API: plan at once, tune and report as jobs, the latest
result, apply, the history report; bad input as 400/422."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.server import create_app
from tests.api.conftest import TOKEN
from tests.lab.conftest import Lab, make_lab

SPEC = {
    "lora_strengths": [0.6, 0.7],
    "ipadapter_strengths": [0.5, 0.6],
    "seeds": 1,
    "backend": "photos",
    "prompts": [{"variation": "outfit", "text": "a red coat"}],
}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[TestClient, JobQueue, Lab]]:
    world = make_lab(tmp_path / "home")
    services = world.services
    services.settings = services.settings.model_copy(update={"api_token": TOKEN})
    services.__dict__["lab"] = world.lab  # the lab over the strength-dependent generator
    queue = JobQueue(services)
    app = create_app(services, queue=queue)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client, queue, world
    services.close()


def test_tune_and_report_as_jobs(api: tuple[TestClient, JobQueue, Lab]) -> None:
    client, queue, world = api
    plan = client.post("/api/v1/characters/obama/tune/plan", json=SPEC)
    assert plan.status_code == 200, plan.text
    assert (plan.json()["images"], len(plan.json()["cells"])) == (4, 4)
    assert client.get("/api/v1/characters/obama/tune").status_code == 404
    queued = client.post("/api/v1/characters/obama/tune", json={"spec": SPEC})
    assert queued.status_code == 202, queued.text
    done = queue.run(queued.json()["id"])
    assert done.state == "succeeded", done.error
    latest = client.get("/api/v1/characters/obama/tune").json()
    assert latest["chosen"] == {
        "lora_strength": 0.7,
        "ipadapter_strength": 0.6,
        "character_weight": None,  # not an axis: the profile's
    }
    assert latest["applied"] == {"lora_strength": 0.7, "ipadapter_strength": 0.6}
    world.services.library.update("obama", overrides={"lora_strength": 0.75})
    applied = client.post("/api/v1/characters/obama/tune/apply").json()
    assert applied["applied"]["lora_strength"] == 0.7
    report = client.post("/api/v1/characters/obama/report", json={"spec": SPEC})
    assert report.status_code == 202, report.text
    assert queue.run(report.json()["id"]).state == "succeeded"
    finished = client.get(f"/api/v1/jobs/{report.json()['id']}").json()
    rows = {r["label"]: r["rates"]["face_consistency"] for r in finished["result"]["rows"]}
    assert rows["lora_ipadapter"] == 1.0 and rows["img2img"] == 0.0 and rows["tuned"] == 1.0
    html = PurePosixPath(finished["result"]["html"])
    assert not html.is_absolute() and (world.services.store.home / html).is_file()
    history = client.get("/api/v1/characters/obama/report")
    assert history.status_code == 200 and history.json()["source"] == "history"


def test_bad_lab_requests_are_refused(api: tuple[TestClient, JobQueue, Lab]) -> None:
    client, queue, _ = api
    before = queue.store.page(limit=100).total
    big = {**SPEC, "lora_strengths": [v / 10 for v in range(1, 13)], "seeds": 16}
    refused = client.post("/api/v1/characters/obama/tune", json={"spec": big})
    assert refused.status_code == 400 and "send yes: true" in refused.json()["detail"]
    nan = client.post(
        "/api/v1/characters/obama/tune/plan",
        content=b'{"lora_strengths": [NaN]}',
        headers={"Content-Type": "application/json"},
    )
    assert nan.status_code == 422
    empty = client.post("/api/v1/characters/obama/tune", json={"spec": {"lora_strengths": []}})
    assert empty.status_code == 422
    missing = client.post("/api/v1/characters/nobody/report", json={})
    assert missing.status_code == 404
    assert client.get("/api/v1/characters/obama/report").status_code == 404
    assert queue.store.page(limit=100).total == before
