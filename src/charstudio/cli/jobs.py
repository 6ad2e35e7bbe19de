"""``charstudio jobs ...``: list, show and cancel jobs."""

from __future__ import annotations

from typing import Annotated, cast, get_args

import typer

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption
from charstudio.jobs import JobInfo, JobState, JobStore

__all__ = ["app"]

app = typer.Typer(help="Jobs: list, show, cancel.", no_args_is_help=True)
STATES: tuple[str, ...] = get_args(JobState)
JobId = Annotated[
    str,
    typer.Argument(
        metavar="JOB_ID",
        help="The job's id, as `charstudio jobs list` shows it or the API answered.",
        show_default=False,
    ),
]


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many.")] = 20,
    json_output: JsonOption = False,
) -> None:
    """The newest jobs with their state and progress."""
    console = Console(json_mode=json_output)
    store = _store(ctx)
    if state is not None and state not in STATES:
        console.abort(f"unknown state {state!r}; use one of {', '.join(STATES)}", code=2)
    page = store.page(state=cast(JobState | None, state), limit=limit)
    if json_output:
        console.json(page)
        return
    console.table(
        f"{page.total} job(s)",
        ["id", "kind", "character", "state", "progress", "message"],
        [_row(j) for j in page.items],
    )


@app.command("show")
def show(ctx: typer.Context, job_id: JobId, json_output: JsonOption = False) -> None:
    """One job: state, progress, result or error; a queued job that no running worker
    takes says so."""
    from charstudio.jobs.worker import WorkerRegistry, waiting_note

    console = Console(json_mode=json_output)
    services = services_of(ctx)
    job = _store(ctx).get(job_id)
    note = waiting_note(WorkerRegistry(services.db), job, within_s=services.settings.job_stale_s)
    if json_output:
        console.json(job)
        if note:
            console.warning(note)
        return
    labels = ["kind", "character", "state", "progress", "message"]
    values = list(zip(labels, _row(job)[1:], strict=True))
    waiting = [("waiting", note)] if note else []
    console.fields(f"job {job.id}", [*values, *waiting, ("error", job.error or "-")])


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: JobId, json_output: JsonOption = False) -> None:
    """Cancel a queued job, or stop a running one at its next step."""
    console = Console(json_mode=json_output)
    job = _store(ctx).cancel(job_id)
    if json_output:
        console.json(job)
        return
    if job.state == "cancelled":
        console.success(f"job {job.id} cancelled")
    else:
        console.success(f"job {job.id} will stop at its next step")


def _store(ctx: typer.Context) -> JobStore:
    """The jobs of this library; a result's files as this machine finds them."""
    services = services_of(ctx)
    return JobStore(services.db, services.store.home)


def _row(job: JobInfo) -> tuple[str, str, str, str, str, str]:
    progress = f"{job.progress_step}/{job.progress_total}" if job.progress_total else "-"
    # A failed job's message is its error (its progress message is often empty or stale).
    message = job.error if job.state == "failed" and job.error else job.message
    return (job.id, job.kind, job.character or "-", job.state, progress, message)
