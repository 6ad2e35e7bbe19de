"""The job queue in one process: real huey on SQLite, real handlers on real photographs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from charstudio.dataset import DatasetConfig
from charstudio.errors import InvalidParameter, ModelFileMissing
from charstudio.faces import ExtractReport
from charstudio.jobs import (
    KINDS,
    JobContext,
    JobFinished,
    JobKind,
    JobNotFound,
    JobQueue,
    submit_dataset_prepare,
    submit_faces_extract,
    submit_faces_score,
)
from charstudio.jobs.kinds import FACES_EXTRACT, FacesExtractParams, NoParams, TrainParams
from charstudio.library.models import Job
from charstudio.services import Services, build_services
from tests.faces.conftest import DATA

PHOTOS = [DATA / f"obama_{y}.jpg" for y in (2009, 2010, 2012)]


class Nothing(BaseModel):
    """The result of a test kind that returns nothing."""


class NapParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float


class Slept(BaseModel):
    slept: float


def nothing(services: Services, ctx: JobContext, params: NoParams) -> Nothing:
    return Nothing()


@pytest.fixture
def obama(services: Services) -> Services:
    services.library.create("obama", PHOTOS)
    return services


def test_submit_then_run_records_every_state(obama: Services) -> None:
    queue = JobQueue(obama)
    job = submit_faces_extract(obama, queue, "obama")
    assert (job.state, job.character, job.kind) == ("queued", "obama", "faces_extract")
    assert queue.mailboxes.pending() == [("faces_extract", job.id)]  # waiting for a worker
    done = queue.run(job.id, worker="test:1:1")
    assert done.state == "succeeded", done.error
    assert done.result["inliers"] == 3 and done.attempts == 1
    assert done.started_at is not None and done.finished_at is not None
    assert done.progress_step == done.progress_total > 0
    # A second delivery of the same message finds the job claimed: it does not run again.
    again = queue.run(job.id, worker="test:1:2")
    assert again.finished_at == done.finished_at and again.attempts == 1


def test_an_extract_with_a_backend_not_set_up_is_refused_before_it_is_queued(
    obama: Services,
) -> None:
    queue = JobQueue(obama)
    with pytest.raises(ModelFileMissing, match="set CHARSTUDIO_CCIP_MODEL_DIR to the folder"):
        submit_faces_extract(obama, queue, "obama", backend="ccip")
    assert queue.mailboxes.pending() == []
    assert queue.store.page(character="obama", limit=10, offset=0).items == []


def test_dataset_job_with_settings_and_a_failing_job(obama: Services) -> None:
    queue = JobQueue(obama)
    ok = submit_dataset_prepare(
        obama, queue, "obama", DatasetConfig(resolution=512, max_upscale=2.0)
    )
    assert ok.params == {
        "config": DatasetConfig(resolution=512, max_upscale=2.0).model_dump(mode="json")
    }
    assert queue.run(ok.id).result["version"] == 1
    # Bad settings are refused before anything is queued ...
    with pytest.raises(ValidationError, match="resolution 700 is not a multiple of 64"):
        DatasetConfig(resolution=700)
    # ... and a stored record with them (see below) fails when it runs.
    bad = queue.store.create(
        "dataset_prepare", character="obama", params={"config": {"resolution": 700}}
    )
    failed = queue.run(bad.id)
    assert failed.state == "failed"
    assert "resolution 700 is not a multiple of 64" in failed.error


@pytest.mark.parametrize(
    ("kind", "params", "error"),
    [
        (
            "dataset_prepare",
            {"config": {"resolution": 700}},
            "invalid dataset_prepare job parameters "
            "(config.resolution: resolution 700 is not a multiple of 64",
        ),
        (
            "dataset_prepare",
            {"config": {"resolutoin": 512}},
            "invalid dataset_prepare job parameters "
            "(config.resolutoin: Extra inputs are not permitted)",
        ),
        ("faces_score", {}, "invalid faces_score job parameters (paths: Field required)"),
        (
            "faces_extract",
            {"spec": {}},
            "invalid faces_extract job parameters (spec: Extra inputs are not permitted)",
        ),
        (  # the record an older version wrote: the request under "spec", the seed as text
            "generate",
            {"spec": {"prompt": "x", "seed": str(2**64 - 1)}},
            "invalid generate job parameters "
            "(prompt: Field required; spec: Extra inputs are not permitted)",
        ),
        (
            "generate",
            {"prompt": "x", "seed": 2**64},
            "invalid generate job parameters (seed: seed 18446744073709551616 is out of range",
        ),
    ],
)
def test_a_stored_job_whose_params_no_longer_parse_fails_naming_the_field(
    obama: Services, kind: str, params: dict[str, Any], error: str
) -> None:
    """A record outlives the code that wrote it (an older version, an edit by hand)."""
    queue = JobQueue(obama)
    row = queue.store.create(kind, character="obama", params=params)
    failed = queue.run(row.id)
    assert failed.state == "failed" and failed.attempts == 1
    assert failed.error.startswith(error), failed.error
    assert "unexpected" not in failed.error  # refused, not a crash
    assert failed.finished_at is not None and failed.result == {}


def test_unknown_kind_and_job(obama: Services) -> None:
    queue = JobQueue(obama)
    nope = JobKind("nope", NoParams, Nothing, nothing)
    with pytest.raises(InvalidParameter, match="unknown job kind 'nope'; choose one of"):
        queue.submit(nope, character=None, params=NoParams())
    # A kind of the same name that the queue was not built with is not that kind.
    impostor = JobKind("faces_extract", NoParams, ExtractReport, FACES_EXTRACT.handler)
    with pytest.raises(InvalidParameter, match="unknown job kind 'faces_extract'; choose one of"):
        queue.submit(impostor, character="obama", params=NoParams())
    with pytest.raises(
        InvalidParameter, match="faces_extract jobs take FacesExtractParams, not TrainParams"
    ):
        queue.submit(FACES_EXTRACT, character="obama", params=TrainParams())
    assert queue.mailboxes.pending_count() == 0 and queue.store.page().total == 0
    # A stored record of a kind this worker does not run fails when its message arrives.
    stray = queue.store.create("nope", character=None, params={})
    failed = queue.run(stray.id)
    assert failed.state == "failed"
    assert failed.error == f"job {stray.id} is of kind 'nope', which this worker does not run"
    with pytest.raises(JobNotFound, match="no job with id 'missing'"):
        queue.store.get("missing")
    with pytest.raises(JobNotFound):
        queue.cancel("missing")


def test_cancel_queued_and_finished(obama: Services) -> None:
    queue = JobQueue(obama)
    job = submit_faces_extract(obama, queue, "obama")
    assert queue.cancel(job.id).state == "cancelled"
    assert queue.run(job.id).state == "cancelled"  # its message arrives later: nothing runs
    done = queue.submit(FACES_EXTRACT, character="obama", params=FacesExtractParams())
    queue.run(done.id)
    with pytest.raises(JobFinished, match="already succeeded; nothing to cancel"):
        queue.cancel(done.id)


def test_cancel_a_running_job_at_its_next_step(obama: Services) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(services: Services, ctx: JobContext, params: NoParams) -> Nothing:
        for step in range(1, 100):
            ctx.progress(step, 100, "working")
            started.set()
            release.wait(5)
        return Nothing()

    slow_kind = JobKind("slow", NoParams, Nothing, slow)
    queue = JobQueue(obama, kinds={**KINDS, "slow": slow_kind})
    job = queue.submit(slow_kind, character="obama", params=NoParams())
    runner = threading.Thread(target=queue.run, args=(job.id,))
    runner.start()
    assert started.wait(10)
    assert queue.cancel(job.id).cancel_requested
    release.set()
    runner.join(10)
    final = queue.store.get(job.id)
    assert final.state == "cancelled" and final.progress_step < 100


def test_a_crashing_handler_fails_the_job_not_the_worker(obama: Services) -> None:
    def broken(services: Services, ctx: JobContext, params: NoParams) -> Nothing:
        raise ZeroDivisionError("boom")

    broken_kind = JobKind("broken", NoParams, Nothing, broken)
    queue = JobQueue(obama, kinds={"broken": broken_kind})
    job = queue.submit(broken_kind, character=None, params=NoParams())
    failed = queue.run(job.id)
    assert failed.state == "failed"
    assert failed.error == "unexpected ZeroDivisionError: boom (the worker log has details)"


def tuned(services: Services, **settings: Any) -> Services:
    """The same library, other job settings."""
    return build_services(services.settings.model_copy(update=settings))


def test_heartbeats_while_a_step_runs_long(obama: Services) -> None:
    queue = JobQueue(tuned(obama, job_heartbeat_s=0.2), kinds={"nap": NAP})
    job = queue.submit(NAP, character=None, params=NapParams(seconds=1.2))
    done = queue.run(job.id)
    assert done.state == "succeeded" and done.result == {"slept": 1.2}
    with obama.db.sessions() as session:
        row = session.get(Job, job.id)
        assert row is not None and row.heartbeat_at is not None and row.started_at is not None
        assert (row.heartbeat_at - row.started_at).total_seconds() >= 0.6


def nap(services: Services, ctx: JobContext, params: NapParams) -> Slept:
    time.sleep(params.seconds)  # one long step that calls no progress
    return Slept(slept=params.seconds)


NAP = JobKind("nap", NapParams, Slept, nap)


def test_recover_requeues_once_then_fails_with_the_reason(obama: Services) -> None:
    queue = JobQueue(obama)
    job = submit_faces_extract(obama, queue, "obama")
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
    job = submit_faces_extract(obama, queue, "obama")
    assert queue.store.claim(job.id, f"{socket.gethostname()}:999999:1")
    assert queue.recover() == [job.id]
    assert "worker process (999999) stopped" in queue.store.get(job.id).message
    # The re-queued message runs it to the end.
    assert queue.run(job.id).state == "succeeded"


def test_score_job_refuses_paths_outside_the_data_root(obama: Services, tmp_path: Path) -> None:
    queue = JobQueue(obama)
    job = submit_faces_score(obama, queue, "obama", [PHOTOS[0]])
    assert job.params == {"paths": [str(PHOTOS[0])], "for_job": None}
    failed = queue.run(job.id)
    assert failed.state == "failed" and "outside the data root" in failed.error


def test_a_queued_job_whose_message_was_lost_is_sent_again(obama: Services) -> None:
    """The row is written before the message: a queue store reset (or a crash between the
    two) leaves a queued row with no message, which recovery sends again, once."""
    queue = JobQueue(tuned(obama, job_heartbeat_s=0.05))
    waiting = submit_faces_extract(obama, queue, "obama")
    lost = submit_faces_extract(obama, queue, "obama")
    queue.mailboxes.flush()  # the queue store is reset: both messages are gone
    time.sleep(0.1)
    first = queue.recover()  # what every worker runs at start and periodically
    assert sorted(first) == sorted([waiting.id, lost.id])
    assert queue.mailboxes.pending_count() == 2
    assert queue.resend_lost() == []  # held by huey now: not sent twice
    # Each message runs its job once; a duplicate delivery finds it claimed.
    while (message := queue.mailboxes.take(["faces_extract"], wait_s=1)) is not None:
        queue.mailboxes.execute(message)
    assert [queue.store.get(j.id).state for j in (waiting, lost)] == ["succeeded"] * 2
    assert queue.run(waiting.id).attempts == 1


@pytest.mark.sqlite_only  # the SQLite queue file itself (Redis has no such file)
def test_the_sqlite_queue_does_not_fsync_each_message(obama: Services) -> None:
    """huey's SQLite default (synchronous=FULL) spent 6 ms of fsync on every submitted job,
    one at a time under its lock; the job row is the source of truth and a lost message is
    sent again (the test above), so the queue runs at NORMAL like the library database."""
    queue = JobQueue(obama)
    huey = queue.mailboxes.hueys["faces_extract"]  # one queue per job kind
    storage = huey.storage
    assert storage.conn.execute("pragma synchronous").fetchone()[0] == 1  # NORMAL
    assert storage.conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    job = submit_faces_extract(obama, queue, "obama")
    assert [task.args[0] for task in huey.pending()] == [job.id]
