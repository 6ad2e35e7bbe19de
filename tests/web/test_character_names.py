"""Issue 15: a name no character can have is a 4xx page on the studio's character routes
(the defaults form among them), never a 500, and leaves no lock file."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from charstudio.services import Services


@pytest.mark.parametrize("name", ["a%00b", "x" * 300])
def test_the_defaults_form_and_page_refuse_impossible_names(
    obama: TestClient, web_services: Services, name: str
) -> None:
    saved = obama.post(f"/studio/characters/{name}/defaults", data={"cfg": "6"})
    assert saved.status_code == 400, saved.status_code
    assert "use 1-64 ASCII letters" in saved.text
    assert obama.get(f"/studio/characters/{name}").status_code == 400
    assert sorted(p.name for p in web_services.store.locks_dir.iterdir()) == ["obama.lock"]


def test_the_defaults_form_of_an_unknown_character_is_404_without_a_lock(
    obama: TestClient, web_services: Services
) -> None:
    assert obama.post("/studio/characters/nobody/defaults", data={"cfg": "6"}).status_code == 404
    assert not (web_services.store.locks_dir / "nobody.lock").exists()
