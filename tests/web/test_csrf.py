"""Issue 15, cross-port CSRF: every studio POST needs this session's CSRF token and, when a
browser says where it comes from, this very origin; a forgery is a 403 page and changes
nothing. The forms post the hidden field their page was rendered with."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from charstudio.services import Services
from charstudio.web.pages import character, consistency, files, generate, jobs, library, login
from tests.web.conftest import PHOTOS, TOKEN, csrf_of
from tests.web.conftest import files as upload

COMFYUI_PAGE = "http://127.0.0.1:8188"


def _cfg(services: Services) -> float | None:
    return services.library.profile("obama").params.cfg


def _studio_posts() -> list[str]:
    """Every POST route of the studio's page modules, with its path parameters filled."""
    fill = {
        "name": "obama",
        "job_id": "0" * 32,
        "image": "x.png",
        "version": "1",
        "generation_id": "1",
    }
    paths = []
    routes = [
        r
        for m in (character, consistency, files, generate, jobs, library, login)
        for r in m.router.routes
    ]
    for route in routes:
        if not isinstance(route, APIRoute) or "POST" not in route.methods:
            continue
        if route.path.startswith("/studio") and route.path != "/studio/login":
            paths.append(re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: fill[m[1]], route.path))
    return paths


def test_every_studio_post_without_the_token_is_refused(obama: TestClient) -> None:
    del obama.headers["X-CSRF-Token"]
    posts = _studio_posts()
    assert "/studio/characters/obama/defaults" in posts and "/studio/logout" in posts
    assert len(posts) >= 12
    for path in posts:
        answer = obama.post(path, data={"cfg": "3"})
        assert answer.status_code == 403, (path, answer.status_code)
        assert "CSRF token is missing or wrong" in answer.text, path
        assert "<h1>Refused</h1>" in answer.text
    assert obama.get("/studio").status_code == 200  # the refused logout changed nothing


def test_a_defaults_form_without_the_token_changes_nothing(
    obama: TestClient, web_services: Services
) -> None:
    del obama.headers["X-CSRF-Token"]
    before = _cfg(web_services)
    answer = obama.post("/studio/characters/obama/defaults", data={"cfg": "3", "steps": "9"})
    assert answer.status_code == 403
    wrong = obama.post(
        "/studio/characters/obama/defaults", data={"cfg": "3", "csrf_token": "0" * 64}
    )
    assert wrong.status_code == 403
    assert _cfg(web_services) == before != 3


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": COMFYUI_PAGE},
        {"Origin": "https://testserver:8188"},  # same host, another port
        {"Origin": "null"},
        {"Referer": f"{COMFYUI_PAGE}/extensions/evil/page.html"},
    ],
)
def test_a_foreign_origin_is_refused_even_with_the_token(
    obama: TestClient, web_services: Services, headers: dict[str, str]
) -> None:
    before = _cfg(web_services)
    answer = obama.post("/studio/characters/obama/defaults", data={"cfg": "3"}, headers=headers)
    assert answer.status_code == 403, answer.text
    assert "studio forms are accepted only from pages of https://testserver:443" in answer.text
    assert _cfg(web_services) == before


def test_the_rendered_form_with_its_hidden_field_works(
    obama: TestClient, web_services: Services
) -> None:
    del obama.headers["X-CSRF-Token"]
    page = obama.get("/studio/characters/obama").text
    form = page.split('action="/studio/characters/obama/defaults"')[1].split("</form>")[0]
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None, "the defaults form has no hidden CSRF field"
    answer = obama.post(
        "/studio/characters/obama/defaults",
        data={"cfg": "6.5", "csrf_token": token[1]},
        headers={"Origin": "https://testserver", "Referer": "https://testserver/studio"},
    )
    assert answer.status_code == 303, answer.text
    assert _cfg(web_services) == 6.5


def test_every_post_form_on_the_pages_carries_the_field(obama: TestClient) -> None:
    for path in ("/studio", "/studio/characters/obama", "/studio/characters/obama/generate"):
        page = obama.get(path).text
        forms = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>(.{0,200})", page, flags=re.S)
        assert forms, path
        for start in forms:
            assert start.startswith('<input type="hidden" name="csrf_token" value="'), path


def test_a_multipart_upload_with_the_field_works_and_without_it_does_not(
    browser: TestClient, web_services: Services
) -> None:
    token = browser.headers.pop("X-CSRF-Token")
    refused = browser.post("/studio/characters", data={"name": "obama"}, files=upload(*PHOTOS))
    assert refused.status_code == 403
    assert web_services.library.list_characters() == []
    made = browser.post(
        "/studio/characters",
        data={"name": "obama", "csrf_token": token},
        files=upload(*PHOTOS),
    )
    assert made.status_code == 303, made.text


def test_another_sessions_token_is_refused(obama: TestClient, anonymous: TestClient) -> None:
    mine = obama.headers["X-CSRF-Token"]
    obama.cookies.clear()
    assert anonymous.post("/studio/login", data={"password": TOKEN}).status_code == 303
    assert csrf_of(anonymous.get("/studio").text) != mine
    answer = anonymous.post(
        "/studio/characters/obama/defaults", data={"cfg": "3"}, headers={"X-CSRF-Token": mine}
    )
    assert answer.status_code == 403


def test_a_login_from_another_origin_is_refused(anonymous: TestClient) -> None:
    answer = anonymous.post(
        "/studio/login", data={"password": TOKEN}, headers={"Origin": COMFYUI_PAGE}
    )
    assert answer.status_code == 403
    assert "set-cookie" not in answer.headers


def test_an_upload_refused_for_its_token_leaves_no_file(
    obama: TestClient, web_services: Services
) -> None:
    """The CSRF check parses the multipart form (its files stream into the data root's
    tmp/) before it can refuse it: the refused request still removes them."""
    del obama.headers["X-CSRF-Token"]
    answer = obama.post("/studio/characters", data={"name": "x"}, files=upload(*PHOTOS))
    assert answer.status_code == 403
    assert list((web_services.settings.home / "tmp").glob("upload-*")) == []
    assert [c.name for c in web_services.library.list_characters()] == ["obama"]
