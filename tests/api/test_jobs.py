"""Jobs through the API: faces, datasets, generation on a fake ComfyUI, cancel, SSE."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from charstudio.backends import read_parameters
from charstudio.jobs import JobQueue
from charstudio.library.models import Generation, Job
from charstudio.services import Services
from tests.api.conftest import PHOTOS, files
from tests.conftest import CliRunner
from tests.dataset.test_tagger import write_standin


def test_faces_job_runs_and_reports(obama: TestClient, queue: JobQueue) -> None:
    queued = obama.post("/api/v1/characters/obama/faces/extract")
    assert queued.status_code == 202 and queued.json()["state"] == "queued"
    job_id = queued.json()["id"]
    queue.run(job_id)
    done = obama.get(f"/api/v1/jobs/{job_id}").json()
    assert done["state"] == "succeeded" and done["result"]["inliers"] == 3
    listing = obama.get("/api/v1/jobs", params={"state": "succeeded", "character": "obama"})
    assert [j["id"] for j in listing.json()["items"]] == [job_id]
    reference = obama.get("/api/v1/characters/obama/faces/reference").json()
    assert reference["original_name"].startswith("obama_") and reference["chosen_by"] == "auto"
    chosen = obama.put("/api/v1/characters/obama/faces/reference", json={"image": "obama_2009.jpg"})
    assert chosen.status_code == 200, chosen.text
    assert (chosen.json()["original_name"], chosen.json()["chosen_by"]) == (
        "obama_2009.jpg",
        "user",
    )
    assert obama.get("/api/v1/characters/obama").json()["profile"]["method"] == "ipadapter_only"


def test_sse_stream_follows_a_running_job_to_its_end(obama: TestClient, queue: JobQueue) -> None:
    job_id = obama.post("/api/v1/characters/obama/faces/extract").json()["id"]
    runner = threading.Timer(0.3, queue.run, args=(job_id,))
    runner.start()
    with obama.stream("GET", f"/api/v1/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = [line for line in stream.iter_lines() if line.startswith("event:")]
    runner.join()
    assert events[0] == "event: progress" and events[-1] == "event: end"
    assert len(events) >= 3  # queued, then running or done, then the end


def test_dataset_job_settings_checked_at_submit(obama: TestClient, queue: JobQueue) -> None:
    assert obama.get("/api/v1/characters/obama/dataset").status_code == 404
    bad = obama.post("/api/v1/characters/obama/dataset", json={"resolution": 700})
    assert bad.status_code == 400 and "resolution 700 is not a multiple of 64" in bad.text
    assert obama.get("/api/v1/jobs").json()["total"] == 0  # nothing queued
    unknown = obama.post("/api/v1/characters/obama/dataset", json={"resolutoin": 512})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"][-1] == "resolutoin"
    job = obama.post(
        "/api/v1/characters/obama/dataset", json={"resolution": 512, "max_upscale": 2.0}
    ).json()
    assert queue.run(job["id"]).state == "succeeded"
    current = obama.get("/api/v1/characters/obama/dataset").json()
    assert current["num_images"] == 3 and current["trigger_word"] == "obamacharacter"
    edited = obama.put(
        "/api/v1/characters/obama/dataset/captions/obama_001.png",
        json={"text": "obamacharacter, man, podium"},
    )
    assert edited.status_code == 200
    refused = obama.put(
        "/api/v1/characters/obama/dataset/captions/obama_001.png", json={"text": "obamacharacter"}
    )
    assert refused.status_code == 400 and "only the trigger word" in refused.text


def test_cancel_and_unknown_jobs(obama: TestClient, queue: JobQueue) -> None:
    job_id = obama.post("/api/v1/characters/obama/faces/extract").json()["id"]
    cancelled = obama.post(f"/api/v1/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = obama.post(f"/api/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    assert queue.run(job_id).state == "cancelled"
    for path in ("/api/v1/jobs/nope", "/api/v1/jobs/nope/events"):
        missing = obama.get(path)
        assert missing.status_code == 404 and "no job with id 'nope'" in missing.json()["detail"]
    assert obama.post("/api/v1/jobs/nope/cancel").status_code == 404


def test_score_uploads_as_a_job(obama: TestClient, queue: JobQueue) -> None:
    queue.run(obama.post("/api/v1/characters/obama/faces/extract").json()["id"])
    other = Path(PHOTOS[0]).parent / "biden_2010.jpg"
    job = obama.post("/api/v1/characters/obama/scores", files=files(PHOTOS[1], other)).json()
    done = queue.run(job["id"])
    assert done.state == "succeeded", done.error
    assert (done.result["passed"], done.result["total"]) == (1, 2)


# -- generation on a fake ComfyUI --------------------------------------------------------


def test_original_endpoint_generates_without_a_lora(
    studio: tuple[TestClient, JobQueue], api_services: Services
) -> None:
    client, queue = studio
    queue.run(client.post("/api/v1/characters/obama/faces/extract").json()["id"])
    answer = client.post(
        "/character/obama/generate_consistent",
        data={"prompt": "a red dress", "variation_type": "outfit", "seed": "46"},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["success"] is True and body["method"] == "ipadapter_only"
    assert body["consistency_expected"].startswith("medium")
    done = queue.run(body["prompt_id"])
    assert done.state == "succeeded", done.error
    seed = done.result["images"][0]["seed"]
    assert type(seed) is int and seed == 46  # a JSON number, as the request's seed
    assert Path(done.result["images"][0]["path"]).is_file()
    with api_services.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Job)) == 2  # extract + generate
        row = session.scalars(select(Generation)).one()
        assert row.job_id == body["prompt_id"]


def test_generate_json_and_bad_values(studio: tuple[TestClient, JobQueue]) -> None:
    client, queue = studio
    job = client.post(
        "/api/v1/characters/obama/generate",
        json={"prompt": "in a park", "variation": "background", "seed": 2**64 - 1},
    )
    assert job.status_code == 202, job.text
    params = job.json()["params"]
    assert "spec" not in params and params["prompt"] == "in a park"
    assert type(params["seed"]) is int and params["seed"] == 2**64 - 1  # exact, as a number
    stored = queue.store.get(job.json()["id"]).params
    assert "spec" not in stored
    assert type(stored["seed"]) is int and stored["seed"] == 2**64 - 1
    done = queue.run(job.json()["id"])
    assert done.state == "succeeded", done.error
    assert done.result["method"] == "img2img"
    for form, field in [
        ({"prompt": "x", "seed": "abc"}, "seed"),
        ({"prompt": "x", "lora_strength": "5"}, "lora_strength"),
        ({"prompt": "x", "ipadapter_strength": "-1"}, "ipadapter_strength"),
        ({"prompt": "x", "seed": str(2**64)}, "seed"),
        ({"prompt": "x", "variation_type": "hat"}, "variation_type"),
    ]:
        answer = client.post("/character/obama/generate_consistent", data=form)
        assert answer.status_code == 422, (form, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["body", field]
    missing = client.post("/character/nobody/generate_consistent", data={"prompt": "x"})
    assert missing.status_code == 404
    too_many = client.post("/api/v1/characters/obama/generate", json={"prompt": "x", "count": 65})
    assert too_many.status_code == 422 and too_many.json()["detail"][0]["loc"][-1] == "count"


def test_openapi_documents_the_routes(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/characters",
        "/api/v1/characters/{name}/references/{sha256}",
        "/api/v1/jobs/{job_id}/events",
        "/character/{character_id}/generate_consistent",
    ):
        assert path in paths
    upload = paths["/api/v1/characters"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text
    # The job routes declare their models, so clients can generate types from the schema:
    # catches a route that loses its response model (its 200 would be an untyped `{}`) or a
    # JobInfo field renamed or dropped. (It replaces `assert json.dumps(schema)`, which could
    # not fail on a schema that had just been parsed from JSON.)
    for path, method, model in (
        ("/api/v1/jobs", "get", "JobPage"),
        ("/api/v1/jobs/{job_id}", "get", "JobInfo"),
        ("/api/v1/jobs/{job_id}/cancel", "post", "JobInfo"),
    ):
        ok = paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{model}"}, (path, ok)
    job = schema["components"]["schemas"]["JobInfo"]
    assert {"id", "kind", "state", "progress_step", "progress_total", "message", "error"} <= set(
        job["required"]
    )
    assert set(job["properties"]["state"]["enum"]) == {
        "queued",
        "running",
        "succeeded",
        "partial",
        "failed",
        "cancelled",
    }


def test_reading_jobs_recovers_a_dead_workers_job(obama: TestClient, queue: JobQueue) -> None:
    import socket

    job_id = obama.post("/api/v1/characters/obama/faces/extract").json()["id"]
    assert queue.store.claim(job_id, f"{socket.gethostname()}:999999:1")  # a dead process
    shown = obama.get(f"/api/v1/jobs/{job_id}").json()
    assert shown["state"] == "queued" and "stopped while running it" in shown["message"]


def test_accept_saves_the_workflow(
    studio: tuple[TestClient, JobQueue], api_services: Services, cli: CliRunner
) -> None:
    client, queue = studio
    job = client.post(
        "/api/v1/characters/obama/generate", json={"prompt": "a hat", "seed": 3, "count": 2}
    ).json()
    done = queue.run(job["id"])
    first, second = (image["generation_id"] for image in done.result["images"])
    saved = client.post(f"/api/v1/generations/{first}/accept")
    assert saved.status_code == 200, saved.text
    assert saved.json()["workflow"].startswith("workflows/generated/")  # relative to the root
    workflow = json.loads((api_services.store.home / saved.json()["workflow"]).read_text())
    assert workflow["result"]["images"] == [done.result["images"][0]["path"]]
    assert client.post("/api/v1/generations/999999/accept").status_code == 404
    by_cli = cli("accept", str(second), "--json")
    assert by_cli.code == 0, by_cli.err
    assert Path(json.loads(by_cli.out)["workflow"]).parent.name == "generated"
    with api_services.db.sessions() as session:
        accepted = session.scalars(select(Generation.accepted).order_by(Generation.id)).all()
    assert accepted == [True, True]


def test_per_request_controls_over_json_and_the_original_form(
    studio: tuple[TestClient, JobQueue],
) -> None:
    client, queue = studio
    controls = {
        "prompt": "a red coat",
        "aspect": "3:2",
        "negative_prompt": "hat",
        "steps": 9,
        "cfg": 4.5,
        "sampler": "euler",
        "scheduler": "normal",
        "seed": 1,
    }
    job = client.post("/api/v1/characters/obama/generate", json=controls)
    assert job.status_code == 202, job.text
    done = queue.run(job.json()["id"])
    assert done.state == "succeeded", done.error
    assert done.result["size"] == [768, 512]
    params = done.result["params"]
    assert (params["steps"], params["cfg"], params["sampler"]) == (9, 4.5, "euler")
    assert params["negative_prompt"].endswith(", hat")
    # The original form: absent fields keep the profile, not the old 0.7/0.6 defaults.
    client.patch("/api/v1/characters/obama", json={"steps": 14, "cfg": 5.0})
    legacy = client.post(
        "/character/obama/generate_consistent",
        data={"prompt": "a hat", "seed": "2", "width": "512", "height": "640"},
    )
    assert legacy.status_code == 200, legacy.text
    done = queue.run(legacy.json()["prompt_id"])
    assert done.state == "succeeded", done.error
    assert (done.result["params"]["steps"], done.result["params"]["cfg"]) == (14, 5.0)
    assert done.result["size"] == [512, 640]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"width": 500, "height": 512}, 422, "image size 500 is not a multiple of 8"),
        ({"aspect": "tall"}, 422, "aspect 'tall' does not parse"),
        ({"steps": 0}, 422, "greater than or equal to 1"),
        ({"negative_prompt": "x" * 1001}, 422, "at most 1000 characters"),
        ({"width": 4096, "height": 512}, 400, "over Stable Diffusion 1.5's largest side 1536"),
        ({"sampler": "magic"}, 400, "unknown sampler 'magic': use one of euler, "),
        ({"scheduler": "weekly"}, 400, "unknown scheduler 'weekly': use one of simple, "),
        ({"denoise": 0.5, "backend": "nope"}, 400, "unknown backend 'nope'"),
        (
            {"pose": "/etc/hosts", "variation": "pose"},
            400,
            "reads its pose image from the data root",
        ),
    ],
)
def test_bad_controls_are_refused_before_queueing(
    studio: tuple[TestClient, JobQueue], body: dict[str, object], status: int, needle: str
) -> None:
    client, queue = studio
    before = queue.store.page(limit=200, offset=0).total
    answer = client.post("/api/v1/characters/obama/generate", json={"prompt": "x", **body})
    assert answer.status_code == status, answer.text
    assert needle in answer.text
    assert queue.store.page(limit=200, offset=0).total == before  # nothing queued


def test_a_pose_path_as_the_api_gave_it_is_relative_to_the_data_root(
    studio: tuple[TestClient, JobQueue],
) -> None:
    client, _queue = studio
    stored = client.get("/api/v1/characters/obama").json()["references"][0]["stored_path"]
    assert not stored.startswith("/")
    answer = client.post(
        "/api/v1/characters/obama/generate",
        json={"prompt": "x", "variation": "pose", "pose": stored, "pose_kind": "photo"},
    )
    assert answer.status_code == 202, answer.text
    # The job names it relative to the data root too: a worker mounts the root anywhere.
    assert answer.json()["params"]["pose"] == stored
    assert _queue.store.get(answer.json()["id"]).params["pose"] == stored
    escaped = client.post(
        "/api/v1/characters/obama/generate",
        json={"prompt": "x", "variation": "pose", "pose": "../../../etc/hosts"},
    )
    assert escaped.status_code == 400, escaped.text


def test_the_tagger_setting_applies_to_api_and_studio_prepares(
    obama: TestClient, queue: JobQueue, api_services: Services, tmp_path: Path
) -> None:
    # CHARSTUDIO_TAGGER used to apply in the CLI only: sets prepared from the API or the
    # studio (which calls the same route) never used it.
    tagger = write_standin(tmp_path / "tagger")
    api_services.settings = api_services.settings.model_copy(update={"tagger": tagger})
    job = obama.post(
        "/api/v1/characters/obama/dataset", json={"resolution": 512, "max_upscale": 2.0}
    ).json()
    assert job["params"]["config"]["tagger"] == str(tagger)
    assert queue.run(job["id"]).state == "succeeded"
    images = obama.get("/api/v1/characters/obama/dataset").json()["images"]
    assert images and all("^_^" in image["caption"].split(", ") for image in images)


def test_character_weight_over_json_patch_and_the_original_form(
    studio: tuple[TestClient, JobQueue],
) -> None:
    client, queue = studio
    queue.run(client.post("/api/v1/characters/obama/faces/extract").json()["id"])
    job = client.post(
        "/api/v1/characters/obama/generate",
        json={"prompt": "in a park", "variation": "background", "seed": 3, "character_weight": 0},
    )
    assert job.status_code == 202, job.text
    assert job.json()["params"]["character_weight"] == 0
    done = queue.run(job.json()["id"])
    assert done.state == "succeeded", done.error
    assert done.result["params"]["character_weight"] == 0.0
    graph = read_parameters(Path(done.result["images"][0]["path"]))["prompt"]
    [ipa] = [n["inputs"] for n in graph.values() if n["class_type"] == "IPAdapterAdvanced"]
    assert (ipa["weight_type"], ipa["start_at"]) == ("weak input", 0.3)
    # The character's default, over PATCH.
    patched = client.patch("/api/v1/characters/obama", json={"character_weight": 0.3})
    assert patched.status_code == 200, patched.text
    assert patched.json()["params"]["character_weight"] == 0.3
    # The original form endpoint.
    legacy = client.post(
        "/character/obama/generate_consistent",
        data={"prompt": "a hat", "seed": "2", "character_weight": "0.2"},
    )
    assert legacy.status_code == 200, legacy.text
    done = queue.run(legacy.json()["prompt_id"])
    assert done.state == "succeeded", done.error
    assert done.result["params"]["character_weight"] == 0.2
    # Out of range or not a number: refused, the range named, nothing queued.
    before = queue.store.page(limit=200, offset=0).total
    needle = "must be a number from 0 to 1"
    for value in ("1.5", "-0.1", "NaN", "Infinity"):
        body = '{"prompt": "x", "character_weight": ' + value + "}"
        answer = client.post(
            "/api/v1/characters/obama/generate",
            content=body,
            headers={"Content-Type": "application/json"},
        )
        assert answer.status_code == 422 and needle in answer.text, (value, answer.text)
        assert answer.json()["detail"][0]["loc"] == ["body", "character_weight"]
        patch = client.patch(
            "/api/v1/characters/obama",
            content=body.replace('"prompt": "x", ', ""),
            headers={"Content-Type": "application/json"},
        )
        assert patch.status_code == 422 and needle in patch.text, (value, patch.text)
        form = client.post(
            "/character/obama/generate_consistent",
            data={"prompt": "x", "character_weight": value.lower()},
        )
        assert form.status_code == 400 and needle in form.text, (value, form.text)
    assert queue.store.page(limit=200, offset=0).total == before
