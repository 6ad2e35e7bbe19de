"""``charstudio db ...``: the library database's schema, workers, and moving it elsewhere."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import BaseModel, ConfigDict

from charstudio.cli.console import Console
from charstudio.cli.context import services_of
from charstudio.cli.options import JsonOption

__all__ = ["app"]

app = typer.Typer(help="The library database: status, upgrade, migrate-to.", no_args_is_help=True)


class DbStatus(BaseModel):
    """What ``db status`` reports."""

    model_config = ConfigDict(frozen=True)

    database: str
    schema_revision: str
    library_id: str
    data_root: str
    queue: str
    workers: list[dict[str, object]]


@app.command("status")
def status(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """The database, its schema and library id, the data root, and the running workers."""
    from charstudio.jobs.messages import Mailboxes
    from charstudio.jobs.worker import WorkerRegistry
    from charstudio.library.database import display_url

    console = Console(json_mode=json_output)
    services = services_of(ctx)
    services.migrate = "never"  # looking changes nothing
    db = services.db
    settings = services.settings
    workers = WorkerRegistry(db).live(within_s=settings.job_stale_s)
    report = DbStatus(
        database=display_url(db.url),
        schema_revision=db.revision,
        library_id=db.library_id,
        data_root=str(services.store.home),
        queue=Mailboxes.describe(settings.queue_url),
        workers=[w.model_dump(mode="json") for w in workers],
    )
    if json_output:
        console.json(report)
        return
    console.fields(
        "library database",
        [
            ("database", report.database),
            ("schema revision", report.schema_revision),
            ("library id", report.library_id),
            ("data root", report.data_root),
            ("queue", report.queue),
            ("workers", str(len(workers))),
        ],
    )
    if workers:
        console.table(
            f"{len(workers)} running worker(s)",
            ["id", "kinds", "at once", "last seen"],
            [
                (w.id, ", ".join(w.kinds), str(w.concurrency), w.heartbeat_at.isoformat())
                for w in workers
            ],
        )


@app.command("upgrade")
def upgrade(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Upgrade the library's schema to this charstudio's (stop the workers first).

    On PostgreSQL this is the one way an existing library is upgraded: several machines
    share it, so no serve or worker does it by itself. A SQLite file is copied to
    charstudio.db.bak-<revision> first. Run it where the data root is mounted: a library
    from before data-root markers gets its library.json here.
    """
    from charstudio.errors import DataRootMismatch
    from charstudio.library.marker import check_data_root

    console = Console(json_mode=json_output)
    services = services_of(ctx)
    services.migrate = "always"
    db = services.db
    try:  # a library from before markers gets its library.json here, where it is mounted
        check_data_root(services.store, db, may_write=True)
    except DataRootMismatch as exc:
        console.warning(str(exc))
    if json_output:
        console.json({"schema_revision": db.revision, "was": db.found})
        return
    if db.found == db.revision:
        console.success(f"the library is already at schema revision {db.revision}")
    elif db.found is None:
        console.success(f"created the library at schema revision {db.revision}")
    else:
        console.success(f"upgraded the library from schema revision {db.found} to {db.revision}")


@app.command("migrate-to")
def migrate_to(
    ctx: typer.Context,
    url: Annotated[
        str,
        typer.Argument(
            metavar="URL",
            help="The new database, empty: postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME",
            show_default=False,
        ),
    ],
    json_output: JsonOption = False,
) -> None:
    """Copy the library's database (e.g. the SQLite file) into an empty PostgreSQL one.

    Stop the API and the workers first. Every row is copied with its ids; the library
    keeps its id, so the data root stays its own. Then set CHARSTUDIO_DATABASE_URL to URL
    on every machine (the old database is left as it was).
    """
    from charstudio.library.marker import MARKER_NAME, LibraryMarker, read_marker
    from charstudio.library.transfer import copy_library

    console = Console(json_mode=json_output)
    services = services_of(ctx)
    result = copy_library(services.db, url)
    marker = read_marker(services.store.home)
    if marker is not None and marker.library_id == result.library_id:
        updated = LibraryMarker(library_id=result.library_id, database=result.target)
        services.store.write_bytes(
            services.store.home / MARKER_NAME, (updated.model_dump_json(indent=2) + "\n").encode()
        )
    if json_output:
        console.json(result)
        return
    console.success(f"copied the library {result.library_id} to {result.target}")
    console.table(
        "rows copied",
        ["table", "rows"],
        [(table, str(count)) for table, count in result.rows.items()],
    )
    console.info(
        f"now set CHARSTUDIO_DATABASE_URL={result.target} on every machine (the password "
        f"is not shown here); {result.source} is left as it was"
    )
