"""Issue 15: the session cookie is scoped to /studio and revoked server-side at logout; a
weak API token logs nobody in; studio responses carry the security headers; the file
route is a 404, not a 500, for names no file can have."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from charstudio.jobs import JobQueue
from charstudio.server import create_app
from charstudio.services import Services
from charstudio.web.auth import COOKIE
from tests.web.conftest import TOKEN


def test_the_cookie_is_scoped_to_the_studio_path(anonymous: TestClient) -> None:
    response = anonymous.post("/studio/login", data={"password": TOKEN})
    attributes = [a.strip().lower() for a in response.headers["set-cookie"].split(";")]
    assert "path=/studio" in attributes
    assert "path=/" not in attributes


def test_a_cookie_copied_before_logout_no_longer_works(
    browser: TestClient, web_services: Services, queue: JobQueue
) -> None:
    copied = browser.cookies[COOKIE]
    assert browser.post("/studio/logout").status_code == 303
    replay = {"cookie": f"{COOKIE}={copied}"}
    answer = browser.get("/studio", headers=replay)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/studio/login?next=/studio&expired=1"
    # ...also after a restart: the revocation is kept in the data root.
    with TestClient(create_app(web_services, queue=queue), base_url="https://testserver") as new:
        assert new.get("/studio", headers=replay, follow_redirects=False).status_code == 303


def test_logout_revokes_only_that_session(browser: TestClient, anonymous_too: TestClient) -> None:
    assert anonymous_too.post("/studio/login", data={"password": TOKEN}).status_code == 303
    assert browser.post("/studio/logout").status_code == 303
    assert anonymous_too.get("/studio").status_code == 200


@pytest.fixture
def anonymous_too(web_services: Services, queue: JobQueue) -> Iterator[TestClient]:
    app = create_app(web_services, queue=queue)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.mark.parametrize("weak", ["", "short-token"])
def test_a_weak_token_logs_nobody_in(web_services: Services, queue: JobQueue, weak: str) -> None:
    web_services.settings = web_services.settings.model_copy(update={"api_token": None})
    web_services.store.api_token_file.write_text(weak + "\n")
    app = create_app(web_services, queue=queue)
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        answer = client.post("/studio/login", data={"password": weak})
        assert answer.status_code == 503
        assert "set-cookie" not in answer.headers
        assert "at least 16 are needed" in answer.text and "charstudio init" in answer.text
        api = client.get("/api/v1/characters", headers={"Authorization": f"Bearer {weak}x"})
        assert api.status_code == 401 and "at least 16" in api.json()["detail"]


@pytest.mark.parametrize("path", ["/studio/login", "/studio", "/studio/static/studio.js", "/"])
def test_studio_responses_carry_the_security_headers(anonymous: TestClient, path: str) -> None:
    headers = anonymous.get(path).headers
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    policy = headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_pages_have_no_inline_scripts_or_style_attributes(obama: TestClient) -> None:
    for path in ("/studio", "/studio/characters/obama", "/studio/characters/obama/generate"):
        page = obama.get(path).text
        assert " style=" not in page and "<style" not in page, path
        assert "<script>" not in page and "<script src=" in page, path


@pytest.mark.parametrize("name", ["a%00b.png", "x" * 5000 + ".png", ("y" * 300 + "/") * 3])
def test_the_file_route_is_a_404_for_impossible_names(browser: TestClient, name: str) -> None:
    answer = browser.get(f"/studio/files/{name}")
    assert answer.status_code == 404, answer.status_code
    assert "no image" in answer.text


def test_a_refused_upload_leaves_nothing_in_the_temp_area(
    browser: TestClient, web_services: Services
) -> None:
    not_images = [("files", ("a.jpg", b"not an image", "image/jpeg"))] * 2
    answer = browser.post("/studio/characters", data={"name": "obama"}, files=not_images)
    assert answer.status_code == 400, answer.text
    count = web_services.settings.api_max_files + 1
    many = [("files", (f"{i}.jpg", b"x", "image/jpeg")) for i in range(count)]
    assert browser.post("/studio/characters", data={"name": "o"}, files=many).status_code == 413
    assert list((web_services.settings.home / "tmp").glob("upload-*")) == []


def test_a_full_disk_is_the_507_page(browser: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from charstudio.library.characters import Library

    def full(self: Library) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Library, "list_characters", full)
    answer = browser.get("/studio")
    assert answer.status_code == 507
    assert "The disk is full" in answer.text and "free disk space" in answer.text
