"""The studio's Consistency page: the report from history, the tune heatmap, "apply these
strengths", and starting a tune (with its estimate) or a measured report as jobs."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.lab import TuneSpec
from charstudio.server import create_app
from tests.lab.conftest import Lab, make_lab
from tests.web.conftest import TOKEN, csrf_of, job_in


def field_error(page: str, field: str) -> str:
    found = re.search(rf'<small class="error" id="t-{field}-error">(.*?)</small>', page, re.S)
    assert found, page
    return found.group(1)


GRID = TuneSpec(
    lora_strengths=(0.6, 0.7), ipadapter_strengths=(0.5, 0.6), seeds=1, backend="photos"
)


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[tuple[TestClient, JobQueue, Lab]]:
    world = make_lab(tmp_path / "home")
    services = world.services
    services.settings = services.settings.model_copy(update={"api_token": TOKEN})
    services.__dict__["lab"] = world.lab
    queue = JobQueue(services)
    app = create_app(services, queue=queue)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        login = client.post("/studio/login", data={"password": TOKEN, "next": "/studio"})
        assert login.status_code == 303
        client.headers["X-CSRF-Token"] = csrf_of(client.get("/studio").text)
        yield client, queue, world
    services.close()


def test_the_page_shows_the_grid_and_applies_it(studio: tuple[TestClient, JobQueue, Lab]) -> None:
    client, _, world = studio
    page = client.get("/studio/characters/obama/consistency").text
    assert "Nothing measured yet" in page and "data-heatmap" not in page
    assert re.search(r"With the defaults: 16 cells \u00d7 6 images = 96 images", page)
    assert (
        'href="/studio/characters/obama/consistency"' in client.get("/studio/characters/obama").text
    )
    world.lab.tune("obama", GRID, apply=False)
    page = client.get("/studio/characters/obama/consistency").text
    assert "data-heatmap" in page and 'src="data:image/png;base64,' in page
    assert "<strong data-chosen>LoRA 0.7, IP-Adapter 0.6</strong>" in page
    assert "lora_ipadapter v1 (LoRA 0.7, IP-Adapter 0.6, character weight 0.5)" in page
    applied = client.post("/studio/characters/obama/consistency/apply")
    assert applied.status_code == 303
    shown = client.get(applied.headers["location"]).text
    assert "Applied: lora strength 0.7, ipadapter strength 0.6." in html.unescape(shown)
    assert world.services.library.profile("obama").params.lora_strength == 0.7


def test_tune_and_report_start_as_jobs(studio: tuple[TestClient, JobQueue, Lab]) -> None:
    client, queue, _ = studio
    started = client.post(
        "/studio/characters/obama/consistency/tune",
        data={"lora": "0.7", "ipadapter": "0.6", "seeds": "1"},
    )
    assert started.status_code == 303, started.text
    job = queue.store.get(job_in(started.headers["location"]))
    assert job.kind == "tune" and job.params["spec"]["lora_strengths"] == [0.7]
    bad = client.post(
        "/studio/characters/obama/consistency/tune",
        data={"lora": "0.6, high", "ipadapter": " , ", "seeds": "3", "yes": "on"},
    )
    assert bad.status_code == 422  # field errors on the form, what was typed kept
    page = html.unescape(bad.text)
    assert field_error(page, "lora") == (
        "LoRA strengths takes numbers separated by commas, such as 0.5,0.6,0.7; "
        "'high' is not a number"
    )
    assert field_error(page, "ipadapter") == (
        "IP-Adapter strengths is empty: give strengths such as 0.5,0.6,0.7"
    )
    assert 'value="0.6, high"' in page and 'value="3"' in page
    assert re.search(r'name="yes"\s+checked', page)
    assert queue.store.page(character="obama", limit=10, offset=0).items[0].id == job.id
    report = client.post("/studio/characters/obama/consistency/report")
    assert report.status_code == 303
    assert queue.store.get(job_in(report.headers["location"])).kind == "report"
