"""A worker process for the kill test: the real consumer and queue, plus one slow job kind.

``python -m tests.jobs.sleepy_worker HOME`` runs the worker exactly as ``charstudio
worker`` does, with a ``sleep`` kind added so a test can kill it mid-job.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from charstudio.config import load_settings
from charstudio.jobs import KINDS, JobContext, JobKind, JobQueue
from charstudio.jobs.worker import Worker
from charstudio.services import Services, build_services


class SleepParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    seconds: float


class Slept(BaseModel):
    slept: float


def sleep(services: Services, ctx: JobContext, params: SleepParams) -> Slept:
    steps = 20
    for step in range(steps):
        ctx.progress(step, steps, "sleeping")
        time.sleep(params.seconds / steps)
    return Slept(slept=params.seconds)


SLEEP = JobKind("sleep", SleepParams, Slept, sleep)


def queue_for(home: Path, **settings: Any) -> JobQueue:
    services = build_services(load_settings(home=home, **settings))
    return JobQueue(services, kinds={**KINDS, SLEEP.name: SLEEP})


if __name__ == "__main__":
    queue = queue_for(Path(sys.argv[1]), job_heartbeat_s=0.2, job_stale_s=2.0)
    Worker(queue, concurrency=int(sys.argv[2]) if len(sys.argv) > 2 else 1).run()
