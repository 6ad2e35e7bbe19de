"""The login form, the session cookie, logout; pages redirect to the login form without it."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from charstudio.web.auth import COOKIE, SESSION_S, new_session, safe_next, session_valid
from tests.web.conftest import TOKEN


def test_login_form_is_labelled(anonymous: TestClient) -> None:
    page = anonymous.get("/studio/login?next=/studio/jobs")
    assert page.status_code == 200
    assert '<label for="password">Password (API token)</label>' in page.text
    assert 'name="next" value="/studio/jobs"' in page.text


@pytest.mark.parametrize(
    ("path", "login"),
    [
        ("/studio", "/studio/login?next=/studio"),
        ("/studio/jobs?rows=1", "/studio/login?next=/studio/jobs%3Frows%3D1"),
        ("/studio/characters/obama", "/studio/login?next=/studio/characters/obama"),
        (
            "/studio/files/character_data/x.png",
            "/studio/login?next=/studio/files/character_data/x.png",
        ),
    ],
)
def test_missing_cookie_redirects_to_login(anonymous: TestClient, path: str, login: str) -> None:
    response = anonymous.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == login


def test_forms_without_cookie_redirect_and_change_nothing(anonymous: TestClient) -> None:
    response = anonymous.post("/studio/characters/obama/faces")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/studio/login?next=")
    assert anonymous.get("/").headers["location"] == "/studio"


def test_wrong_password_shows_the_reason_and_sets_no_cookie(anonymous: TestClient) -> None:
    wrong = anonymous.post("/studio/login", data={"password": "guess", "next": "/studio"})
    assert wrong.status_code == 401
    assert "Wrong password: use the API token." in wrong.text
    assert "set-cookie" not in wrong.headers
    empty = anonymous.post("/studio/login", data={"password": "", "next": "/studio"})
    assert empty.status_code == 401
    assert "Enter the API token." in empty.text
    assert anonymous.get("/studio").status_code == 303


def test_login_sets_a_secure_http_only_same_site_cookie(anonymous: TestClient) -> None:
    response = anonymous.post("/studio/login", data={"password": TOKEN, "next": "/studio/jobs"})
    assert response.status_code == 303
    assert response.headers["location"] == "/studio/jobs"
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(f"{COOKIE}=")
    for flag in ("secure", "httponly", "samesite=strict", "path=/", f"max-age={SESSION_S}"):
        assert flag in cookie
    assert anonymous.get("/studio/jobs").status_code == 200


def test_the_cookie_does_not_open_the_api(browser: TestClient) -> None:
    response = browser.get("/api/v1/characters")
    assert response.status_code == 401
    assert response.json()["detail"].startswith("missing API token")


def test_forged_and_expired_cookies_redirect(anonymous: TestClient) -> None:
    expired = new_session(TOKEN, now=time.time() - SESSION_S - 5)
    for value in ("1.abc", expired, new_session("another-token"), "garbage"):
        response = anonymous.get("/studio", headers={"cookie": f"{COOKIE}={value}"})
        assert response.status_code == 303, value
        assert response.headers["location"] == "/studio/login?next=/studio&expired=1"
    good = anonymous.get("/studio", headers={"cookie": f"{COOKIE}={new_session(TOKEN)}"})
    assert good.status_code == 200
    page = anonymous.get("/studio/login?next=/studio&expired=1").text
    assert (
        '<p class="error" role="alert" id="login-error">Your session expired or is not valid; '
        "log in again.</p>"
    ) in page


def test_session_signature() -> None:
    value = new_session(TOKEN, now=1000.0)
    assert session_valid(TOKEN, value, now=1001.0)
    assert not session_valid(TOKEN, value, now=1000.0 + SESSION_S + 1)
    assert not session_valid("other", value, now=1001.0)
    assert not session_valid(TOKEN, None)


def test_next_never_leaves_the_studio() -> None:
    assert safe_next("https://evil.example/") == "/studio"
    assert safe_next("//evil.example/studio") == "/studio"
    assert safe_next("/studio/jobs") == "/studio/jobs"
    assert safe_next(None) == "/studio"


def test_logout_clears_the_cookie(browser: TestClient) -> None:
    response = browser.post("/studio/logout")
    assert response.status_code == 303
    assert response.headers["location"] == "/studio/login"
    assert "max-age=0" in response.headers["set-cookie"].lower()
    assert browser.get("/studio").status_code == 303
