"""The jobs page: states, progress, errors in plain words, cancel, the stream behind the cookie."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.web.pages import jobs as jobs_page
from tests.web.conftest import job_in


def test_jobs_page_lists_states_progress_and_errors(obama: TestClient, queue: JobQueue) -> None:
    assert "No jobs yet." in obama.get("/studio/jobs").text
    failed = obama.post("/studio/characters/obama/dataset", data={"resolution": "768"})
    queue.run(job_in(failed.headers["location"]))
    waiting = job_in(obama.post("/studio/characters/obama/faces").headers["location"])
    page = obama.get("/studio/jobs").text
    assert 'data-refresh="/studio/jobs?rows=1"' in page
    assert "Training set" in page and "Face identity" in page
    assert '<span class="badge state-failed">failed</span>' in page
    assert '<span class="badge state-queued">queued</span>' in page
    assert "only 0 of 3 references of &#39;obama&#39; are usable" in page
    assert f'aria-label="Cancel job {waiting}"' in page
    rows = obama.get("/studio/jobs?rows=1").text
    assert rows.lstrip().startswith("<tr") and "<html" not in rows


def test_cancel_a_queued_job_and_refuse_a_finished_one(obama: TestClient, queue: JobQueue) -> None:
    waiting = job_in(obama.post("/studio/characters/obama/faces").headers["location"])
    response = obama.post(f"/studio/jobs/{waiting}/cancel")
    assert response.status_code == 303
    assert queue.store.get(waiting).state == "cancelled"
    assert '<span class="badge state-cancelled">cancelled</span>' in obama.get("/studio/jobs").text
    again = obama.post(f"/studio/jobs/{waiting}/cancel")
    assert again.status_code == 409
    found = re.search(r'id="error-message">(.*?)</p>', again.text)
    assert found and found.group(1) == f"job {waiting} already cancelled; nothing to cancel"


def test_the_event_stream_follows_a_job_with_the_cookie(obama: TestClient, queue: JobQueue) -> None:
    job_id = job_in(obama.post("/studio/characters/obama/faces").headers["location"])
    queue.run(job_id)
    with obama.stream("GET", f"/studio/jobs/{job_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in stream.iter_lines() if line.startswith("event:")]
    assert lines[0] == "event: progress" and lines[-1] == "event: end"
    missing = obama.get("/studio/jobs/nope/events")
    assert missing.status_code == 404
    assert (
        'id="error-message">no job with id &#39;nope&#39;; list jobs with GET /api/v1/jobs or '
        "`charstudio jobs list`</p>"
    ) in missing.text


def test_a_page_stream_ends_on_its_own_so_the_server_can_stop(
    obama: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs_page, "STREAM_S", 0.6)
    waiting = job_in(obama.post("/studio/characters/obama/faces").headers["location"])
    with obama.stream("GET", f"/studio/jobs/{waiting}/events") as stream:
        lines = [line for line in stream.iter_lines() if line]
    assert lines[0] == "retry: 1000"
    assert lines[1] == "event: progress" and '"state":"queued"' in lines[2]
    assert "event: end" not in lines  # the job goes on; the browser reconnects
