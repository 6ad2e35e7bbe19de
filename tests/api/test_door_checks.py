"""Issue 15: names, numbers and non-finite floats are refused at the door with a 4xx,
never a 500, and a refused name leaves no lock file behind."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from charstudio.services import Services

BAD_NAMES = ["a\x00b", "x" * 300]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_400_on_patch_and_delete(
    obama: TestClient, api_services: Services, name: str
) -> None:
    quoted = name.replace("\x00", "%00")
    answers = [
        obama.patch(f"/api/v1/characters/{quoted}", json={"cfg": 6}),
        obama.delete(f"/api/v1/characters/{quoted}"),
        obama.delete(f"/api/v1/characters/{quoted}/references/{'0' * 64}"),
    ]
    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert answer.json()["type"] == "InvalidName"
        assert "use 1-64 ASCII letters" in answer.json()["detail"]
    assert sorted(p.name for p in api_services.store.locks_dir.iterdir()) == ["obama.lock"]


def test_an_unknown_name_leaves_no_lock_file(obama: TestClient, api_services: Services) -> None:
    assert obama.patch("/api/v1/characters/nobody", json={"cfg": 6}).status_code == 404
    assert obama.delete("/api/v1/characters/nobody").status_code == 404
    assert obama.delete(f"/api/v1/characters/nobody/references/{'0' * 64}").status_code == 404
    assert not (api_services.store.locks_dir / "nobody.lock").exists()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/jobs?offset=9223372036854775808",
        "/api/v1/jobs?limit=9223372036854775808",
        "/api/v1/characters?offset=9223372036854775808",
        "/api/v1/characters/obama/references?offset=99999999999999999999",
    ],
)
def test_integers_past_64_bits_are_422(obama: TestClient, url: str) -> None:
    answer = obama.get(url)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"][0]["loc"][0] == "query"


def test_an_id_past_64_bits_is_422(obama: TestClient) -> None:
    answer = obama.post("/api/v1/generations/9223372036854775808/accept")
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_json_are_422_with_a_strict_json_body(
    obama: TestClient, number: str
) -> None:
    before = obama.get("/api/v1/characters/obama").json()["profile"]["params"]
    body = '{"cfg": ' + number + ', "steps": 20}'
    answer = obama.patch(
        "/api/v1/characters/obama", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    detail = json.loads(answer.text, parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert detail["detail"][0]["loc"] == ["body", "cfg"]
    assert obama.get("/api/v1/characters/obama").json()["profile"]["params"] == before


def test_a_full_disk_is_507_with_the_storage_advice(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.api.conftest import PHOTOS, files

    def full(source: Path, destination: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full)
    answer = client.post("/api/v1/characters", data={"name": "obama"}, files=files(*PHOTOS))
    assert answer.status_code == 507, answer.text
    assert answer.json()["type"] == "DiskFull"
    assert "free disk space" in answer.json()["detail"]
    assert client.get("/api/v1/characters/obama").status_code == 404


def test_a_full_disk_outside_the_store_helpers_is_507_too(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charstudio.library.characters import Library

    def full(self: Library, *, limit: int | None = None, offset: int = 0) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Library, "page", full)
    answer = client.get("/api/v1/characters")
    assert answer.status_code == 507 and answer.json()["type"] == "DiskFull"
