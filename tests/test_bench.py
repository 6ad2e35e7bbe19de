"""The API bench runs end to end at a tiny size: its stand-in worker must still match the
job kind it replaces (a new parameter once made every job fail and the bench wait 600 s)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_api_bench_runs_and_loses_no_job(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "api.py"), "--requests", "60",
         "--concurrency", "5", "--jobs", "12", "--rounds", "1"],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "GET /api/v1/characters:" in done.stdout
    counts = r"queue: (\d+) submitted, (\d+) ran, (\d+) lost, (\d+) run twice"
    queue = re.search(counts, done.stdout)
    assert queue is not None, done.stdout
    assert queue.groups() == ("12", "12", "0", "0")
