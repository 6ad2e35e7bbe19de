"""``/api/v1/characters`` and references: create by upload, list, show, update, delete."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from tests.api.conftest import PHOTOS, TOKEN, files
from tests.conftest import decompression_bomb


def test_health_needs_no_token_and_everything_else_does(client: TestClient) -> None:
    assert client.get("/health", headers={"Authorization": ""}).json()["status"] == "ok"
    missing = client.get("/api/v1/characters", headers={"Authorization": ""})
    assert missing.status_code == 401
    assert "missing API token" in missing.json()["detail"]
    wrong = client.get("/api/v1/characters", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "wrong API token" in wrong.json()["detail"]
    legacy = client.post(
        "/character/x/generate_consistent", data={"prompt": "a"}, headers={"Authorization": ""}
    )
    assert legacy.status_code == 401
    assert (
        client.get("/api/v1/characters", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 200
    )


def test_create_list_show_update_delete(obama: TestClient) -> None:
    listing = obama.get("/api/v1/characters", params={"limit": 1}).json()
    assert listing["total"] == 1 and listing["items"][0]["name"] == "obama"
    detail = obama.get("/api/v1/characters/OBAMA").json()
    assert detail["name"] == "obama" and len(detail["references"]) == 3
    assert detail["profile"]["method"] == "img2img"
    updated = obama.patch("/api/v1/characters/obama", json={"cfg": 6.5, "description": "44th"})
    assert updated.status_code == 200 and updated.json()["params"]["cfg"] == 6.5
    assert obama.get("/api/v1/characters/obama").json()["description"] == "44th"
    out_of_range = obama.patch("/api/v1/characters/obama", json={"lora_strength": 5})
    assert out_of_range.status_code == 422
    assert out_of_range.json()["detail"][0]["loc"] == ["body", "lora_strength"]
    removed = obama.delete("/api/v1/characters/obama", params={"purge": True})
    assert removed.status_code == 200 and removed.json()["purged"] is True
    assert obama.get("/api/v1/characters/obama").status_code == 404


def test_unknown_character_is_404(client: TestClient) -> None:
    for method, path in [
        ("GET", "/api/v1/characters/nobody"),
        ("GET", "/api/v1/characters/nobody/references"),
        ("POST", "/api/v1/characters/nobody/faces/extract"),
        ("DELETE", "/api/v1/characters/nobody"),
    ]:
        response = client.request(method, path)
        assert response.status_code == 404, (method, path)
        assert response.json()["detail"].startswith("no character named 'nobody'")


def test_reference_download_with_etag_and_delete(obama: TestClient) -> None:
    refs = obama.get("/api/v1/characters/obama/references").json()
    assert refs["total"] == 3
    sha = refs["items"][0]["sha256"]
    image = obama.get(f"/api/v1/characters/obama/references/{sha}")
    assert image.status_code == 200 and image.headers["etag"] == f'"{sha}"'
    assert image.content == PHOTOS[0].read_bytes()
    again = obama.get(
        f"/api/v1/characters/obama/references/{sha}", headers={"If-None-Match": f'"{sha}"'}
    )
    assert again.status_code == 304 and again.content == b""
    assert obama.delete(f"/api/v1/characters/obama/references/{sha}").status_code == 200
    assert obama.get(f"/api/v1/characters/obama/references/{sha}").status_code == 404
    assert obama.get("/api/v1/characters/obama/references").json()["total"] == 2


def test_upload_more_duplicates_reported(obama: TestClient) -> None:
    result = obama.post("/api/v1/characters/obama/references", files=files(PHOTOS[0]))
    assert result.status_code == 201
    assert result.json()["added"] == [] and len(result.json()["duplicates"]) == 1


def test_not_an_image_and_a_bomb_are_refused_and_nothing_is_kept(
    obama: TestClient, tmp_path: object
) -> None:
    text = obama.post(
        "/api/v1/characters/obama/references",
        files=[("files", ("photo.jpg", b"not an image at all", "image/jpeg"))],
    )
    assert text.status_code == 400 and "photo.jpg" in text.json()["detail"]
    from pathlib import Path

    bomb = decompression_bomb(Path(str(tmp_path)) / "bomb.png")
    refused = obama.post("/api/v1/characters/obama/references", files=files(bomb))
    assert refused.status_code == 400 and "pixels" in refused.json()["detail"]
    assert obama.get("/api/v1/characters/obama/references").json()["total"] == 3


def test_path_traversal_names_never_reach_the_file_system(
    client: TestClient, api_services: object
) -> None:
    evil = [("files", ("../../../../etc/evil.jpg", PHOTOS[0].read_bytes(), "image/jpeg"))]
    evil += [("files", ("..\\..\\win.jpg", PHOTOS[1].read_bytes(), "image/jpeg"))]
    response = client.post("/api/v1/characters", data={"name": "x"}, files=evil)
    assert response.status_code == 201, response.text
    names = sorted(i["original_name"] for i in response.json()["added"])
    assert names == ["evil.jpg", "win.jpg"]
    for item in response.json()["added"]:
        assert item["stored_path"].endswith(f"{item['sha256']}.jpg")
    bad_name = client.post("/api/v1/characters", data={"name": "../x"}, files=files(PHOTOS[0]))
    assert bad_name.status_code == 400 and "../x" in bad_name.json()["detail"]


def test_a_huge_upload_is_refused_before_it_is_read(obama: TestClient) -> None:
    response = obama.post(
        "/api/v1/characters/obama/references",
        content=b"x" * 10,
        headers={"Content-Length": str(200_000_000), "Content-Type": "multipart/form-data"},
    )
    assert response.status_code == 413
    assert "5,000,000-byte limit" in response.json()["detail"]


def test_a_streamed_upload_is_cut_off_at_the_limit(obama: TestClient) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield (
            b'--zzz\r\nContent-Disposition: form-data; name="files"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(12):
            yield b"y" * 500_000

    response = obama.post(
        "/api/v1/characters/obama/references",
        content=chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=zzz"},
    )
    assert response.status_code == 413, response.text


def test_too_many_files_at_once(obama: TestClient) -> None:
    many = [("files", (f"{i}.png", b"\x89PNG", "image/png")) for i in range(1000)]
    response = obama.post("/api/v1/characters/obama/references", files=many)
    assert response.status_code == 413
    assert "more than 20 files in one request" in response.json()["detail"]


def test_no_files_is_a_clear_400(obama: TestClient) -> None:
    response = obama.post("/api/v1/characters/obama/references", data={"x": "y"})
    assert response.status_code == 400 and "no files in the form field 'files'" in response.text
