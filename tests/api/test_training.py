"""Training through the API on a tiny SD1.5-shaped model: job, versions, promote."""

from __future__ import annotations

from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.services import Services
from tests.training.conftest import TinyModel, add_training_set, tiny_overrides, tiny_sd15

__all__ = ["tiny_sd15"]  # the session fixture, shared with tests/training


def test_train_job_versions_and_promote(
    obama: TestClient, queue: JobQueue, api_services: Services, tiny_sd15: TinyModel
) -> None:
    no_set = obama.post("/api/v1/characters/obama/train", json={"set": tiny_overrides(tiny_sd15)})
    assert no_set.status_code == 202  # the set is checked when the job runs
    failed = queue.run(no_set.json()["id"])
    assert failed.state == "failed" and "no prepared training set" in failed.error
    add_training_set(api_services, "obama")
    job = obama.post("/api/v1/characters/obama/train", json={"set": tiny_overrides(tiny_sd15)})
    done = queue.run(job.json()["id"])
    assert done.state == "succeeded", done.error
    assert done.progress_step == done.progress_total == 6
    assert done.result["version"] == 1
    versions = obama.get("/api/v1/characters/obama/loras").json()
    assert [v["version"] for v in versions] == [1]  # the refused run reserved nothing
    promoted = obama.post("/api/v1/characters/obama/loras/v1/promote")
    assert promoted.status_code == 200 and promoted.json()["promoted"] is True
    profile = obama.get("/api/v1/characters/obama").json()["profile"]
    assert profile["has_lora"] is True and profile["method"] == "lora_only"


def test_bad_training_settings_are_400_with_the_key(obama: TestClient) -> None:
    bad = obama.post("/api/v1/characters/obama/train", json={"set": ["lora.rank=0"]})
    assert bad.status_code == 400 and "lora.rank" in bad.json()["detail"]
    assert obama.get("/api/v1/jobs").json()["total"] == 0
    missing = obama.post("/api/v1/characters/obama/loras/v9/promote")
    assert missing.status_code in (400, 404) and "v9" in missing.json()["detail"]
