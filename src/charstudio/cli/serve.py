"""``charstudio serve`` and ``charstudio worker``: the API server and a job worker."""

from __future__ import annotations

from typing import Annotated

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of

__all__ = ["serve", "worker"]


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: setting api_host, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port (default: setting api_port, 8420).")
    ] = None,
) -> None:
    """Serve the REST API (docs at /docs); run `charstudio worker` beside it for jobs."""
    import uvicorn

    from charstudio.http import check_token_strength, remove_stale_uploads
    from charstudio.server import create_app

    services = services_of(ctx)
    services.start()  # refuses a data root that is not the database's library
    settings = services.settings
    # An empty or short token would let anyone in (the empty password logs into the studio).
    check_token_strength(settings.api_token or services.store.ensure_api_token())
    console = Console()
    for folder in remove_stale_uploads(settings.home):  # left by a server killed mid-upload
        console.info(f"removed an unfinished upload: {folder.name}")
    app = create_app(services)
    where = f"http://{host or settings.api_host}:{port or settings.api_port}"
    console.success(f"charstudio API on {where} (docs: {where}/docs)")
    console.success(f"Character Studio on {where}/studio (log in with the token)")
    console.info(f"token: {services.store.api_token_file} (send it as 'Authorization: Bearer ...')")
    uvicorn.run(
        app,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="info",
        # Job event streams stay open while jobs run: on stop, close them after 5 s
        # instead of waiting for every job (clients reconnect and read the real state).
        timeout_graceful_shutdown=5,
    )


def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "--workers",
            min=1,
            max=64,
            help="Jobs run at once (default: setting job_workers, 1).",
        ),
    ] = None,
    kinds: Annotated[
        str | None,
        typer.Option(
            help="Take only these job kinds, comma-separated (e.g. generate,faces_score on a "
            "ComfyUI box, train on a training GPU); default: every kind.",
        ),
    ] = None,
) -> None:
    """Run queued jobs (training, generation, faces, datasets) until interrupted.

    Run one on each machine that should work: every worker needs the library's database
    and queue settings and the shared data root. The first Ctrl-C (or SIGTERM) lets the
    running jobs finish; a second stops at once.
    """
    from charstudio.jobs import JobQueue
    from charstudio.jobs.worker import Worker, parse_kinds

    services = services_of(ctx)
    services.migrate = "never"  # a worker never changes the library's schema
    services.start()  # refuses an older schema, and a data root of another library
    queue = JobQueue(services)
    queue_kinds = parse_kinds(kinds, list(queue.kinds))
    runner = Worker(
        queue, kinds=queue_kinds, concurrency=concurrency or services.settings.job_workers
    )
    Console().success(
        f"charstudio worker {runner.id}: {runner.concurrency} at a time, "
        f"kinds {', '.join(runner.kinds)}, queue {queue.mailboxes.url}"
    )
    try:
        runner.run()
    finally:
        queue.mailboxes.close()
