"""The scale run: several worker processes, several ComfyUI servers, kills, and the count.

Shared by ``tests/jobs/test_scale.py`` (short, in the PostgreSQL + Redis run) and
``bench/scale.py`` (1,000 jobs). :func:`run_scale`:

1. starts ``servers`` fake ComfyUI servers, each a process of its own
   (``python -m tests.backends.fake_comfyui PORT``, 64 px images);
2. makes a library (a character with one reference photo: generation by img2img, no QC)
   on the given database and queue, and starts ``workers`` real ``charstudio worker
   --kinds generate`` processes, each in a temporary folder of its own (its working
   directory and TMPDIR), all on the same data root;
3. submits ``jobs`` generation jobs of one image each (seed = the job's number) and,
   while they run, kills one worker with SIGKILL once ``kill_after`` jobs have finished
   and stops one server (SIGKILL: its queue is lost) once ``stop_after`` have;
4. waits for every job to finish and checks that each ended exactly once: succeeded with
   one image and one ``generations`` row, or failed with its reason; that the PNG files
   under ``outputs/`` and the rows agree one for one; that nothing is left queued or
   running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from charstudio.backends import GenerateRequest
from charstudio.config import load_settings
from charstudio.jobs import JobQueue, submit_generate
from charstudio.jobs.worker import WorkerRegistry
from charstudio.library.models import Generation, Job
from charstudio.services import Services, build_services
from tests.backends.fake_comfyui import free_port

ROOT = Path(__file__).resolve().parents[2]
PHOTO = ROOT / "tests" / "data" / "faces" / "obama_2009.jpg"

__all__ = ["ScaleReport", "run_scale"]


@dataclass
class ScaleReport:
    """What happened, and what was wrong (``problems`` empty: every check held)."""

    backend: str
    jobs: int
    workers: int
    servers: int
    seconds: float
    states: dict[str, int]
    attempts: dict[int, int]
    per_server: dict[str, int]
    per_worker: dict[str, int]
    killed_worker: str | None
    stopped_server: str | None
    problems: list[str] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)  # failed jobs' reasons, counted

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds if self.seconds else 0.0


def _child_env(extra: dict[str, str], tmp: Path) -> dict[str, str]:
    # This checkout's code first (a virtual environment may be shared with another).
    path = [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARSTUDIO_")}
    env.update(extra)
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(path),
            "CHARSTUDIO_DEV_SRC": str(ROOT / "src"),
            "TMPDIR": str(tmp),
        }
    )
    return env


def _start_server(port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.backends.fake_comfyui", str(port)],
            cwd=ROOT,
            env=_child_env({}, log.parent),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_listening(port: int, timeout_s: float) -> None:
    import socket

    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"fake ComfyUI on port {port} did not start in {timeout_s:g} s")


def run_scale(
    workdir: Path,
    *,
    jobs: int,
    workers: int = 3,
    servers: int = 4,
    concurrency: int = 2,
    database_url: str | None = None,
    queue_url: str | None = None,
    kill_after: int | None = None,
    stop_after: int | None = None,
    timeout_s: float = 600.0,
    log: Any = None,
) -> ScaleReport:
    """Run the scale scenario in ``workdir``; see the module docstring."""
    say = log or (lambda message: None)
    home = workdir / "data"
    processes: list[subprocess.Popen[bytes]] = []
    ports = [free_port() for _ in range(servers)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    settings_env = {
        "CHARSTUDIO_HOME": str(home),
        "CHARSTUDIO_COMFYUI_URLS": ",".join(urls),
        "CHARSTUDIO_COMFYUI_CHECKPOINT": "rand_sd15.safetensors",
        "CHARSTUDIO_COMFYUI_LOST_AFTER_S": "3",
        "CHARSTUDIO_JOB_HEARTBEAT_S": "0.5",
        "CHARSTUDIO_JOB_STALE_S": "6",
    }
    if database_url:
        settings_env["CHARSTUDIO_DATABASE_URL"] = database_url
    if queue_url:
        settings_env["CHARSTUDIO_QUEUE_URL"] = queue_url
    services = build_services(
        load_settings(
            home=home,
            database_url=database_url,
            queue_url=queue_url,
            comfyui_urls=urls,
            comfyui_checkpoint="rand_sd15.safetensors",
        )
    )
    server_procs: list[subprocess.Popen[bytes]] = []
    worker_procs: list[subprocess.Popen[bytes]] = []
    try:
        for n, port in enumerate(ports):
            folder = workdir / f"server-{n}"
            folder.mkdir(parents=True)
            server_procs.append(_start_server(port, folder / "server.log"))
        processes.extend(server_procs)
        for port in ports:
            _wait_listening(port, 60)
        services.init()
        services.library.create("obama", [PHOTO])
        queue = JobQueue(services)
        for n in range(workers):
            folder = workdir / f"worker-{n}"
            folder.mkdir(parents=True)
            with (folder / "worker.log").open("wb") as out:
                worker_procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "charstudio",
                            "worker",
                            "--kinds",
                            "generate",
                            "--concurrency",
                            str(concurrency),
                        ],
                        cwd=folder,
                        env=_child_env(settings_env, folder),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        processes.extend(worker_procs)
        registry = WorkerRegistry(services.db)
        _until(lambda: len(registry.live(within_s=30)) >= workers, 120, "workers to start")
        say(f"{servers} servers and {workers} workers up; submitting {jobs} jobs")
        started = time.monotonic()
        ids = [
            submit_generate(
                services,
                queue,
                "obama",
                GenerateRequest(prompt="a red dress", seed=n, width=64, height=64),
            ).id
            for n in range(jobs)
        ]
        say(f"submitted in {time.monotonic() - started:.1f} s")
        killed, stopped = _watch(
            services,
            jobs,
            worker_procs,
            server_procs,
            urls,
            kill_after=kill_after,
            stop_after=stop_after,
            timeout_s=timeout_s,
            say=say,
        )
        seconds = time.monotonic() - started
        report = _check(services, ids, home, urls, workers, seconds, killed, stopped)
        report.backend = "PostgreSQL + Redis" if database_url else "SQLite + SQLite queue"
        return report
    finally:
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        services.close()


def _until(check: Any, timeout_s: float, what: str) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > end:
            raise TimeoutError(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.2)


def _finished(services: Services) -> int:
    with services.db.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).where(Job.state.in_(["succeeded", "failed", "cancelled"]))
            )
            or 0
        )


def _watch(
    services: Services,
    jobs: int,
    worker_procs: list[subprocess.Popen[bytes]],
    server_procs: list[subprocess.Popen[bytes]],
    urls: list[str],
    *,
    kill_after: int | None,
    stop_after: int | None,
    timeout_s: float,
    say: Any,
) -> tuple[str | None, str | None]:
    """Wait for every job, killing a worker and stopping a server on the way."""
    killed = stopped = None
    end = time.monotonic() + timeout_s
    while True:
        done = _finished(services)
        if kill_after is not None and killed is None and done >= kill_after:
            victim = worker_procs[0]
            victim.kill()  # SIGKILL: no chance to clean up
            victim.wait()
            killed = f"pid {victim.pid}"
            say(f"{done} jobs finished: killed worker {killed} with SIGKILL")
        if stop_after is not None and stopped is None and done >= stop_after:
            server_procs[0].kill()
            server_procs[0].wait()
            stopped = urls[0]
            say(f"{done} jobs finished: stopped the ComfyUI server {stopped}")
        if done >= jobs:
            return killed, stopped
        if time.monotonic() > end:
            raise TimeoutError(f"{done} of {jobs} jobs finished in {timeout_s:g} s")
        time.sleep(0.1)


def _check(
    services: Services,
    ids: list[str],
    home: Path,
    urls: list[str],
    workers: int,
    seconds: float,
    killed: str | None,
    stopped: str | None,
) -> ScaleReport:
    problems: list[str] = []
    with services.db.sessions() as session:
        rows = session.execute(select(Job).where(Job.id.in_(ids))).scalars().all()
        generations = session.execute(select(Generation)).scalars().all()
        states = Counter(job.state for job in rows)
        attempts = Counter(job.attempts for job in rows)
        per_worker = Counter((job.worker or "?").rsplit(":", 1)[0] for job in rows)
        by_job = Counter(g.job_id for g in generations)
        errors = Counter(str(job.error) for job in rows if job.state == "failed")
        per_server = Counter(str(g.params.get("server", "?")) for g in generations)
        if len(rows) != len(ids):
            problems.append(f"{len(ids) - len(rows)} submitted jobs have no row")
        for job in rows:
            if job.state == "succeeded":
                images = job.result.get("images", [])
                if len(images) != 1 or by_job[job.id] != 1:
                    problems.append(
                        f"job {job.id}: {len(images)} images, {by_job[job.id]} generation rows"
                    )
            elif job.state == "failed":
                if not job.error:
                    problems.append(f"job {job.id} failed without a reason")
                if by_job[job.id]:
                    problems.append(f"failed job {job.id} kept {by_job[job.id]} rows")
            else:
                problems.append(f"job {job.id} ended {job.state}")
        paths = {
            str((home / g.path) if not Path(g.path).is_absolute() else Path(g.path))
            for g in generations
        }
    if len(paths) != len(generations):
        problems.append(f"{len(generations)} rows name {len(paths)} files")
    files = {str(p) for p in (home / "outputs").rglob("*.png") if not p.name.startswith(".tmp-")}
    if files - paths:
        problems.append(
            f"{len(files - paths)} output files with no row: {sorted(files - paths)[:3]}"
        )
    if paths - files:
        problems.append(
            f"{len(paths - files)} rows whose file is missing: {sorted(paths - files)[:3]}"
        )
    left = [p for p in (home / "outputs").rglob(".tmp-*")]
    if left:
        problems.append(f"{len(left)} temporary files left: {left[:3]}")
    return ScaleReport(
        backend="",
        jobs=len(ids),
        workers=workers,
        servers=len(urls),
        seconds=seconds,
        states=dict(states),
        attempts=dict(sorted(attempts.items())),
        per_server=dict(sorted(per_server.items())),
        per_worker=dict(sorted(per_worker.items())),
        killed_worker=killed,
        stopped_server=stopped,
        problems=problems,
        errors=dict(errors.most_common()),
    )


def scratch() -> Path:
    """A temporary folder for a bench run."""
    return Path(tempfile.mkdtemp(prefix="charstudio-scale-"))
