"""Workers as separate processes: the real `charstudio worker`, a kill mid-job, recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from charstudio.config import Settings, load_settings
from charstudio.dataset import DatasetConfig
from charstudio.jobs import JobInfo, JobQueue, submit_dataset_prepare, submit_faces_extract
from charstudio.services import Services, build_services
from tests.conftest import CliRunner
from tests.faces.conftest import DATA
from tests.jobs.sleepy_worker import SLEEP, SleepParams, queue_for

ROOT = Path(__file__).resolve().parents[2]


def wait_for(
    check: Callable[[], JobInfo], done: Callable[[JobInfo], bool], timeout: float
) -> JobInfo:
    end = time.monotonic() + timeout
    while True:
        info = check()
        if done(info) or time.monotonic() > end:
            return info
        time.sleep(0.1)


def start(args: list[str], home: Path) -> subprocess.Popen[bytes]:
    """Start a worker; its output goes to ``<home>/worker-<n>.log`` (read it when one fails)."""
    # This checkout's tests and source first: a venv shared with another checkout (a git
    # worktree) has charstudio installed from there.
    path = [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "CHARSTUDIO_HOME": str(home), "PYTHONPATH": os.pathsep.join(path)}
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"worker-{len(list(home.glob('worker-*.log')))}.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_charstudio_worker_runs_queued_jobs(
    services: Services, home: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    services.init()
    services.library.create("obama", [DATA / f"obama_{y}.jpg" for y in (2009, 2010, 2012)])
    queue = JobQueue(services)
    jobs = [
        submit_faces_extract(services, queue, "obama"),
        submit_dataset_prepare(
            services, queue, "obama", DatasetConfig(resolution=512, max_upscale=2.0)
        ),
    ]
    processes.append(start([sys.executable, "-m", "charstudio", "worker"], home))
    for job in jobs:
        info = wait_for(lambda j=job: queue.store.get(j.id), lambda i: i.finished, 60)
        assert info.state == "succeeded", (info, (home / "worker-0.log").read_text())
        assert info.worker is not None and info.worker.split(":")[1] == str(processes[0].pid)


def test_a_killed_worker_job_is_requeued_and_finished_by_the_next(
    home: Path, processes: list[subprocess.Popen[bytes]], services: Services
) -> None:
    services.init()
    queue = queue_for(home)
    job = queue.submit(SLEEP, character=None, params=SleepParams(seconds=4))
    first = start([sys.executable, "-m", "tests.jobs.sleepy_worker", str(home)], home)
    processes.append(first)
    running = wait_for(lambda: queue.store.get(job.id), lambda i: i.progress_step >= 2, 30)
    assert running.state == "running", running
    first.kill()  # SIGKILL: no chance to clean up
    first.wait()
    assert queue.store.get(job.id).state == "running"  # as the dead worker left it
    second = start([sys.executable, "-m", "tests.jobs.sleepy_worker", str(home)], home)
    processes.append(second)
    done = wait_for(lambda: queue.store.get(job.id), lambda i: i.finished, 60)
    assert done.state == "succeeded", done
    assert done.result == {"slept": 4.0}
    assert done.attempts == 2 and done.worker is not None
    assert done.worker.split(":")[1] == str(second.pid)


def test_a_job_killed_twice_fails_with_the_reason(
    home: Path, processes: list[subprocess.Popen[bytes]], services: Services
) -> None:
    services.init()
    queue = queue_for(home)
    job = queue.submit(SLEEP, character=None, params=SleepParams(seconds=30))
    for attempt in (1, 2):
        proc = start([sys.executable, "-m", "tests.jobs.sleepy_worker", str(home)], home)
        processes.append(proc)
        info = wait_for(
            lambda: queue.store.get(job.id),
            lambda i, a=attempt: i.state == "running" and i.attempts == a and i.progress_step >= 1,
            30,
        )
        assert info.attempts == attempt, info
        proc.kill()
        proc.wait()
    queue.recover()  # what the next worker (or the periodic check) does
    failed = queue.store.get(job.id)
    assert failed.state == "failed"
    assert "stopped while running it" in failed.error and "attempt 2 of 2" in failed.error


def worker_env(home: Path, settings: Settings) -> dict[str, str]:
    path = [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "CHARSTUDIO_HOME": str(home),
        "CHARSTUDIO_DATABASE_URL": settings.db_url,
        "PYTHONPATH": os.pathsep.join(path),
    }


def refused(home: Path, settings: Settings) -> subprocess.CompletedProcess[str]:
    """`charstudio worker` that must stop at start (a hang fails the test after 60 s)."""
    return subprocess.run(
        [sys.executable, "-m", "charstudio", "worker"],
        cwd=ROOT,
        env=worker_env(home, settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_worker_never_upgrades_an_older_schema(
    services: Services, home: Path, cli: CliRunner
) -> None:
    import json

    from alembic import command

    from charstudio.library.database import alembic_config, head_revision

    services.init()
    services.close()
    command.downgrade(alembic_config(services.settings.db_url), "0006")
    (home / "library.json").unlink()  # a library from before there were markers
    result = refused(home, services.settings)
    assert result.returncode == 1, result
    assert "is at schema revision '0006' and this charstudio needs" in result.stderr
    assert "run `charstudio db upgrade` once" in result.stderr
    assert "Traceback" not in result.stderr
    # The command it names does it; `db status` then shows the library, and no worker.
    upgraded = cli("db", "upgrade")
    assert upgraded.code == 0, upgraded.err
    assert f"upgraded the library from schema revision 0006 to {head_revision()}" in upgraded.out
    status = json.loads(cli("db", "status", "--json").out)
    assert status["schema_revision"] == head_revision() and status["workers"] == []
    assert status["library_id"] and status["data_root"] == str(home)
    marker = json.loads((home / "library.json").read_text())  # written by the upgrade
    assert marker["library_id"] == status["library_id"]


def test_a_worker_whose_data_root_is_not_the_librarys_is_refused(
    services: Services, home: Path, tmp_path: Path
) -> None:
    services.init()
    library = services.db.library_id
    elsewhere = tmp_path / "not-mounted"  # the shared mount is missing: an empty folder
    elsewhere.mkdir()
    result = refused(elsewhere, services.settings)
    assert result.returncode == 1, result
    assert f"the data root {elsewhere} has no library.json" in result.stderr
    assert f"(library {library})" in result.stderr and "Traceback" not in result.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written there
    # Another library's data root is refused too, naming both libraries.
    (elsewhere / "library.json").write_text('{"library_id": "0123456789abcdef"}')
    other = refused(elsewhere, services.settings)
    assert other.returncode == 1
    assert "belongs to library 0123456789abcdef" in other.stderr
    assert f"holds library {library}" in other.stderr


def test_a_worker_takes_only_its_kinds_and_a_kind_nobody_takes_says_so(
    services: Services,
    home: Path,
    processes: list[subprocess.Popen[bytes]],
    cli: CliRunner,
) -> None:
    services.init()
    services.library.create("obama", [DATA / f"obama_{y}.jpg" for y in (2009, 2010, 2012)])
    queue = JobQueue(services)
    faces = submit_faces_extract(services, queue, "obama")
    dataset = submit_dataset_prepare(
        services, queue, "obama", DatasetConfig(resolution=512, max_upscale=2.0)
    )
    shown = cli("jobs", "show", dataset.id)
    assert "no worker is running: start one with `charstudio worker`" in shown.out
    processes.append(
        start([sys.executable, "-m", "charstudio", "worker", "--kinds", "faces_extract"], home)
    )
    done = wait_for(lambda: queue.store.get(faces.id), lambda i: i.finished, 60)
    assert done.state == "succeeded", (done, (home / "worker-0.log").read_text())
    waiting = queue.store.get(dataset.id)
    assert waiting.state == "queued"  # nobody takes dataset_prepare: it waits
    shown = cli("jobs", "show", dataset.id)
    assert shown.code == 0, shown.err
    assert "no running worker takes dataset_prepare jobs" in shown.out
    assert "takes faces_extract" in shown.out
    assert "charstudio worker --kinds dataset_prepare" in shown.out
    # A worker that takes it arrives: the job runs, and the note is gone.
    processes.append(
        start([sys.executable, "-m", "charstudio", "worker", "--kinds", "dataset_prepare"], home)
    )
    finished = wait_for(lambda: queue.store.get(dataset.id), lambda i: i.finished, 60)
    assert finished.state == "succeeded", finished
    assert "waiting" not in cli("jobs", "show", dataset.id).out
    assert cli("worker", "--kinds", "generate,nope").err.startswith(
        "error: unknown job kind 'nope' in --kinds; choose from "
    )


def test_one_worker_runs_several_jobs_at_once(
    home: Path, processes: list[subprocess.Popen[bytes]], services: Services
) -> None:
    services.init()
    queue = queue_for(home)
    jobs = [queue.submit(SLEEP, character=None, params=SleepParams(seconds=3)) for _ in range(3)]
    processes.append(
        start([sys.executable, "-m", "tests.jobs.sleepy_worker", str(home), "3"], home)
    )
    first = wait_for(
        lambda: queue.store.get(jobs[0].id),
        lambda _: sum(queue.store.get(j.id).state == "running" for j in jobs) == 3,
        30,
    )
    assert sum(queue.store.get(j.id).state == "running" for j in jobs) == 3, first
    for job in jobs:
        done = wait_for(lambda j=job: queue.store.get(j.id), lambda i: i.finished, 30)
        assert done.state == "succeeded", done
    pids = {queue.store.get(j.id).worker.split(":")[1] for j in jobs}  # type: ignore[union-attr]
    assert pids == {str(processes[0].pid)}


def test_a_job_whose_message_was_lost_is_run_by_the_next_worker_once(
    home: Path, processes: list[subprocess.Popen[bytes]], services: Services
) -> None:
    """Issue 15, finding 4: a queued row whose message is gone (the queue store reset, a
    crash between row and message) used to stay queued forever; a starting worker's
    recovery sends it again and it runs, once."""
    services.init()
    queue = queue_for(home)
    job = queue.submit(SLEEP, character=None, params=SleepParams(seconds=0.2))
    queue.mailboxes.flush()  # the message is lost; the row still says queued
    assert queue.mailboxes.pending_count() == 0 and queue.store.get(job.id).state == "queued"
    worker = start([sys.executable, "-m", "tests.jobs.sleepy_worker", str(home)], home)
    processes.append(worker)
    done = wait_for(lambda: queue.store.get(job.id), lambda i: i.finished, 60)
    log = (home / "worker-0.log").read_text()
    assert done.state == "succeeded", (done, log)
    assert done.result == {"slept": 0.2}
    assert done.attempts == 1 and done.worker is not None
    assert done.worker.split(":")[1] == str(worker.pid)
    assert log.count(f"job {job.id} was queued but its message was lost") == 1, log
    assert queue.mailboxes.pending_count() == 0  # sent once, taken once


def test_a_running_worker_resends_a_lost_message_and_the_job_runs_once(
    home: Path, processes: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15, finding 4, the periodic half: a `charstudio worker` that is already
    running finds a job queued in the library with no message (the submitting process died
    between the row and the message) at its next sweep (every ``job_stale_s / 2``, for rows
    queued over ``job_heartbeat_s``), sends it again, and the generation runs once."""
    from charstudio.backends import GenerateRequest
    from charstudio.jobs import submit_generate
    from charstudio.jobs.worker import WorkerRegistry
    from charstudio.library.models import Generation
    from tests.backends.fake_comfyui import FakeComfyUI

    for var, value in {
        "CHARSTUDIO_JOB_HEARTBEAT_S": "0.2",  # the grace before a queued row counts as lost
        "CHARSTUDIO_JOB_STALE_S": "2",  # a sweep every second
        "CHARSTUDIO_COMFYUI_CHECKPOINT": "rand_sd15.safetensors",
    }.items():
        monkeypatch.setenv(var, value)  # this process's settings and the worker's
    comfy = FakeComfyUI().start()
    monkeypatch.setenv("CHARSTUDIO_COMFYUI_URLS", comfy.url)
    services = build_services(load_settings(home=home))
    try:
        services.init()
        services.library.create("obama", [DATA / "obama_2009.jpg"])
        queue = JobQueue(services)
        worker = start([sys.executable, "-m", "charstudio", "worker", "--kinds", "generate"], home)
        processes.append(worker)
        request = GenerateRequest(prompt="a red dress", seed=1, width=64, height=64)
        # A first job, sent as usual: the worker is up and past its start-up sweep.
        first = submit_generate(services, queue, "obama", request)
        done = wait_for(lambda: queue.store.get(first.id), lambda i: i.finished, 60)
        log = home / "worker-0.log"
        assert done.state == "succeeded", (done, log.read_text())
        assert WorkerRegistry(services.db).live(within_s=60) != []
        sent_before = len(comfy.prompts_received)
        # The row is written, the message never sent.
        crashed = JobQueue(services)
        monkeypatch.setattr(crashed.mailboxes, "send", lambda kind, job_id: None)
        lost = submit_generate(services, crashed, "obama", request.model_copy(update={"seed": 2}))
        assert queue.store.get(lost.id).state == "queued"
        assert queue.mailboxes.pending_count() == 0  # nothing for the worker to take
        finished = wait_for(lambda: queue.store.get(lost.id), lambda i: i.finished, 60)
        assert finished.state == "succeeded", (finished, log.read_text())
        assert finished.attempts == 1 and finished.worker is not None
        assert finished.worker.split(":")[1] == str(worker.pid)
        images = finished.result["images"]
        assert len(images) == 1 and (home / images[0]["path"]).is_file(), images
        with services.db.sessions() as session:
            rows = session.scalars(select(Generation).where(Generation.job_id == lost.id)).all()
        assert len(rows) == 1  # one output, one row: it ran once
        assert len(comfy.prompts_received) == sent_before + 1
        assert log.read_text().count(f"job {lost.id} was queued but its message was lost") == 1
        assert queue.mailboxes.pending_count() == 0
    finally:
        services.close()
        comfy.stop()
