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

from charstudio.dataset import DatasetConfig
from charstudio.jobs import JobInfo, JobQueue, submit_dataset_prepare, submit_faces_extract
from charstudio.services import Services
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
