"""``/studio/files``: images under the data root only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from charstudio.services import Services


def test_serves_a_reference_image(obama: TestClient, web_services: Services) -> None:
    ref = web_services.library.show("obama").references[0]
    relative = ref.stored_path.removeprefix(str(web_services.settings.home) + "/")
    response = obama.get(f"/studio/files/{relative}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"


@pytest.mark.parametrize(
    ("sent", "path"),
    [
        ("api_token", "api_token"),
        ("charstudio.db", "charstudio.db"),
        ("outputs/..%2F..%2F..%2Fetc%2Fpasswd", "outputs/../../../etc/passwd"),
        ("outputs/..%2F..%2Fa.png", "outputs/../../a.png"),
    ],
)
def test_refuses_everything_else(obama: TestClient, sent: str, path: str) -> None:
    response = obama.get(f"/studio/files/{sent}")
    assert response.status_code == 404
    assert f"no image &#39;{path}&#39; in the data root" in response.text
