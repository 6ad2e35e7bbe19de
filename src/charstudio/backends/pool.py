"""A pool of ComfyUI servers: each image goes to a healthy server that has its models and
the shortest queue; a server lost mid-job has the job retried once on another.

Choosing a server (:meth:`ComfyUIPool.choose`):

1. probe every candidate (``GET /prompt``: health, and the server's own count of prompts
   running and pending, the count ``GET /queue`` lists), for every choice unless
   ``probe_interval_s`` says otherwise; choices made at the same moment share one probe
   per server. A server that does not answer as ComfyUI is skipped, with its reason kept;
2. validate the job's graph against each server's ``/object_info`` (its node packs and
   model files) and, for IP-Adapter presets resolved at run time, its ``/models/*``
   listings: a server lacking a node or a model is skipped, with the rejection kept;
3. of the rest, take the one with the least work: the server's own count plus the prompts
   this process chose it for and has not submitted yet; between equals, any one at random.

The load signal is the server's count, not this process's: workers on several machines
each keep a pool, and each sees the prompts the others queued, so they spread over the
servers instead of each believing the servers it has not used are idle (the random pick
between equals keeps workers that choose at the same moment from all taking the first).

If no server qualifies, the error names every server and why it was skipped.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from charstudio.backends.comfyui import ClientOptions, ComfyUIClient, PromptOutcome
from charstudio.backends.comfyui_events import Event
from charstudio.backends.model_files import missing_files, preset_needs
from charstudio.backends.types import CancelToken
from charstudio.errors import BackendError, ComfyUIUnavailable, ServerLost
from charstudio.workflows import ModelFamilyName, WorkflowRejected, check_graph
from charstudio.workflows.types import Graph

__all__ = ["ComfyUIPool", "PoolJob", "PoolOptions", "ServerState"]


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """How the pool talks to and chooses between servers.

    Attributes:
        client: Timeouts of each server's client.
        probe_interval_s: How long a probe (health and queue count) stays fresh; 0: read
            for every choice (the default: other workers' prompts show at once).
        down_for_s: How long a server that failed stays out of the choice.
    """

    client: ClientOptions = field(default_factory=ClientOptions)
    probe_interval_s: float = 0.0
    down_for_s: float = 10.0


@dataclass
class ServerState:
    """What the pool knows about one server.

    Attributes:
        inflight: This process's prompts there, from the choice to the end.
        reserved: Those chosen but not submitted yet (the server cannot count them).
        queued: The server's own count of prompts running and pending, at the last probe
            (every worker's, this one's submitted prompts included).
    """

    client: ComfyUIClient
    inflight: int = 0
    reserved: int = 0
    queued: int = 0
    probed_at: float = float("-inf")
    down_until: float = float("-inf")
    down_reason: str = ""
    probing: asyncio.Future[int] | None = None


@dataclass(frozen=True)
class PoolJob:
    """One prompt to run somewhere in the pool.

    Attributes:
        build: Makes the graph from the uploaded names (``{local path: server name}``).
        uploads: Local images the graph loads (uploaded to whichever server runs it).
        extra_pnginfo: What ComfyUI embeds in the PNG besides the graph, made from the
            graph that runs (the editor ``workflow``, charstudio's parameters).
        family: The base model's family (which IP-Adapter files presets look for).
    """

    build: Callable[[dict[Path, str]], Graph]
    uploads: tuple[Path, ...] = ()
    extra_pnginfo: Callable[[Graph], dict[str, object]] | None = None
    family: ModelFamilyName = "sd15"


@dataclass(frozen=True)
class PoolOutcome:
    """A finished prompt, where it ran, and the graph that ran."""

    outcome: PromptOutcome
    server: str
    graph: Graph
    retried_from: str | None


class ComfyUIPool:
    """Several ComfyUI servers used as one.

    Args:
        urls: The servers (``CHARSTUDIO_COMFYUI_URLS``).
        options: Timeouts and probing.
        transport: One httpx transport for every client (tests).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        options: PoolOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not urls:
            raise ComfyUIUnavailable(
                "no ComfyUI server is configured: set CHARSTUDIO_COMFYUI_URLS "
                "(e.g. http://127.0.0.1:8188)"
            )
        self.options = options or PoolOptions()
        self.servers = [
            ServerState(ComfyUIClient(url, options=self.options.client, transport=transport))
            for url in dict.fromkeys(urls)
        ]

    async def __aenter__(self) -> ComfyUIPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await asyncio.gather(*(s.client.aclose() for s in self.servers))

    async def run(
        self,
        job: PoolJob,
        *,
        on_event: Callable[[str, Event], None] | None = None,
        on_retry: Callable[[str, BackendError], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> PoolOutcome:
        """Run one prompt; if its server is lost, once more on another.

        Raises:
            ComfyUIUnavailable: no usable server (each one's reason in the message).
            ServerLost: lost mid-job, and lost again (or nowhere else to go).
            WorkflowRejected: every reachable server refuses the graph.
            GenerationFailed: a node failed while running.
            GenerationCancelled: cancelled.
        """
        probe_graph = job.build({path: path.name for path in job.uploads})
        excluded: set[str] = set()
        lost_on: ComfyUIUnavailable | None = None
        lost_url: str | None = None
        while True:
            try:
                state = await self.choose(probe_graph, family=job.family, exclude=excluded)
            except ComfyUIUnavailable as exc:
                if lost_on is None:
                    raise
                raise ServerLost(f"{lost_on}; no other ComfyUI server to retry on ({exc})") from exc
            reservation = [True]  # until the prompt is submitted (or the try ends)
            try:
                outcome, graph = await self._run_on(state, job, on_event, cancel, reservation)
                return PoolOutcome(outcome, state.client.url, graph, lost_url)
            except ComfyUIUnavailable as exc:
                self._mark_down(state, str(exc))
                if lost_on is not None:
                    raise ServerLost(
                        f"{exc} (this was the retry: the job was first lost because {lost_on})"
                    ) from exc
                lost_on, lost_url = exc, state.client.url
                excluded.add(state.client.url)
                if on_retry is not None:
                    on_retry(state.client.url, exc)
            finally:
                state.inflight -= 1
                if reservation[0]:
                    state.reserved -= 1

    async def choose(
        self, graph: Graph, *, family: ModelFamilyName = "sd15", exclude: set[str] | None = None
    ) -> ServerState:
        """The server to run ``graph`` on; counts one more job in flight there.

        Raises:
            WorkflowRejected: no usable server, and some refuse the graph (ModelMissing:
                a model they lack); the first refusal, with the other servers' reasons.
            ComfyUIUnavailable: no server is usable at all.
        """
        candidates = [s for s in self.servers if s.client.url not in (exclude or set())]
        verdicts = await asyncio.gather(*(self._assess(s, graph, family) for s in candidates))
        usable = [s for s, reason in zip(candidates, verdicts, strict=True) if reason is None]
        if usable:
            least = min(_load(s) for s in usable)
            best = random.choice([s for s in usable if _load(s) == least])
            # Counted before the next await: jobs choosing at the same moment must see
            # each other, or they would all pick the same "empty" server.
            best.inflight += 1
            best.reserved += 1
            return best
        failed = [(s, r) for s, r in zip(candidates, verdicts, strict=True) if r is not None]
        reasons = [r for _, r in failed]
        summary = "; ".join(f"{s.client.url}: {_one_line(r)}" for s, r in failed)
        rejected = [r for r in reasons if isinstance(r, WorkflowRejected)]
        if rejected:
            first = rejected[0]
            if len(candidates) > 1:
                first.args = (f"{first}\n(servers: {summary})",)
            raise first
        if not candidates:
            raise ComfyUIUnavailable("no ComfyUI server left to try")
        if len(candidates) == 1 and isinstance(reasons[0], ComfyUIUnavailable):
            raise reasons[0]
        raise ComfyUIUnavailable(f"no ComfyUI server is usable: {summary}")

    def release(self, state: ServerState) -> None:
        """Give back a choice that ran nothing (``workflow --check``, an upload only)."""
        state.inflight -= 1
        state.reserved -= 1

    async def _assess(
        self, state: ServerState, graph: Graph, family: ModelFamilyName
    ) -> BackendError | None:
        now = time.monotonic()
        if now < state.down_until:
            return ComfyUIUnavailable(f"skipped for now: {state.down_reason}")
        try:
            if now - state.probed_at > self.options.probe_interval_s:
                await self._probe(state)
            catalog = await state.client.catalog()
            check_graph(graph, catalog, server=state.client.url)
            # 2b. Files the unified IP-Adapter loaders only look for while running.
            needs = preset_needs(graph, family)
            if needs:
                folders = sorted({need.folder for need in needs})
                listed = {folder: await state.client.models(folder) for folder in folders}
                missing = missing_files(needs, listed, server=state.client.url)
                if missing is not None:
                    return missing
        except WorkflowRejected as exc:
            return exc
        except ComfyUIUnavailable as exc:
            self._mark_down(state, str(exc))
            return exc
        return None

    async def _probe(self, state: ServerState) -> None:
        """Refresh health and the server's queue count; jobs choosing at once share one
        probe."""
        # Without sharing, a burst of N jobs sends N probes per server at the same moment.
        if state.probing is None or state.probing.done():
            state.probing = asyncio.ensure_future(state.client.probe())
        state.queued = await asyncio.shield(state.probing)
        state.probed_at = time.monotonic()

    async def _run_on(
        self,
        state: ServerState,
        job: PoolJob,
        on_event: Callable[[str, Event], None] | None,
        cancel: CancelToken | None,
        reservation: list[bool],
    ) -> tuple[PromptOutcome, Graph]:
        client = state.client
        names = {path: await client.upload_image(path) for path in job.uploads}
        graph = job.build(names)
        extra = job.extra_pnginfo(graph) if job.extra_pnginfo is not None else None
        prompt_id = await client.submit(graph, extra_pnginfo=extra)
        # Submitted: the server's own count holds it from now on.
        reservation[0] = False
        state.reserved -= 1
        if on_event is not None:
            on_event(client.url, Event("queued", {"prompt_id": prompt_id}))
        sink = (lambda event: on_event(client.url, event)) if on_event is not None else None
        outcome = await client.wait(prompt_id, graph=graph, on_event=sink, cancel=cancel)
        return outcome, graph

    def _mark_down(self, state: ServerState, reason: str) -> None:
        state.down_until = time.monotonic() + self.options.down_for_s
        state.down_reason = _one_line(reason)
        state.probed_at = float("-inf")


def _load(state: ServerState) -> int:
    """A server's work: its own count, plus what this process is about to send it."""
    return state.queued + state.reserved


def _one_line(error: object) -> str:
    return str(error).splitlines()[0] if str(error) else error.__class__.__name__
