"""Moving a library's database to another server: ``charstudio db migrate-to URL``.

A library that starts on one box (SQLite in the data root) moves to PostgreSQL when it
grows to several machines. :func:`copy_library` copies every row of every table, in
foreign-key order and with the same ids, into a new database at the same schema, then sets
PostgreSQL's id sequences past the copied ids and checks that each table holds as many rows
as the source. The library keeps its id, so the data root's ``library.json`` still matches.

The target must be empty (or hold a charstudio library with no rows: a failed earlier
copy). The rows are copied in one transaction: a failure leaves the target as it was.
Stop the API and the workers first: what is written to the source during the copy is not
copied.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection, Table, delete, func, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from charstudio.errors import DatabaseError, InvalidParameter
from charstudio.library.database import Database, database_error, open_database
from charstudio.library.engines import display_url, engine_url
from charstudio.library.models import Base, LibraryInfo

__all__ = ["TransferResult", "copy_library"]

_BATCH = 500
# Live state of one database's processes, not the library's content.
_NOT_COPIED = {"workers"}


class TransferResult(BaseModel):
    """What ``db migrate-to`` copied."""

    model_config = ConfigDict(frozen=True)

    source: str
    target: str
    library_id: str
    schema_revision: str
    rows: dict[str, int]


def copy_library(source: Database, target_url: str) -> TransferResult:
    """Copy every row of ``source`` into the empty database at ``target_url``.

    Raises:
        InvalidParameter: the target is the source, or is not empty.
        DatabaseError: the target cannot be reached or written (nothing is kept then).
        SchemaTooNew: the target holds a newer charstudio's library.
    """
    if engine_url(target_url) == source.engine.url:
        raise InvalidParameter(f"{display_url(target_url)} is the library's own database")
    target = open_database(target_url, migrate="always")
    try:
        tables = [t for t in Base.metadata.sorted_tables if t.name not in _NOT_COPIED]
        with target.engine.connect() as conn:
            filled = {t.name: n for t in tables if (n := _count(conn, t)) and t.name != "library"}
        if filled:
            raise InvalidParameter(
                f"the database {display_url(target_url)} is not empty "
                f"({', '.join(f'{n} {t}' for t, n in sorted(filled.items()))}); migrate-to "
                "copies into an empty database only: create a new one"
            )
        rows: dict[str, int] = {}
        try:
            with source.engine.connect() as read, target.engine.begin() as write:
                write.execute(delete(LibraryInfo))  # the source's id replaces it
                for table in tables:
                    rows[table.name] = _copy_table(read, write, table)
                if write.dialect.name == "postgresql":
                    _advance_sequences(write, tables)
                for table in tables:
                    copied = _count(write, table)
                    if copied != rows[table.name]:
                        raise DatabaseError(
                            f"copying {table.name} gave {copied} rows, not {rows[table.name]}; "
                            "nothing was kept"
                        )
        except SQLAlchemyError as exc:
            raise database_error(exc) from exc
        return TransferResult(
            source=display_url(source.url),
            target=display_url(target_url),
            library_id=source.library_id,
            schema_revision=target.revision,
            rows=rows,
        )
    finally:
        target.engine.dispose()


def _count(conn: Connection, table: Table) -> int:
    return int(conn.scalar(select(func.count()).select_from(table)) or 0)


def _copy_table(read: Connection, write: Connection, table: Table) -> int:
    """Every row of ``table``, ids and all, through the models' column types (seeds,
    times and JSON come out and go in the same way on either database)."""
    order = list(table.primary_key.columns)
    result = read.execution_options(yield_per=_BATCH).execute(select(table).order_by(*order))
    total = 0
    for batch in result.mappings().partitions(_BATCH):
        write.execute(insert(table), [dict(row) for row in batch])
        total += len(batch)
    return total


def _advance_sequences(write: Connection, tables: list[Table]) -> None:
    """Set each integer id's sequence past the copied ids (the next insert takes max + 1)."""
    for table in tables:
        columns = list(table.primary_key.columns)
        if len(columns) != 1 or columns[0].type.python_type is not int:
            continue
        column = columns[0].name
        write.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence(:table, :column), "
                f'COALESCE(MAX("{column}"), 1), MAX("{column}") IS NOT NULL) '
                f'FROM "{table.name}"'
            ),
            {"table": table.name, "column": column},
        )
