"""Where a route's short database read runs (:func:`charstudio.http.read_now`)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from charstudio.http import read_now
from charstudio.services import Services


def test_a_sqlite_read_runs_on_the_event_loop(services: Services) -> None:
    async def where() -> tuple[int, int]:
        return threading.get_ident(), await read_now(services, threading.get_ident)

    loop_thread, read_thread = asyncio.run(where())
    assert read_thread == loop_thread


def test_a_networked_database_is_read_in_the_thread_pool(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.db.engine.dialect, "name", "postgresql")

    async def where() -> tuple[int, int]:
        return threading.get_ident(), await read_now(services, threading.get_ident)

    loop_thread, read_thread = asyncio.run(where())
    assert read_thread != loop_thread
