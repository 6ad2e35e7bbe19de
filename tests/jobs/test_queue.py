"""The job queue in one process: real huey on SQLite, real handlers on real photographs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from charstudio.errors import InvalidParameter
from charstudio.jobs import (
    HANDLERS,
    JobContext,
    JobFinished,
    JobNotFound,
    JobQueue,
)
from charstudio.library.models import Job
from charstudio.services import Services, build_services
from tests.faces.conftest import DATA

PHOTOS = [DATA / f"obama_{y}.jpg" for y in (2009, 2010, 2012)]


@pytest.fixture
def obama(services: Services) -> Services:
    services.library.create("obama", PHOTOS)
    return services


def test_submit_then_run_records_every_state(obama: Services) -> None:
    queue = JobQueue(obama)
    job = queue.submit("faces_extract", character="obama", params={})
    assert (job.state, job.character, job.kind) == ("queued", "obama", "faces_extract")
    assert len(queue.huey) == 1  # one message waiting for a worker
    done = queue.run(job.id, worker="test:1:1")
    assert done.state == "succeeded", done.error
    assert done.result["inliers"] == 3 and done.attempts == 1
    assert done.started_at is not None and done.finished_at is not None
    assert done.progress_step == done.progress_total > 0
    # A second delivery of the same message finds the job claimed: it does not run again.
    again = queue.run(job.id, worker="test:1:2")
    assert again.finished_at == done.finished_at and again.attempts == 1


def test_dataset_job_with_settings_and_a_failing_job(obama: Services) -> None:
    queue = JobQueue(obama)
    ok = queue.submit(
        "dataset_prepare",
        character="obama",
        params={"config": {"resolution": 512, "max_upscale": 2.0}},
    )
    assert queue.run(ok.id).result["version"] == 1
    bad = queue.submit("dataset_prepare", character="obama", params={"config": {"resolution": 700}})
    failed = queue.run(bad.id)
    assert failed.state == "failed"
    assert "resolution 700 is not a multiple of 64" in failed.error


def test_unknown_kind_and_job(obama: Services) -> None:
    queue = JobQueue(obama)
    with pytest.raises(InvalidParameter, match="unknown job kind 'nope'; choose one of"):
        queue.submit("nope", character=None, params={})
    with pytest.raises(JobNotFound, match="no job with id 'missing'"):
        queue.store.get("missing")
    with pytest.raises(JobNotFound):
        queue.cancel("missing")


def test_cancel_queued_and_finished(obama: Services) -> None:
    queue = JobQueue(obama)
    job = queue.submit("faces_extract", character="obama", params={})
    assert queue.cancel(job.id).state == "cancelled"
    assert queue.run(job.id).state == "cancelled"  # its message arrives later: nothing runs
    done = queue.submit("faces_extract", character="obama", params={})
    queue.run(done.id)
    with pytest.raises(JobFinished, match="already succeeded; nothing to cancel"):
        queue.cancel(done.id)


def test_cancel_a_running_job_at_its_next_step(obama: Services) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(services: Services, ctx: JobContext) -> dict[str, Any]:
        for step in range(1, 100):
            ctx.progress(step, 100, "working")
            started.set()
            release.wait(5)
        return {}

    queue = JobQueue(obama, handlers={**HANDLERS, "slow": slow})
    job = queue.submit("slow", character="obama", params={})
    runner = threading.Thread(target=queue.run, args=(job.id,))
    runner.start()
    assert started.wait(10)
    assert queue.cancel(job.id).cancel_requested
    release.set()
    runner.join(10)
    final = queue.store.get(job.id)
    assert final.state == "cancelled" and final.progress_step < 100


def test_a_crashing_handler_fails_the_job_not_the_worker(obama: Services) -> None:
    def broken(services: Services, ctx: JobContext) -> dict[str, Any]:
        raise ZeroDivisionError("boom")

    queue = JobQueue(obama, handlers={"broken": broken})
    job = queue.submit("broken", character=None, params={})
    failed = queue.run(job.id)
    assert failed.state == "failed"
    assert failed.error == "unexpected ZeroDivisionError: boom (the worker log has details)"


def tuned(services: Services, **settings: Any) -> Services:
    """The same library, other job settings."""
    return build_services(services.settings.model_copy(update=settings))


def test_heartbeats_while_a_step_runs_long(obama: Services) -> None:
    queue = JobQueue(tuned(obama, job_heartbeat_s=0.2), handlers={"nap": nap})
    job = queue.submit("nap", character=None, params={"seconds": 1.2})
    assert queue.run(job.id).state == "succeeded"
    with obama.db.sessions() as session:
        row = session.get(Job, job.id)
        assert row is not None and row.heartbeat_at is not None and row.started_at is not None
        assert (row.heartbeat_at - row.started_at).total_seconds() >= 0.6


def nap(services: Services, ctx: JobContext) -> dict[str, Any]:
    time.sleep(float(ctx.params["seconds"]))  # one long step that calls no progress
    return {"slept": ctx.params["seconds"]}


def test_recover_requeues_once_then_fails_with_the_reason(obama: Services) -> None:
    queue = JobQueue(obama)
    job = queue.submit("faces_extract", character="obama", params={})
    dead = "deadhost:999999:1"  # another host: only the heartbeat can tell it died
    assert queue.store.claim(job.id, dead)
    assert queue.recover() == []  # heartbeat still fresh
    queue = JobQueue(tuned(obama, job_stale_s=0.001))
    time.sleep(0.01)
    assert queue.recover() == [job.id]
    assert queue.store.get(job.id).state == "queued"
    assert queue.store.claim(job.id, dead)  # the second attempt dies too
    time.sleep(0.01)
    assert queue.recover() == []
    failed = queue.store.get(job.id)
    assert failed.state == "failed" and failed.attempts == 2
    assert "sent no heartbeat" in failed.error and "attempt 2 of 2" in failed.error


def test_recover_sees_a_dead_process_on_this_host_at_once(obama: Services) -> None:
    import socket

    queue = JobQueue(obama)
    job = queue.submit("faces_extract", character="obama", params={})
    assert queue.store.claim(job.id, f"{socket.gethostname()}:999999:1")
    assert queue.recover() == [job.id]
    assert "worker process (999999) stopped" in queue.store.get(job.id).message
    # The re-queued message runs it to the end.
    assert queue.run(job.id).state == "succeeded"


def test_score_job_refuses_paths_outside_the_data_root(obama: Services, tmp_path: Path) -> None:
    queue = JobQueue(obama)
    job = queue.submit("faces_score", character="obama", params={"paths": [str(PHOTOS[0])]})
    failed = queue.run(job.id)
    assert failed.state == "failed" and "outside the data root" in failed.error
