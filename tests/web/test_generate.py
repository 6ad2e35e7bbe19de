"""The generate page: field errors, a generation on the fake ComfyUI, identity scores,
"more like this" and "accept"."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.library.models import Job
from charstudio.services import Services
from tests.web.conftest import job_in


def message(page: str) -> str:
    found = re.search(r'id="error-message">(.*?)</p>', page, re.S)
    assert found, page
    return found.group(1)


def test_form_marks_the_recommended_ranges(analysed: TestClient) -> None:
    page = analysed.get("/studio/characters/obama/generate").text
    assert '<label for="ipadapter_strength">IP-Adapter strength</label>' in page
    assert 'data-recommended="0.5-0.7"' in page
    assert "recommended 0.5 to 0.7 (0 to 2 allowed)" in page
    assert "not used by ipadapter_only" in page  # the LoRA strength, without a LoRA
    assert 'id="lora_strength" name="lora_strength"' in page
    assert "<option selected>comfyui</option>" in page


def test_out_of_range_strength_is_a_field_error_and_queues_nothing(
    analysed: TestClient, queue: JobQueue
) -> None:
    before = queue.store.page(state=None, character=None, limit=50, offset=0).total
    response = analysed.post(
        "/studio/characters/obama/generate",
        data={"prompt": "a red coat", "ipadapter_strength": "2.5", "count": "0"},
    )
    assert response.status_code == 422
    assert (
        '<small class="error" id="ipadapter_strength-error">IP-Adapter strength must be at '
        "most 2.0</small>"
    ) in response.text
    assert 'id="count-error">Number of images must be at least 1</small>' in response.text
    assert 'aria-invalid="true" aria-describedby="ipadapter_strength-error"' in response.text
    assert ">a red coat</textarea>" in response.text  # what was typed stays
    empty = analysed.post("/studio/characters/obama/generate", data={"prompt": " "})
    assert 'id="prompt-error">Prompt is required</small>' in empty.text
    assert queue.store.page(state=None, character=None, limit=50, offset=0).total == before


def test_a_strength_the_method_does_not_use_is_refused(
    analysed: TestClient, web_services: Services
) -> None:
    response = analysed.post(
        "/studio/characters/obama/generate", data={"prompt": "a red coat", "lora_strength": "0.7"}
    )
    assert response.status_code == 400
    reason = web_services.library.profile("obama").method_reason
    assert message(response.text) == (
        f"lora strength does not apply: obama is generated with ipadapter_only ({reason}), "
        "which does not use it; leave it out"
    )


def test_generation_scores_more_like_this_and_accept(
    analysed: TestClient, queue: JobQueue, web_services: Services
) -> None:
    response = analysed.post(
        "/studio/characters/obama/generate",
        data={
            "prompt": "a red coat",
            "variation": "outfit",
            "ipadapter_strength": "0.6",
            "seed": "46",
            "count": "2",
            "backend": "comfyui",
        },
    )
    assert response.status_code == 303
    job_id = job_in(response.headers["location"])
    page = analysed.get(response.headers["location"]).text
    assert f'data-follow-job="{job_id}" data-on-end="results"' in page
    assert ">a red coat</textarea>" in page and 'value="46"' in page

    done = queue.run(job_id)
    assert done.state == "succeeded"
    results = analysed.get(f"/studio/jobs/{job_id}/results").text
    assert results.count('alt="Result ') == 2
    assert 'alt="Result 1, seed 46"' in results and 'alt="Result 2, seed 47"' in results
    # QC ran while generating: the scores are there at once, no score job is asked for.
    # The fake ComfyUI returns the character's own photos for these seeds: both pass.
    assert "data-score-pending" not in results and "Scoring identity" not in results
    assert results.count('<span class="badge pass" data-score-badge>pass</span>') == 2
    assert "QC kept 2 of 2 (2 generated, 0 rejected)" in results
    assert "face consistency <strong>100 %</strong>" in results
    assert results.count("adherence not checked") == 2

    more = analysed.post(f"/studio/jobs/{job_id}/more")
    assert more.status_code == 303
    again = queue.store.get(job_in(more.headers["location"]))
    assert again.params["prompt"] == "a red coat" and again.params["seed"] is None

    second = done.result["images"][1]["generation_id"]
    accepted = analysed.post(f"/studio/jobs/{job_id}/accept/{second}")
    assert accepted.status_code == 303
    saved = list(web_services.store.generated_workflows_dir.glob("obama_*_47.json"))
    assert len(saved) == 1
    assert (
        f"Accepted: workflow saved to workflows/generated/{saved[0].name}"
        in analysed.get(accepted.headers["location"]).text
    )
    document = json.loads(saved[0].read_text())
    assert document["request"]["seed"] == 47 and document["request"]["prompt"] == "a red coat"
    assert any(n["class_type"] == "KSampler" for n in document["graph"].values())
    assert document["result"]["images"][0].endswith("_02_47.png")


def test_results_of_other_jobs_and_missing_images_are_refused(
    analysed: TestClient, queue: JobQueue
) -> None:
    faces_job = queue.store.page(state=None, character="obama", limit=5, offset=0).items[0]
    response = analysed.get(f"/studio/jobs/{faces_job.id}/results")
    assert response.status_code == 400
    assert message(response.text) == f"job {faces_job.id} is a faces_extract job, not a generation"
    missing = analysed.get("/studio/jobs/nope/results")
    assert missing.status_code == 404


def test_pose_images_go_with_the_pose_variation_only(
    analysed: TestClient, queue: JobQueue, web_services: Services, tmp_path: Path
) -> None:
    from tests.conftest import decompression_bomb
    from tests.web.conftest import PHOTOS

    pose = {"pose": ("pose.jpg", PHOTOS[0].read_bytes(), "image/jpeg")}
    wrong = analysed.post(
        "/studio/characters/obama/generate", data={"prompt": "waving"}, files=pose
    )
    assert wrong.status_code == 422  # the form again, with the reason
    assert "a pose image was given with variation none: use variation pose" in wrong.text

    broken = {"pose": ("pose.png", b"not a png", "image/png")}
    refused = analysed.post(
        "/studio/characters/obama/generate",
        data={"prompt": "waving", "variation": "pose"},
        files=broken,
    )
    assert refused.status_code == 400
    assert message(refused.text) == (
        "pose image pose.png is not an image file (or a format Pillow cannot read); use PNG, "
        "JPEG or WEBP"
    )
    kept = web_services.settings.home / "uploads" / "poses"
    assert not kept.exists() or list(kept.iterdir()) == []  # refused poses are not kept

    # Issue 15, finding 6: a decompression bomb was a 500 and the file stayed.
    bomb = decompression_bomb(tmp_path / "bomb.png").read_bytes()
    refused = analysed.post(
        "/studio/characters/obama/generate",
        data={"prompt": "waving", "variation": "pose"},
        files={"pose": ("bomb.png", bomb, "image/png")},
    )
    assert refused.status_code == 400 and "bomb.png has too many pixels" in refused.text
    assert not kept.exists() or list(kept.iterdir()) == []
    assert list((web_services.settings.home / "tmp").glob("upload-*")) == []
    # ... and a truncated JPEG was queued, to fail later in ComfyUI.
    cut = {"pose": ("cut.jpg", PHOTOS[0].read_bytes()[:5000], "image/jpeg")}
    refused = analysed.post(
        "/studio/characters/obama/generate",
        data={"prompt": "waving", "variation": "pose"},
        files=cut,
    )
    assert refused.status_code == 400 and "cut.jpg is corrupt or truncated" in refused.text
    assert not kept.exists() or list(kept.iterdir()) == []
    assert list((web_services.settings.home / "tmp").glob("upload-*")) == []
    assert queue.store.queued_kinds() == []  # nothing was queued by any refusal

    queued = analysed.post(
        "/studio/characters/obama/generate",
        data={"prompt": "waving", "variation": "pose"},
        files=pose,
    )
    assert queued.status_code == 303
    params = queue.store.get(job_in(queued.headers["location"])).params
    # Named relative to the data root: a worker that mounts it elsewhere finds it.
    assert params["variation"] == "pose" and params["pose"].startswith("uploads/poses/")
    assert (web_services.settings.home / params["pose"]).is_file()
    assert params["pose"].endswith("/pose.jpg") and params["pose_kind"] == "auto"


def test_without_a_face_identity_results_are_not_scored(obama: TestClient, queue: JobQueue) -> None:
    response = obama.post("/studio/characters/obama/generate", data={"prompt": "a red coat"})
    job_id = job_in(response.headers["location"])
    assert queue.run(job_id).state == "succeeded"
    results = obama.get(f"/studio/jobs/{job_id}/results").text
    assert "data-score-pending" not in results
    assert (
        "Not scored: obama has no face identity yet (analyse faces on the character page)."
    ) in results
    assert results.count('alt="Result ') == 1  # no count sent: one image


def test_the_form_takes_every_control(
    analysed: TestClient, queue: JobQueue, web_services: Services
) -> None:
    page = analysed.get("/studio/characters/obama/generate").text
    assert '<option value="2:3" >2:3: 512x768</option>' in page.replace("  ", " ")
    assert re.search(r"<option\s*>euler_ancestral</option>", page)
    assert re.search(r"<option\s*>normal</option>", page)
    queued = analysed.post(
        "/studio/characters/obama/generate",
        data={
            "prompt": "a red coat",
            "seed": "46",  # the character's photo: QC keeps it (a drawn seed may end partial)
            "aspect": "2:3",
            "negative_prompt": "hat",
            "negative_mode": "replace",
            "steps": "12",
            "cfg": "6",
            "sampler": "euler",
            "scheduler": "normal",
        },
    )
    assert queued.status_code == 303, queued.text
    params = queue.store.get(job_in(queued.headers["location"])).params
    assert (params["aspect"], params["steps"], params["cfg"]) == ("2:3", 12, 6.0)
    assert (params["negative_prompt"], params["negative_mode"]) == ("hat", "replace")
    assert (params["sampler"], params["scheduler"]) == ("euler", "normal")
    done = queue.run(job_in(queued.headers["location"]))
    assert done.state == "succeeded", done.error
    assert done.result["size"] == [512, 768] and done.result["params"]["negative_prompt"] == "hat"


def test_bad_controls_show_the_same_messages(analysed: TestClient, queue: JobQueue) -> None:
    before = queue.store.page(limit=200).total
    wrong = analysed.post(
        "/studio/characters/obama/generate",
        data={"prompt": "x", "width": "500", "height": "512"},
    )
    assert wrong.status_code == 422
    assert "image size 500 is not a multiple of 8 of at least 64" in wrong.text
    assert 'id="width" name="width"' in wrong.text and 'aria-invalid="true"' in wrong.text
    unknown = analysed.post(
        "/studio/characters/obama/generate", data={"prompt": "x", "sampler": "magic"}
    )
    assert unknown.status_code == 400
    assert html.unescape(message(unknown.text)).startswith(
        "unknown sampler 'magic': use one of euler, "
    )
    assert queue.store.page(limit=200).total == before


def _generate(client: TestClient, seed: int, **extra: str) -> str:
    data = {"prompt": "a red coat", "seed": str(seed), "count": "1", **extra}
    response = client.post("/studio/characters/obama/generate", data=data)
    assert response.status_code == 303, response.text
    return job_in(response.headers["location"])


def test_rejected_images_are_shown_on_demand_with_their_reasons(
    analysed: TestClient, queue: JobQueue
) -> None:
    # Seed 43 is a two-person photo (rejected), the retry 44 the character (kept).
    job_id = _generate(analysed, 43)
    assert queue.run(job_id).state == "succeeded"
    kept = analysed.get(f"/studio/jobs/{job_id}/results").text
    assert "QC kept 1 of 1 (2 generated, 1 rejected)" in kept
    assert "face consistency <strong>50 %</strong>" in kept
    assert 'alt="Result 1, seed 44"' in kept and "seed 43" not in kept
    assert f"job={job_id}&amp;show=rejected#results" in kept
    rejected = analysed.get(f"/studio/jobs/{job_id}/results?show=rejected").text
    assert 'alt="Rejected 1, seed 43"' in rejected and "seed 44" not in rejected
    assert '<span class="badge fail" data-score-badge>fail</span>' in rejected
    reasons = re.findall(r"<li>(identity: [^<]+)</li>", rejected)
    assert reasons and "people" in reasons[0]
    every = analysed.get(f"/studio/characters/obama/generate?job={job_id}&show=all").text
    assert 'alt="Result 1, seed 44"' in every and 'alt="Rejected 2, seed 43"' in every
    bad = analysed.get(f"/studio/jobs/{job_id}/results?show=everything")
    assert bad.status_code == 400
    assert html.unescape(message(bad.text)) == (
        "show must be one of kept, rejected, all, not 'everything'"
    )


def test_a_job_whose_attempts_run_out_is_partial(
    analysed: TestClient, queue: JobQueue, web_services: Services
) -> None:
    # 40 stranger, 41 blank, 42 black, 43 pair: the 3 extra attempts all fail.
    job_id = _generate(analysed, 40)
    done = queue.run(job_id)
    assert done.state == "partial" and done.result["partial"] is True
    results = analysed.get(f"/studio/jobs/{job_id}/results").text
    assert "Partial: only 0 of 1 image(s) passed" in results and "No kept images." in results
    jobs = analysed.get("/studio/jobs").text
    assert '<span class="badge state-partial">partial</span>' in jobs
    # A rejected image can still be accepted (people may disagree with QC).
    blank = done.result["rejected"][1]["image"]["generation_id"]
    accepted = analysed.post(f"/studio/jobs/{job_id}/accept/{blank}")
    assert accepted.status_code == 303
    assert list(web_services.store.generated_workflows_dir.glob("obama_*_41.json"))


def test_with_qc_off_the_results_are_scored_by_a_score_job(
    analysed: TestClient, queue: JobQueue
) -> None:
    job_id = _generate(analysed, 46, qc="false")
    done = queue.run(job_id)
    assert done.state == "succeeded" and done.params["qc"] is False
    results = analysed.get(f"/studio/jobs/{job_id}/results").text
    assert 'data-score-pending=""' in results and "Scoring identity…" in results
    scored = analysed.post(f"/studio/jobs/{job_id}/score").json()
    assert analysed.post(f"/studio/jobs/{job_id}/score").json()["job"] == scored["job"]
    assert queue.run(scored["job"]).state == "succeeded"
    results = analysed.get(f"/studio/jobs/{job_id}/results").text
    assert "data-score-pending" not in results
    assert results.count('<span class="badge pass" data-score-badge>pass</span>') == 1
    assert ">100 % of 1 recent<" in analysed.get("/studio").text


def test_character_weight_field(analysed: TestClient, queue: JobQueue) -> None:
    page = analysed.get("/studio/characters/obama/generate").text
    assert '<label for="character_weight">Character weight</label>' in page
    field = re.search(r'<input id="character_weight"[^>]*>', page, re.S)
    assert field and 'min="0" max="1"' in field.group(0) and 'value="0.5"' in field.group(0)
    assert "0 carries only the face (outfit and hair from the prompt)" in page
    before = queue.store.page(limit=200).total
    for value in ("1.5", "-0.2", "nan"):
        bad = analysed.post(
            "/studio/characters/obama/generate",
            data={"prompt": "a red coat", "character_weight": value},
        )
        assert bad.status_code == 422, value
        assert (
            '<small class="error" id="character_weight-error">Character weight must be a '
            f"number from 0 to 1, got {value}: 0 carries only the face"
        ) in bad.text
    assert queue.store.page(limit=200).total == before
    job = _generate(analysed, 46, character_weight="0")
    assert queue.store.get(job).params["character_weight"] == 0.0
    done = queue.run(job)
    assert done.state == "succeeded", done.error
    assert done.result["params"]["character_weight"] == 0.0


def test_results_a_worker_with_another_mount_wrote_are_found_here(
    analysed: TestClient, queue: JobQueue, web_services: Services
) -> None:
    """A job's result names its images as the worker that made them saw them; on several
    machines that worker may mount the data root elsewhere. The grid and the score request
    find them through the library's rows (relative to the data root) instead."""
    response = analysed.post(
        "/studio/characters/obama/generate",
        data={"prompt": "a red coat", "seed": "46", "count": "2", "backend": "comfyui"},
    )
    job_id = job_in(response.headers["location"])
    assert queue.run(job_id).state == "succeeded"
    home = str(web_services.settings.home)
    with web_services.db.sessions.begin() as session:
        row = session.get(Job, job_id)
        assert row is not None
        row.result = json.loads(json.dumps(row.result).replace(home, "/mnt/elsewhere"))
    results = analysed.get(f"/studio/jobs/{job_id}/results").text
    assert results.count(f'src="/studio/files/outputs/obama/{job_id}/') == 2
    scored = analysed.post(f"/studio/jobs/{job_id}/score")
    assert scored.status_code == 200, scored.text
    paths = queue.store.get(scored.json()["job"]).params["paths"]
    assert len(paths) == 2 and all(p.startswith(f"outputs/obama/{job_id}/") for p in paths)
