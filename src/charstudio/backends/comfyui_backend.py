"""The ComfyUI backend: a :class:`~charstudio.backends.base.Backend` over a server pool.

Each seed of a request becomes one prompt (batch size 1), so the images of one request
spread over the pool's servers and run in parallel. The images' graphs are built per
server, from the names that server gave the uploaded reference and pose images.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import httpx

from charstudio.backends.comfyui_events import Event
from charstudio.backends.pool import ComfyUIPool, PoolJob, PoolOptions
from charstudio.backends.types import (
    BackendImage,
    CancelToken,
    GenerationRequest,
    ProgressEvent,
    ProgressSink,
    ServerNames,
)
from charstudio.errors import BackendError, CharstudioError
from charstudio.workflows import build_workflow, editor_workflow
from charstudio.workflows.types import Graph

__all__ = ["ComfyUIBackend", "run_request"]

T = TypeVar("T")


class ComfyUIBackend:
    """Generate on a pool of ComfyUI servers, one pool for the life of the process.

    The pool (server health, node catalogs, in-flight counts) lives on an event loop in a
    thread of its own, started on first use: every job of a worker, from any of its
    threads, goes through the same pool, so its choice of server sees all of them.
    Settings changes take effect when the process restarts.

    Args:
        urls: The servers.
        options: Timeouts and probing.
        transport: An httpx transport for every client (tests).
    """

    name = "comfyui"

    def __init__(
        self,
        urls: Sequence[str],
        *,
        options: PoolOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = list(urls)
        self.options = options or PoolOptions()
        self.transport = transport
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: ComfyUIPool | None = None

    def generate(
        self,
        request: GenerationRequest,
        *,
        progress: ProgressSink | None = None,
        cancel: CancelToken | None = None,
    ) -> list[BackendImage]:
        """Run every image of ``request`` on the pool (see :class:`Backend`)."""
        return self._call(lambda pool: run_request(pool, request, progress=progress, cancel=cancel))

    def check(self, request: GenerationRequest) -> str:
        """The server the request's first image would go to (see :meth:`ComfyUIPool.choose`)."""
        return self._call(lambda pool: _check(pool, request))

    def upload(self, request: GenerationRequest) -> str:
        """Upload the request's images to the server its first image would go to."""
        return self._call(lambda pool: _upload(pool, request))

    def close(self) -> None:
        """Close the servers' connections and stop the pool's thread."""
        with self._lock:
            loop, thread, pool = self._loop, self._thread, self._pool
            self._loop = self._thread = self._pool = None
        if loop is None or thread is None or pool is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(pool.aclose(), loop).result(timeout=30)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)

    def __enter__(self) -> ComfyUIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, work: Callable[[ComfyUIPool], Awaitable[T]]) -> T:
        loop, pool = self._started()
        future = asyncio.run_coroutine_threadsafe(_run(work, pool), loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C (or any error here): cancel the work on the pool's loop, and wait for
            # it to take its prompts off the servers' queues before going on.
            future.cancel()
            with contextlib.suppress(BaseException):
                concurrent.futures.wait([future], timeout=self.options.client.request_timeout_s)
            raise

    def _started(self) -> tuple[asyncio.AbstractEventLoop, ComfyUIPool]:
        with self._lock:
            if self._loop is None or self._pool is None:
                pool = ComfyUIPool(self.urls, options=self.options, transport=self.transport)
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_serve_forever, args=(loop,), name="comfyui-pool", daemon=True
                )
                thread.start()
                self._loop, self._thread, self._pool = loop, thread, pool
            return self._loop, self._pool


def _serve_forever(loop: asyncio.AbstractEventLoop) -> None:
    """The pool's thread: run its loop until :meth:`ComfyUIBackend.close` stops it."""
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        # As asyncio.run ends: what is still running (an event listener) is cancelled and
        # awaited, so its sockets close before the loop does.
        left = asyncio.all_tasks(loop)
        for task in left:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _run(work: Callable[[ComfyUIPool], Awaitable[T]], pool: ComfyUIPool) -> T:
    return await work(pool)


async def _check(pool: ComfyUIPool, request: GenerationRequest) -> str:
    graph = build_workflow(request.workflow_request(0, ServerNames()))
    state = await pool.choose(graph, family=request.family)
    pool.release(state)  # chosen, not run
    return state.client.url


async def _upload(pool: ComfyUIPool, request: GenerationRequest) -> str:
    graph = build_workflow(request.workflow_request(0, ServerNames()))
    state = await pool.choose(graph, family=request.family)
    try:
        for path in (request.reference_file, request.pose_file):
            if path is not None:
                await state.client.upload_image(path)
    finally:
        pool.release(state)  # chosen, not run
    return state.client.url


async def run_request(
    pool: ComfyUIPool,
    request: GenerationRequest,
    *,
    progress: ProgressSink | None = None,
    cancel: CancelToken | None = None,
) -> list[BackendImage]:
    """Run the request's images concurrently on ``pool``; all of them or the first error.

    Raises:
        BackendError: the first failure; the other images' prompts are cancelled.
    """
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(_run_image(pool, request, index, progress, cancel))
                for index in range(request.count)
            ]
    except BaseExceptionGroup as failures:
        raise _first_error(failures) from None
    return [task.result() for task in tasks]


async def _run_image(
    pool: ComfyUIPool,
    request: GenerationRequest,
    index: int,
    progress: ProgressSink | None,
    cancel: CancelToken | None,
) -> BackendImage:
    reference, pose = request.reference_file, request.pose_file

    def build(names: dict[Path, str]) -> Graph:
        server_names = ServerNames(
            reference_image=names.get(reference) if reference else None,
            pose_image=names.get(pose) if pose else None,
        )
        return build_workflow(request.workflow_request(index, server_names))

    def on_event(server: str, event: Event) -> None:
        if progress is not None:
            translated = _progress_event(event, index, request.count, server)
            if translated is not None:
                progress(translated)

    def on_retry(server: str, error: BackendError) -> None:
        if progress is not None:
            progress(
                ProgressEvent(
                    "retry", index, request.count, server=server, message=f"retrying: {error}"
                )
            )

    job = PoolJob(
        build=build,
        uploads=tuple(p for p in (reference, pose) if p is not None),
        extra_pnginfo=lambda graph: {
            "workflow": editor_workflow(graph),
            "charstudio": _pnginfo(request, index),
        },
        family=request.family,
    )
    done = await pool.run(job, on_event=on_event, on_retry=on_retry, cancel=cancel)
    outcome = done.outcome
    return BackendImage(
        index=index,
        seed=request.seeds[index],
        png=outcome.images[0],
        graph=done.graph,
        workflow=editor_workflow(done.graph),
        server=done.server,
        prompt_id=outcome.prompt_id,
        extra={
            "cached_nodes": list(outcome.cached_nodes),
            "previews": outcome.previews,
            "followed_by": outcome.followed_by,
            "retried_from": done.retried_from,
        },
    )


def _pnginfo(request: GenerationRequest, index: int) -> dict[str, object]:
    return {
        "character": request.character,
        "job": request.job,
        "index": index,
        "seed": str(request.seeds[index]),
        "method": request.method,
    }


def _progress_event(event: Event, index: int, total: int, server: str) -> ProgressEvent | None:
    data = event.data
    node = str(data["node"]) if data.get("node") is not None else None
    match event.type:
        case "queued":
            return ProgressEvent("queued", index, total, server=server, message="queued")
        case "execution_start":
            return ProgressEvent("started", index, total, server=server, message="started")
        case "execution_cached":
            nodes = data.get("nodes") or []
            message = f"{len(nodes)} node(s) reused from cache"
            return ProgressEvent("cached", index, total, server=server, message=message)
        case "executing" if node is not None:
            return ProgressEvent("node", index, total, node=node, server=server)
        case "executing":
            return ProgressEvent("finished", index, total, server=server, message="finished")
        case "progress":
            value, maximum = int(data.get("value", 0)), int(data.get("max", 0))
            return ProgressEvent(
                "step",
                index,
                total,
                value=value,
                max=maximum,
                node=node,
                server=server,
                message=f"step {value}/{maximum}",
            )
        case "preview":
            return ProgressEvent("preview", index, total, server=server, message="preview")
    return None


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report from a group: the first charstudio error, else the first."""
    flat: list[BaseException] = []

    def walk(g: BaseExceptionGroup[BaseException]) -> None:
        for exc in g.exceptions:
            walk(exc) if isinstance(exc, BaseExceptionGroup) else flat.append(exc)

    walk(group)
    ours = [e for e in flat if isinstance(e, CharstudioError)]
    return (ours or flat)[0]
