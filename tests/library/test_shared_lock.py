"""A character's lock across machines: the lock file is seen by one machine only, so a
library on PostgreSQL also takes an advisory lock that every machine sees."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from charstudio.config import load_settings
from charstudio.errors import Conflict
from charstudio.library.database import open_database
from charstudio.services import Services, build_services
from tests.faces.conftest import DATA


@pytest.mark.servers_only
def test_another_machine_holding_a_character_makes_a_change_wait_then_refuse(
    services: Services, tmp_path: Path
) -> None:
    services.library.create("yuki", [DATA / "obama_2009.jpg"])
    # "Another machine": its own connection to the database, and its own lock folder.
    other = open_database(services.settings.db_url)
    impatient = build_services(services.settings.model_copy(update={"lock_timeout_s": 0.5}))
    try:
        with other.lock("character 'yuki'", timeout_s=1):
            with pytest.raises(Conflict, match="being changed by another charstudio process"):
                impatient.library.import_images("yuki", [DATA / "obama_2010.jpg"])
            assert len(impatient.library.show("yuki").references) == 1
        # Released: the same change goes through, and waits while the other holds it.
        held, release = threading.Event(), threading.Event()

        def hold() -> None:
            with other.lock("character 'yuki'", timeout_s=1):
                held.set()
                release.wait(5)

        holder = threading.Thread(target=hold)
        holder.start()
        assert held.wait(5)
        threading.Timer(0.3, release.set).start()
        patient = build_services(load_settings(home=services.settings.home, lock_timeout_s=10))
        try:
            result = patient.library.import_images("yuki", [DATA / "obama_2010.jpg"])
        finally:
            patient.close()
        holder.join()
        assert len(result.added) == 1
    finally:
        impatient.close()
        other.engine.dispose()


def test_on_sqlite_the_database_lock_is_the_lock_file_alone(services: Services) -> None:
    with services.db.lock("character 'yuki'", timeout_s=0.1):
        if not services.db.is_postgresql:
            with services.db.lock("character 'yuki'", timeout_s=0.1):
                pass  # one machine: the lock file does the work
