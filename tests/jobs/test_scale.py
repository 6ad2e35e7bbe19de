"""The scale test, short: PostgreSQL + Redis, three worker processes on one data root, two
ComfyUI servers; one worker killed with SIGKILL and one server stopped mid-run; every job
ends exactly once and outputs and rows agree one for one (``bench/scale.py``: 1,000 jobs,
four servers, the figures)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.jobs.scale import run_scale


@pytest.mark.servers_only
def test_three_workers_survive_a_kill_and_a_lost_server(tmp_path: Path) -> None:
    report = run_scale(
        tmp_path,
        jobs=30,
        workers=3,
        servers=2,
        concurrency=2,
        database_url=os.environ["CHARSTUDIO_DATABASE_URL"],
        queue_url=os.environ["CHARSTUDIO_QUEUE_URL"],
        kill_after=6,
        stop_after=12,
        timeout_s=240,
    )
    assert report.problems == [], report
    assert report.killed_worker is not None and report.stopped_server is not None
    assert sum(report.states.values()) == 30
    assert report.states.get("succeeded", 0) >= 28, report  # failures carry their reason
    assert len(report.per_worker) >= 2  # the work was shared
