"""Gated generation over the API (issue 13): the job's result carries every image's QC,
the rejected images with their reasons (paths relative to the data root, as every API
path), the rates, and the ``partial`` state when the extra attempts ran out."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.services import Services


@pytest.fixture
def gated(studio: tuple[TestClient, JobQueue]) -> tuple[TestClient, JobQueue]:
    """The generating API of tests/api/conftest.py, with obama's face identity (QC scores
    every image against it)."""
    client, queue = studio
    faces = client.post("/api/v1/characters/obama/faces/extract").json()["id"]
    assert queue.run(faces).state == "succeeded"
    return studio


def test_the_job_result_carries_qc_rejected_images_and_rates(
    gated: tuple[TestClient, JobQueue], api_services: Services
) -> None:
    client, queue = gated
    queued = client.post(
        "/api/v1/characters/obama/generate", json={"prompt": "a red coat", "seed": 43}
    )
    assert queued.status_code == 202, queued.text
    queue.run(queued.json()["id"])
    job = client.get(f"/api/v1/jobs/{queued.json()['id']}").json()
    assert job["state"] == "succeeded"
    result = job["result"]
    assert (result["qc"], result["requested"], result["attempts"]) == (True, 1, 2)
    assert (result["face_consistency"], result["prompt_adherence"]) == (0.5, None)
    [kept] = result["kept"]
    assert kept["image"]["seed"] == 44 and kept["image"] == result["images"][0]
    checks = {c["check"]: c for c in kept["qc"]["checks"]}
    assert checks["identity"]["status"] == "pass" and checks["identity"]["scorer"] == "dlib"
    adherence = checks["adherence_clip"]  # no adherence model set: never a silent pass
    assert adherence["status"] == "not_checked" and "no adherence model" in adherence["reason"]
    [rejected] = result["rejected"]
    path = PurePosixPath(rejected["image"]["path"])
    assert not path.is_absolute() and path.parent.name == "rejected"
    assert (api_services.store.home / path).is_file() and path.name.endswith("_43.png")
    assert any(reason.startswith("identity:") for reason in rejected["reasons"])
    assert (api_services.store.home / rejected["qc_file"]).is_file()


def test_a_job_whose_attempts_run_out_is_partial(gated: tuple[TestClient, JobQueue]) -> None:
    client, queue = gated
    queued = client.post(
        "/api/v1/characters/obama/generate", json={"prompt": "a red coat", "seed": 40}
    )
    queue.run(queued.json()["id"])
    job = client.get(f"/api/v1/jobs/{queued.json()['id']}").json()
    assert job["state"] == "partial" and job["result"]["partial"] is True
    assert job["result"]["images"] == [] and len(job["result"]["rejected"]) == 4
    listed = client.get("/api/v1/jobs", params={"state": "partial"}).json()
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    off = client.post(
        "/api/v1/characters/obama/generate",
        json={"prompt": "a red coat", "seed": 40, "qc": False},
    )
    done = queue.run(off.json()["id"])
    assert done.state == "succeeded" and "kept" not in done.result
