"""The scale test, short: PostgreSQL + Redis, three worker processes on one data root, two
ComfyUI servers; one worker killed with SIGKILL and one server stopped mid-run; every job
ends exactly once and outputs and rows agree one for one (``bench/scale.py``: 1,000 jobs,
four servers, the figures)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.jobs.scale import run_scale
from tests.servers import Servers
from tests.test_bench import bench, rate


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


@pytest.mark.servers_only
def test_scale_bench_runs_every_job_once(tmp_path: Path, servers: Servers | None) -> None:
    assert servers is not None
    out = bench(
        tmp_path, "scale.py", "--jobs", "12", "--workers", "2", "--servers", "2",
        "--concurrency", "2", "--baseline-jobs", "4", "--database-url", servers.database_url,
        "--queue-url", servers.queue_url,
    )  # fmt: skip
    runs = re.findall(r"^(.+): (\d+) jobs, (\d+) worker\(s\), 2 server\(s\)$", out, re.M)
    assert runs == [("PostgreSQL + Redis", "12", "2"), ("SQLite + SQLite queue", "4", "1")], out
    states = re.findall(r"^  states (\{.*?\}), attempts", out, re.M)
    assert states == ["{'succeeded': 12}", "{'succeeded': 4}"], out
    assert out.count("checks: every job ended once; outputs and rows agree one for one") == 2
    figures = re.search(r"^([\d.]+) jobs/s with 2 workers .* against ([\d.]+) jobs/s", out, re.M)
    assert figures is not None and all(rate(value) for value in figures.groups()), out
