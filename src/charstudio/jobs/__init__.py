"""Durable jobs: records in the library database, messages on huey, workers that survive.

``kinds`` declares each kind of job (params model, result model, handler); ``submit``
queues them after the checks that can be made first; ``queue`` runs and recovers them.
"""

from charstudio.jobs.kinds import KINDS, JobKind
from charstudio.jobs.queue import JobQueue, worker_id
from charstudio.jobs.store import JobStore
from charstudio.jobs.submit import (
    submit_dataset_prepare,
    submit_faces_extract,
    submit_faces_score,
    submit_generate,
    submit_report,
    submit_train,
    submit_tune,
)
from charstudio.jobs.types import (
    FINISHED,
    WITH_RESULT,
    JobCancelled,
    JobContext,
    JobFinished,
    JobInfo,
    JobNotFound,
    JobPage,
    JobState,
)

__all__ = [
    "FINISHED",
    "KINDS",
    "WITH_RESULT",
    "JobCancelled",
    "JobContext",
    "JobFinished",
    "JobInfo",
    "JobKind",
    "JobNotFound",
    "JobPage",
    "JobQueue",
    "JobState",
    "JobStore",
    "submit_dataset_prepare",
    "submit_faces_extract",
    "submit_faces_score",
    "submit_generate",
    "submit_report",
    "submit_train",
    "submit_tune",
    "worker_id",
]
