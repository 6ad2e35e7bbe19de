"""Scale-out: PostgreSQL + Redis, three workers, four ComfyUI servers, a kill and a lost server.

1,000 generation jobs (one 64 px image each, on fake ComfyUI servers that answer at once)
go to three ``charstudio worker`` processes, each in a temporary folder of its own, sharing
one data root, a PostgreSQL database and a Redis queue. When 200 jobs have finished one
worker is killed with SIGKILL; at 400 one ComfyUI server is stopped (SIGKILL, its queue
lost). Every job must end exactly once (succeeded with one image and one database row, or
failed with its reason), and the PNG files and the rows must agree one for one. Then the
same machine runs the single-worker SQLite figure (one worker, SQLite library and queue, no
faults) for comparison. The scenario is ``tests/jobs/scale.py``; ``tests/jobs/test_scale.py``
runs a short version in the test suite.

Usage::

    python bench/scale.py [--jobs 1000] [--workers 3] [--servers 4] [--concurrency 4]
        [--baseline-jobs 200] [--database-url URL --queue-url URL]

Without URLs it starts PostgreSQL and Redis with ``scripts/services.sh start`` (and leaves
them running; ``scripts/services.sh stop`` stops them). Each run gets a new database.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.jobs.scale import ScaleReport, run_scale, scratch  # noqa: E402
from tests.servers import Servers  # noqa: E402


def services_urls() -> tuple[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "services.sh"), "start"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    urls = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return urls["CHARSTUDIO_TEST_DATABASE_URL"], urls["CHARSTUDIO_TEST_QUEUE_URL"]


def show(report: ScaleReport) -> None:
    print(
        f"\n{report.backend}: {report.jobs} jobs, {report.workers} worker(s), "
        f"{report.servers} server(s)"
    )
    print(f"  {report.seconds:.1f} s, {report.jobs_per_s:.1f} jobs/s")
    print(f"  states {report.states}, attempts {report.attempts}")
    print(f"  images per server {report.per_server}")
    print(f"  jobs per worker {report.per_worker}")
    if report.killed_worker or report.stopped_server:
        print(f"  killed worker {report.killed_worker}, stopped server {report.stopped_server}")
    print(
        "  checks: "
        + (
            "every job ended once; outputs and rows agree one for one"
            if not report.problems
            else "FAILED"
        )
    )
    for problem in report.problems[:20]:
        print(f"    {problem}")
    for error, count in list(report.errors.items())[:5]:
        print(f"  failed {count}x: {error[:300]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--servers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--baseline-jobs", type=int, default=200)
    parser.add_argument("--database-url")
    parser.add_argument("--queue-url")
    args = parser.parse_args()
    if bool(args.database_url) != bool(args.queue_url):
        parser.error("give both --database-url and --queue-url, or neither")
    admin_url, queue_url = (
        (args.database_url, args.queue_url) if args.database_url else services_urls()
    )
    servers = Servers(admin_url, queue_url)
    database_url = servers.new_database(empty=True)
    servers.flush_queue()
    reports = []
    folder = scratch()
    try:
        started = time.monotonic()
        reports.append(
            run_scale(
                folder / "scale",
                jobs=args.jobs,
                workers=args.workers,
                servers=args.servers,
                concurrency=args.concurrency,
                database_url=database_url,
                queue_url=queue_url,
                kill_after=args.jobs // 5,
                stop_after=2 * args.jobs // 5,
                timeout_s=3600,
                log=print,
            )
        )
        print(f"(scale run {time.monotonic() - started:.0f} s in all)")
        reports.append(
            run_scale(
                folder / "baseline",
                jobs=args.baseline_jobs,
                workers=1,
                servers=args.servers,
                concurrency=args.concurrency,
                timeout_s=3600,
                log=print,
            )
        )
    finally:
        servers.drop(database_url)
        servers.close()
        shutil.rmtree(folder, ignore_errors=True)
    for report in reports:
        show(report)
    scale, baseline = reports
    print(
        f"\n{scale.jobs_per_s:.1f} jobs/s with {scale.workers} workers on PostgreSQL + Redis "
        f"(through a kill and a lost server) against {baseline.jobs_per_s:.1f} jobs/s for "
        "one worker on SQLite"
    )
    failed = [
        f"{r.backend}: {r.jobs - r.states.get('succeeded', 0)} of {r.jobs} jobs did not succeed"
        for r in reports
        if r.states.get("succeeded", 0) != r.jobs
    ]
    broken = [f"{r.backend}: {len(r.problems)} problems" for r in reports if r.problems]
    if failed or broken:  # a figure over failed jobs measures the failure, not the work
        print("\nFAILED: " + "; ".join(failed + broken), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
