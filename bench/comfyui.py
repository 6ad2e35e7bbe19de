"""ComfyUI client overhead and pool throughput, against fake ComfyUI servers.

Run from the repository root::

    .venv/bin/python bench/comfyui.py [--jobs 200] [--pool-jobs 1000] [--servers 4]

1. Overhead per job: the same one-image job, one after another on one server, sent by
   charstudio (pool choice, graph build and validation, upload, POST /prompt, /ws follow,
   /view download) and by a bare client (POST /prompt of a prebuilt graph, poll
   /history every millisecond, /view). The difference is charstudio's overhead.
2. Throughput: ``--pool-jobs`` jobs queued at once through a pool of ``--servers``
   servers; every image must come back exactly once.

The fake servers run as separate processes (tests/backends/fake_comfyui.py), so their
work does not share this process's interpreter lock.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.backends.fake_comfyui import free_port  # noqa: E402

from charstudio.backends import (  # noqa: E402
    ClientOptions,
    ComfyUIPool,
    GenerationRequest,
    PoolOptions,
    ServerNames,
    run_request,
)
from charstudio.library.profile import METHOD_DEFAULTS  # noqa: E402
from charstudio.workflows import build_workflow  # noqa: E402

OPTIONS = PoolOptions(client=ClientOptions(job_timeout_s=600.0), probe_interval_s=1.0)


def start_servers(count: int) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    processes, urls = [], []
    for _ in range(count):
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.backends.fake_comfyui", str(port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        assert process.stdout is not None
        urls.append(process.stdout.readline().decode().strip())
        processes.append(process)
    return urls, processes


def request(seed: int, reference: Path) -> GenerationRequest:
    return GenerationRequest(
        character="bench",
        job="bench",
        trigger_word="benchcharacter",
        prompt="red dress",
        variation="outfit",
        method="ipadapter_only",
        params=METHOD_DEFAULTS["ipadapter_only"].model_copy(update={"steps": 1}),
        seeds=(seed,),
        checkpoint="rand_sd15.safetensors",
        width=64,
        height=64,
        reference_file=reference,
    )


async def charstudio_jobs(url: str, jobs: int, reference: Path) -> list[float]:
    times = []
    async with ComfyUIPool([url], options=OPTIONS) as pool:
        await run_request(pool, request(10**6, reference))  # warm: catalog, upload, socket
        for seed in range(jobs):
            start = time.perf_counter()
            images = await run_request(pool, request(seed, reference))
            times.append(time.perf_counter() - start)
            if len(images) != 1:
                raise SystemExit(f"charstudio: job {seed} returned {len(images)} images, not 1")
    return times


async def post_prompt(http: httpx.AsyncClient, graph: dict[str, Any]) -> str:
    """The bare client's POST /prompt: a refused graph stops the bench with the server's
    answer (the bare side must run the same job as charstudio's, not time an error)."""
    answer = await http.post("/prompt", json={"prompt": graph})
    if answer.status_code != 200 or "prompt_id" not in answer.json():
        raise SystemExit(f"bare client: POST /prompt refused: {answer.text[:500]}")
    return str(answer.json()["prompt_id"])


async def download(http: httpx.AsyncClient, prompt_id: str, entry: dict[str, Any]) -> None:
    """The bare client's /view downloads; a job that ended without an image stops the bench."""
    images = [i for output in entry[prompt_id]["outputs"].values() for i in output["images"]]
    if not images:
        raise SystemExit(f"bare client: prompt {prompt_id} ended without an image: {entry}")
    for image in images:
        (await http.get("/view", params=image)).raise_for_status()


async def bare_jobs(url: str, jobs: int, reference: Path) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=url) as http:
        name = reference.name
        files = {"image": (name, reference.read_bytes(), "image/png")}
        (
            await http.post("/upload/image", files=files, data={"overwrite": "true"})
        ).raise_for_status()
        template = build_workflow(request(0, reference).workflow_request(0, ServerNames(name)))
        for seed in range(jobs):
            graph = {k: {**v, "inputs": dict(v["inputs"])} for k, v in template.items()}
            sampler = next(k for k, v in graph.items() if v["class_type"] == "KSampler")
            graph[sampler]["inputs"]["seed"] = seed
            start = time.perf_counter()
            prompt_id = await post_prompt(http, graph)
            while not (entry := (await http.get(f"/history/{prompt_id}")).json()):
                await asyncio.sleep(0.001)
            await download(http, prompt_id, entry)
            times.append(time.perf_counter() - start)
    return times


async def bare_throughput(urls: list[str], jobs: int, reference: Path) -> dict[str, Any]:
    """Baseline: round-robin POST /prompt, then poll /history every 20 ms, then /view."""
    clients = [httpx.AsyncClient(base_url=url, timeout=600.0) for url in urls]
    name = reference.name
    template = build_workflow(request(0, reference).workflow_request(0, ServerNames(name)))
    sampler = next(k for k, v in template.items() if v["class_type"] == "KSampler")
    for http in clients:
        files = {"image": (name, reference.read_bytes(), "image/png")}
        (
            await http.post("/upload/image", files=files, data={"overwrite": "true"})
        ).raise_for_status()

    async def one(seed: int) -> tuple[int, str]:
        http = clients[seed % len(clients)]
        graph = {k: {**v, "inputs": dict(v["inputs"])} for k, v in template.items()}
        graph[sampler]["inputs"]["seed"] = seed
        prompt_id = await post_prompt(http, graph)
        while not (entry := (await http.get(f"/history/{prompt_id}")).json()):
            await asyncio.sleep(0.02)
        await download(http, prompt_id, entry)
        return seed, prompt_id

    start = time.perf_counter()
    done = await asyncio.gather(*(one(seed) for seed in range(jobs)))
    elapsed = time.perf_counter() - start
    for http in clients:
        await http.aclose()
    seeds = [seed for seed, _ in done]
    return {
        "elapsed": elapsed,
        "images": len(done),
        "lost": len(set(range(jobs)) - set(seeds)),
        "duplicated": len(seeds) - len(set(seeds)) + len(done) - len({p for _, p in done}),
    }


async def pool_throughput(urls: list[str], jobs: int, reference: Path) -> dict[str, Any]:
    async with ComfyUIPool(urls, options=OPTIONS) as pool:
        await asyncio.gather(*(run_request(pool, request(10**6 + i, reference)) for i in range(4)))
        start = time.perf_counter()
        results = await asyncio.gather(
            *(run_request(pool, request(seed, reference)) for seed in range(jobs))
        )
        elapsed = time.perf_counter() - start
    images = [image for result in results for image in result]
    seeds = [image.seed for image in images]
    prompt_ids = {image.prompt_id for image in images}
    per_server = {url: sum(1 for i in images if i.server == url) for url in urls}
    return {
        "elapsed": elapsed,
        "images": len(images),
        "lost": len(set(range(jobs)) - set(seeds)),
        "duplicated": len(seeds) - len(set(seeds)) + (len(images) - len(prompt_ids)),
        "per_server": per_server,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--pool-jobs", type=int, default=1000)
    parser.add_argument("--servers", type=int, default=4)
    args = parser.parse_args()
    if args.servers < 2 or args.jobs < 1 or args.pool_jobs < 1:
        parser.error("needs --servers >= 2 (one each for the two one-at-a-time runs), jobs >= 1")
    from PIL import Image

    reference = Path(f"/tmp/charstudio-bench-{uuid.uuid4().hex}.png")
    Image.new("RGB", (64, 64), (200, 120, 90)).save(reference)
    urls, processes = start_servers(args.servers)
    try:
        ours = asyncio.run(charstudio_jobs(urls[0], args.jobs, reference))
        bare = asyncio.run(bare_jobs(urls[1], args.jobs, reference))
        pool = asyncio.run(pool_throughput(urls, args.pool_jobs, reference))
        bare_pool = asyncio.run(bare_throughput(urls, args.pool_jobs, reference))
    finally:
        for process in processes:
            process.terminate()
            process.wait()
        reference.unlink(missing_ok=True)
    ms = 1000.0
    med_ours, med_bare = statistics.median(ours) * ms, statistics.median(bare) * ms
    mean_ours, mean_bare = statistics.fmean(ours) * ms, statistics.fmean(bare) * ms
    print(f"one job at a time on one fake server, {args.jobs} jobs each (ms per job)")
    print(f"{'':28}{'median':>10}{'mean':>10}{'p95':>10}")
    for label, times in (("bare POST /prompt + poll", bare), ("charstudio (pool, /ws)", ours)):
        p95 = sorted(times)[int(len(times) * 0.95) - 1] * ms
        print(
            f"{label:28}{statistics.median(times) * ms:10.2f}"
            f"{statistics.fmean(times) * ms:10.2f}{p95:10.2f}"
        )
    print(f"{'charstudio overhead':28}{med_ours - med_bare:10.2f}{mean_ours - mean_bare:10.2f}")
    print()
    print(f"{args.pool_jobs} jobs queued at once on {args.servers} fake servers")
    for label, result in (("bare, round-robin + poll", bare_pool), ("charstudio pool", pool)):
        print(
            f"  {label:26}{result['images']:6} images in {result['elapsed']:6.2f} s = "
            f"{result['images'] / result['elapsed']:6.1f} jobs/s; lost {result['lost']}, "
            f"duplicated {result['duplicated']}"
        )
    print("  charstudio per server: " + ", ".join(str(n) for n in pool["per_server"].values()))
    for label, result in (("bare client", bare_pool), ("charstudio pool", pool)):
        if result["images"] != args.pool_jobs or result["lost"] or result["duplicated"]:
            raise SystemExit(
                f"{label}: {result['images']} images for {args.pool_jobs} jobs, "
                f"{result['lost']} lost, {result['duplicated']} duplicated"
            )


if __name__ == "__main__":
    main()
