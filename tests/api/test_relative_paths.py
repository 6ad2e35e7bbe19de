"""API bodies name files relative to the data root, never by the server's absolute path."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from charstudio.services import Services
from tests.api.conftest import PHOTOS, files


def _roots(services: Services) -> list[str]:
    home = services.store.home
    return sorted({str(home), str(home.resolve())})


def test_no_absolute_server_path_in_api_bodies(client: TestClient, api_services: Services) -> None:
    bad = client.post(
        "/api/v1/characters",
        data={"name": "obama"},
        files=[
            *files(*PHOTOS),
            ("files", ("notes.png", b"<html>not an image</html>", "image/png")),
        ],
    )
    assert bad.status_code == 400, bad.text
    assert "notes.png" in bad.json()["detail"]

    created = client.post("/api/v1/characters", data={"name": "obama"}, files=files(*PHOTOS))
    assert created.status_code == 201, created.text
    shown = client.get("/api/v1/characters/obama")
    refs = client.get("/api/v1/characters/obama/references")
    stored = shown.json()["references"][0]["stored_path"]
    assert stored.startswith("character_data/references/obama/"), stored
    assert (api_services.store.home / stored).is_file()

    for response in (bad, created, shown, refs):
        body = response.text
        for root in _roots(api_services):
            assert root not in body, (response.request.url, body)
            assert json.dumps(root)[1:-1] not in body
    assert int(created.headers["content-length"]) == len(created.content)
