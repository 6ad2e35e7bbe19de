"""API latency under load, and 1,000 jobs through the queue with none lost or run twice.

In one command, on loopback:

1. a bare FastAPI app (one ``GET /ping`` returning a constant) under uvicorn — the
   baseline;
2. ``charstudio serve`` (uvicorn, one process) on a fresh library with 20 characters:
   ``GET /api/v1/characters`` and job submission (``POST .../faces/extract``);
3. a worker process whose ``faces_extract`` handler only appends the job id to a file, so
   the queue itself is measured: every submitted job must have run exactly once.

Each load is ``--requests`` requests from ``--concurrency`` concurrent clients (httpx,
one asyncio loop), after a warm-up; it reports requests/s and p50/p99 latency. The
clients share the 2 cores with the server, as they would on one box. Targets (issue 8):
p99 under 50 ms at 100 concurrent requests; 1,000 jobs, none lost or run twice.

Usage: ``python bench/api.py [--requests 2000] [--concurrency 100] [--jobs 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PHOTO = ROOT / "tests" / "data" / "faces" / "obama_2009.jpg"


# -- processes the bench starts ----------------------------------------------------------


def serve_bare(port: int) -> None:
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def run_worker(home: Path, ran_file: Path) -> None:
    from pydantic import BaseModel

    from charstudio.config import load_settings
    from charstudio.jobs import KINDS, JobContext, JobKind, JobQueue
    from charstudio.jobs.kinds import NoParams
    from charstudio.jobs.worker import Worker
    from charstudio.services import Services, build_services

    class Nothing(BaseModel):
        pass

    def record(services: Services, ctx: JobContext, params: NoParams) -> Nothing:
        with ran_file.open("a") as out:  # O_APPEND: one whole line per write
            out.write(ctx.job_id + "\n")
        return Nothing()

    kinds = {**KINDS, "faces_extract": JobKind("faces_extract", NoParams, Nothing, record)}
    queue = JobQueue(build_services(load_settings(home=home)), kinds=kinds)
    Worker(queue, concurrency=4).run()


# -- load --------------------------------------------------------------------------------


async def load(
    url: str, *, method: str, requests: int, concurrency: int, headers: dict[str, str]
) -> tuple[float, list[float], list[str]]:
    """Seconds, per-request latencies (s) and response bodies of the 2xx answers."""
    latencies: list[float] = []
    bodies: list[str] = []
    errors: list[str] = []
    todo = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=60) as client:

        async def one_client() -> None:
            for _ in todo:
                start = time.perf_counter()
                try:
                    response = await client.request(method, url)
                except httpx.TransportError as exc:
                    errors.append(f"{type(exc).__name__}")
                    continue
                latencies.append(time.perf_counter() - start)
                if response.status_code >= 300:
                    errors.append(f"HTTP {response.status_code}")
                else:
                    bodies.append(response.text)

        for _ in range(min(50, requests)):  # warm-up: connections, imports, caches
            await client.request(method, url) if method == "GET" else None
        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        if errors:
            print(f"{url}: {len(errors)} failed requests: {sorted(set(errors))}", file=sys.stderr)
        return time.perf_counter() - started, latencies, bodies


def summary(label: str, seconds: float, latencies: list[float]) -> str:
    q = statistics.quantiles(latencies, n=100)
    return f"{label:<42}{len(latencies) / seconds:>9.0f}{q[49] * 1000:>10.1f}{q[98] * 1000:>10.1f}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_up(url: str) -> None:
    for _ in range(150):
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "data"
        env = {**os.environ, "CHARSTUDIO_HOME": str(home), "PYTHONPATH": str(ROOT)}
        # A library of 20 characters, made through the services.
        from charstudio.config import load_settings
        from charstudio.services import build_services

        services = build_services(load_settings(home=home))
        services.init()
        for i in range(20):
            services.library.create(f"char{i:02d}", [PHOTO])
        token = services.store.ensure_api_token()
        services.close()

        bare_port, api_port = free_port(), free_port()
        procs = [
            start([__file__, "--serve-bare", str(bare_port)], env),
            start(["-m", "charstudio", "serve", "--port", str(api_port)], env),
        ]
        try:
            bare = f"http://127.0.0.1:{bare_port}"
            api = f"http://127.0.0.1:{api_port}"
            wait_up(f"{bare}/ping")
            wait_up(f"{api}/health")
            auth = {"Authorization": f"Bearer {token}"}
            rows = []
            loads = [
                ("bare FastAPI GET /ping (baseline)", "GET", f"{bare}/ping", args.requests, {}),
                ("charstudio GET /api/v1/characters", "GET", f"{api}/api/v1/characters",
                 args.requests, auth),
                (f"charstudio POST faces/extract ({args.jobs} jobs)", "POST",
                 f"{api}/api/v1/characters/char00/faces/extract", args.jobs, auth),
            ]  # fmt: skip
            for label, method, url, count, headers in loads:
                s, lat, bodies = asyncio.run(
                    load(url, method=method, requests=count, concurrency=args.concurrency,
                         headers=headers)
                )  # fmt: skip
                rows.append(summary(label, s, lat))
            submitted = [json.loads(b)["id"] for b in bodies]  # the last load's: the jobs

            ran_file = Path(tmp) / "ran.txt"
            ran_file.touch()
            started = time.perf_counter()
            procs.append(start([__file__, "--worker", str(home), str(ran_file)], env))
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if len(ran_file.read_text().splitlines()) >= len(submitted):
                    break
                time.sleep(0.2)
            drained = time.perf_counter() - started
            time.sleep(1.0)  # anything run twice would show up now
            ran = ran_file.read_text().splitlines()
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(15)

    print(
        f"{args.concurrency} concurrent clients, loopback, this machine ({os.cpu_count()} cores)\n"
    )
    print(f"{'endpoint':<42}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}")
    print("\n".join(rows))
    lost = set(submitted) - set(ran)
    twice = len(ran) - len(set(ran))
    print(
        f"\nqueue: {len(submitted)} submitted, {len(set(ran))} ran, {len(lost)} lost, "
        f"{twice} run twice; drained by one worker (4 threads) in {drained:.1f} s "
        f"({len(ran) / drained:.0f} jobs/s)"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-bare":
        serve_bare(int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--worker":
        run_worker(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
