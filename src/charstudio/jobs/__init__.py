"""Durable jobs: records in the library database, messages on huey, workers that survive."""

from charstudio.jobs.handlers import HANDLERS, Handler
from charstudio.jobs.queue import JobQueue, build_huey, worker_id
from charstudio.jobs.store import JobStore
from charstudio.jobs.types import (
    JobCancelled,
    JobContext,
    JobFinished,
    JobInfo,
    JobNotFound,
    JobPage,
    JobState,
)

__all__ = [
    "HANDLERS",
    "Handler",
    "JobCancelled",
    "JobContext",
    "JobFinished",
    "JobInfo",
    "JobNotFound",
    "JobPage",
    "JobQueue",
    "JobState",
    "JobStore",
    "build_huey",
    "worker_id",
]
